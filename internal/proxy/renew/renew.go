// Package renew obtains weft-proxy's certificate from the control plane's
// Identity API and keeps it current.
//
// The proxy generates an ECDSA P-256 key in memory (it never leaves the
// proxy), sends a CSR with its proof of identity (a join token in universal
// mode, the pod's projected ServiceAccount token on Kubernetes) and gets an
// X.509 SVID with the trust anchors. It renews at about 70% of the
// certificate's lifetime (with ±5% jitter so a fleet does not renew at one
// instant), over mTLS with the current certificate as proof, retrying with
// exponential back-off and jitter. Renewal swaps the material in the
// tlsid.Source: new handshakes use it, open connections are untouched.
//
// If the certificate expires anyway, the Source stops serving mTLS (see
// tlsid.ExpiredError), Ready reports it, the metric
// weft_identity_certificate_valid drops to 0 and an error is logged; the
// client keeps trying, falling back to the proof of identity, which a
// Kubernetes token file or a reusable join token can still give.
package renew

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	identityv1 "github.com/weft-mesh/weft/api/gen/weft/identity/v1"
	"github.com/weft-mesh/weft/internal/proxy/tlsid"
)

// ControlPlanePath is the SPIFFE ID path of the control plane's own
// certificate, which the proxy checks before it sends anything.
const ControlPlanePath = "/ns/weft-system/sa/weft-control"

// RenewFraction is the share of a certificate's lifetime after which it is
// renewed (before jitter).
const RenewFraction = 0.7

// Back-off of failed issuance.
const (
	minBackoff = time.Second
	maxBackoff = time.Minute
)

// Options configure a Client.
type Options struct {
	// Address of the control plane's gRPC endpoint, host:port.
	Address string
	// Anchors are the trust anchors the proxy is started with, to verify the
	// control plane before it has a certificate of its own. Required.
	Anchors []*x509.Certificate
	// TrustDomain of the mesh; default: the trust domain in the first
	// anchor's URI SAN (weft's anchors carry one).
	TrustDomain string
	// JoinToken is the proof in universal mode.
	JoinToken string
	// TokenFile is the proof on Kubernetes: the projected ServiceAccount
	// token, re-read for every request because the kubelet rotates it.
	TokenFile string
	// Registerer receives the identity metrics; nil: none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now defaults to time.Now; After to time.After. Both for tests.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Dial adds gRPC dial options (tests).
	Dial []grpc.DialOption
	// OnExpire, when set, is called once when the certificate expires
	// without having been renewed (again after each later expiry), so the
	// proxy can close the mTLS connections it holds.
	OnExpire func()
}

// Client obtains and renews the proxy's certificate.
type Client struct {
	o        Options
	td       spiffeid.TrustDomain
	serverID spiffeid.ID
	log      *slog.Logger
	src      atomic.Pointer[tlsid.Source]
	kick     chan struct{}
	lastErr  atomic.Pointer[string]

	renewals *prometheus.CounterVec
	expiry   prometheus.Gauge
	valid    prometheus.GaugeFunc
	anchors  prometheus.GaugeFunc

	mu  sync.Mutex
	rnd *rand.Rand
}

// New checks o and returns a client; nothing is dialled yet.
func New(o Options) (*Client, error) {
	if o.Address == "" {
		return nil, errors.New("renew: no control plane address; pass --control-plane")
	}
	if len(o.Anchors) == 0 {
		return nil, errors.New("renew: no trust anchors to verify the control plane with; pass --trust-bundle with the mesh's anchor certificate(s) (anchor.crt in the control plane's data directory)")
	}
	if o.JoinToken == "" && o.TokenFile == "" {
		return nil, errors.New("renew: no proof of identity; pass --join-token-file (universal mode: `weft token create`) or --token-file (Kubernetes: the projected ServiceAccount token)")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	td, err := trustDomainOf(o)
	if err != nil {
		return nil, err
	}
	serverID, err := spiffeid.FromPath(td, ControlPlanePath)
	if err != nil {
		return nil, fmt.Errorf("renew: control plane SPIFFE ID: %w", err)
	}
	c := &Client{
		o:        o,
		td:       td,
		serverID: serverID,
		log:      o.Logger,
		kick:     make(chan struct{}, 1),
		rnd:      newRand(),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_identity_renewals_total",
			Help: "Certificate requests to the control plane, by result (success, failure).",
		}, []string{"result"}),
		expiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weft_identity_certificate_expiry_timestamp_seconds",
			Help: "When the proxy's current certificate expires, in seconds since the epoch.",
		}),
	}
	c.valid = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "weft_identity_certificate_valid",
		Help: "1 while the proxy holds a valid certificate (mTLS on), 0 when it has none or it expired.",
	}, func() float64 {
		if s := c.src.Load(); s != nil && !s.Expired() {
			return 1
		}
		return 0
	})
	c.anchors = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "weft_identity_trust_anchors",
		Help: "Trust anchors the proxy verifies peers against (2 during an anchor rotation).",
	}, func() float64 {
		if s := c.src.Load(); s != nil {
			return float64(len(s.Anchors()))
		}
		return 0
	})
	if o.Registerer != nil {
		for _, m := range []prometheus.Collector{c.renewals, c.expiry, c.valid, c.anchors} {
			if err := o.Registerer.Register(m); err != nil {
				return nil, fmt.Errorf("renew: registering metrics: %w", err)
			}
		}
	}
	return c, nil
}

func trustDomainOf(o Options) (spiffeid.TrustDomain, error) {
	if o.TrustDomain != "" {
		td, err := spiffeid.TrustDomainFromString(o.TrustDomain)
		if err != nil {
			return td, fmt.Errorf("renew: trust domain %q: %w", o.TrustDomain, err)
		}
		return td, nil
	}
	for _, a := range o.Anchors {
		for _, u := range a.URIs {
			if id, err := spiffeid.FromURI(u); err == nil {
				return id.TrustDomain(), nil
			}
		}
	}
	return spiffeid.TrustDomain{}, errors.New("renew: the trust anchors carry no SPIFFE URI SAN naming the trust domain; pass --trust-domain")
}

// Source returns the proxy's identity; nil before Obtain succeeded.
func (c *Client) Source() *tlsid.Source { return c.src.Load() }

// Ready returns nil while the proxy holds a valid certificate, or says why
// not, for /ready.
func (c *Client) Ready() error {
	s := c.src.Load()
	switch {
	case s == nil:
		return fmt.Errorf("no certificate yet from the control plane at %s%s", c.o.Address, c.lastError())
	case s.Expired():
		return fmt.Errorf("the certificate for %s expired at %s and could not be renewed%s; mTLS is off", s.ID(), s.NotAfter().UTC().Format(time.RFC3339), c.lastError())
	}
	return nil
}

func (c *Client) lastError() string {
	if p := c.lastErr.Load(); p != nil && *p != "" {
		return ": " + *p
	}
	return ""
}

// Obtain gets the first certificate, retrying while the control plane is
// unreachable. An answer that a retry cannot change (a refused, expired or
// replayed token) is returned at once.
func (c *Client) Obtain(ctx context.Context) (*tlsid.Source, error) {
	for attempt := 0; ; attempt++ {
		src, err := c.issue(ctx, true)
		if err == nil {
			return src, nil
		}
		if permanent(err) {
			return nil, err
		}
		d := c.backoff(attempt)
		c.log.Warn("cannot get a certificate from the control plane yet; retrying", "address", c.o.Address, "in", d.Round(time.Millisecond).String(), "error", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("renew: giving up getting a certificate: %w (last error: %v)", ctx.Err(), err)
		case <-c.o.After(d):
		}
	}
}

// RenewSoon asks Run to renew within a few seconds: the control plane
// announced a new issuer, or the trust anchors no longer verify the current
// certificate.
func (c *Client) RenewSoon() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run renews the certificate until ctx ends. Obtain must have succeeded.
func (c *Client) Run(ctx context.Context) {
	attempt := 0
	expired := false // OnExpire was called for the current certificate
	var wait time.Duration
	for {
		src := c.src.Load()
		if attempt == 0 {
			wait = c.renewIn(src)
		}
		if !expired {
			// Wake at expiry too, to report it at once.
			wait = min(wait, max(src.NotAfter().Sub(c.o.Now())+time.Millisecond, 0))
		}
		kicked := false
		select {
		case <-ctx.Done():
			return
		case <-c.o.After(wait):
		case <-c.kick:
			kicked = true
		}
		if kicked {
			// Spread a mesh-wide re-issue over a few seconds.
			select {
			case <-ctx.Done():
				return
			case <-c.o.After(c.jitter(5 * time.Second)):
			}
		} else if src.Expired() && !expired {
			expired = true
			c.log.Error("the proxy's certificate has expired without renewal; mTLS traffic stops until a renewal succeeds", "identity", src.ID().String(), "expired_at", src.NotAfter().UTC().Format(time.RFC3339), "error", c.lastError())
			if c.o.OnExpire != nil {
				c.o.OnExpire()
			}
		}
		_, err := c.issue(ctx, src.Expired())
		if err == nil {
			attempt, expired = 0, false
			continue
		}
		if ctx.Err() != nil {
			return
		}
		wait = c.backoff(attempt)
		attempt++
		if src.Expired() {
			c.log.Error("the proxy's certificate has expired and cannot be renewed; mTLS traffic is refused until it is", "identity", src.ID().String(), "expired_at", src.NotAfter().UTC().Format(time.RFC3339), "retry_in", wait.Round(time.Millisecond).String(), "error", err)
		} else {
			c.log.Warn("certificate renewal failed; retrying", "identity", src.ID().String(), "expires_at", src.NotAfter().UTC().Format(time.RFC3339), "retry_in", wait.Round(time.Millisecond).String(), "error", err)
		}
	}
}

// renewIn is the time until src should be renewed: at RenewFraction of its
// lifetime, ±5% of the lifetime.
func (c *Client) renewIn(src *tlsid.Source) time.Duration {
	leaf := src.Certificate().Leaf
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	frac := RenewFraction - 0.05 + 0.1*c.float()
	d := leaf.NotBefore.Add(time.Duration(float64(life) * frac)).Sub(c.o.Now())
	return max(d, 0)
}

// backoff is the wait before retry number attempt: exponential from 1s up
// to a minute, with full jitter in its upper half.
func (c *Client) backoff(attempt int) time.Duration {
	d := maxBackoff
	if attempt < 6 {
		d = min(minBackoff<<attempt, maxBackoff)
	}
	return d/2 + c.jitter(d/2)
}

func (c *Client) jitter(d time.Duration) time.Duration {
	return time.Duration(c.float() * float64(d))
}

func (c *Client) float() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rnd.Float64()
}

// issue requests a certificate. With useProof it presents the proof of
// identity (first issuance, or after expiry); otherwise the current
// certificate on the mTLS connection is the proof.
func (c *Client) issue(ctx context.Context, useProof bool) (*tlsid.Source, error) {
	src, err := c.doIssue(ctx, useProof)
	if err != nil {
		c.renewals.WithLabelValues("failure").Inc()
		msg := err.Error()
		c.lastErr.Store(&msg)
		return nil, err
	}
	c.renewals.WithLabelValues("success").Inc()
	empty := ""
	c.lastErr.Store(&empty)
	return src, nil
}

func (c *Client) doIssue(ctx context.Context, useProof bool) (*tlsid.Source, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand())
	if err != nil {
		return nil, fmt.Errorf("renew: generating the proxy's key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(crand(), &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, fmt.Errorf("renew: creating the certificate request: %w", err)
	}
	req := &identityv1.IssueRequest{Csr: csr}
	if useProof {
		if err := c.setProof(req); err != nil {
			return nil, err
		}
	}
	conn, err := grpc.NewClient(c.o.Address, append([]grpc.DialOption{grpc.WithTransportCredentials(c.Credentials())}, c.o.Dial...)...)
	if err != nil {
		return nil, fmt.Errorf("renew: control plane address %s: %w", c.o.Address, err)
	}
	defer conn.Close()
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := identityv1.NewIdentityClient(conn).Issue(rctx, req)
	if err != nil {
		return nil, fmt.Errorf("renew: certificate request to %s: %w", c.o.Address, err)
	}
	return c.install(resp, key)
}

// setProof puts the proof of identity into req.
func (c *Client) setProof(req *identityv1.IssueRequest) error {
	if c.o.TokenFile != "" {
		b, err := os.ReadFile(c.o.TokenFile)
		if err != nil {
			return fmt.Errorf("renew: reading the ServiceAccount token %s: %w", c.o.TokenFile, err)
		}
		req.Proof = &identityv1.IssueRequest_KubernetesToken{KubernetesToken: strings.TrimSpace(string(b))}
		return nil
	}
	req.Proof = &identityv1.IssueRequest_JoinToken{JoinToken: c.o.JoinToken}
	return nil
}

// install checks the response and makes it the proxy's identity.
func (c *Client) install(resp *identityv1.IssueResponse, key crypto.Signer) (*tlsid.Source, error) {
	anchors := make([]*x509.Certificate, 0, len(resp.GetTrustAnchors()))
	for i, der := range resp.GetTrustAnchors() {
		a, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("renew: trust anchor %d from the control plane: %w", i+1, err)
		}
		anchors = append(anchors, a)
	}
	cur := c.src.Load()
	if cur == nil {
		src, err := tlsid.FromIssued(resp.GetCertChain(), key, anchors, tlsid.WithClock(c.o.Now))
		if err != nil {
			return nil, fmt.Errorf("renew: the control plane's answer: %w", err)
		}
		c.src.Store(src)
		c.expiry.Set(float64(src.NotAfter().Unix()))
		c.log.Info("certificate obtained", "identity", src.ID().String(), "expires_at", src.NotAfter().UTC().Format(time.RFC3339))
		return src, nil
	}
	if _, err := cur.SetAnchors(anchors); err != nil {
		return nil, fmt.Errorf("renew: the control plane's trust anchors: %w", err)
	}
	if err := cur.SetIssued(resp.GetCertChain(), key); err != nil {
		return nil, fmt.Errorf("renew: the control plane's answer: %w", err)
	}
	c.expiry.Set(float64(cur.NotAfter().Unix()))
	c.log.Info("certificate renewed", "identity", cur.ID().String(), "expires_at", cur.NotAfter().UTC().Format(time.RFC3339))
	return cur, nil
}

// SetAnchors applies trust anchors pushed by the control plane and renews
// soon when they no longer verify the proxy's own certificate.
func (c *Client) SetAnchors(ders [][]byte) error {
	src := c.src.Load()
	if src == nil || len(ders) == 0 {
		return nil
	}
	anchors := make([]*x509.Certificate, 0, len(ders))
	for i, der := range ders {
		a, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("renew: trust anchor %d from the control plane: %w", i+1, err)
		}
		anchors = append(anchors, a)
	}
	ok, err := src.SetAnchors(anchors)
	if err != nil {
		return err
	}
	if !ok {
		c.log.Warn("the mesh's trust anchors no longer verify this proxy's certificate; renewing now")
		c.RenewSoon()
	}
	return nil
}

// IssuerChanged renews soon when fingerprint (hex SHA-256 of the control
// plane's current issuer) is not the issuer of the proxy's certificate.
func (c *Client) IssuerChanged(fingerprint string) {
	src := c.src.Load()
	if src == nil || fingerprint == "" {
		return
	}
	if iss := src.Issuer(); iss != nil && fingerprintOf(iss) != fingerprint {
		c.log.Info("the control plane has a new issuer; renewing the certificate")
		c.RenewSoon()
	}
}

// Credentials returns the transport credentials for the control plane:
// TLS 1.3, the server must prove the control plane's SPIFFE ID with a chain
// to the current anchors, and the proxy presents its certificate once it
// has one.
func (c *Client) Credentials() credentials.TransportCredentials {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			src := c.src.Load()
			if src == nil || src.Expired() {
				return &tls.Certificate{}, nil // none: a proof travels in the request
			}
			return src.Certificate(), nil
		},
		// Server names are not used in the mesh: VerifyConnection checks the
		// control plane's SPIFFE ID against the current anchors instead.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("renew: the control plane presented no certificate")
			}
			anchors := c.o.Anchors
			if src := c.src.Load(); src != nil {
				anchors = src.Anchors()
			}
			set := x509bundle.NewSet(x509bundle.FromX509Authorities(c.td, anchors))
			id, _, err := x509svid.Verify(cs.PeerCertificates, set, x509svid.WithTime(c.o.Now()))
			if err != nil {
				return fmt.Errorf("renew: the control plane's certificate does not verify against the trust anchors: %w; is --trust-bundle the mesh's anchor?", err)
			}
			if id != c.serverID {
				return fmt.Errorf("renew: the server at %s is %s, not the control plane (%s)", c.o.Address, id, c.serverID)
			}
			return nil
		},
	}
	return credentials.NewTLS(cfg)
}

// permanent reports errors a retry cannot fix.
func permanent(err error) bool {
	s, ok := status.FromError(err) // also finds a status wrapped in err
	if !ok {
		return false
	}
	switch s.Code() {
	case codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument, codes.FailedPrecondition:
		return true
	}
	return false
}
