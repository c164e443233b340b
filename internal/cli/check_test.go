package cli

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"

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

// TestCheckMode checks which `weft check` runs: the data directory's CA
// (--data-dir, or no cluster configured) or a cluster's.
func TestCheckMode(t *testing.T) {
	home := t.TempDir()
	t.Chdir(home) // the default data directory, .weft, has no CA
	t.Setenv("HOME", home)
	t.Setenv("KUBECONFIG", filepath.Join(home, "none"))
	dataDir := t.TempDir()
	if _, err := ca.LoadOrCreate(filepath.Join(dataDir, "ca"), ca.Options{TrustDomain: "weft.local"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		wantOut string // in the output
		wantErr string // in the error; "" means none
	}{
		{"data dir", []string{"--data-dir", dataDir}, "OK: no anchor or issuer expires soon", ""},
		{"data dir and --pre", []string{"--data-dir", dataDir, "--pre"}, "", "--data-dir checks a data directory"},
		{"data dir and a namespace", []string{"--data-dir", dataDir, "-n", "weft"}, "", "--data-dir checks a data directory"},
		{"no cluster configured: the default data dir", nil, "", "start the control plane"},
		{"--pre needs a cluster", []string{"--pre"}, "", "loading the kubeconfig"},
		{"a missing kubeconfig", []string{"--kubeconfig", filepath.Join(home, "missing")}, "", "loading the kubeconfig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, append([]string{"check"}, tc.args...)...)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if !strings.Contains(out, tc.wantOut) {
				t.Errorf("output lacks %q:\n%s", tc.wantOut, out)
			}
		})
	}
}
