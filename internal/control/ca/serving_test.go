package ca_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/control/ca"
)

// TestSignServing checks the control plane's serving certificate: it
// verifies for serverAuth against the anchors (with the issuer as
// intermediate) under each of its DNS names, carries the SPIFFE ID as its
// only URI SAN, and is refused for no names, bad names and foreign IDs.
func TestSignServing(t *testing.T) {
	a := mustCreate(t, filepath.Join(t.TempDir(), "ca"), ca.Options{})
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := spiffeid.RequireFromString("spiffe://" + td + "/ns/weft-system/sa/weft-control")
	names := []string{"weft-control.weft-system.svc", "weft-control.weft-system.svc.cluster.local"}
	leaf, err := a.SignServing(&key.PublicKey, id, names, time.Hour)
	if err != nil {
		t.Fatalf("SignServing: %v", err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range a.Anchors() {
		roots.AddCert(c)
	}
	for _, c := range a.Chain() {
		inter.AddCert(c)
	}
	for _, tc := range []struct {
		name    string
		dnsName string
		usage   x509.ExtKeyUsage
		wantErr bool
	}{
		{name: "service name", dnsName: names[0], usage: x509.ExtKeyUsageServerAuth},
		{name: "cluster.local name", dnsName: names[1], usage: x509.ExtKeyUsageServerAuth},
		{name: "another name", dnsName: "weft-control.default.svc", usage: x509.ExtKeyUsageServerAuth, wantErr: true},
		{name: "as a client", dnsName: names[0], usage: x509.ExtKeyUsageClientAuth, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := leaf.Verify(x509.VerifyOptions{DNSName: tc.dnsName, Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{tc.usage}})
			if (err != nil) != tc.wantErr {
				t.Errorf("Verify(%s): %v, want error %v", tc.dnsName, err, tc.wantErr)
			}
		})
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != id.String() {
		t.Errorf("URI SANs %v, want only %s", leaf.URIs, id)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d < time.Hour || d > time.Hour+2*time.Minute {
		t.Errorf("valid for %v, want about an hour", d)
	}

	for _, tc := range []struct {
		name  string
		id    spiffeid.ID
		names []string
		want  string
	}{
		{name: "no DNS names", id: id, want: "no DNS names"},
		{name: "wildcard", id: id, names: []string{"*.weft-system.svc"}, want: "not a host name"},
		{name: "trailing dot", id: id, names: []string{"weft-control.weft-system.svc."}, want: "not a host name"},
		{name: "foreign trust domain", id: spiffeid.RequireFromString("spiffe://other.example/ns/a/sa/b"), names: names, want: "not in trust domain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.SignServing(&key.PublicKey, tc.id, tc.names, time.Hour)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("SignServing: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
