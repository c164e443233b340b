package ca_test

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/proxy/tlsid"
)

// issue writes files for id with a and loads them with the proxy's loader.
func issue(t *testing.T, a *ca.Authority, dir, name string, id spiffeid.ID) *tlsid.Source {
	t.Helper()
	certFile, keyFile, bundleFile, err := a.IssueFiles(dir, name, id, time.Hour)
	if err != nil {
		t.Fatalf("IssueFiles: %v", err)
	}
	want := tlsid.Files{
		CertFile:        filepath.Join(dir, name+".crt"),
		KeyFile:         filepath.Join(dir, name+".key"),
		TrustBundleFile: filepath.Join(dir, "bundle.crt"),
	}
	got := tlsid.Files{CertFile: certFile, KeyFile: keyFile, TrustBundleFile: bundleFile}
	if got != want {
		t.Errorf("IssueFiles returned %+v, want %+v", got, want)
	}
	s, err := tlsid.Load(got)
	if err != nil {
		t.Fatalf("tlsid.Load of issued files: %v", err)
	}
	if s.ID() != id {
		t.Errorf("loaded ID %s, want %s", s.ID(), id)
	}
	return s
}

// handshake runs a TLS handshake over an in-memory pipe and returns the peer
// IDs each side saw.
func handshake(t *testing.T, server, client *tls.Config) (serverSaw, clientSaw spiffeid.ID, serverErr, clientErr error) {
	t.Helper()
	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		s := tls.Server(sc, server)
		if serverErr = s.HandshakeContext(ctx); serverErr == nil {
			serverSaw, serverErr = tlsid.PeerID(s.ConnectionState())
		} else {
			sc.Close() // unblock the client
		}
	})
	c := tls.Client(cc, client)
	if clientErr = c.HandshakeContext(ctx); clientErr == nil {
		clientSaw, clientErr = tlsid.PeerID(c.ConnectionState())
	} else {
		cc.Close() // unblock the server
	}
	wg.Wait()
	return serverSaw, clientSaw, serverErr, clientErr
}

func TestIssuedFilesMTLS(t *testing.T) {
	a := mustCreate(t, filepath.Join(t.TempDir(), "ca"), ca.Options{})
	dir := t.TempDir()
	serverID := spiffeid.RequireFromString("spiffe://weft.local/ns/default/sa/server")
	clientID := spiffeid.RequireFromString("spiffe://weft.local/ns/default/sa/client")
	server := issue(t, a, dir, "server", serverID)
	client := issue(t, a, dir, "client", clientID)

	for _, tc := range []struct {
		name     string
		expected spiffeid.ID
		wantOK   bool
	}{
		{"expected server ID", serverID, true},
		{"any ID of the trust domain", spiffeid.ID{}, true},
		{"other expected ID", clientID, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serverSaw, clientSaw, serr, cerr := handshake(t,
				server.ServerConfig(tlsid.ALPNHTTP2),
				client.ClientConfig(tc.expected, tlsid.ALPNHTTP2))
			if !tc.wantOK {
				if cerr == nil {
					t.Fatal("handshake succeeded with the wrong expected ID")
				}
				return
			}
			if serr != nil || cerr != nil {
				t.Fatalf("handshake failed: server %v, client %v", serr, cerr)
			}
			if serverSaw != clientID || clientSaw != serverID {
				t.Errorf("server saw %s, client saw %s; want %s and %s", serverSaw, clientSaw, clientID, serverID)
			}
		})
	}
}

// A proxy of another CA of the same trust domain is refused by ours.
func TestOtherAuthorityRefused(t *testing.T) {
	a := mustCreate(t, filepath.Join(t.TempDir(), "ca"), ca.Options{})
	b := mustCreate(t, filepath.Join(t.TempDir(), "ca"), ca.Options{})
	server := issue(t, a, t.TempDir(), "server", spiffeid.RequireFromString("spiffe://weft.local/ns/default/sa/server"))
	client := issue(t, b, t.TempDir(), "client", spiffeid.RequireFromString("spiffe://weft.local/ns/default/sa/client"))
	_, _, serr, cerr := handshake(t, server.ServerConfig(tlsid.ALPNHTTP2), client.ClientConfig(spiffeid.ID{}, tlsid.ALPNHTTP2))
	if serr == nil && cerr == nil {
		t.Fatal("handshake between two authorities succeeded")
	}
}
