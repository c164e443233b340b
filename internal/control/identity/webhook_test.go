package identity_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/clocktest"
	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/control/identity"
)

// serveWebhookTLS accepts TLS connections on loopback with cfg, completing
// each handshake, until the test ends.
func serveWebhookTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := tls.Server(c, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = tc.HandshakeContext(ctx)
			cancel()
			tc.Close()
		}
	}()
	return ln.Addr().String()
}

// dialWebhook handshakes with addr as the API server would: server name
// the Service's DNS name, roots the trust anchors (the caBundle).
func dialWebhook(addr, serverName string, anchors []*x509.Certificate, now func() time.Time) (*x509.Certificate, error) {
	pool := x509.NewCertPool()
	for _, c := range anchors {
		pool.AddCert(c)
	}
	d := tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: serverName, Time: now, MinVersion: tls.VersionTLS12}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil, errors.New("not a TLS connection")
	}
	cs := tc.ConnectionState()
	if cs.DidResume || len(cs.PeerCertificates) == 0 {
		return nil, errors.New("no peer certificate")
	}
	if len(tc.ConnectionState().VerifiedChains) == 0 {
		return nil, errors.New("no verified chain")
	}
	return cs.PeerCertificates[0], nil
}

// TestWebhookTLS handshakes with WebhookTLS as the API server does: the
// certificate verifies against the anchors for the Service's DNS names
// (not for others), carries the control plane's SPIFFE ID, and is replaced
// after an issuer rotation and at half its lifetime.
func TestWebhookTLS(t *testing.T) {
	clock := clocktest.New()
	dir := filepath.Join(t.TempDir(), "ca")
	o := ca.Options{TrustDomain: td, Now: clock.Now}
	auth, err := identity.OpenAuthority(dir, o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"weft-control.weft-system.svc", "weft-control.weft-system.svc.cluster.local"}
	cfg := auth.WebhookTLS(names, clock.Now)
	if cfg.ClientAuth != tls.NoClientCert {
		t.Errorf("ClientAuth %v, want NoClientCert", cfg.ClientAuth)
	}
	addr := serveWebhookTLS(t, cfg)
	anchors := auth.Current().Anchors()

	for _, tc := range []struct {
		name, serverName string
		wantErr          bool
	}{
		{name: "service name", serverName: names[0]},
		{name: "cluster.local name", serverName: names[1]},
		{name: "other namespace", serverName: "weft-control.default.svc", wantErr: true},
		{name: "IP address", serverName: "127.0.0.1", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf, err := dialWebhook(addr, tc.serverName, anchors, clock.Now)
			if (err != nil) != tc.wantErr {
				t.Fatalf("handshake as %s: %v, want error %v", tc.serverName, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if want := identity.ControlPlaneID(auth.Current().TrustDomain()).String(); len(leaf.URIs) != 1 || leaf.URIs[0].String() != want {
				t.Errorf("URI SANs %v, want %s", leaf.URIs, want)
			}
		})
	}
	first, err := dialWebhook(addr, names[0], anchors, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	again, err := dialWebhook(addr, names[0], anchors, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Equal(first) {
		t.Error("a second handshake got a new certificate: it should be kept until half its lifetime")
	}

	if _, err := ca.RotateIssuer(dir, o); err != nil {
		t.Fatal(err)
	}
	if changed, err := auth.Reload(); err != nil || !changed {
		t.Fatalf("Reload after RotateIssuer: changed %v, err %v", changed, err)
	}
	rotated, err := dialWebhook(addr, names[0], anchors, clock.Now)
	if err != nil {
		t.Fatalf("handshake after the issuer rotated: %v", err)
	}
	if err := rotated.CheckSignatureFrom(auth.Current().Issuer()); err != nil {
		t.Errorf("after the issuer rotated, the certificate is not the new issuer's: %v", err)
	}

	clock.Advance(identity.ServerLifetime/2 + time.Minute)
	renewed, err := dialWebhook(addr, names[0], anchors, clock.Now)
	if err != nil {
		t.Fatalf("handshake after half the lifetime: %v", err)
	}
	if renewed.Equal(rotated) {
		t.Error("the certificate was not renewed at half its lifetime")
	}
}
