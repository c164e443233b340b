package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Default lifetimes of generated material.
const (
	DefaultAnchorLifetime = 10 * 365 * 24 * time.Hour
	DefaultIssuerLifetime = 365 * 24 * time.Hour
)

// backdate is how far before "now" generated certificates start to be valid,
// to tolerate small clock differences between machines.
const backdate = time.Minute

// Options configures LoadOrCreate.
type Options struct {
	// TrustDomain is the trust domain of the mesh, e.g. "weft.local".
	// Required. Loaded material of another trust domain is refused.
	TrustDomain string
	// AnchorLifetime is the validity of a generated trust anchor; zero
	// means DefaultAnchorLifetime. Ignored when the material is loaded.
	AnchorLifetime time.Duration
	// IssuerLifetime is the validity of a generated issuer, capped by the
	// anchor's; zero means DefaultIssuerLifetime. Ignored when the material
	// is loaded.
	IssuerLifetime time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	td spiffeid.TrustDomain // parsed TrustDomain
}

// Load loads the authority of dir like LoadOrCreate, but never generates
// one: a directory without a CA is an error. The trust domain, when
// Options.TrustDomain is empty, is read from the anchor file.
func Load(dir string, o Options) (*Authority, error) {
	if o.TrustDomain == "" {
		td, err := TrustDomainOf(dir)
		if err != nil {
			return nil, err
		}
		o.TrustDomain = td.Name()
	}
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	return load(dir, o.td, o.Now)
}

// TrustDomainOf reads the trust domain of the CA in dir from the URI SAN
// of its first anchor.
func TrustDomainOf(dir string) (spiffeid.TrustDomain, error) {
	path := filepath.Join(dir, AnchorCertFile)
	if ok, _ := supplied(dir); ok {
		path = filepath.Join(dir, SuppliedCAFile)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return spiffeid.TrustDomain{}, fmt.Errorf("ca: no CA in %s (%s is missing); start the control plane (`weft control` or `weft up`) once to generate it, or pass the right --data-dir", dir, AnchorCertFile)
	}
	certs, err := readCerts(path)
	if err != nil {
		return spiffeid.TrustDomain{}, err
	}
	for _, u := range certs[0].URIs {
		if id, err := spiffeid.FromURI(u); err == nil {
			return id.TrustDomain(), nil
		}
	}
	return spiffeid.TrustDomain{}, fmt.Errorf("ca: %s: the anchor names no trust domain (no spiffe:// URI SAN); pass --trust-domain", path)
}

// withDefaults checks o and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	if o.TrustDomain == "" {
		return o, errors.New("ca: no trust domain configured; set Options.TrustDomain, e.g. to \"weft.local\"")
	}
	td, err := spiffeid.TrustDomainFromString(o.TrustDomain)
	if err != nil {
		return o, fmt.Errorf("ca: trust domain %q: %w; use a lower-case DNS-like name such as \"weft.local\"", o.TrustDomain, err)
	}
	o.td = td
	if o.AnchorLifetime < 0 || o.IssuerLifetime < 0 {
		return o, fmt.Errorf("ca: negative lifetime (anchor %v, issuer %v); use a positive duration or zero for the default", o.AnchorLifetime, o.IssuerLifetime)
	}
	if o.AnchorLifetime == 0 {
		o.AnchorLifetime = DefaultAnchorLifetime
	}
	if o.IssuerLifetime == 0 {
		o.IssuerLifetime = DefaultIssuerLifetime
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Authority is a loaded, verified trust anchor and issuer. It is safe for
// concurrent use; it is immutable after LoadOrCreate.
type Authority struct {
	dir     string
	td      spiffeid.TrustDomain
	anchors []*x509.Certificate // the trusted anchors
	signing int                 // index in anchors of the one anchor.key belongs to; -1: none (supplied CA)
	expired []*x509.Certificate // expired anchors still in anchor.crt
	issuer  *x509.Certificate
	// intermediates between the issuer and an anchor (supplied CAs only).
	intermediates []*x509.Certificate
	issuerKey     crypto.Signer
	now           func() time.Time
}

// Expiry is when one certificate of the authority stops being valid.
type Expiry struct {
	// What names the certificate: "trust anchor" or "issuer".
	What string
	// Note says more about its role or state, e.g. "current: signs new
	// issuers"; may be empty.
	Note string
	// File is the file that holds it.
	File string
	// Subject is the certificate's subject.
	Subject string
	// Fingerprint is the hex SHA-256 of the certificate.
	Fingerprint string
	// NotAfter is the end of its validity.
	NotAfter time.Time
}

// LoadOrCreate loads the trust anchor and issuer from dir, or generates them
// when none of the files exist (see the package documentation). dir is
// created with mode 0700 if needed. Loaded material is verified: the issuer
// must be a CA certificate signed by an anchor, both must be currently valid
// and of Options.TrustDomain, and the keys must match the certificates.
func LoadOrCreate(dir string, o Options) (*Authority, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	td := o.td
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	if ok, err := supplied(dir); err != nil {
		return nil, err
	} else if ok {
		return loadSupplied(dir, td, o.Now)
	}

	names := []string{AnchorCertFile, AnchorKeyFile, IssuerCertFile, IssuerKeyFile}
	var present, missing []string
	for _, n := range names {
		_, err := os.Lstat(filepath.Join(dir, n))
		switch {
		case err == nil:
			present = append(present, n)
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, n)
		default:
			return nil, fmt.Errorf("ca: %s: %w; check that the control plane can read its data directory", filepath.Join(dir, n), err)
		}
	}
	switch {
	case len(missing) == len(names):
		if err := generate(dir, td, o); err != nil {
			return nil, err
		}
	case len(present) != len(names):
		return nil, fmt.Errorf("ca: data directory %s holds %s but not %s; "+
			"restore the missing files from a backup, or, to start a new CA (which makes every certificate issued so far untrusted), remove %s",
			dir, strings.Join(present, ", "), strings.Join(missing, ", "), strings.Join(present, ", "))
	}
	return load(dir, td, o.Now)
}

// generate writes a new anchor and issuer into dir.
func generate(dir string, td spiffeid.TrustDomain, o Options) error {
	now := o.Now()
	anchor, anchorKey, err := newAnchor(td, now, o.AnchorLifetime)
	if err != nil {
		return err
	}
	issuer, issuerKey, err := newIssuer(td, anchor, anchorKey, now, o.IssuerLifetime)
	if err != nil {
		return err
	}
	anchorKeyPEM, err := keyPEM(anchorKey)
	if err != nil {
		return err
	}
	issuerKeyPEM, err := keyPEM(issuerKey)
	if err != nil {
		return err
	}
	// Keys before certificates: an interrupted run leaves a half-present
	// set, which LoadOrCreate reports rather than overwrites.
	for _, f := range []struct {
		name string
		data []byte
		mode fs.FileMode
	}{
		{AnchorKeyFile, anchorKeyPEM, keyMode},
		{AnchorCertFile, certPEM(anchor), certMode},
		{IssuerKeyFile, issuerKeyPEM, keyMode},
		{IssuerCertFile, certPEM(issuer), certMode},
	} {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// newAnchor makes a self-signed trust anchor of td.
func newAnchor(td spiffeid.TrustDomain, now time.Time, lifetime time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"weft"}, CommonName: "weft trust anchor " + td.Name()},
		URIs:                  []*url.URL{td.ID().URL()},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(lifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	c, err := createCert(tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: creating trust anchor: %w", err)
	}
	return c, key, nil
}

// newIssuer makes an issuer of td signed by anchor, valid for lifetime but
// never beyond the anchor.
func newIssuer(td spiffeid.TrustDomain, anchor *x509.Certificate, anchorKey crypto.Signer, now time.Time, lifetime time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"weft"}, CommonName: "weft issuer " + td.Name()},
		URIs:                  []*url.URL{td.ID().URL()},
		NotBefore:             now.Add(-backdate),
		NotAfter:              minTime(now.Add(lifetime), anchor.NotAfter),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	c, err := createCert(tmpl, anchor, &key.PublicKey, anchorKey)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: creating issuer: %w", err)
	}
	return c, key, nil
}

// load reads and verifies the four files of dir, or an operator-supplied
// CA (see SuppliedCertFile).
func load(dir string, td spiffeid.TrustDomain, nowFn func() time.Time) (*Authority, error) {
	if ok, err := supplied(dir); err != nil {
		return nil, err
	} else if ok {
		return loadSupplied(dir, td, nowFn)
	}
	now := nowFn()
	path := func(n string) string { return filepath.Join(dir, n) }

	if err := finishIssuerRotation(dir); err != nil {
		return nil, err
	}
	all, err := readCerts(path(AnchorCertFile))
	if err != nil {
		return nil, err
	}
	// The anchor key belongs to one of the anchors, the one new issuers are
	// signed with; it is only checked, never kept in memory.
	signing, err := readAnchorKey(path(AnchorKeyFile), path(AnchorCertFile), all)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	var anchors, expired []*x509.Certificate
	for i, a := range all {
		what := fmt.Sprintf("trust anchor %d of %d", i+1, len(all))
		if i != signing && now.After(a.NotAfter) {
			// An old anchor left in the bundle after a rotation: no longer
			// trusted, reported by Expiries so that it gets removed.
			expired = append(expired, a)
			continue
		}
		if err := checkCA(path(AnchorCertFile), what, a, td, now); err != nil {
			return nil, err
		}
		if err := a.CheckSignatureFrom(a); err != nil {
			return nil, fmt.Errorf("ca: %s: %s is not self-signed: %w; it must hold root certificates only", path(AnchorCertFile), what, err)
		}
		pool.AddCert(a)
		anchors = append(anchors, a)
		if i == signing {
			signing = len(anchors) - 1
		}
	}

	issuers, err := readCerts(path(IssuerCertFile))
	if err != nil {
		return nil, err
	}
	if len(issuers) != 1 {
		return nil, fmt.Errorf("ca: %s: holds %d certificates; it must hold exactly the issuer certificate", path(IssuerCertFile), len(issuers))
	}
	issuer := issuers[0]
	if err := checkCA(path(IssuerCertFile), "issuer", issuer, td, now); err != nil {
		return nil, err
	}
	if _, err := issuer.Verify(x509.VerifyOptions{
		Roots:       pool,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("ca: %s: issuer is not signed by the trust anchor in %s: %w; "+
			"the files must come from the same CA: restore them together from one backup", path(IssuerCertFile), path(AnchorCertFile), err)
	}
	issuerKey, err := readKey(path(IssuerKeyFile), path(IssuerCertFile), issuer)
	if err != nil {
		return nil, err
	}
	return &Authority{
		dir:       dir,
		td:        td,
		anchors:   anchors,
		signing:   signing,
		expired:   expired,
		issuer:    issuer,
		issuerKey: issuerKey,
		now:       nowFn,
	}, nil
}

// checkCA checks that c is a currently valid CA certificate of td.
func checkCA(file, what string, c *x509.Certificate, td spiffeid.TrustDomain, now time.Time) error {
	switch {
	case !c.BasicConstraintsValid || !c.IsCA:
		return fmt.Errorf("ca: %s: %s (subject %q) is not a CA certificate (basic constraints CA:TRUE missing); restore the file generated by weft", file, what, c.Subject)
	case c.KeyUsage&x509.KeyUsageCertSign == 0:
		return fmt.Errorf("ca: %s: %s (subject %q) lacks the keyCertSign key usage; restore the file generated by weft", file, what, c.Subject)
	case now.After(c.NotAfter):
		return fmt.Errorf("ca: %s: %s (subject %q) expired at %s; weft cannot renew it yet: "+
			"remove anchor.crt, anchor.key, issuer.crt and issuer.key to generate a new CA, then re-issue every certificate",
			file, what, c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		return fmt.Errorf("ca: %s: %s (subject %q) is not valid before %s; check the clock of this machine",
			file, what, c.Subject, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if len(c.URIs) != 1 {
		return fmt.Errorf("ca: %s: %s (subject %q) has %d URI SANs; a weft CA certificate has exactly one, spiffe://%s", file, what, c.Subject, len(c.URIs), td.Name())
	}
	id, err := spiffeid.FromURI(c.URIs[0])
	if err != nil {
		return fmt.Errorf("ca: %s: %s URI SAN %q is not a SPIFFE ID: %w; restore the file generated by weft", file, what, c.URIs[0], err)
	}
	if id.TrustDomain() != td || id.Path() != "" {
		return fmt.Errorf("ca: %s: %s belongs to trust domain %q, not %q; "+
			"set the trust domain to %q or point the control plane at the data directory of %q",
			file, what, id.TrustDomain().Name(), td.Name(), id.TrustDomain().Name(), td.Name())
	}
	return nil
}

// readCerts reads every CERTIFICATE block of a PEM file.
func readCerts(file string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("ca: reading %s: %w; check that the control plane can read it", file, err)
	}
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
			return nil, fmt.Errorf("ca: %s: certificate %d: %w; the file is corrupted, restore it from a backup", file, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("ca: %s: no CERTIFICATE PEM block found; the file is corrupted, restore it from a backup", file)
	}
	return certs, nil
}

// readKey reads a PEM private key (PKCS#8 or SEC1) and checks that it belongs
// to cert, read from certFile (when cert is not nil).
func readKey(file, certFile string, cert *x509.Certificate) (crypto.Signer, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("ca: reading %s: %w; check that the control plane can read it", file, err)
	}
	corrupted := func(err error) error {
		return fmt.Errorf("ca: %s: %w; the file is corrupted, restore it from a backup", file, err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, corrupted(errors.New("no PEM block found"))
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		err = fmt.Errorf("PEM block of type %q, want PRIVATE KEY", block.Type)
	}
	if err != nil {
		return nil, corrupted(err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, corrupted(fmt.Errorf("unsupported key type %T", key))
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if cert == nil {
		return signer, nil
	}
	if pub, ok := signer.Public().(equaler); !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("ca: %s: the key does not belong to the certificate in %s; the files must come from the same CA: restore them together from one backup", file, certFile)
	}
	return signer, nil
}

// readAnchorKey reads the anchor key and returns the index of the anchor
// in anchors it belongs to.
func readAnchorKey(file, certFile string, anchors []*x509.Certificate) (int, error) {
	key, err := readKey(file, certFile, nil)
	if err != nil {
		return 0, err
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	for i, a := range anchors {
		if pub, ok := key.Public().(equaler); ok && pub.Equal(a.PublicKey) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("ca: %s: the key belongs to none of the %d trust anchors in %s; the files must come from the same CA: restore them together from one backup", file, len(anchors), certFile)
}

func newKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: generating ECDSA P-256 key: %w", err)
	}
	return k, nil
}

func keyPEM(k crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("ca: encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// createCert signs tmpl with a fresh random serial number.
func createCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, priv crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// TrustDomain returns the authority's trust domain.
func (a *Authority) TrustDomain() spiffeid.TrustDomain { return a.td }

// BundlePEM returns the trust anchor(s) as PEM, the trust bundle that proxies
// verify peers against.
func (a *Authority) BundlePEM() []byte {
	var b []byte
	for _, c := range a.anchors {
		b = append(b, certPEM(c)...)
	}
	return b
}

// Anchor returns the current trust anchor, the one that signs new issuers.
// It must not be modified.
func (a *Authority) Anchor() *x509.Certificate {
	if a.signing < 0 {
		return a.anchors[0]
	}
	return a.anchors[a.signing]
}

// Chain returns the certificates sent after a leaf: the issuer, then any
// intermediates up to an anchor.
func (a *Authority) Chain() []*x509.Certificate {
	return append([]*x509.Certificate{a.issuer}, a.intermediates...)
}

// Supplied reports whether the CA is supplied by the operator (rotated
// outside weft) rather than generated by weft.
func (a *Authority) Supplied() bool { return a.signing < 0 }

// Anchors returns every trusted anchor, the trust bundle. It must not be
// modified.
func (a *Authority) Anchors() []*x509.Certificate { return a.anchors }

// IssuerFingerprint returns the hex SHA-256 of the issuer certificate.
func (a *Authority) IssuerFingerprint() string { return Fingerprint(a.issuer) }

// Fingerprint returns the hex SHA-256 of a certificate's DER, the name the
// CLI uses for anchors and issuers.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// Issuer returns the issuer certificate. It must not be modified.
func (a *Authority) Issuer() *x509.Certificate { return a.issuer }

// Expiries returns the trust anchor(s) and the issuer with their NotAfter,
// including expired anchors still in the anchor file.
func (a *Authority) Expiries() []Expiry {
	var out []Expiry
	for i, c := range a.anchors {
		note := ""
		if i == a.signing {
			note = "current: signs new issuers"
		}
		out = append(out, Expiry{What: "trust anchor", Note: note, File: filepath.Join(a.dir, AnchorCertFile), Subject: c.Subject.String(), Fingerprint: Fingerprint(c), NotAfter: c.NotAfter})
	}
	for _, c := range a.expired {
		out = append(out, Expiry{What: "trust anchor", Note: "expired, no longer trusted: remove it", File: filepath.Join(a.dir, AnchorCertFile), Subject: c.Subject.String(), Fingerprint: Fingerprint(c), NotAfter: c.NotAfter})
	}
	return append(out, Expiry{What: "issuer", File: filepath.Join(a.dir, IssuerCertFile), Subject: a.issuer.Subject.String(), Fingerprint: a.IssuerFingerprint(), NotAfter: a.issuer.NotAfter})
}
