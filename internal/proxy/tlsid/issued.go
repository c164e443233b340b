package tlsid

import (
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// FromIssued returns a Source holding material issued by the control plane
// rather than read from files: chain is the X509-SVID (DER, leaf first,
// then intermediates), key its private key, anchors the trust anchors of
// the leaf's trust domain. The same rules as Load apply: one SPIFFE URI SAN,
// a key that matches, a leaf valid now, a chain that verifies.
func FromIssued(chain [][]byte, key crypto.Signer, anchors []*x509.Certificate, opts ...Option) (*Source, error) {
	s := newSource(Files{}, opts)
	m, err := buildIssued(chain, key, anchors, s.now())
	if err != nil {
		return nil, err
	}
	s.cur.Store(m)
	return s, nil
}

// SetIssued replaces the certificate and key with a newly issued pair,
// verified against the current anchors. New handshakes use it at once; open
// connections are not disturbed. On error the current material stays.
func (s *Source) SetIssued(chain [][]byte, key crypto.Signer) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cur := s.cur.Load()
	m, err := buildIssued(chain, key, cur.anchors, s.now())
	if err != nil {
		return err
	}
	if m.id != cur.id {
		return fmt.Errorf("tlsid: the new certificate is for %s but this proxy is %s; an identity never changes in a running proxy", m.id, cur.id)
	}
	s.cur.Store(m)
	return nil
}

// SetAnchors replaces the trust anchors peers are verified against. The
// proxy's own chain need not verify against the new anchors (during an
// anchor roll the control plane sends the bundle before it re-issues), but
// ownChainOK says whether it does, so the caller can renew at once when it
// does not. On error the current material stays.
func (s *Source) SetAnchors(anchors []*x509.Certificate) (ownChainOK bool, err error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cur := s.cur.Load()
	bundles, err := anchorSet(cur.id.TrustDomain(), anchors)
	if err != nil {
		return false, err
	}
	next := *cur
	next.bundles = bundles
	next.anchors = append([]*x509.Certificate(nil), anchors...)
	next.digest = digestOf(cur.cert.Certificate, anchors)
	if next.digest != cur.digest {
		s.cur.Store(&next)
	}
	_, _, verr := x509svid.Verify(chainOf(cur.cert), bundles, x509svid.WithTime(s.now()))
	return verr == nil, nil
}

// Anchors returns the current trust anchors. The slice must not be modified.
func (s *Source) Anchors() []*x509.Certificate { return s.cur.Load().anchors }

// Issuer returns the certificate that signed the proxy's leaf (the first
// intermediate, or nil when the chain holds only the leaf).
func (s *Source) Issuer() *x509.Certificate {
	chain := s.cur.Load().cert.Certificate
	if len(chain) < 2 {
		return nil
	}
	c, err := x509.ParseCertificate(chain[1])
	if err != nil {
		return nil
	}
	return c
}

func buildIssued(chain [][]byte, key crypto.Signer, anchors []*x509.Certificate, now time.Time) (*material, error) {
	if len(chain) == 0 {
		return nil, errors.New("tlsid: the issued certificate chain is empty")
	}
	certs := make([]*x509.Certificate, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("tlsid: issued certificate %d: %w", i+1, err)
		}
		certs[i] = c
	}
	leaf := certs[0]
	id, err := leafID(leaf)
	if err != nil {
		return nil, fmt.Errorf("tlsid: issued certificate: %w", err)
	}
	if !publicKeyMatches(leaf.PublicKey, key.Public()) {
		return nil, fmt.Errorf("tlsid: the issued certificate for %s does not carry this proxy's public key; the issuer must sign the CSR's key", id)
	}
	switch {
	case now.After(leaf.NotAfter):
		return nil, fmt.Errorf("tlsid: issued certificate for %s expired at %s", id, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return nil, fmt.Errorf("tlsid: issued certificate for %s is not valid before %s; check the clock of this machine and of the control plane", id, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	bundles, err := anchorSet(id.TrustDomain(), anchors)
	if err != nil {
		return nil, err
	}
	if _, _, err := x509svid.Verify(certs, bundles, x509svid.WithTime(now)); err != nil {
		return nil, fmt.Errorf("tlsid: issued certificate for %s does not verify against the trust anchors: %w", id, err)
	}
	notAfter := leaf.NotAfter
	for _, c := range certs[1:] {
		if c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}
	pair := &tls.Certificate{Certificate: append([][]byte(nil), chain...), PrivateKey: key, Leaf: leaf}
	return &material{
		cert:     pair,
		id:       id,
		notAfter: notAfter,
		bundles:  bundles,
		anchors:  append([]*x509.Certificate(nil), anchors...),
		digest:   digestOf(chain, anchors),
	}, nil
}

func anchorSet(td spiffeid.TrustDomain, anchors []*x509.Certificate) (*x509bundle.Set, error) {
	if len(anchors) == 0 {
		return nil, fmt.Errorf("tlsid: no trust anchors for trust domain %s; at least one root certificate is needed", td)
	}
	for i, a := range anchors {
		if !a.IsCA {
			return nil, fmt.Errorf("tlsid: trust anchor %d (subject %q) is not a CA certificate", i+1, a.Subject.String())
		}
	}
	return x509bundle.NewSet(x509bundle.FromX509Authorities(td, anchors)), nil
}

func digestOf(chain [][]byte, anchors []*x509.Certificate) [sha256.Size]byte {
	h := sha256.New()
	for _, c := range chain {
		h.Write(c)
	}
	h.Write([]byte{0})
	for _, a := range anchors {
		h.Write(a.Raw)
	}
	var d [sha256.Size]byte
	copy(d[:], h.Sum(nil))
	return d
}

func chainOf(c *tls.Certificate) []*x509.Certificate {
	out := make([]*x509.Certificate, 0, len(c.Certificate))
	for _, der := range c.Certificate {
		x, err := x509.ParseCertificate(der)
		if err != nil {
			return nil
		}
		out = append(out, x)
	}
	return out
}

func publicKeyMatches(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}
