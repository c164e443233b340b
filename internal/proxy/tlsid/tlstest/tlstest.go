// Package tlstest issues throw-away SPIFFE certificates for tests and
// benchmarks of code that uses tlsid.
//
// A CA is a root and an intermediate (ECDSA P-256). Issue writes a leaf
// signed by the intermediate, its chain and key as PEM files in t.TempDir(),
// ready for tlsid.Load.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/tlsid"
)

// caLifetime is how long generated CAs are valid (from an hour ago).
const caLifetime = 48 * time.Hour

// CA is a test certificate authority: a self-signed root and an
// intermediate signed by it.
type CA struct {
	// TrustDomain is the trust domain name, e.g. "example.org".
	TrustDomain string
	// Root is the self-signed root certificate, the trust anchor.
	Root *x509.Certificate
	// Intermediate signs the leaves and is included in their cert files.
	Intermediate *x509.Certificate
	// BundleFile is a PEM file holding Root only.
	BundleFile string

	intermediateKey *ecdsa.PrivateKey
}

// NewCA creates a root and intermediate for trustDomain (e.g. "example.org")
// and writes the root to BundleFile.
func NewCA(t testing.TB, trustDomain string) *CA {
	t.Helper()
	now := time.Now()
	tdURI := mustURL(t, "spiffe://"+trustDomain)

	rootKey := newKey(t)
	rootTmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{Organization: []string{"weft test"}, CommonName: trustDomain + " root"},
		URIs:                  []*url.URL{tdURI},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	root := sign(t, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)

	intKey := newKey(t)
	intTmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{Organization: []string{"weft test"}, CommonName: trustDomain + " intermediate"},
		URIs:                  []*url.URL{tdURI},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	intermediate := sign(t, intTmpl, root, &intKey.PublicKey, rootKey)

	ca := &CA{
		TrustDomain:     trustDomain,
		Root:            root,
		Intermediate:    intermediate,
		intermediateKey: intKey,
	}
	ca.BundleFile = WriteBundle(t, ca)
	return ca
}

// Pool returns a pool holding the CA's root.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Root)
	return p
}

// BundlePEM returns the CA's root as PEM.
func (ca *CA) BundlePEM() []byte { return certPEM(ca.Root) }

// Issue writes a leaf certificate for the SPIFFE ID id (a full URI such as
// "spiffe://example.org/ns/default/sa/web"), valid from a minute ago for
// lifetime, and returns the files: the cert file holds leaf + intermediate,
// the key file a PKCS#8 key, and TrustBundleFile is ca.BundleFile.
func (ca *CA) Issue(t testing.TB, id string, lifetime time.Duration) tlsid.Files {
	t.Helper()
	now := time.Now()
	return ca.IssueLeaf(t, Leaf{
		URIs:      []string{id},
		NotBefore: now.Add(-time.Minute),
		NotAfter:  now.Add(lifetime),
	})
}

// Leaf describes a leaf certificate for IssueLeaf, which issues it as given,
// so that tests can create invalid certificates as well.
type Leaf struct {
	// URIs are the URI SANs, used verbatim (zero, several, or non-SPIFFE
	// URIs are allowed).
	URIs []string
	// NotBefore and NotAfter bound the validity. Zero values mean a minute
	// ago and an hour from now.
	NotBefore, NotAfter time.Time
	// DNSNames are optional DNS SANs.
	DNSNames []string
}

// IssueLeaf writes a leaf described by l, like Issue.
func (ca *CA) IssueLeaf(t testing.TB, l Leaf) tlsid.Files {
	t.Helper()
	now := time.Now()
	if l.NotBefore.IsZero() {
		l.NotBefore = now.Add(-time.Minute)
	}
	if l.NotAfter.IsZero() {
		l.NotAfter = now.Add(time.Hour)
	}
	uris := make([]*url.URL, len(l.URIs))
	for i, u := range l.URIs {
		uris[i] = mustURL(t, u)
	}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{Organization: []string{"weft test"}},
		URIs:                  uris,
		DNSNames:              l.DNSNames,
		NotBefore:             l.NotBefore,
		NotAfter:              l.NotAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	leaf := sign(t, tmpl, ca.Intermediate, &key.PublicKey, ca.intermediateKey)

	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("tlstest: marshal key: %v", err)
	}
	dir := t.TempDir()
	f := tlsid.Files{
		CertFile:        filepath.Join(dir, "cert.pem"),
		KeyFile:         filepath.Join(dir, "key.pem"),
		TrustBundleFile: ca.BundleFile,
	}
	writeFile(t, f.CertFile, append(certPEM(leaf), certPEM(ca.Intermediate)...))
	writeFile(t, f.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	return f
}

// WriteBundle writes the roots of cas into one PEM file in t.TempDir() and
// returns its path. A bundle with several CAs of one trust domain models a
// CA rotation.
func WriteBundle(t testing.TB, cas ...*CA) string {
	t.Helper()
	var b []byte
	for _, ca := range cas {
		b = append(b, ca.BundlePEM()...)
	}
	p := filepath.Join(t.TempDir(), "bundle.pem")
	writeFile(t, p, b)
	return p
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("tlstest: generate key: %v", err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("tlstest: serial: %v", err)
	}
	return n
}

func sign(t testing.TB, tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, priv *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		t.Fatalf("tlstest: create certificate: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tlstest: parse certificate: %v", err)
	}
	return c
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("tlstest: parse URI %q: %v", s, err)
	}
	return u
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatalf("tlstest: %v", err)
	}
}
