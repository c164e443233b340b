package cli

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/control/ca"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := New()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestReportCA(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	fp := strings.Repeat("ab", 32)
	anchor := func(left time.Duration) ca.Expiry {
		return ca.Expiry{What: "trust anchor", Fingerprint: fp, NotAfter: now.Add(left)}
	}
	issuer := func(left time.Duration) ca.Expiry {
		return ca.Expiry{What: "issuer", Fingerprint: fp, NotAfter: now.Add(left)}
	}
	day := 24 * time.Hour
	for _, tc := range []struct {
		name    string
		exps    []ca.Expiry
		want    []string
		wantErr bool
	}{
		{"all fine", []ca.Expiry{anchor(3000 * day), issuer(300 * day)}, []string{"OK: no anchor or issuer expires soon"}, false},
		{"issuer soon", []ca.Expiry{anchor(3000 * day), issuer(10 * day)}, []string{"WARNING: issuer abababababababab expires in 10d0h; run `weft ca rotate-issuer`"}, false},
		{"anchor soon", []ca.Expiry{anchor(100 * day), issuer(50 * day)}, []string{"WARNING: trust anchor abababababababab expires in 100d; roll in a new anchor: `weft ca add-anchor`"}, false},
		{"issuer expired", []ca.Expiry{anchor(3000 * day), issuer(-time.Hour)}, []string{"ERROR: issuer abababababababab expired 1h0m0s ago"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := reportCA(&out, tc.exps, now, 180*day, 30*day)
			if (err != nil) != tc.wantErr || (err != nil && !errors.Is(err, errCheckFailed)) {
				t.Fatalf("err = %v, want failure %v", err, tc.wantErr)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestCARotationCommands walks the documented anchor rotation with the CLI
// and checks what `weft check` shows at each step.
func TestCARotationCommands(t *testing.T) {
	dataDir := t.TempDir()
	if _, err := ca.LoadOrCreate(filepath.Join(dataDir, "ca"), ca.Options{TrustDomain: "weft.local"}); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "check", "--data-dir", dataDir)
	if err != nil || strings.Count(out, "trust anchor") != 1 || !strings.Contains(out, "OK:") {
		t.Fatalf("check of a new CA: %v\n%s", err, out)
	}
	oldFP := strings.Fields(strings.Split(out, "\n")[1])[2]

	if _, err := run(t, "ca", "add-anchor", "--data-dir", dataDir); err != nil {
		t.Fatal(err)
	}
	if out, _ = run(t, "check", "--data-dir", dataDir); strings.Count(out, "trust anchor") != 2 {
		t.Fatalf("after add-anchor, check shows:\n%s", out)
	}
	// The old anchor still signs the issuer: removing it is refused.
	if _, err := run(t, "ca", "remove-anchor", oldFP, "--data-dir", dataDir); err == nil || !strings.Contains(err.Error(), "rotate the issuer first") {
		t.Fatalf("remove-anchor before rotate-issuer: %v", err)
	}
	if _, err := run(t, "ca", "rotate-issuer", "--data-dir", dataDir); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "ca", "remove-anchor", oldFP, "--data-dir", dataDir); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "check", "--data-dir", dataDir)
	if err != nil || strings.Count(out, "trust anchor") != 1 || strings.Contains(out, oldFP) {
		t.Fatalf("after the roll: %v\n%s", err, out)
	}
	// The current anchor can never be removed.
	cur := strings.Fields(strings.Split(out, "\n")[1])[2]
	if _, err := run(t, "ca", "remove-anchor", cur, "--data-dir", dataDir); err == nil || !strings.Contains(err.Error(), "current anchor") {
		t.Fatalf("removing the current anchor: %v", err)
	}
	// Tokens: created for the CA's trust domain, refused for another.
	if out, err := run(t, "token", "create", "--data-dir", dataDir, "-n", "shop", "--service-account", "web"); err != nil || !strings.HasPrefix(out, "weft-join.") {
		t.Fatalf("token create: %q, %v", out, err)
	}
	if _, err := run(t, "token", "create", "--data-dir", dataDir, "--identity", "spiffe://other.example/ns/shop/sa/web"); err == nil || !strings.Contains(err.Error(), "trust domain") {
		t.Fatalf("token for another trust domain: %v", err)
	}
	if out, err := run(t, "token", "list", "--data-dir", dataDir); err != nil || !strings.Contains(out, "spiffe://weft.local/ns/shop/sa/web") || strings.Contains(out, "weft-join.") {
		t.Fatalf("token list (must never show secrets): %v\n%s", err, out)
	}
	// No CA: check says how to get one.
	if _, err := run(t, "check", "--data-dir", t.TempDir()); err == nil || !strings.Contains(err.Error(), "start the control plane") {
		t.Fatalf("check without a CA: %v", err)
	}
}
