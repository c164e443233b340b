package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"slices"
	"sync"
	"time"
)

// WebhookTLS returns the TLS config of the control plane's HTTPS endpoints
// dialled by name from outside the mesh: the injection webhook, called by
// the API server at <service>.<namespace>.svc. The server presents a
// serving certificate (ca.Authority.SignServing) for ControlPlaneID and
// dnsNames, signed by the current issuer, issued in memory (its key never
// leaves the process) and renewed at half its lifetime (ServerLifetime) or
// at once when the issuer changes. No client certificate is requested: the
// API server verifies this certificate against the trust anchors (the
// webhook configuration's caBundle), not the other way round.
func (a *Authority) WebhookTLS(dnsNames []string, now func() time.Time) *tls.Config {
	if now == nil {
		now = time.Now
	}
	sc := &servingCert{a: a, now: now, names: slices.Clone(dnsNames)}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return sc.get() },
		ClientAuth:     tls.NoClientCert,
	}
}

// servingCert is the webhook's certificate, renewed like ownCert.
type servingCert struct {
	a     *Authority
	now   func() time.Time
	names []string

	mu     sync.Mutex
	cert   *tls.Certificate
	renew  time.Time
	issuer string
}

func (s *servingCert) get() (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.a.Current()
	now := s.now()
	if s.cert != nil && now.Before(s.renew) && s.issuer == cur.IssuerFingerprint() {
		return s.cert, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("webhook serving certificate: generating key: %w", err)
	}
	leaf, err := cur.SignServing(&key.PublicKey, ControlPlaneID(cur.TrustDomain()), s.names, ServerLifetime)
	if err != nil {
		if s.cert != nil && now.Before(s.cert.Leaf.NotAfter) {
			return s.cert, nil // keep serving the current one
		}
		return nil, fmt.Errorf("webhook serving certificate: %w", err)
	}
	s.cert = &tls.Certificate{Certificate: chainDER(leaf, cur), PrivateKey: key, Leaf: leaf}
	s.renew = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	s.issuer = cur.IssuerFingerprint()
	return s.cert, nil
}
