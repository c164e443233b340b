package tlsid_test

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/proxy/tlsid"
	"github.com/weft-mesh/weft/internal/proxy/tlsid/tlstest"
)

const (
	serverURI = "spiffe://example.org/ns/default/sa/server"
	clientURI = "spiffe://example.org/ns/default/sa/client"
)

// pair returns a server and a client Source issued by one CA.
func pair(t *testing.T) (ca *tlstest.CA, server, client *tlsid.Source) {
	ca = tlstest.NewCA(t, "example.org")
	server = mustLoad(t, ca.Issue(t, serverURI, time.Hour))
	client = mustLoad(t, ca.Issue(t, clientURI, time.Hour))
	return ca, server, client
}

func TestHandshake(t *testing.T) {
	_, server, client := pair(t)
	srv := startServer(t, server.ServerConfig(tlsid.ALPNHTTP2, tlsid.ALPNHTTP1, tlsid.ALPNOpaque))

	for _, tc := range []struct {
		name     string
		expected spiffeid.ID
		alpn     string
	}{
		{"expected ID h2", server.ID(), tlsid.ALPNHTTP2},
		{"expected ID http1", server.ID(), tlsid.ALPNHTTP1},
		{"any ID of the trust domain, opaque", spiffeid.ID{}, tlsid.ALPNOpaque},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustDial(t, srv.addr, client.ClientConfig(tc.expected, tc.alpn))
			cs := c.ConnectionState()
			if cs.Version != tls.VersionTLS13 {
				t.Errorf("version = %x, want TLS 1.3", cs.Version)
			}
			if cs.NegotiatedProtocol != tc.alpn {
				t.Errorf("client ALPN = %q, want %q", cs.NegotiatedProtocol, tc.alpn)
			}
			id, err := tlsid.PeerID(cs)
			if err != nil || id != server.ID() {
				t.Errorf("client PeerID = %v, %v; want %v", id, err, server.ID())
			}
			if err := roundTrip(c, "hello"); err != nil {
				t.Fatal(err)
			}
			r := srv.next(t)
			if r.err != nil || r.peer != client.ID() || r.proto != tc.alpn {
				t.Errorf("server saw peer %v proto %q err %v; want %v %q", r.peer, r.proto, r.err, client.ID(), tc.alpn)
			}
		})
	}
}

func TestWrongExpectedIDFails(t *testing.T) {
	_, server, client := pair(t)
	srv := startServer(t, server.ServerConfig(tlsid.ALPNHTTP2))

	want := spiffeid.RequireFromString("spiffe://example.org/ns/default/sa/someone-else")
	_, err := dial(t, srv.addr, client.ClientConfig(want, tlsid.ALPNHTTP2))
	if err == nil {
		t.Fatal("handshake succeeded with the wrong expected ID")
	}
	var mismatch *tlsid.IDMismatchError
	if !errors.As(err, &mismatch) {
		t.Fatalf("error %v (%T) is not an IDMismatchError", err, err)
	}
	for _, s := range []string{want.String(), server.ID().String()} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	if r := srv.next(t); r.err == nil {
		t.Error("server-side handshake succeeded")
	}
}

func TestPeerFromOtherTrustDomainRejectedByClient(t *testing.T) {
	_, _, client := pair(t)
	other := tlstest.NewCA(t, "other.org")
	server := mustLoad(t, other.Issue(t, "spiffe://other.org/ns/default/sa/server", time.Hour))
	srv := startServer(t, server.ServerConfig(tlsid.ALPNHTTP2))

	_, err := dial(t, srv.addr, client.ClientConfig(spiffeid.ID{}, tlsid.ALPNHTTP2))
	if err == nil || !strings.Contains(err.Error(), "other.org") {
		t.Fatalf("dial err = %v; want a rejection naming trust domain other.org", err)
	}
	srv.next(t)
}

// expectServerRejects dials with a hand-made client config and checks that
// the server fails the handshake with an error containing want.
func expectServerRejects(t *testing.T, srv *echoServer, cfg *tls.Config, want string) {
	t.Helper()
	c, err := dial(t, srv.addr, cfg)
	if err == nil {
		// In TLS 1.3 the client finishes its handshake before the
		// server has checked the client certificate; the rejection
		// shows on the first read.
		if err := roundTrip(c, "hello"); err == nil {
			t.Fatal("client could exchange data with the server")
		}
	}
	r := srv.next(t)
	if r.err == nil {
		t.Fatalf("server accepted the handshake (peer %v)", r.peer)
	}
	if !strings.Contains(r.err.Error(), want) {
		t.Errorf("server error %q does not contain %q", r.err, want)
	}
}

func TestServerRejects(t *testing.T) {
	_, server, _ := pair(t)
	srv := startServer(t, server.ServerConfig(tlsid.ALPNHTTP2))

	foreignCA := tlstest.NewCA(t, "example.org") // same name, different keys
	foreign := mustLoad(t, foreignCA.Issue(t, clientURI, time.Hour))
	otherTD := tlstest.NewCA(t, "other.org")
	otherTDClient := mustLoad(t, otherTD.Issue(t, "spiffe://other.org/ns/default/sa/client", time.Hour))

	rawClient := func(certs ...tls.Certificate) *tls.Config {
		return &tls.Config{
			InsecureSkipVerify: true, // the client side is not under test
			MinVersion:         tls.VersionTLS13,
			Certificates:       certs,
			NextProtos:         []string{tlsid.ALPNHTTP2},
		}
	}

	t.Run("client cert from another CA", func(t *testing.T) {
		expectServerRejects(t, srv, rawClient(*foreign.Certificate()), "verifying peer certificate")
	})
	t.Run("client cert from another trust domain", func(t *testing.T) {
		expectServerRejects(t, srv, rawClient(*otherTDClient.Certificate()), "other.org")
	})
	t.Run("no client cert", func(t *testing.T) {
		expectServerRejects(t, srv, rawClient(), "certificate")
	})
	t.Run("TLS 1.2 only client", func(t *testing.T) {
		cfg := rawClient(*foreign.Certificate())
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		expectServerRejects(t, srv, cfg, "version")
	})
	t.Run("plaintext", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", srv.addr, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := roundTrip(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err == nil {
			t.Fatal("plaintext request was echoed")
		}
		if r := srv.next(t); r.err == nil || !strings.Contains(r.err.Error(), "TLS handshake") {
			t.Errorf("server error = %v; want a TLS handshake error", r.err)
		}
	})
}

func TestALPNRequired(t *testing.T) {
	_, server, client := pair(t)

	t.Run("client without ALPN", func(t *testing.T) {
		srv := startServer(t, server.ServerConfig(tlsid.ALPNHTTP2))
		cfg := client.ClientConfig(server.ID(), "")
		expectServerRejects(t, srv, cfg, "application protocol")
	})
	t.Run("server without ALPN", func(t *testing.T) {
		srv := startServer(t, server.ServerConfig())
		_, err := dial(t, srv.addr, client.ClientConfig(server.ID(), tlsid.ALPNHTTP2))
		if err == nil || !strings.Contains(err.Error(), "application protocol") {
			t.Errorf("dial err = %v; want an ALPN error", err)
		}
		srv.next(t)
	})
	t.Run("no overlap", func(t *testing.T) {
		srv := startServer(t, server.ServerConfig(tlsid.ALPNOpaque))
		if _, err := dial(t, srv.addr, client.ClientConfig(server.ID(), tlsid.ALPNHTTP2)); err == nil {
			t.Error("handshake succeeded without a common protocol")
		}
		srv.next(t)
	})
}

func TestTwoAnchorsInBundle(t *testing.T) {
	oldCA := tlstest.NewCA(t, "example.org")
	newCA := tlstest.NewCA(t, "example.org")
	bundle := tlstest.WriteBundle(t, oldCA, newCA)

	withBundle := func(f tlsid.Files) tlsid.Files { f.TrustBundleFile = bundle; return f }
	server := mustLoad(t, withBundle(oldCA.Issue(t, serverURI, time.Hour)))
	clientOld := mustLoad(t, withBundle(oldCA.Issue(t, clientURI, time.Hour)))
	clientNew := mustLoad(t, withBundle(newCA.Issue(t, clientURI, time.Hour)))
	srv := startServer(t, server.ServerConfig(tlsid.ALPNHTTP2))

	for name, client := range map[string]*tlsid.Source{"old anchor": clientOld, "new anchor": clientNew} {
		t.Run(name, func(t *testing.T) {
			c := mustDial(t, srv.addr, client.ClientConfig(server.ID(), tlsid.ALPNHTTP2))
			if err := roundTrip(c, "rotate"); err != nil {
				t.Fatal(err)
			}
			if r := srv.next(t); r.err != nil || r.peer != client.ID() {
				t.Errorf("server saw %v, %v", r.peer, r.err)
			}
		})
	}
	t.Run("server on new anchor", func(t *testing.T) {
		server2 := mustLoad(t, withBundle(newCA.Issue(t, serverURI, time.Hour)))
		srv2 := startServer(t, server2.ServerConfig(tlsid.ALPNHTTP2))
		c := mustDial(t, srv2.addr, clientOld.ClientConfig(server2.ID(), tlsid.ALPNHTTP2))
		if err := roundTrip(c, "rotate"); err != nil {
			t.Fatal(err)
		}
		srv2.next(t)
	})
}

func TestPeerIDErrors(t *testing.T) {
	if _, err := tlsid.PeerID(tls.ConnectionState{}); err == nil {
		t.Error("PeerID of an incomplete handshake succeeded")
	}
	if _, err := tlsid.PeerID(tls.ConnectionState{HandshakeComplete: true}); err == nil {
		t.Error("PeerID without peer certificates succeeded")
	}
}
