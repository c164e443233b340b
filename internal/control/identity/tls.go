package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// ServerLifetime is the lifetime of the control plane's own certificate; it
// is renewed at half of it, or at once when the issuer changes.
const ServerLifetime = 24 * time.Hour

// ServerTLS returns the TLS config of the control plane's gRPC endpoints.
// The server presents a certificate for ControlPlaneID, signed by the
// current issuer and renewed in memory. A client certificate is optional
// (a proxy without one can only redeem a proof of identity); when one is
// presented it must verify against the current trust anchors, or the
// handshake fails. PeerID then tells handlers who the caller is.
func (a *Authority) ServerTLS(now func() time.Time) *tls.Config {
	if now == nil {
		now = time.Now
	}
	own := &ownCert{a: a, now: now}
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		NextProtos:     []string{"h2"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return own.get() },
		ClientAuth:     tls.RequestClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil
			}
			_, err := a.verify(cs.PeerCertificates, now())
			return err
		},
	}
}

// verify checks a peer chain against the current anchors.
func (a *Authority) verify(chain []*x509.Certificate, now time.Time) (spiffeid.ID, error) {
	cur := a.Current()
	set := x509bundle.NewSet(x509bundle.FromX509Authorities(cur.TrustDomain(), cur.Anchors()))
	id, _, err := x509svid.Verify(chain, set, x509svid.WithTime(now))
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("client certificate (subject %q) does not verify against the mesh's trust anchors: %w", chain[0].Subject.String(), err)
	}
	return id, nil
}

// PeerID returns the SPIFFE ID of the client certificate of a gRPC call
// served with ServerTLS, checked again against the current anchors at now
// (a long-lived connection may outlive the certificate it opened with). ok
// is false when the caller presented no certificate.
func (a *Authority) PeerID(ctx context.Context, now time.Time) (id spiffeid.ID, ok bool, err error) {
	p, found := peer.FromContext(ctx)
	if !found {
		return spiffeid.ID{}, false, nil
	}
	info, isTLS := p.AuthInfo.(credentials.TLSInfo)
	if !isTLS || len(info.State.PeerCertificates) == 0 {
		return spiffeid.ID{}, false, nil
	}
	id, err = a.verify(info.State.PeerCertificates, now)
	return id, true, err
}

// ownCert is the control plane's certificate, issued in memory by its own
// issuer; its key never leaves the process.
type ownCert struct {
	a   *Authority
	now func() time.Time

	mu     sync.Mutex
	cert   *tls.Certificate
	renew  time.Time
	issuer string
}

func (o *ownCert) get() (*tls.Certificate, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	cur := o.a.Current()
	now := o.now()
	if o.cert != nil && now.Before(o.renew) && o.issuer == cur.IssuerFingerprint() {
		return o.cert, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("control plane certificate: generating key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, fmt.Errorf("control plane certificate: %w", err)
	}
	leaf, err := cur.SignCSR(csr, ControlPlaneID(cur.TrustDomain()), ServerLifetime)
	if err != nil {
		if o.cert != nil && now.Before(o.cert.Leaf.NotAfter) {
			return o.cert, nil // keep serving the current one
		}
		return nil, fmt.Errorf("control plane certificate: %w", err)
	}
	if leaf == nil {
		return nil, errors.New("control plane certificate: the CA signed nothing")
	}
	o.cert = &tls.Certificate{
		Certificate: chainDER(leaf, cur),
		PrivateKey:  key,
		Leaf:        leaf,
	}
	o.renew = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	o.issuer = cur.IssuerFingerprint()
	return o.cert, nil
}
