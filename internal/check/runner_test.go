package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/")

func fixed(o Outcome) func(context.Context) Outcome {
	return func(context.Context) Outcome { return o }
}

// golden compares got with testdata/name, or writes it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestRun(t *testing.T) {
	ok := Check{Category: "a", Name: "fine", Run: fixed(Pass(""))}
	okMsg := Check{Category: "a", Name: "fine, with a note", Run: fixed(Pass("a note"))}
	warn := Check{Category: "b", Name: "warned", Run: fixed(Warn("do this", "something is off"))}
	bad := Check{Category: "b", Name: "broken", Run: fixed(Fail("fix it like this\nthen that", "it is broken"))}
	fatal := Check{Category: "a", Name: "the base", Fatal: true, Run: fixed(Fail("start it", "it is down"))}
	for _, tc := range []struct {
		name        string
		checks      []Check
		wantSuccess bool
		wantSkipped int
	}{
		{"green", []Check{ok, okMsg}, true, 0},
		{"warnings do not fail", []Check{ok, warn}, true, 0},
		{"red", []Check{ok, warn, bad, ok}, false, 0},
		{"fatal stops", []Check{fatal, ok, bad}, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, format := range Formats() {
				var out bytes.Buffer
				rep, err := Run(t.Context(), &out, tc.checks, Options{Format: format})
				if rep.Success != tc.wantSuccess || (err == nil) != tc.wantSuccess || (err != nil && !errors.Is(err, ErrFailed)) {
					t.Fatalf("%s: success %v, err %v; want success %v", format, rep.Success, err, tc.wantSuccess)
				}
				if len(rep.Skipped) != tc.wantSkipped || len(rep.Checks)+len(rep.Skipped) != len(tc.checks) {
					t.Errorf("%s: %d run, %d skipped; want %d skipped of %d", format, len(rep.Checks), len(rep.Skipped), tc.wantSkipped, len(tc.checks))
				}
				if format == FormatJSON {
					var back Report
					if err := json.Unmarshal(out.Bytes(), &back); err != nil || back.Success != tc.wantSuccess || len(back.Checks) != len(rep.Checks) {
						t.Errorf("JSON output %v, %+v:\n%s", err, back, out.String())
					}
				}
				golden(t, strings.ReplaceAll(tc.name, " ", "_")+"."+format, out.Bytes())
			}
		})
	}
	t.Run("each check has its timeout", func(t *testing.T) {
		var left time.Duration
		c := Check{Category: "a", Name: "deadline", Run: func(ctx context.Context) Outcome {
			d, _ := ctx.Deadline()
			left = time.Until(d)
			return Pass("")
		}}
		if _, err := Run(t.Context(), &bytes.Buffer{}, []Check{c}, Options{Timeout: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if left <= 50*time.Second || left > time.Minute {
			t.Errorf("the check's deadline is %v away, want about a minute", left)
		}
	})
	t.Run("unknown format", func(t *testing.T) {
		if _, err := Run(t.Context(), &bytes.Buffer{}, []Check{ok}, Options{Format: "yaml"}); err == nil || errors.Is(err, ErrFailed) {
			t.Errorf("err = %v", err)
		}
	})
}
