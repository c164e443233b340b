package config

import (
	"strings"
	"testing"
)

// TestIssuedTLS: an issued identity needs no files and accepts mesh
// traffic; mixing it with files is refused.
func TestIssuedTLS(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, wantErr string
	}{
		{"issued with inbound", "tls: {issued: true}\ninbound: {}", ""},
		{"issued with files", "tls: {issued: true, cert_file: a.crt}\ninbound: {}", "tls.issued"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			c, err := Compile(cfg)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr == "" && (c.TLS == nil || !c.TLS.Issued):
				t.Fatalf("TLS = %+v, want issued", c.TLS)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}
