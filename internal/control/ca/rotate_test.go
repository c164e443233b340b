package ca_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/weft-mesh/weft/internal/control/ca"
)

// TestAnchorRoll walks the three rotation steps and checks at each one that
// a certificate issued before it still verifies against the bundle, which is
// what keeps every request succeeding while proxies catch up.
func TestAnchorRoll(t *testing.T) {
	dir := t.TempDir()
	a := mustCreate(t, dir, ca.Options{})
	id := spiffeid.RequireFromString("spiffe://weft.local/ns/shop/sa/web")
	before := issuePEM(t, a, id)

	newFP, err := ca.AddAnchor(dir, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := mustCreate(t, dir, ca.Options{})
	if len(b.Anchors()) != 2 || ca.Fingerprint(b.Anchor()) != newFP {
		t.Fatalf("after AddAnchor: %d anchors, current %s; want 2, %s", len(b.Anchors()), ca.Fingerprint(b.Anchor()), newFP)
	}
	if b.IssuerFingerprint() != a.IssuerFingerprint() {
		t.Fatal("AddAnchor changed the issuer; it must only add to the bundle")
	}
	verifies(t, before, b)

	if _, err := ca.RotateIssuer(dir, ca.Options{}); err != nil {
		t.Fatal(err)
	}
	c := mustCreate(t, dir, ca.Options{})
	if c.IssuerFingerprint() == a.IssuerFingerprint() {
		t.Fatal("RotateIssuer kept the issuer")
	}
	if err := c.Issuer().CheckSignatureFrom(c.Anchor()); err != nil {
		t.Fatalf("the new issuer is not signed by the new anchor: %v", err)
	}
	after := issuePEM(t, c, id)
	verifies(t, before, c)
	verifies(t, after, c)

	oldFP := ca.Fingerprint(a.Anchor())
	if err := ca.RemoveAnchor(dir, oldFP[:12], ca.Options{}); err != nil {
		t.Fatal(err)
	}
	d := mustCreate(t, dir, ca.Options{})
	if len(d.Anchors()) != 1 || ca.Fingerprint(d.Anchor()) != newFP {
		t.Fatalf("after RemoveAnchor: %d anchors", len(d.Anchors()))
	}
	verifies(t, after, d)
	if _, err := verify(before, d); err == nil {
		t.Fatal("a certificate of the removed anchor still verifies")
	}
	for _, tc := range []struct{ prefix, want string }{
		{newFP[:10], "current anchor"},
		{"abc", "too short"},
		{"00000000", "no trust anchor"},
	} {
		if err := ca.RemoveAnchor(dir, tc.prefix, ca.Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("RemoveAnchor(%s) = %v, want %q", tc.prefix, err, tc.want)
		}
	}
}

// TestInterruptedIssuerRotation: a crash between RotateIssuer's renames
// leaves pending files that the next load completes.
func TestInterruptedIssuerRotation(t *testing.T) {
	dir := t.TempDir()
	mustCreate(t, dir, ca.Options{})
	// Produce a rotated issuer in a copy, then stage it as pending files.
	stage := t.TempDir()
	for _, n := range []string{ca.AnchorCertFile, ca.AnchorKeyFile, ca.IssuerCertFile, ca.IssuerKeyFile} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(stage, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fp, err := ca.RotateIssuer(stage, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files map[string]string // pending name -> staged file
	}{
		{"both pending", map[string]string{ca.IssuerKeyFile + ".new": ca.IssuerKeyFile, ca.IssuerCertFile + ".new": ca.IssuerCertFile}},
		{"key renamed, certificate pending", map[string]string{ca.IssuerKeyFile: ca.IssuerKeyFile, ca.IssuerCertFile + ".new": ca.IssuerCertFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for dst, src := range tc.files {
				b, err := os.ReadFile(filepath.Join(stage, src))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, dst), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			a, err := ca.LoadOrCreate(dir, ca.Options{TrustDomain: td})
			if err != nil {
				t.Fatalf("load after an interrupted rotation: %v", err)
			}
			if a.IssuerFingerprint() != fp {
				t.Fatal("the interrupted rotation was not completed")
			}
			for _, n := range []string{ca.IssuerKeyFile + ".new", ca.IssuerCertFile + ".new"} {
				if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
					t.Fatalf("%s left behind", n)
				}
			}
		})
	}
}

func issuePEM(t *testing.T, a *ca.Authority, id spiffeid.ID) []byte {
	t.Helper()
	certFile, _, _, err := a.IssueFiles(t.TempDir(), "w", id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verify checks a PEM chain (leaf, issuer) against a's bundle with
// go-spiffe's verifier.
func verify(chainPEM []byte, a *ca.Authority) (spiffeid.ID, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, chainPEM = pem.Decode(chainPEM)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return spiffeid.ID{}, err
		}
		certs = append(certs, c)
	}
	bundle := x509bundle.FromX509Authorities(a.TrustDomain(), a.Anchors())
	id, _, err := x509svid.Verify(certs, bundle)
	return id, err
}

func verifies(t *testing.T, chainPEM []byte, a *ca.Authority) {
	t.Helper()
	if _, err := verify(chainPEM, a); err != nil {
		t.Fatalf("a certificate does not verify against the bundle: %v", err)
	}
}
