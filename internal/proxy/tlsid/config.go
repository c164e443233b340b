package tlsid

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// IDMismatchError is returned (from the client's handshake) when the server
// proved a SPIFFE ID other than the one the client expected.
type IDMismatchError struct {
	Expected spiffeid.ID
	Got      spiffeid.ID
}

func (e *IDMismatchError) Error() string {
	return fmt.Sprintf("tlsid: peer SPIFFE ID %s does not match the expected %s", e.Got, e.Expected)
}

// ServerConfig returns a TLS 1.3 server config for weft-to-weft connections.
//
// The server presents the Source's current certificate, requires a client
// certificate, and accepts it only if its chain verifies against the current
// trust bundle (any of its roots) and its leaf carries a SPIFFE ID of the
// bundle's trust domain. Any such ID is accepted; authorization by ID is left
// to the caller, which can get it with PeerID. If alpn is not empty the
// client must negotiate one of those protocols.
//
// Certificate and bundle are looked up per handshake, so reloads apply to new
// connections (and to resumed sessions, which are re-verified) at once.
func (s *Source) ServerConfig(alpn ...string) *tls.Config {
	protos := slices.Clone(alpn)
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		NextProtos: protos,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.current()
		},
		// RequireAnyClientCert plus our own verification instead of
		// RequireAndVerifyClientCert with ClientCAs: the standard verifier
		// would check against a pool fixed at config creation, and knows
		// nothing about SPIFFE IDs.
		ClientAuth: tls.RequireAnyClientCert,
		// VerifyConnection rather than VerifyPeerCertificate because it also
		// runs on session resumption, so resumed sessions are checked against
		// the current bundle too.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if _, err := s.verifyPeer(cs.PeerCertificates); err != nil {
				return err
			}
			return checkALPN(cs, protos)
		},
	}
}

// ClientConfig returns a TLS 1.3 client config for dialing a weft peer.
//
// The client presents the Source's current certificate and accepts the server
// only if its chain verifies against the current trust bundle and its SPIFFE
// ID equals expected; otherwise the handshake fails with an *IDMismatchError
// naming both IDs. A zero expected accepts any SPIFFE ID of the bundle's trust
// domain. Server names are not used or checked. If alpn is not empty it is
// offered and the server must select it.
func (s *Source) ClientConfig(expected spiffeid.ID, alpn string) *tls.Config {
	var protos []string
	if alpn != "" {
		protos = []string{alpn}
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		NextProtos: protos,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.current()
		},
		// The standard verifier checks host names against a pool fixed at
		// config creation; the mesh identifies peers by SPIFFE ID instead,
		// against the current bundle, which VerifyConnection does below.
		// VerifyConnection always runs, so nothing goes unverified.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			id, err := s.verifyPeer(cs.PeerCertificates)
			if err != nil {
				return err
			}
			if !expected.IsZero() && id != expected {
				return &IDMismatchError{Expected: expected, Got: id}
			}
			return checkALPN(cs, protos)
		},
	}
}

// ExpiredError is returned from handshakes once the proxy's own certificate
// has expired: an expired identity serves no mTLS at all, so that peers see
// a failed handshake rather than a certificate they must reject.
type ExpiredError struct {
	ID       spiffeid.ID
	NotAfter time.Time
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("tlsid: this proxy's certificate for %s expired at %s and has not been renewed; mTLS is off until it is", e.ID, e.NotAfter.UTC().Format(time.RFC3339))
}

// current returns the certificate to present, or an *ExpiredError.
func (s *Source) current() (*tls.Certificate, error) {
	m := s.cur.Load()
	if s.now().After(m.notAfter) {
		return nil, &ExpiredError{ID: m.id, NotAfter: m.notAfter}
	}
	return m.cert, nil
}

// Expired reports whether the current certificate has expired.
func (s *Source) Expired() bool { return s.now().After(s.cur.Load().notAfter) }

// verifyPeer verifies a peer chain against the current trust bundle and
// returns the peer's SPIFFE ID.
func (s *Source) verifyPeer(certs []*x509.Certificate) (spiffeid.ID, error) {
	if len(certs) == 0 {
		return spiffeid.ID{}, errors.New("tlsid: peer presented no certificate")
	}
	id, _, err := x509svid.Verify(certs, s.cur.Load().bundles, x509svid.WithTime(s.now()))
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("tlsid: verifying peer certificate (subject %q): %w", certs[0].Subject.String(), err)
	}
	return id, nil
}

func checkALPN(cs tls.ConnectionState, protos []string) error {
	if len(protos) > 0 && !slices.Contains(protos, cs.NegotiatedProtocol) {
		return fmt.Errorf("tlsid: peer did not negotiate an application protocol (ALPN) from %q; weft peers must agree on one", protos)
	}
	return nil
}

// PeerID returns the SPIFFE ID of the peer of a connection whose handshake
// completed with a config from ServerConfig or ClientConfig (which verified
// it). For connections set up otherwise it only reads the certificate and
// proves nothing.
func PeerID(cs tls.ConnectionState) (spiffeid.ID, error) {
	if !cs.HandshakeComplete {
		return spiffeid.ID{}, errors.New("tlsid: TLS handshake not complete; no verified peer yet")
	}
	if len(cs.PeerCertificates) == 0 {
		return spiffeid.ID{}, errors.New("tlsid: peer presented no certificate")
	}
	id, err := x509svid.IDFromCert(cs.PeerCertificates[0])
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("tlsid: reading peer SPIFFE ID: %w", err)
	}
	return id, nil
}
