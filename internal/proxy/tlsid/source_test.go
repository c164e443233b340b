package tlsid_test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/tlsid"
	"github.com/weft-mesh/weft/internal/proxy/tlsid/tlstest"
)

func TestLoad(t *testing.T) {
	ca := tlstest.NewCA(t, "example.org")
	f := ca.Issue(t, serverURI, time.Hour)
	s := mustLoad(t, f)
	if got := s.ID().String(); got != serverURI {
		t.Errorf("ID = %s, want %s", got, serverURI)
	}
	if d := time.Until(s.NotAfter()); d < 59*time.Minute || d > time.Hour {
		t.Errorf("NotAfter in %v, want about an hour", d)
	}
	if n := len(s.Certificate().Certificate); n != 2 {
		t.Errorf("presented chain has %d certificates, want leaf + intermediate", n)
	}
	if s.Files() != f {
		t.Errorf("Files() = %+v, want %+v", s.Files(), f)
	}
}

// cert-manager and openssl often write SEC1 ("EC PRIVATE KEY") keys.
func TestLoadSEC1Key(t *testing.T) {
	ca := tlstest.NewCA(t, "example.org")
	f := ca.Issue(t, serverURI, time.Hour)
	block, _ := pem.Decode(readFile(t, f.KeyFile))
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	mustLoad(t, f)
}

func TestLoadErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "example.org")
	otherCA := tlstest.NewCA(t, "example.org")
	good := ca.Issue(t, serverURI, time.Hour)
	other := ca.Issue(t, clientURI, time.Hour)
	now := time.Now()
	missing := filepath.Join(t.TempDir(), "missing.pem")
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	writeFile(t, garbage, []byte("this is not PEM\n"))
	empty := filepath.Join(t.TempDir(), "empty.pem")
	writeFile(t, empty, nil)

	with := func(mod func(*tlsid.Files)) tlsid.Files { f := good; mod(&f); return f }
	leaf := func(l tlstest.Leaf) tlsid.Files { return ca.IssueLeaf(t, l) }

	tests := []struct {
		name   string
		files  tlsid.Files
		want   []string
		wantIs error
	}{
		{
			name:   "missing cert file",
			files:  with(func(f *tlsid.Files) { f.CertFile = missing }),
			want:   []string{"cert file " + missing, "check the path"},
			wantIs: fs.ErrNotExist,
		},
		{
			name:   "missing key file",
			files:  with(func(f *tlsid.Files) { f.KeyFile = missing }),
			want:   []string{"key file " + missing},
			wantIs: fs.ErrNotExist,
		},
		{
			name:   "missing bundle file",
			files:  with(func(f *tlsid.Files) { f.TrustBundleFile = missing }),
			want:   []string{"trust bundle file " + missing},
			wantIs: fs.ErrNotExist,
		},
		{
			name:  "unset key file",
			files: with(func(f *tlsid.Files) { f.KeyFile = "" }),
			want:  []string{"no key file configured", "Files.KeyFile"},
		},
		{
			name:  "cert file not PEM",
			files: with(func(f *tlsid.Files) { f.CertFile = garbage }),
			want:  []string{"cert file " + garbage, "no CERTIFICATE PEM blocks", "leaf certificate followed by its intermediates"},
		},
		{
			name:  "key does not match cert",
			files: with(func(f *tlsid.Files) { f.KeyFile = other.KeyFile }),
			want:  []string{"key file " + other.KeyFile, "does not match", good.CertFile},
		},
		{
			name:  "key file holds a certificate",
			files: with(func(f *tlsid.Files) { f.KeyFile = good.CertFile }),
			want:  []string{"key file " + good.CertFile, "private key"},
		},
		{
			name:  "no URI SAN",
			files: leaf(tlstest.Leaf{DNSNames: []string{"server.example.org"}}),
			want:  []string{"cert file", "no SPIFFE URI SAN", "spiffe://<trust-domain>/ns/<ns>/sa/<sa>"},
		},
		{
			name:  "two URI SANs",
			files: leaf(tlstest.Leaf{URIs: []string{serverURI, clientURI}}),
			want:  []string{"2 URI SANs", serverURI, clientURI, "exactly one"},
		},
		{
			name:  "non-SPIFFE URI",
			files: leaf(tlstest.Leaf{URIs: []string{"https://example.org/ns/default/sa/server"}}),
			want:  []string{"https://example.org/ns/default/sa/server", "not a valid SPIFFE ID", "scheme"},
		},
		{
			name:  "SPIFFE ID without path",
			files: leaf(tlstest.Leaf{URIs: []string{"spiffe://example.org"}}),
			want:  []string{"spiffe://example.org", "has no path"},
		},
		{
			name:  "expired",
			files: leaf(tlstest.Leaf{URIs: []string{serverURI}, NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)}),
			want:  []string{"cert file", serverURI, "expired at", "issue a new certificate"},
		},
		{
			name:  "not yet valid",
			files: leaf(tlstest.Leaf{URIs: []string{serverURI}, NotBefore: now.Add(time.Hour), NotAfter: now.Add(2 * time.Hour)}),
			want:  []string{"not valid before", "clock"},
		},
		{
			name:  "not chaining to bundle",
			files: with(func(f *tlsid.Files) { f.TrustBundleFile = otherCA.BundleFile }),
			want:  []string{"cert file " + good.CertFile, "does not verify against trust bundle file " + otherCA.BundleFile, "unknown authority"},
		},
		{
			name:  "empty bundle",
			files: with(func(f *tlsid.Files) { f.TrustBundleFile = empty }),
			want:  []string{"trust bundle file " + empty, "no CERTIFICATE PEM blocks", "example.org"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tlsid.Load(tc.files)
			if err == nil {
				t.Fatalf("Load succeeded with ID %v", s.ID())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\n does not contain %q", err, w)
				}
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v is not %v", err, tc.wantIs)
			}
		})
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
