package httpproxy

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/backend"
	"github.com/weft-mesh/weft/internal/proxy/balance"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/fault"
	"github.com/weft-mesh/weft/internal/proxy/h1guard"
	"github.com/weft-mesh/weft/internal/proxy/metrics"
	"github.com/weft-mesh/weft/internal/proxy/retry"
	"github.com/weft-mesh/weft/internal/proxy/route"
)

// Dest is where the requests of one outbound client connection go: a
// service's backend, or, for a destination that is no known service, the
// original destination address as is (passthrough).
type Dest struct {
	Backend *backend.Backend
	// Lookup finds the other services a route may send to or mirror to.
	Lookup func(name string) *backend.Backend
	Addr   netip.AddrPort
	Client netip.AddrPort
}

// Outbound returns the handler for requests the local workload sends to d.
func (e *Env) Outbound(d Dest) http.Handler {
	name := "passthrough"
	if d.Backend != nil {
		name = d.Backend.Service.Name
	}
	return &outbound{env: e, d: d, service: name}
}

type outbound struct {
	env     *Env
	d       Dest
	service string
}

func (h *outbound) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{
		env:    h.env,
		start:  time.Now(),
		grpc:   isGRPC(r),
		labels: metrics.Labels{Direction: "outbound", Service: h.service, Route: "default"},
		sw:     &statusWriter{ResponseWriter: w, closeOnFail: h1guard.Tunnel(r)},
	}
	w = x.sw
	defer h.env.trackTunnel(r)()
	if reason := h1guard.Reason(r); reason != "" {
		rejectAmbiguous(w, r, reason)
		x.done(r, "", nil)
		return
	}
	stripMeshHeaders(r.Header)
	r, cancel := withGRPCDeadline(r)
	defer cancel()

	b := h.d.Backend
	if b != nil && h.d.Lookup != nil {
		// Long-lived connections (HTTP/2, gRPC channels) follow config
		// swaps: each request uses the current generation of the service.
		if cur := h.d.Lookup(b.Service.Name); cur != nil {
			b = cur
		}
	}
	t := &serviceTransport{env: h.env, client: h.d.Client, passthrough: h.d.Addr, target: b, x: x}
	if b != nil {
		var ok bool
		if r, ok = h.route(x, w, r, t, b); !ok {
			return
		}
		if rule := t.rule; rule != nil && rule.Policy.RequestTimeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), rule.Policy.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
	}

	var err error
	if r.Method == http.MethodConnect {
		err = h.connect(r.Context(), w, r, t)
	} else {
		err = x.forward(w, r, t.name(), t, t.respHeaders)
	}
	x.done(r, t.upstream, err)
}

// route applies the service's route rules to r: the matching rule's
// filters, rate limit, faults, backend choice and mirrors. It returns false
// when it has answered the request itself.
func (h *outbound) route(x *exchange, w http.ResponseWriter, r *http.Request, t *serviceTransport, parent *backend.Backend) (*http.Request, bool) {
	table := parent.Service.Routes
	if table == nil {
		return r, true
	}
	sel, ok := table.Match(r)
	if !ok {
		return r, true
	}
	x.labels.Route = sel.Rule.Route
	if loc, code := sel.ApplyRequestFilters(r); loc != "" {
		w.Header().Set("Location", loc)
		w.WriteHeader(code)
		x.done(r, "", nil)
		return r, false
	}
	if f := sel.Rule.Filters.ResponseHeaders; f != nil {
		t.respHeaders = append(t.respHeaders, f)
	}
	rule := parent.Rule(config.RuleKey{Route: sel.Rule.Route, Index: sel.Rule.Index})
	t.rule = rule
	if rule != nil && rule.Limiter != nil {
		if ok, after, scope := rule.Limiter.Allow(""); !ok {
			h.env.Metrics.PolicyDecision(x.labels, "ratelimit", "limited_"+scope)
			w.Header().Set("Retry-After", strconv.Itoa(int((after+time.Second-1)/time.Second)))
			proxyError(w, r, x.grpc, http.StatusTooManyRequests, grpcResourceExhausted, "rate limit of route "+sel.Rule.Route+" exceeded")
			x.done(r, "", nil)
			return r, false
		}
	}
	if rule != nil && rule.Fault != nil {
		d := rule.Fault.Decide()
		if d.Delay > 0 {
			h.env.Metrics.PolicyDecision(x.labels, "fault", "delayed")
			if err := fault.Sleep(r.Context(), d.Delay); err != nil {
				upstreamError(w, r, x.grpc, err)
				x.done(r, "", err)
				return r, false
			}
		}
		if d.Abort {
			h.env.Metrics.PolicyDecision(x.labels, "fault", "aborted")
			w.Header().Set(HeaderProxyError, "fault injected by route "+sel.Rule.Route)
			if x.grpc {
				proxyError(w, r, true, 0, d.GRPCStatus, "fault injected by route "+sel.Rule.Route)
			} else {
				w.WriteHeader(d.HTTPStatus)
			}
			x.done(r, "", nil)
			return r, false
		}
	}
	if len(sel.Rule.Backends) > 0 {
		be, ok := sel.PickBackend(rand.Uint64())
		var target *backend.Backend
		if ok {
			target = h.d.Lookup(be.Service)
		}
		if target == nil {
			proxyError(w, r, x.grpc, http.StatusInternalServerError, grpcUnavailable, "route "+sel.Rule.Route+" has no backend to send to")
			x.done(r, "", nil)
			return r, false
		}
		t.target = target
		be.ApplyRequestHeaders(r)
		if f := be.Filters.ResponseHeaders; f != nil {
			t.respHeaders = append(t.respHeaders, f)
		}
	}
	if rule != nil {
		for _, m := range rule.Mirrors {
			before := r
			if r = m.Tee(r); r != before {
				h.env.Metrics.PolicyDecision(x.labels, "mirror", "mirrored")
			}
		}
	}
	return r, true
}

// serviceTransport sends a request to its target service: each try picks an
// endpoint (so a retry can land elsewhere), under the rule's retry policy
// and the service's retry budget.
type serviceTransport struct {
	env         *Env
	x           *exchange
	client      netip.AddrPort
	passthrough netip.AddrPort
	target      *backend.Backend // nil: passthrough
	rule        *backend.Rule
	respHeaders []*route.HeaderModifier
	upstream    string // the last endpoint tried, for the access log
}

func (t *serviceTransport) name() string {
	if t.target == nil {
		return t.passthrough.String()
	}
	return t.target.Service.Name
}

// RoundTrip admits the request under the target service's circuit breaker,
// then sends it.
func (t *serviceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.target == nil || isTunnel(req) {
		return t.send(req)
	}
	done, err := t.target.Admit(req.Context())
	if err != nil {
		t.env.Metrics.PolicyDecision(t.x.labels, "breaker", "rejected")
		return nil, err
	}
	start := time.Now()
	resp, err := t.send(req)
	if err != nil {
		done(time.Since(start), errors.Is(err, context.DeadlineExceeded) || errors.Is(err, retry.ErrPerTryTimeout))
		return nil, err
	}
	rtt := time.Since(start)
	// Only overload answers lower the adaptive limit: an application's
	// 500s say nothing about its capacity.
	overloaded := resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests ||
		grpcStatusOf(resp) == grpcResourceExhausted || grpcStatusOf(resp) == grpcUnavailable
	resp.Body = &onClose{ReadCloser: resp.Body, f: func() { done(rtt, overloaded) }}
	return resp, nil
}

// send runs the tries of a request: one, or several under a retry policy.
func (t *serviceTransport) send(req *http.Request) (*http.Response, error) {
	if t.target == nil || t.rule == nil || t.rule.Policy.Retry == nil || isTunnel(req) {
		if t.rule != nil && t.rule.Policy.BackendTimeout > 0 && !isTunnel(req) {
			return t.tryWithTimeout(req, t.rule.Policy.BackendTimeout)
		}
		return t.try(req)
	}
	resp, res, err := retry.Do(req, *t.rule.Policy.Retry, t.target.Budget(), t.try)
	for range res.Retries {
		t.env.Metrics.PolicyDecision(t.x.labels, "retry", "retried")
	}
	if res.BudgetExhausted {
		t.env.Metrics.PolicyDecision(t.x.labels, "retry", "budget_exhausted")
	}
	return resp, err
}

func (t *serviceTransport) tryWithTimeout(req *http.Request, d time.Duration) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), d)
	resp, err := t.try(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// try sends one attempt to one endpoint.
func (t *serviceTransport) try(req *http.Request) (*http.Response, error) {
	var (
		ep     config.Endpoint
		addr   = t.passthrough
		limits = defaultLimits
		finish = func(time.Duration, error) {}
	)
	if b := t.target; b != nil {
		var p *balance.Pick
		var err error
		ep, p, err = b.Pick(b.RequestKey(req, t.client))
		if err != nil {
			return nil, err
		}
		finish = p.Done
		addr = ep.Dial()
		limits = PoolLimits(b.Service.Pool)
		if ep.Meshed() {
			t.x.labels.Peer = ep.Identity.String()
		}
	}
	t.upstream = addr.String()
	rt := t.env.transport(req, ep, addr, limits)
	req.URL.Scheme = "http"
	req.URL.Host = addr.String()
	start := time.Now()
	t.x.tt.start = start
	resp, err := rt.RoundTrip(req)
	t.x.tt.header = time.Now()
	t.x.tt.err = err
	finish(t.x.tt.header.Sub(start), err)
	if t.target != nil {
		// A gRPC failure is an HTTP 200 whose trailers-only headers carry
		// UNAVAILABLE; it counts as one for outlier detection.
		t.target.Report(ep, err == nil && resp.StatusCode < 500 && grpcStatusOf(resp) != grpcUnavailable)
	}
	return resp, err
}

// onClose runs f once when the body is closed.
type onClose struct {
	io.ReadCloser
	f    func()
	once sync.Once
}

func (c *onClose) Close() error {
	err := c.ReadCloser.Close()
	c.once.Do(c.f)
	return err
}

// isTunnel reports whether r takes over its connection (Upgrade, CONNECT):
// such requests are never retried nor bounded by a backend timeout.
func isTunnel(r *http.Request) bool { return isUpgrade(r) || r.Method == http.MethodConnect }

// cancelOnClose ends a per-try context when the response body is done.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// defaultLimits pool passthrough destinations, which have no service config.
var defaultLimits = PoolLimits{MaxConnections: config.DefaultMaxConnections, MaxIdle: config.DefaultMaxIdle, IdleTimeout: config.DefaultPoolIdleTimeout}

// transport chooses how a request reaches an endpoint: meshed endpoints over
// mTLS (multiplexed HTTP/2, or HTTP/1.1 for upgrades) with the destination
// port and original protocol in headers; others in the protocol the client
// spoke.
func (e *Env) transport(req *http.Request, ep config.Endpoint, target netip.AddrPort, limits PoolLimits) http.RoundTripper {
	if !ep.Meshed() {
		if req.ProtoMajor == 2 {
			return e.Up.H2C()
		}
		return e.Up.Plain(limits)
	}
	h2, h1 := e.Up.Peer(PeerKey{Addr: target, ID: ep.Identity})
	req.Header.Set(HeaderDstPort, strconv.Itoa(int(ep.Address.Port())))
	if isUpgrade(req) {
		return h1
	}
	if req.ProtoMajor == 1 {
		req.Header.Set(HeaderOrigProto, req.Proto)
	}
	return h2
}

// rejectAmbiguous answers a request the HTTP/1 guard refused: it never
// reaches an upstream, and the connection closes after the answer.
func rejectAmbiguous(w http.ResponseWriter, r *http.Request, reason string) {
	status := http.StatusBadRequest
	if strings.Contains(reason, "too large") {
		status = http.StatusRequestHeaderFieldsTooLarge
	}
	w.Header().Set("Connection", "close")
	proxyError(w, r, false, status, 0, "request refused: "+reason)
}

// isNoEndpoints reports whether err means the service had nowhere to send.
func isNoEndpoints(err error) bool { return errors.Is(err, balance.ErrNoEndpoints) }

// MirrorSender returns the function that sends mirrored requests to the
// named service, found through lookup when each copy is sent.
func (e *Env) MirrorSender(lookup func(name string) *backend.Backend, service string) func(ctx context.Context, r *http.Request) (*http.Response, error) {
	return func(ctx context.Context, r *http.Request) (*http.Response, error) {
		target := lookup(service)
		if target == nil {
			return nil, errors.New("mirror service " + service + " is gone from the config")
		}
		x := &exchange{env: e, labels: metrics.Labels{Direction: "outbound", Service: service, Route: "mirror"}}
		t := &serviceTransport{env: e, x: x, target: target}
		return t.try(r.WithContext(ctx))
	}
}

// grpcStatusOf is the gRPC status of a trailers-only response (status in
// the headers), or -1.
func grpcStatusOf(resp *http.Response) int {
	v := resp.Header.Get("Grpc-Status")
	if v == "" {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}
