package httpproxy

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/proxy/authz"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/h1guard"
	"github.com/weft-mesh/weft/internal/proxy/metrics"
	"github.com/weft-mesh/weft/internal/proxy/ratelimit"
)

// InboundConn describes the connection inbound requests arrive on.
type InboundConn struct {
	// Peer is the verified identity of the calling proxy; zero for a
	// plaintext client outside the mesh.
	Peer spiffeid.ID
	// Local is this proxy's own identity (for allow-same-namespace); zero
	// without a certificate.
	Local spiffeid.ID
	// Port is the original destination port (transparent mode, or a
	// plaintext connection); 0 when each request names it (explicit mode).
	Port uint16
	// Inbound holds the per-port settings and the application's host.
	Inbound *config.Inbound
	// Current, when set, returns the running config's inbound side:
	// authorization and the ports' mTLS modes follow config swaps through
	// it, also on the long-lived connections from peer proxies, which were
	// accepted under an older config. nil (or a nil result): Inbound.
	Current func() *config.Inbound
	// Expired, when set, reports whether this proxy's own certificate has
	// expired: then requests on mesh connections opened before the expiry
	// are refused too, since the proxy no longer holds a valid identity.
	Expired func() bool
}

// Inbound returns the handler for requests arriving for the local
// application on c.
func (e *Env) Inbound(c InboundConn) http.Handler {
	return &inbound{
		env: e, c: c, peer: c.Peer.String(), appHost: netip.MustParseAddr(c.Inbound.AppHost),
		src: authz.NewIdentity(c.Peer), self: authz.NewIdentity(c.Local),
	}
}

type inbound struct {
	env       *Env
	c         InboundConn
	peer      string
	appHost   netip.Addr
	src, self authz.Identity // taken apart once per connection
}

// current is the inbound config that authorizes a request now.
func (h *inbound) current() *config.Inbound {
	if h.c.Current != nil {
		if in := h.c.Current(); in != nil {
			return in
		}
	}
	return h.c.Inbound
}

func (h *inbound) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{
		env:    h.env,
		start:  time.Now(),
		grpc:   isGRPC(r),
		labels: metrics.Labels{Direction: "inbound", Peer: h.peer, Route: "default"},
		sw:     &statusWriter{ResponseWriter: w, closeOnFail: h1guard.Tunnel(r)},
	}
	w = x.sw
	defer h.env.trackTunnel(r)()
	if reason := h1guard.Reason(r); reason != "" {
		rejectAmbiguous(w, r, reason)
		x.done(r, "", nil)
		return
	}
	meshed := !h.c.Peer.IsZero()
	port := h.c.Port
	var origProto string
	if meshed && h.c.Expired != nil && h.c.Expired() {
		w.Header().Set("Connection", "close")
		proxyError(w, r, x.grpc, http.StatusServiceUnavailable, grpcUnavailable, "this proxy's certificate has expired and could not be renewed; mTLS is off until it is")
		x.done(r, "", nil)
		return
	}
	if meshed {
		origProto = r.Header.Get(HeaderOrigProto)
		if port == 0 {
			p, err := strconv.ParseUint(r.Header.Get(HeaderDstPort), 10, 16)
			if err != nil || p == 0 {
				proxyError(w, r, x.grpc, http.StatusBadRequest, grpcInvalidArgument, "request from peer proxy carries no valid "+HeaderDstPort+" header; upgrade the calling weft-proxy")
				x.done(r, "", nil)
				return
			}
			port = uint16(p)
		}
	}
	stripMeshHeaders(r.Header)
	x.labels.Service = strconv.Itoa(int(port))
	ps := h.c.Inbound.Port(port)
	if ps.Skip {
		proxyError(w, r, x.grpc, http.StatusForbidden, grpcUnavailable, "port "+x.labels.Service+" is skipped by this proxy's inbound configuration")
		x.done(r, "", nil)
		return
	}
	// Authorization and mTLS modes as they are now, not as they were when
	// this connection was accepted.
	cur := h.current()
	if !meshed {
		if refused, by := cur.PlaintextRefused(port); refused {
			// A connection accepted before the port turned strict; new
			// ones are refused when accepted.
			h.env.PlaintextRejected(by)
			h.env.Log.LogAttrs(r.Context(), slog.LevelInfo, "plaintext request refused: the port requires mTLS",
				slog.String("client", r.RemoteAddr), slog.Int("port", int(port)))
			refusePlaintext(w, r)
			x.done(r, "", nil)
			return
		}
	}
	if !h.env.Authorize(r.Context(), cur.Authz, &authz.Request{Port: port, Source: h.src, Self: h.self, HTTP: r}) {
		denyRequest(w, x.grpc)
		x.done(r, "", nil)
		return
	}
	if l := cur.Port(port).Limiter; l != nil && !h.admit(x, w, r, l) {
		return
	}
	r, cancel := withGRPCDeadline(r)
	defer cancel()
	target := netip.AddrPortFrom(h.appHost, ps.AppPort).String()

	var err error
	if r.Method == http.MethodConnect {
		up, derr := h.env.Up.dial(r.Context(), target)
		if err = derr; err == nil {
			err = tunnel(w, r, up, h.env.TCPIdle)
		} else {
			upstreamError(w, r, false, err)
		}
	} else {
		x.tt.rt = h.appTransport(r, ps, origProto)
		err = x.forward(w, r, target, &x.tt, nil)
	}
	x.done(r, target, err)
}

// admit takes a token from the port's rate limit for the caller (its
// SPIFFE ID; every plaintext caller shares the "" bucket). A refused request
// is answered here: 429 with Retry-After, or RESOURCE_EXHAUSTED for gRPC,
// and counted as weft_policy_decisions_total{policy="ratelimit"} with
// decision limited_port or limited_identity (never the identity itself).
func (h *inbound) admit(x *exchange, w http.ResponseWriter, r *http.Request, l *ratelimit.Limiter) bool {
	ok, after, scope := l.Allow(h.peer)
	if ok {
		return true
	}
	decision, msg := "limited_port", "rate limit of port "+x.labels.Service+" exceeded"
	if scope == ratelimit.ScopeIdentity {
		decision, msg = "limited_identity", "rate limit per caller of port "+x.labels.Service+" exceeded"
	}
	h.env.Metrics.PolicyDecision(x.labels, "ratelimit", decision)
	w.Header().Set("Retry-After", retryAfter(after))
	proxyError(w, r, x.grpc, http.StatusTooManyRequests, grpcResourceExhausted, msg)
	x.done(r, "", nil)
	return false
}

// retryAfter is d in whole seconds, rounded up, for a Retry-After header.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// appTransport speaks to the application in the protocol the original
// client spoke, unless the port's protocol is pinned.
func (h *inbound) appTransport(r *http.Request, ps config.InboundPort, origProto string) http.RoundTripper {
	h1 := r.ProtoMajor == 1 || strings.HasPrefix(origProto, "HTTP/1")
	switch ps.Protocol {
	case config.HTTP1:
		h1 = true
	case config.HTTP2, config.GRPC:
		h1 = false
	}
	if h1 {
		return h.env.Up.Plain(appLimits)
	}
	return h.env.Up.H2C()
}

// appLimits pool the connections to the local application.
var appLimits = PoolLimits{MaxConnections: 0, MaxIdle: 64, IdleTimeout: 90 * time.Second}
