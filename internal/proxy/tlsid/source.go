package tlsid

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// ALPN protocol identifiers spoken between weft proxies.
const (
	// ALPNHTTP2 is weft-to-weft multiplexed HTTP/2.
	ALPNHTTP2 = "weft.h2"
	// ALPNHTTP1 is weft-to-weft HTTP/1.1, for Upgrade and CONNECT requests
	// that cannot ride an HTTP/2 stream.
	ALPNHTTP1 = "weft.http1"
	// ALPNOpaque is weft-to-weft opaque TCP.
	ALPNOpaque = "weft.tcp"
)

// Files names the PEM files a Source is loaded from.
type Files struct {
	// CertFile holds the leaf certificate followed by its intermediates.
	CertFile string
	// KeyFile holds the leaf's private key (PKCS#8, PKCS#1 or SEC1 PEM).
	KeyFile string
	// TrustBundleFile holds one or more root CA certificates of the
	// proxy's own trust domain. Several roots are allowed so that a CA can
	// be rotated: certificates chaining to any of them are accepted.
	TrustBundleFile string
}

// Source holds the proxy's current certificate, key and trust bundle. It is
// safe for concurrent use; Reload and Watch replace the material atomically.
type Source struct {
	files Files // zero for issued material (FromIssued)
	now   func() time.Time

	// reloadMu serialises reloads so that two concurrent reloads cannot
	// store their results out of order.
	reloadMu sync.Mutex
	cur      atomic.Pointer[material]
}

// material is one immutable, validated set of credentials.
type material struct {
	cert     *tls.Certificate
	id       spiffeid.ID
	notAfter time.Time
	bundles  *x509bundle.Set
	anchors  []*x509.Certificate
	digest   [sha256.Size]byte // of the three files' contents
}

// Option adjusts a Source.
type Option func(*Source)

// WithClock makes the Source read the time from now instead of time.Now:
// certificate validity, expiry and peer verification all use it. For tests.
func WithClock(now func() time.Time) Option {
	return func(s *Source) { s.now = now }
}

func newSource(f Files, opts []Option) *Source {
	s := &Source{files: f, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Load reads and validates the files and returns a Source holding them.
//
// It checks that the files are readable, that the key matches the leaf
// certificate, that the leaf has exactly one URI SAN which is a SPIFFE ID,
// that the leaf is currently valid and that the chain in the cert file
// verifies against the trust bundle. The trust bundle is taken to belong to
// the trust domain of the leaf's SPIFFE ID.
func Load(f Files, opts ...Option) (*Source, error) {
	s := newSource(f, opts)
	raw, err := readFiles(f)
	if err != nil {
		return nil, err
	}
	m, err := build(f, raw, s.now())
	if err != nil {
		return nil, err
	}
	s.cur.Store(m)
	return s, nil
}

// Files returns the file names the Source was loaded from; zero for a
// Source of issued material.
func (s *Source) Files() Files { return s.files }

// ID returns the proxy's own SPIFFE ID from the current certificate.
func (s *Source) ID() spiffeid.ID { return s.cur.Load().id }

// NotAfter returns when the current certificate chain stops being valid:
// the earliest NotAfter of the leaf and the intermediates in the cert file
// (usually the leaf's).
func (s *Source) NotAfter() time.Time { return s.cur.Load().notAfter }

// Certificate returns the current certificate chain and key, as presented in
// handshakes. The returned value must not be modified.
func (s *Source) Certificate() *tls.Certificate { return s.cur.Load().cert }

// Reload re-reads the files. If they are unchanged it does nothing; if they
// fail validation the previous material is kept and the error is returned.
func (s *Source) Reload() error {
	_, err := s.reload()
	return err
}

// reload is Reload that also reports whether the material was replaced.
func (s *Source) reload() (changed bool, err error) {
	if s.files == (Files{}) {
		return false, errors.New("tlsid: this identity is issued by the control plane, not read from files; there is nothing to reload")
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	raw, err := readFiles(s.files)
	if err != nil {
		return false, err
	}
	if raw.digest == s.cur.Load().digest {
		return false, nil
	}
	m, err := build(s.files, raw, s.now())
	if err != nil {
		return false, err
	}
	s.cur.Store(m)
	return true, nil
}

type rawFiles struct {
	cert, key, bundle []byte
	digest            [sha256.Size]byte
}

func readFiles(f Files) (rawFiles, error) {
	var r rawFiles
	var err error
	if r.cert, err = readFile("cert file", "CertFile", f.CertFile); err != nil {
		return r, err
	}
	if r.key, err = readFile("key file", "KeyFile", f.KeyFile); err != nil {
		return r, err
	}
	if r.bundle, err = readFile("trust bundle file", "TrustBundleFile", f.TrustBundleFile); err != nil {
		return r, err
	}
	h := sha256.New()
	for _, b := range [][]byte{r.cert, r.key, r.bundle} {
		// Length-prefix each file so that moving bytes between files
		// changes the digest.
		_ = binary.Write(h, binary.BigEndian, uint64(len(b)))
		h.Write(b)
	}
	copy(r.digest[:], h.Sum(nil))
	return r, nil
}

func readFile(what, field, path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("tlsid: no %s configured; set Files.%s to a PEM file", what, field)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tlsid: %s %s: %w; check the path and that the proxy can read it", what, path, err)
	}
	return b, nil
}

// build validates raw file contents and turns them into material.
func build(f Files, raw rawFiles, now time.Time) (*material, error) {
	certs, err := ParseCertificates(raw.cert)
	if err != nil {
		return nil, fmt.Errorf("tlsid: cert file %s: %w; it must hold the PEM leaf certificate followed by its intermediates", f.CertFile, err)
	}
	leaf := certs[0]

	id, err := leafID(leaf)
	if err != nil {
		return nil, fmt.Errorf("tlsid: cert file %s: %w", f.CertFile, err)
	}

	// tls.X509KeyPair rather than x509svid.Parse: the latter accepts only
	// PKCS#8 keys, while cert-manager and openssl commonly write PKCS#1
	// ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY") keys. X509KeyPair
	// accepts all three and checks that the key matches the leaf.
	pair, err := tls.X509KeyPair(raw.cert, raw.key)
	if err != nil {
		return nil, fmt.Errorf("tlsid: key file %s: %w; it must hold the PEM private key (PKCS#8, PKCS#1 or SEC1) of the leaf certificate in cert file %s", f.KeyFile, err, f.CertFile)
	}
	// X509KeyPair skips non-certificate PEM blocks just as parseCertificates
	// does, but keep exactly the chain we validated.
	pair.Certificate = make([][]byte, len(certs))
	for i, c := range certs {
		pair.Certificate[i] = c.Raw
	}
	pair.Leaf = leaf

	// Checked before chain verification only to give a precise message;
	// x509 verification would also reject these.
	switch {
	case now.After(leaf.NotAfter):
		return nil, fmt.Errorf("tlsid: cert file %s: leaf certificate for %s expired at %s; issue a new certificate", f.CertFile, id, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return nil, fmt.Errorf("tlsid: cert file %s: leaf certificate for %s is not valid before %s; check the clock of this machine and of the issuer", f.CertFile, id, leaf.NotBefore.UTC().Format(time.RFC3339))
	}

	bundle, err := x509bundle.Parse(id.TrustDomain(), raw.bundle)
	if err != nil {
		return nil, fmt.Errorf("tlsid: trust bundle file %s: %w; it must hold PEM CA certificates", f.TrustBundleFile, err)
	}
	if bundle.Empty() {
		return nil, fmt.Errorf("tlsid: trust bundle file %s: no CERTIFICATE PEM blocks found; it must hold the root CA certificate(s) of trust domain %s", f.TrustBundleFile, id.TrustDomain())
	}
	bundles := x509bundle.NewSet(bundle)
	anchors := bundle.X509Authorities()

	if _, _, err := x509svid.Verify(certs, bundles, x509svid.WithTime(now)); err != nil {
		return nil, fmt.Errorf("tlsid: cert file %s: certificate chain does not verify against trust bundle file %s: %w; "+
			"the cert file must hold the leaf followed by its intermediates, and the bundle the root CA that issued them", f.CertFile, f.TrustBundleFile, err)
	}

	notAfter := leaf.NotAfter
	for _, c := range certs[1:] {
		if c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}
	return &material{
		cert:     &pair,
		id:       id,
		notAfter: notAfter,
		bundles:  bundles,
		anchors:  anchors,
		digest:   raw.digest,
	}, nil
}

// ParseCertificates decodes every CERTIFICATE block of PEM data, e.g. a
// trust bundle; other blocks are skipped, and no certificate at all is an
// error. It is hand-written because go-spiffe's PEM helper is internal to
// that module.
func ParseCertificates(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no CERTIFICATE PEM blocks found")
	}
	return certs, nil
}

// leafID returns the SPIFFE ID of our own leaf certificate and applies the
// X509-SVID leaf rules. x509svid.IDFromCert does the same extraction but its
// errors do not tell an operator how to fix the certificate, and the leaf
// rules of x509svid.Parse are not exported on their own, hence this.
func leafID(leaf *x509.Certificate) (spiffeid.ID, error) {
	const fix = "issue it with a URI SAN spiffe://<trust-domain>/ns/<ns>/sa/<sa>"
	switch len(leaf.URIs) {
	case 0:
		return spiffeid.ID{}, fmt.Errorf("leaf certificate has no SPIFFE URI SAN; %s", fix)
	case 1:
	default:
		uris := make([]string, len(leaf.URIs))
		for i, u := range leaf.URIs {
			uris[i] = u.String()
		}
		return spiffeid.ID{}, fmt.Errorf("leaf certificate has %d URI SANs %q; a SPIFFE certificate must have exactly one, %s", len(uris), uris, fix)
	}
	id, err := spiffeid.FromURI(leaf.URIs[0])
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("leaf certificate URI SAN %q is not a valid SPIFFE ID: %w; %s", leaf.URIs[0], err, fix)
	}
	switch {
	case id.Path() == "":
		return spiffeid.ID{}, fmt.Errorf("leaf certificate SPIFFE ID %s has no path; it names a trust domain, not a workload; %s", id, fix)
	case leaf.IsCA:
		return spiffeid.ID{}, fmt.Errorf("leaf certificate for %s is a CA certificate (basic constraints CA:TRUE); issue a non-CA leaf certificate", id)
	case leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		return spiffeid.ID{}, fmt.Errorf("leaf certificate for %s lacks the digitalSignature key usage required for TLS by the X509-SVID spec; issue it with key usage digitalSignature", id)
	case leaf.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0:
		return spiffeid.ID{}, fmt.Errorf("leaf certificate for %s has the keyCertSign or cRLSign key usage; issue it without them", id)
	}
	return id, nil
}
