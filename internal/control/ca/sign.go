package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// BundleFileName is the name of the trust bundle file written by IssueFiles.
const BundleFileName = "bundle.crt"

// Sign issues an X509-SVID for the public key of a PEM-less (DER) PKCS#10
// certificate request and returns the leaf followed by the issuer, PEM.
//
// The CSR's signature is checked, but its subject and SANs are ignored: the
// leaf's only name is id, a URI SAN chosen by the caller, which must be a
// workload ID (non-empty path) of the authority's trust domain. The leaf has
// key usage digitalSignature and extended key usages serverAuth and
// clientAuth. It is valid from a minute ago (not before the issuer) for
// lifetime, capped at the issuer's NotAfter.
func (a *Authority) Sign(csrDER []byte, id spiffeid.ID, lifetime time.Duration) (chainPEM []byte, err error) {
	leaf, err := a.SignCSR(csrDER, id, lifetime)
	if err != nil {
		return nil, err
	}
	out := certPEM(leaf)
	for _, c := range a.Chain() {
		out = append(out, certPEM(c)...)
	}
	return out, nil
}

// SignCSR is Sign returning the leaf certificate alone; the chain to send
// is the leaf followed by Issuer().
func (a *Authority) SignCSR(csrDER []byte, id spiffeid.ID, lifetime time.Duration) (*x509.Certificate, error) {
	csr, err := CheckCSR(csrDER)
	if err != nil {
		return nil, fmt.Errorf("ca: certificate request for %s: %w", id, err)
	}
	return a.sign(csr.PublicKey, id, lifetime, nil)
}

// SignServing issues the serving certificate of the control plane's own
// HTTPS endpoints that clients outside the mesh dial by DNS name (the
// injection webhook, called by the API server): id, the control plane's
// SPIFFE ID, as the URI SAN, plus dnsNames (at least one) as DNS SANs, with
// the extended key usage serverAuth only. It is for the control plane's own
// use, never offered through the Identity API, whose leaves carry exactly
// one URI SAN. Validity is as Sign's.
func (a *Authority) SignServing(pub crypto.PublicKey, id spiffeid.ID, dnsNames []string, lifetime time.Duration) (*x509.Certificate, error) {
	if len(dnsNames) == 0 {
		return nil, fmt.Errorf("ca: serving certificate for %s: no DNS names; pass the names clients dial, e.g. weft-control.weft-system.svc", id)
	}
	for _, n := range dnsNames {
		if err := checkDNSName(n); err != nil {
			return nil, fmt.Errorf("ca: serving certificate for %s: %w", id, err)
		}
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, fmt.Errorf("ca: serving certificate for %s: %w", id, err)
	}
	return a.sign(pub, id, lifetime, dnsNames)
}

// checkDNSName accepts a fully qualified host name without a trailing dot
// or wildcard: letters, digits and hyphens in labels of 1 to 63 bytes.
func checkDNSName(n string) error {
	if n == "" || len(n) > 253 {
		return fmt.Errorf("DNS name %q: want 1 to 253 bytes", n)
	}
	for label := range strings.SplitSeq(n, ".") {
		ok := label != "" && len(label) <= 63 && label[0] != '-' && label[len(label)-1] != '-'
		for _, r := range label {
			ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-')
		}
		if !ok {
			return fmt.Errorf("DNS name %q is not a host name (labels of letters, digits and inner hyphens, no wildcard or trailing dot)", n)
		}
	}
	return nil
}

// CheckCSR parses a DER PKCS#10 request and checks its signature and key.
func CheckCSR(csrDER []byte) (*x509.CertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate request: %w; send a DER PKCS#10 CSR", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("signature does not verify: %w; the CSR must be signed by the key it requests a certificate for", err)
	}
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return nil, err
	}
	return csr, nil
}

// sign issues the leaf for id; dnsNames, when given, make it a serving
// certificate (serverAuth only).
func (a *Authority) sign(pub any, id spiffeid.ID, lifetime time.Duration, dnsNames []string) (*x509.Certificate, error) {
	switch {
	case id.IsZero():
		return nil, errors.New("ca: no SPIFFE ID given for the certificate; pass the workload's ID")
	case !id.MemberOf(a.td):
		return nil, fmt.Errorf("ca: SPIFFE ID %s is not in trust domain %s; this authority only issues IDs of %s", id, a.td.Name(), a.td.IDString())
	case id.Path() == "":
		return nil, fmt.Errorf("ca: SPIFFE ID %s has no path; it names the trust domain, not a workload; pass an ID such as %s/ns/<ns>/sa/<sa>", id, a.td.IDString())
	case lifetime <= 0:
		return nil, fmt.Errorf("ca: certificate lifetime %v for %s is not positive; pass a positive duration", lifetime, id)
	}
	now := a.now()
	if !now.Before(a.issuer.NotAfter) {
		return nil, fmt.Errorf("ca: issuer expired at %s, cannot sign for %s; generate a new CA", a.issuer.NotAfter.UTC().Format(time.RFC3339), id)
	}
	notBefore := now.Add(-backdate)
	if notBefore.Before(a.issuer.NotBefore) {
		notBefore = a.issuer.NotBefore
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"weft"}},
		URIs:                  []*url.URL{id.URL()},
		NotBefore:             notBefore,
		NotAfter:              minTime(now.Add(lifetime), a.issuer.NotAfter),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if len(dnsNames) > 0 {
		tmpl.DNSNames = slices.Clone(dnsNames)
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	leaf, err := createCert(tmpl, a.issuer, pub, a.issuerKey)
	if err != nil {
		return nil, fmt.Errorf("ca: signing certificate for %s: %w", id, err)
	}
	return leaf, nil
}

// checkPublicKey refuses keys too weak for the mesh.
func checkPublicKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("ECDSA curve %s is not accepted; use P-256 or P-384", k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits is too small; use ECDSA P-256 or RSA of at least 2048 bits", k.N.BitLen())
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("public key type %T is not accepted; use ECDSA P-256", pub)
	}
	return nil
}

// IssueFiles generates an ECDSA P-256 key in this process, issues a
// certificate for id with Sign and writes into dir (created 0700 if absent),
// each atomically: <name>.key (PKCS#8, 0600), <name>.crt (leaf and issuer,
// 0644) and bundle.crt (BundlePEM, 0644), in that order. The files are what
// tlsid.Load expects. It is meant for local use: weft up, tests and proxies
// that bring their own certificate.
func (a *Authority) IssueFiles(dir, name string, id spiffeid.ID, lifetime time.Duration) (certFile, keyFile, bundleFile string, err error) {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") || name+".crt" == BundleFileName {
		return "", "", "", fmt.Errorf("ca: file name %q for %s: use a plain name without path separators, not starting with \".\" and other than \"bundle\"", name, id)
	}
	key, err := newKey()
	if err != nil {
		return "", "", "", err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return "", "", "", fmt.Errorf("ca: creating certificate request for %s: %w", id, err)
	}
	chain, err := a.Sign(csr, id, lifetime)
	if err != nil {
		return "", "", "", err
	}
	kp, err := keyPEM(key)
	if err != nil {
		return "", "", "", err
	}
	if err := ensureDir(dir); err != nil {
		return "", "", "", err
	}
	certFile = filepath.Join(dir, name+".crt")
	keyFile = filepath.Join(dir, name+".key")
	bundleFile = filepath.Join(dir, BundleFileName)
	if err := writeFileAtomic(keyFile, kp, keyMode); err != nil {
		return "", "", "", err
	}
	if err := writeFileAtomic(certFile, chain, certMode); err != nil {
		return "", "", "", err
	}
	if err := writeFileAtomic(bundleFile, a.BundlePEM(), certMode); err != nil {
		return "", "", "", err
	}
	return certFile, keyFile, bundleFile, nil
}
