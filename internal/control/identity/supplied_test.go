package identity_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/control/identity"
)

// TestSuppliedCAReloadsWithoutWriting: a CA supplied as a mounted Secret
// (tls.crt, tls.key, ca.crt; read-only in a pod) is reloaded when it
// changes, and weft writes nothing into its directory, not even a lock.
func TestSuppliedCAReloadsWithoutWriting(t *testing.T) {
	gen := t.TempDir()
	if _, err := ca.LoadOrCreate(gen, ca.Options{TrustDomain: td}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "ca")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	copyAs := func(from, to string) {
		b, err := os.ReadFile(filepath.Join(gen, from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, to), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	install := func() {
		copyAs(ca.AnchorCertFile, ca.SuppliedCAFile)
		copyAs(ca.IssuerCertFile, ca.SuppliedCertFile)
		copyAs(ca.IssuerKeyFile, ca.SuppliedKeyFile)
	}
	install()
	auth, err := identity.OpenAuthority(dir, ca.Options{TrustDomain: td}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if !auth.Current().Supplied() {
		t.Fatal("a tls.crt/tls.key/ca.crt directory did not load as a supplied CA")
	}
	before := auth.Current().IssuerFingerprint()
	// cert-manager renews the issuer: the Secret's files change.
	if _, err := ca.RotateIssuer(gen, ca.Options{TrustDomain: td}); err != nil {
		t.Fatal(err)
	}
	install()
	changed, err := auth.Reload()
	if err != nil || !changed || auth.Current().IssuerFingerprint() == before {
		t.Fatalf("Reload after the issuer changed: changed %v, err %v", changed, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("weft wrote into the supplied CA's directory: %v", names)
	}
}
