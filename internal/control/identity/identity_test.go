package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	identityv1 "github.com/weft-mesh/weft/api/gen/weft/identity/v1"
	"github.com/weft-mesh/weft/internal/clocktest"
	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/control/identity"
	"github.com/weft-mesh/weft/internal/control/jointoken"
	"github.com/weft-mesh/weft/internal/proxy/renew"
)

const td = "weft.local"

var web = spiffeid.RequireFromString("spiffe://weft.local/ns/shop/sa/web")

// mesh is a control plane's identity side on loopback: CA, join tokens and
// the Identity service over TLS.
type mesh struct {
	dir    string
	clock  *clocktest.Clock
	auth   *identity.Authority
	tokens *jointoken.Store
	addr   string
}

func startMesh(t *testing.T, lifetime time.Duration) *mesh {
	t.Helper()
	m := &mesh{dir: t.TempDir(), clock: clocktest.New()}
	var err error
	m.auth, err = identity.OpenAuthority(filepath.Join(m.dir, "ca"), ca.Options{TrustDomain: td, Now: m.clock.Now}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	m.tokens, err = jointoken.Open(m.dir, m.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := identity.NewServer(identity.Options{Authority: m.auth, Tokens: m.tokens, Lifetime: lifetime, Now: m.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(m.auth.ServerTLS(m.clock.Now))))
	srv.Register(g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.addr = ln.Addr().String()
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	return m
}

func (m *mesh) token(t *testing.T, id spiffeid.ID, ttl time.Duration, reusable bool) string {
	t.Helper()
	tok, _, err := m.tokens.Create(jointoken.CreateOptions{Identity: id, TTL: ttl, Reusable: reusable})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (m *mesh) client(t *testing.T, o renew.Options) *renew.Client {
	t.Helper()
	o.Address = m.addr
	if o.Anchors == nil {
		o.Anchors = m.auth.Current().Anchors()
	}
	o.Now = m.clock.Now
	o.After = m.clock.After
	o.Logger = slog.New(slog.DiscardHandler)
	c, err := renew.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIssuedCertificateVerifiesIndependently(t *testing.T) {
	m := startMesh(t, 0)
	c := m.client(t, renew.Options{JoinToken: m.token(t, web, time.Hour, false)})
	src, err := c.Obtain(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	chain := src.Certificate().Certificate
	certs := make([]*x509.Certificate, len(chain))
	for i, der := range chain {
		if certs[i], err = x509.ParseCertificate(der); err != nil {
			t.Fatal(err)
		}
	}
	leaf := certs[0]
	// go-spiffe's X509-SVID verifier, independent of weft's code.
	bundle := x509bundle.FromX509Authorities(spiffeid.RequireTrustDomainFromString(td), m.auth.Current().Anchors())
	id, _, err := x509svid.Verify(certs, bundle, x509svid.WithTime(m.clock.Now()))
	if err != nil || id != web {
		t.Fatalf("x509svid.Verify = %v, %v; want %s", id, err, web)
	}
	if len(leaf.URIs) != 1 || len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
		t.Errorf("leaf names: URIs %v DNS %v IP %v email %v; want exactly the SPIFFE ID", leaf.URIs, leaf.DNSNames, leaf.IPAddresses, leaf.EmailAddresses)
	}
	if got := leaf.NotAfter.Sub(m.clock.Now()); got < 23*time.Hour || got > 24*time.Hour {
		t.Errorf("lifetime %v, want the 24h default", got)
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("key type %T, want ECDSA", leaf.PublicKey)
	}

	// openssl, with the clock of the test CA.
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed for this test (apt-get install openssl)")
	}
	dir := t.TempDir()
	write := func(name string, cs ...*x509.Certificate) string {
		var b []byte
		for _, c := range cs {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	anchors := write("anchors.pem", m.auth.Current().Anchors()...)
	out, err := exec.Command("openssl", "verify", "-attime", itoa(m.clock.Now().Unix()), "-CAfile", anchors,
		"-untrusted", write("issuer.pem", certs[1]), "-purpose", "sslclient", write("leaf.pem", leaf)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
	out, err = exec.Command("openssl", "verify", "-attime", itoa(m.clock.Now().Unix()), "-CAfile", anchors,
		"-untrusted", write("issuer2.pem", certs[1]), "-purpose", "sslserver", write("leaf2.pem", leaf)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Fatalf("openssl verify (server purpose): %v\n%s", err, out)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// issueRaw sends one Issue request over TLS with no client certificate.
func (m *mesh) issueRaw(t *testing.T, req *identityv1.IssueRequest) error {
	t.Helper()
	c := m.client(t, renew.Options{JoinToken: "unused"})
	conn, err := grpc.NewClient(m.addr, grpc.WithTransportCredentials(c.Credentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = identityv1.NewIdentityClient(conn).Issue(t.Context(), req)
	return err
}

func csrFor(t *testing.T, curve elliptic.Curve, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestIssueRefuses(t *testing.T) {
	m := startMesh(t, 0)
	good := csrFor(t, elliptic.P256(), &x509.CertificateRequest{})
	used := m.token(t, web, time.Hour, false)
	if err := m.issueRaw(t, &identityv1.IssueRequest{Csr: good, Proof: &identityv1.IssueRequest_JoinToken{JoinToken: used}}); err != nil {
		t.Fatalf("first use of the token: %v", err)
	}
	expiring := m.token(t, web, time.Minute, true)
	m.clock.Advance(2 * time.Minute)
	valid := m.token(t, web, time.Hour, true)
	forged := valid[:len(valid)-4] + "AAAA"
	other := spiffeid.RequireFromString("spiffe://other.example/ns/shop/sa/web")
	otherTD := m.token(t, other, time.Hour, true)
	mangled := csrFor(t, elliptic.P256(), &x509.CertificateRequest{})
	mangled[len(mangled)-3] ^= 0xff
	evil, _ := url.Parse("spiffe://weft.local/ns/kube-system/sa/admin")

	for _, tc := range []struct {
		name string
		req  *identityv1.IssueRequest
		code codes.Code
		msg  string
	}{
		{"replayed single-use token", &identityv1.IssueRequest{Csr: good, Proof: &identityv1.IssueRequest_JoinToken{JoinToken: used}}, codes.Unauthenticated, "already used"},
		{"expired token", &identityv1.IssueRequest{Csr: good, Proof: &identityv1.IssueRequest_JoinToken{JoinToken: expiring}}, codes.Unauthenticated, "expired"},
		{"forged token", &identityv1.IssueRequest{Csr: good, Proof: &identityv1.IssueRequest_JoinToken{JoinToken: forged}}, codes.Unauthenticated, "secret does not match"},
		{"unknown token", &identityv1.IssueRequest{Csr: good, Proof: &identityv1.IssueRequest_JoinToken{JoinToken: "weft-join.000000000000.abc"}}, codes.Unauthenticated, "unknown"},
		{"not a token", &identityv1.IssueRequest{Csr: good, Proof: &identityv1.IssueRequest_JoinToken{JoinToken: "hunter2"}}, codes.Unauthenticated, "not a weft join token"},
		{"token of another trust domain", &identityv1.IssueRequest{Csr: good, Proof: &identityv1.IssueRequest_JoinToken{JoinToken: otherTD}}, codes.PermissionDenied, "trust domain"},
		{"no proof, no certificate", &identityv1.IssueRequest{Csr: good}, codes.Unauthenticated, "no proof of identity"},
		{"kubernetes token outside kubernetes", &identityv1.IssueRequest{Csr: good, Proof: &identityv1.IssueRequest_KubernetesToken{KubernetesToken: "x"}}, codes.FailedPrecondition, "join token"},
		{"CSR for another identity", &identityv1.IssueRequest{Csr: csrFor(t, elliptic.P256(), &x509.CertificateRequest{URIs: []*url.URL{evil}}), Proof: &identityv1.IssueRequest_JoinToken{JoinToken: valid}}, codes.InvalidArgument, "asks for spiffe://weft.local/ns/kube-system/sa/admin"},
		{"CSR with a DNS name", &identityv1.IssueRequest{Csr: csrFor(t, elliptic.P256(), &x509.CertificateRequest{DNSNames: []string{"web.shop"}}), Proof: &identityv1.IssueRequest_JoinToken{JoinToken: valid}}, codes.InvalidArgument, "DNS names"},
		{"wrong key type", &identityv1.IssueRequest{Csr: csrFor(t, elliptic.P224(), &x509.CertificateRequest{}), Proof: &identityv1.IssueRequest_JoinToken{JoinToken: valid}}, codes.InvalidArgument, "P-224 is not accepted"},
		{"forged CSR signature", &identityv1.IssueRequest{Csr: mangled, Proof: &identityv1.IssueRequest_JoinToken{JoinToken: valid}}, codes.InvalidArgument, "certificate signing request"},
		{"not a CSR", &identityv1.IssueRequest{Csr: []byte("hello"), Proof: &identityv1.IssueRequest_JoinToken{JoinToken: valid}}, codes.InvalidArgument, "DER PKCS#10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := m.issueRaw(t, tc.req)
			s, _ := status.FromError(err)
			if s.Code() != tc.code || !strings.Contains(s.Message(), tc.msg) {
				t.Fatalf("got %v (%s), want %v containing %q", s.Code(), s.Message(), tc.code, tc.msg)
			}
		})
	}
}

func TestRenewalOverMTLSKeepsIdentity(t *testing.T) {
	m := startMesh(t, time.Hour)
	c := m.client(t, renew.Options{JoinToken: m.token(t, web, time.Hour, false)})
	src, err := c.Obtain(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	first := src.Certificate().Leaf
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// Renewal is due at 65-75% of the hour; the single-use token is spent,
	// so only the current certificate can prove the identity.
	waitFor(t, func() bool { return m.clock.Waiters() > 0 })
	m.clock.Advance(46 * time.Minute)
	waitFor(t, func() bool { return src.Certificate().Leaf.SerialNumber.Cmp(first.SerialNumber) != 0 })
	next := src.Certificate().Leaf
	if src.ID() != web || !next.NotAfter.After(first.NotAfter) {
		t.Fatalf("renewed: %s until %s; want %s after %s", src.ID(), next.NotAfter, web, first.NotAfter)
	}
	if c.Ready() != nil {
		t.Fatalf("Ready after renewal: %v", c.Ready())
	}
}

func TestExpiredCertificateIsNotReadyAndCannotRenewWithoutProof(t *testing.T) {
	m := startMesh(t, time.Hour)
	c := m.client(t, renew.Options{JoinToken: m.token(t, web, time.Hour, false)})
	src, err := c.Obtain(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// No Run: nothing renews. Past expiry the proxy serves no mTLS.
	m.clock.Advance(61 * time.Minute)
	if !src.Expired() {
		t.Fatal("certificate not expired after its lifetime")
	}
	if err := c.Ready(); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("Ready = %v, want an expiry error", err)
	}
	// The control plane refuses the expired certificate as proof.
	conn, err := grpc.NewClient(m.addr, grpc.WithTransportCredentials(c.Credentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = identityv1.NewIdentityClient(conn).Issue(t.Context(), &identityv1.IssueRequest{Csr: csrFor(t, elliptic.P256(), &x509.CertificateRequest{})})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("renewal with an expired certificate: %v, want Unauthenticated", err)
	}
}

func TestClientRefusesAServerOfAnotherMesh(t *testing.T) {
	m := startMesh(t, 0)
	other := startMesh(t, 0)
	// A client that trusts only the other mesh's anchors talks to m.
	c2, err := renew.New(renew.Options{Address: m.addr, Anchors: other.auth.Current().Anchors(), JoinToken: m.token(t, web, time.Hour, false), Now: m.clock.Now, After: m.clock.After, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c2.Obtain(ctxTimeout(t, time.Second))
	if err == nil || !strings.Contains(err.Error(), "trust anchors") {
		t.Fatalf("Obtain from a control plane of another CA: %v, want a trust anchor error", err)
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
