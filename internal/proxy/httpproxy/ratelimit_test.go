package httpproxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/clocktest"
	"github.com/weft-mesh/weft/internal/proxy/authz"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/metrics"
	"github.com/weft-mesh/weft/internal/proxy/ratelimit"
)

// policyCount reads one series of weft_policy_decisions_total.
func policyCount(t *testing.T, m *metrics.Metrics, want map[string]string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "weft_policy_decisions_total" {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
					continue series
				}
			}
			sum += s.GetCounter().GetValue()
		}
	}
	return sum
}

// TestInboundRateLimit: the inbound handler takes a token per request from
// the port's limiter, keyed by the verified caller (plaintext callers
// together), after authorization; a refused request never reaches the
// application and is answered 429 with Retry-After, or RESOURCE_EXHAUSTED.
func TestInboundRateLimit(t *testing.T) {
	var appHits atomic.Int32
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		appHits.Add(1)
		io.WriteString(w, "ok")
	}))
	defer app.Close()
	appAddr := netip.MustParseAddrPort(app.Listener.Addr().String())

	alice := spiffeid.RequireFromString("spiffe://mesh.test/ns/a/sa/alice")
	bob := spiffeid.RequireFromString("spiffe://mesh.test/ns/b/sa/bob")
	type step struct {
		peer       spiffeid.ID // zero: plaintext
		grpc       bool
		advance    time.Duration
		status     int    // HTTP status
		grpcStatus string // for gRPC requests
		retryAfter string // "" when admitted
	}
	ok := step{status: 200}
	cases := []struct {
		name     string
		cfg      ratelimit.Config
		steps    []step
		limited  map[string]float64 // decision -> count
		appCalls int
	}{
		{
			name: "per identity: each caller its own budget, plaintext callers share one",
			cfg:  ratelimit.Config{PerIdentityRequestsPerSecond: 1, PerIdentityBurst: 1},
			steps: []step{
				{peer: alice, status: 200},
				{peer: alice, status: 429, retryAfter: "1"},
				{peer: bob, status: 200},
				{peer: bob, grpc: true, status: 200, grpcStatus: "8", retryAfter: "1"},
				ok, // plaintext
				{status: 429, retryAfter: "1"},
				{peer: alice, advance: time.Second, status: 200},
			},
			limited:  map[string]float64{"limited_identity": 3, "limited_port": 0},
			appCalls: 4,
		},
		{
			name: "total for the port caps every caller",
			cfg:  ratelimit.Config{RequestsPerSecond: 0.5, Burst: 2, PerIdentityRequestsPerSecond: 10},
			steps: []step{
				{peer: alice, status: 200},
				{peer: bob, status: 200},
				{peer: bob, status: 429, retryAfter: "2"},
				{status: 429, retryAfter: "2"},
				{peer: alice, advance: 1500 * time.Millisecond, status: 429, retryAfter: "1"},
				{peer: alice, advance: 500 * time.Millisecond, status: 200},
			},
			limited:  map[string]float64{"limited_port": 3, "limited_identity": 0},
			appCalls: 3,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			appHits.Store(0)
			clk := clocktest.New()
			cfg := tc.cfg
			cfg.Now = clk.Now
			l, err := ratelimit.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			in := &config.Inbound{
				AppHost: "127.0.0.1",
				Authz:   allowAll(t),
				Ports:   map[uint16]config.InboundPort{appAddr.Port(): {Port: appAddr.Port(), AppPort: appAddr.Port(), Protocol: config.HTTP1, RateLimit: &cfg, Limiter: l}},
			}
			m := metrics.New(metrics.Options{})
			e := &Env{Up: NewUpstreams(func() time.Duration { return time.Second }, nil), Metrics: m, Log: slog.New(slog.DiscardHandler), Buffers: NewBufferPool()}
			for i, s := range tc.steps {
				clk.Advance(s.advance)
				h := e.Inbound(InboundConn{Peer: s.peer, Port: appAddr.Port(), Inbound: in})
				r := httptest.NewRequest("GET", "/x", nil)
				if s.grpc {
					r.ProtoMajor = 2
					r.Header.Set("Content-Type", "application/grpc")
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				res := w.Result()
				wantHTTP := s.status
				if s.grpc && s.grpcStatus != "" {
					wantHTTP = 200
				}
				if res.StatusCode != wantHTTP {
					t.Errorf("step %d (%s): status %d, want %d (%s)", i, s.peer, res.StatusCode, wantHTTP, w.Body.String())
				}
				if got := res.Header.Get("Grpc-Status"); s.grpc && got != s.grpcStatus {
					t.Errorf("step %d: grpc-status %q, want %q", i, got, s.grpcStatus)
				}
				if got := res.Header.Get("Retry-After"); got != s.retryAfter {
					t.Errorf("step %d: Retry-After %q, want %q", i, got, s.retryAfter)
				}
			}
			if got := int(appHits.Load()); got != tc.appCalls {
				t.Errorf("the application saw %d requests, want %d", got, tc.appCalls)
			}
			port := appAddr.Port()
			for decision, want := range tc.limited {
				got := policyCount(t, m, map[string]string{"direction": "inbound", "service": strconv.Itoa(int(port)), "policy": "ratelimit", "decision": decision})
				if got != want {
					t.Errorf("%s counted %v times, want %v", decision, got, want)
				}
			}
		})
	}
}

// TestInboundRateLimitAfterAuthorization: a denied request takes no token.
func TestInboundRateLimitAfterAuthorization(t *testing.T) {
	l, err := ratelimit.New(ratelimit.Config{RequestsPerSecond: 1, Burst: 1, Now: clocktest.New().Now})
	if err != nil {
		t.Fatal(err)
	}
	const port = 8080
	in := &config.Inbound{AppHost: "127.0.0.1", Authz: denyAll(t), Ports: map[uint16]config.InboundPort{port: {Port: port, AppPort: port, Limiter: l}}}
	e := &Env{Metrics: metrics.New(metrics.Options{}), Log: slog.New(slog.DiscardHandler)}
	h := e.Inbound(InboundConn{Port: port, Inbound: in})
	for range 3 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		if w.Code != http.StatusForbidden {
			t.Fatalf("status %d, want 403", w.Code)
		}
	}
	if ok, _, _ := l.Allow(""); !ok {
		t.Error("denied requests took tokens from the rate limit")
	}
}

func TestRetryAfter(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Nanosecond:         "1",
		time.Second:             "1",
		time.Second + 1:         "2",
		2500 * time.Millisecond: "3",
		10 * time.Second:        "10",
	} {
		if got := retryAfter(d); got != want {
			t.Errorf("retryAfter(%v) = %q, want %q", d, got, want)
		}
	}
}

func allowAll(t *testing.T) *authz.Authorizer {
	t.Helper()
	a, err := authz.Compile(nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func denyAll(t *testing.T) *authz.Authorizer {
	t.Helper()
	a, err := authz.Compile(&weftv1.Authorization{DefaultPolicy: authz.DenyAll})
	if err != nil {
		t.Fatal(err)
	}
	return a
}
