package ca_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/control/ca"
)

// suppliedCA writes what cert-manager writes for a CA Certificate issued by
// a root through an intermediate: tls.crt (issuer + intermediate), tls.key
// (RSA, PKCS#1) and ca.crt (the root). No SPIFFE URI SANs.
func suppliedCA(t *testing.T, dir string) {
	t.Helper()
	now := time.Now()
	mk := func(cn string, parent *x509.Certificate, parentKey *rsa.PrivateKey) (*x509.Certificate, *rsa.PrivateKey) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, key
	}
	root, rootKey := mk("corp root", nil, nil)
	inter, interKey := mk("corp intermediate", root, rootKey)
	issuer, issuerKey := mk("weft issuer (cert-manager)", inter, interKey)
	p := func(c *x509.Certificate) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	os.MkdirAll(dir, 0o700)
	for name, b := range map[string][]byte{
		ca.SuppliedCertFile: append(p(issuer), p(inter)...),
		ca.SuppliedKeyFile:  pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(issuerKey)}),
		ca.SuppliedCAFile:   p(root),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSuppliedCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	suppliedCA(t, dir)
	a, err := ca.LoadOrCreate(dir, ca.Options{TrustDomain: td})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Supplied() || len(a.Chain()) != 2 {
		t.Fatalf("supplied %v, chain of %d; want a supplied CA with issuer and intermediate", a.Supplied(), len(a.Chain()))
	}
	for _, n := range []string{ca.AnchorCertFile, ca.IssuerKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			t.Fatalf("weft generated %s beside a supplied CA", n)
		}
	}
	id := spiffeid.RequireFromString("spiffe://weft.local/ns/shop/sa/web")
	chain := issuePEM(t, a, id)
	if got, err := verify(chain, a); err != nil || got != id {
		t.Fatalf("leaf of a supplied CA: %v, %v", got, err)
	}
	if _, err := ca.RotateIssuer(dir, ca.Options{TrustDomain: td}); err == nil || !strings.Contains(err.Error(), "supplied by the operator") {
		t.Fatalf("RotateIssuer on a supplied CA: %v", err)
	}
	// Without ca.crt the error names the layout.
	os.Remove(filepath.Join(dir, ca.SuppliedCAFile))
	if _, err := ca.LoadOrCreate(dir, ca.Options{TrustDomain: td}); err == nil || !strings.Contains(err.Error(), "ca.crt") {
		t.Fatalf("supplied CA without ca.crt: %v", err)
	}
}
