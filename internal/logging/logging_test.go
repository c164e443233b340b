package logging

import (
	"bytes"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	cases := []struct {
		level, format string
		wantErr       string
		wantOut       string
	}{
		{"info", "json", "", `"msg":"hello"`},
		{"debug", "text", "", "msg=hello"},
		{"warn", "json", "", ""}, // info is below warn: nothing written
		{"loud", "json", "--log-level", ""},
		{"info", "xml", "--log-format", ""},
	}
	for _, tc := range cases {
		var buf bytes.Buffer
		l, err := New(&buf, tc.level, tc.format)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s/%s: error %v, want one naming %s", tc.level, tc.format, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		l.Info("hello")
		if !strings.Contains(buf.String(), tc.wantOut) || (tc.wantOut == "" && buf.Len() != 0) {
			t.Errorf("%s/%s wrote %q", tc.level, tc.format, buf.String())
		}
	}
}
