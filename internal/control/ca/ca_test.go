package ca_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.uber.org/goleak"

	"github.com/weft-mesh/weft/internal/control/ca"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const td = "weft.local"

func mustCreate(t *testing.T, dir string, o ca.Options) *ca.Authority {
	t.Helper()
	if o.TrustDomain == "" {
		o.TrustDomain = td
	}
	a, err := ca.LoadOrCreate(dir, o)
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	return a
}

func TestLoadOrCreateThenReload(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	a := mustCreate(t, dir, ca.Options{})
	if got := a.TrustDomain().Name(); got != td {
		t.Errorf("TrustDomain = %s, want %s", got, td)
	}
	if d := time.Until(a.Anchor().NotAfter); d < ca.DefaultAnchorLifetime-time.Hour || d > ca.DefaultAnchorLifetime {
		t.Errorf("anchor valid for %v, want about %v", d, ca.DefaultAnchorLifetime)
	}
	if d := time.Until(a.Issuer().NotAfter); d < ca.DefaultIssuerLifetime-time.Hour || d > ca.DefaultIssuerLifetime {
		t.Errorf("issuer valid for %v, want about %v", d, ca.DefaultIssuerLifetime)
	}
	if !a.Issuer().IsCA || !a.Issuer().MaxPathLenZero || !a.Anchor().IsCA {
		t.Errorf("anchor/issuer basic constraints wrong: anchor CA %v, issuer CA %v maxPathLenZero %v",
			a.Anchor().IsCA, a.Issuer().IsCA, a.Issuer().MaxPathLenZero)
	}
	if err := a.Issuer().CheckSignatureFrom(a.Anchor()); err != nil {
		t.Errorf("issuer not signed by anchor: %v", err)
	}

	b := mustCreate(t, dir, ca.Options{})
	if !a.Anchor().Equal(b.Anchor()) || !a.Issuer().Equal(b.Issuer()) {
		t.Error("reload returned different anchor or issuer")
	}
	if !bytes.Equal(a.BundlePEM(), b.BundlePEM()) {
		t.Error("reload returned a different bundle")
	}
	exp := b.Expiries()
	if len(exp) != 2 || exp[0].What != "trust anchor" || exp[1].What != "issuer" ||
		!exp[0].NotAfter.Equal(b.Anchor().NotAfter) || !exp[1].NotAfter.Equal(b.Issuer().NotAfter) ||
		exp[1].File != filepath.Join(dir, ca.IssuerCertFile) {
		t.Errorf("Expiries = %+v", exp)
	}
}

func TestFileModes(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	a := mustCreate(t, dir, ca.Options{})
	out := filepath.Join(root, "out")
	certFile, keyFile, bundleFile, err := a.IssueFiles(out, "web", spiffeid.RequireFromString("spiffe://weft.local/ns/default/sa/web"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want os.FileMode
	}{
		{dir, os.ModeDir | 0o700},
		{filepath.Join(dir, ca.AnchorCertFile), 0o644},
		{filepath.Join(dir, ca.AnchorKeyFile), 0o600},
		{filepath.Join(dir, ca.IssuerCertFile), 0o644},
		{filepath.Join(dir, ca.IssuerKeyFile), 0o600},
		{out, os.ModeDir | 0o700},
		{certFile, 0o644},
		{keyFile, 0o600},
		{bundleFile, 0o644},
	} {
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode() != tc.want {
			t.Errorf("%s: mode %v, want %v", tc.path, fi.Mode(), tc.want)
		}
	}
	// No temporary files are left behind.
	for _, d := range []string{dir, out} {
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("leftover temporary file %s in %s", e.Name(), d)
			}
		}
	}
}

func TestHalfPresentSet(t *testing.T) {
	for _, remove := range [][]string{
		{ca.IssuerKeyFile},
		{ca.AnchorKeyFile},
		{ca.IssuerCertFile, ca.IssuerKeyFile},
		{ca.AnchorCertFile, ca.AnchorKeyFile, ca.IssuerCertFile},
	} {
		t.Run(strings.Join(remove, "+"), func(t *testing.T) {
			dir := t.TempDir()
			a := mustCreate(t, dir, ca.Options{})
			for _, f := range remove {
				if err := os.Remove(filepath.Join(dir, f)); err != nil {
					t.Fatal(err)
				}
			}
			_, err := ca.LoadOrCreate(dir, ca.Options{TrustDomain: td})
			if err == nil {
				t.Fatal("LoadOrCreate succeeded on a half-present set")
			}
			for _, f := range append(remove, "restore", "remove") {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q does not mention %q", err, f)
				}
			}
			// Nothing was regenerated.
			for _, f := range remove {
				if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
					t.Errorf("%s was recreated", f)
				}
			}
			b, err := os.ReadFile(filepath.Join(dir, ca.AnchorCertFile))
			if err == nil && !bytes.Equal(b, a.BundlePEM()) {
				t.Error("anchor.crt was overwritten")
			}
		})
	}
}

func TestLoadInvalidMaterial(t *testing.T) {
	garbage := []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
	copyFrom := func(t *testing.T, src, dst, name string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write := func(t *testing.T, dir, name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		create  ca.Options
		load    ca.Options
		corrupt func(t *testing.T, dir string)
		file    string // the error must name this file
		want    string
	}{
		{
			name:    "corrupted issuer certificate",
			corrupt: func(t *testing.T, dir string) { write(t, dir, ca.IssuerCertFile, garbage) },
			file:    ca.IssuerCertFile, want: "corrupted",
		},
		{
			name:    "empty anchor certificate",
			corrupt: func(t *testing.T, dir string) { write(t, dir, ca.AnchorCertFile, nil) },
			file:    ca.AnchorCertFile, want: "no CERTIFICATE",
		},
		{
			name:    "corrupted anchor key",
			corrupt: func(t *testing.T, dir string) { write(t, dir, ca.AnchorKeyFile, []byte("junk")) },
			file:    ca.AnchorKeyFile, want: "corrupted",
		},
		{
			name: "issuer key of another certificate",
			corrupt: func(t *testing.T, dir string) {
				b, err := os.ReadFile(filepath.Join(dir, ca.AnchorKeyFile))
				if err != nil {
					t.Fatal(err)
				}
				write(t, dir, ca.IssuerKeyFile, b)
			},
			file: ca.IssuerKeyFile, want: "does not belong",
		},
		{
			name: "issuer of another anchor",
			corrupt: func(t *testing.T, dir string) {
				other := t.TempDir()
				mustCreate(t, other, ca.Options{})
				copyFrom(t, other, dir, ca.IssuerCertFile)
				copyFrom(t, other, dir, ca.IssuerKeyFile)
			},
			file: ca.IssuerCertFile, want: "not signed by the trust anchor",
		},
		{
			name:   "expired issuer",
			create: ca.Options{Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }, IssuerLifetime: time.Hour},
			file:   ca.IssuerCertFile, want: "expired",
		},
		{
			name:   "expired anchor",
			create: ca.Options{Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }, AnchorLifetime: time.Hour},
			file:   ca.AnchorCertFile, want: "expired",
		},
		{
			name:   "anchor not yet valid",
			create: ca.Options{Now: func() time.Time { return time.Now().Add(2 * time.Hour) }},
			file:   ca.AnchorCertFile, want: "not valid before",
		},
		{
			name:   "wrong trust domain",
			create: ca.Options{TrustDomain: "other.local"},
			file:   ca.AnchorCertFile, want: `"other.local", not "weft.local"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mustCreate(t, dir, tc.create)
			if tc.corrupt != nil {
				tc.corrupt(t, dir)
			}
			load := tc.load
			load.TrustDomain = td
			_, err := ca.LoadOrCreate(dir, load)
			if err == nil {
				t.Fatal("LoadOrCreate succeeded")
			}
			for _, s := range []string{filepath.Join(dir, tc.file), tc.want} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestOptionsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    ca.Options
		want string
	}{
		{"no trust domain", ca.Options{}, "set Options.TrustDomain"},
		{"bad trust domain", ca.Options{TrustDomain: "Weft Local"}, "trust domain"},
		{"negative lifetime", ca.Options{TrustDomain: td, IssuerLifetime: -time.Hour}, "negative lifetime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			_, err := ca.LoadOrCreate(dir, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, tc.want)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Error("directory created despite invalid options")
			}
		})
	}
}

// csrFor returns a CSR signed by a fresh key that asks for names of its own.
func csrFor(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	evil, _ := url.Parse("spiffe://weft.local/ns/kube-system/sa/admin")
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: "admin", Organization: []string{"evil"}},
		DNSNames:       []string{"admin.example.com"},
		URIs:           []*url.URL{evil},
		EmailAddresses: []string{"admin@example.com"},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func parseChain(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	return certs
}

func TestSign(t *testing.T) {
	a := mustCreate(t, t.TempDir(), ca.Options{})
	id := spiffeid.RequireFromString("spiffe://weft.local/ns/default/sa/web")
	chain, err := a.Sign(csrFor(t), id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certs := parseChain(t, chain)
	if len(certs) != 2 || !certs[1].Equal(a.Issuer()) {
		t.Fatalf("chain has %d certificates, want leaf + issuer", len(certs))
	}
	leaf := certs[0]
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != id.String() {
		t.Errorf("URI SANs = %v, want only %s", leaf.URIs, id)
	}
	if len(leaf.DNSNames) != 0 || len(leaf.EmailAddresses) != 0 || leaf.Subject.CommonName != "" ||
		strings.Contains(leaf.Subject.String(), "evil") {
		t.Errorf("leaf carries names from the CSR: DNS %v email %v subject %q", leaf.DNSNames, leaf.EmailAddresses, leaf.Subject)
	}
	if leaf.IsCA || leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("leaf IsCA %v key usage %v, want non-CA digitalSignature only", leaf.IsCA, leaf.KeyUsage)
	}
	if len(leaf.ExtKeyUsage) != 2 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || leaf.ExtKeyUsage[1] != x509.ExtKeyUsageClientAuth {
		t.Errorf("ext key usage = %v, want serverAuth, clientAuth", leaf.ExtKeyUsage)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d < time.Hour || d > time.Hour+2*time.Minute {
		t.Errorf("leaf valid for %v, want about an hour", d)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(a.BundlePEM())
	inter := x509.NewCertPool()
	inter.AddCert(certs[1])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("leaf does not verify against the bundle: %v", err)
	}
}

func TestSignLifetimeCappedByIssuer(t *testing.T) {
	a := mustCreate(t, t.TempDir(), ca.Options{IssuerLifetime: 2 * time.Hour})
	id := spiffeid.RequireFromString("spiffe://weft.local/ns/default/sa/web")
	chain, err := a.Sign(csrFor(t), id, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if leaf := parseChain(t, chain)[0]; !leaf.NotAfter.Equal(a.Issuer().NotAfter) {
		t.Errorf("leaf NotAfter %v, want the issuer's %v", leaf.NotAfter, a.Issuer().NotAfter)
	}
}

func TestSignRefuses(t *testing.T) {
	a := mustCreate(t, t.TempDir(), ca.Options{})
	good := csrFor(t)
	badSig := bytes.Clone(good)
	badSig[len(badSig)-1] ^= 0xff
	web := spiffeid.RequireFromString("spiffe://weft.local/ns/default/sa/web")

	for _, tc := range []struct {
		name     string
		csr      []byte
		id       spiffeid.ID
		lifetime time.Duration
		want     string
	}{
		{"other trust domain", good, spiffeid.RequireFromString("spiffe://other.local/ns/default/sa/web"), time.Hour, "not in trust domain"},
		{"trust domain ID", good, spiffeid.RequireFromString("spiffe://weft.local"), time.Hour, "has no path"},
		{"zero ID", good, spiffeid.ID{}, time.Hour, "no SPIFFE ID"},
		{"bad CSR signature", badSig, web, time.Hour, "signature does not verify"},
		{"not a CSR", []byte("junk"), web, time.Hour, "parsing certificate request"},
		{"zero lifetime", good, web, 0, "not positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chain, err := a.Sign(tc.csr, tc.id, tc.lifetime)
			if err == nil {
				t.Fatalf("Sign succeeded: %s", chain)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestSignAfterIssuerExpiry(t *testing.T) {
	now := time.Now()
	a := mustCreate(t, t.TempDir(), ca.Options{IssuerLifetime: time.Hour, Now: func() time.Time { return now }})
	now = now.Add(2 * time.Hour)
	_, err := a.Sign(csrFor(t), spiffeid.RequireFromString("spiffe://weft.local/ns/default/sa/web"), time.Hour)
	if err == nil || !strings.Contains(err.Error(), "issuer expired") {
		t.Fatalf("error = %v, want issuer expired", err)
	}
}

func TestIssueFilesBadName(t *testing.T) {
	a := mustCreate(t, t.TempDir(), ca.Options{})
	id := spiffeid.RequireFromString("spiffe://weft.local/ns/default/sa/web")
	for _, name := range []string{"", "a/b", "..", ".hidden", "bundle"} {
		if _, _, _, err := a.IssueFiles(t.TempDir(), name, id, time.Hour); err == nil {
			t.Errorf("IssueFiles accepted name %q", name)
		}
	}
}
