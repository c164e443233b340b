package httpproxy

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/backend"
	"github.com/weft-mesh/weft/internal/proxy/balance"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/h1guard"
	"github.com/weft-mesh/weft/internal/proxy/metrics"
)

// Dest is where the requests of one outbound client connection go: a
// service's backend, or, for a destination that is no known service, the
// original destination address as is (passthrough).
type Dest struct {
	Backend *backend.Backend
	Addr    netip.AddrPort
	Client  netip.AddrPort
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
	if reason := h1guard.Reason(r); reason != "" {
		rejectAmbiguous(w, r, reason)
		x.done(r, "", nil)
		return
	}
	stripMeshHeaders(r.Header)
	r, cancel := withGRPCDeadline(r)
	defer cancel()

	var (
		ep     config.Endpoint
		target = h.d.Addr
		limits = defaultLimits
		finish = func(time.Duration, error) {}
	)
	if b := h.d.Backend; b != nil {
		var p *balance.Pick
		var err error
		ep, p, err = b.Pick(b.RequestKey(r, h.d.Client))
		if err != nil {
			proxyError(w, r, x.grpc, http.StatusServiceUnavailable, grpcUnavailable, err.Error())
			x.done(r, "", err)
			return
		}
		finish = p.Done
		target = ep.Dial()
		limits = PoolLimits(b.Service.Pool)
		if ep.Meshed() {
			x.labels.Peer = ep.Identity.String()
		}
	}

	var err error
	if r.Method == http.MethodConnect {
		err = h.connect(r.Context(), w, r, ep, target)
	} else {
		rt, rewrite := h.transport(r, ep, target, limits)
		err = x.forward(w, r, target.String(), rt, rewrite)
	}
	var rtt time.Duration
	if !x.tt.start.IsZero() {
		rtt = x.tt.header.Sub(x.tt.start)
	}
	finish(rtt, err)
	x.done(r, target.String(), err)
}

// defaultLimits pool passthrough destinations, which have no service config.
var defaultLimits = PoolLimits{MaxConnections: config.DefaultMaxConnections, MaxIdle: config.DefaultMaxIdle, IdleTimeout: config.DefaultPoolIdleTimeout}

// transport chooses how a request reaches its endpoint: meshed endpoints over
// mTLS (multiplexed HTTP/2, or HTTP/1.1 for upgrades), others in the
// protocol the client spoke.
func (h *outbound) transport(r *http.Request, ep config.Endpoint, target netip.AddrPort, limits PoolLimits) (http.RoundTripper, func(*http.Request)) {
	if !ep.Meshed() {
		if r.ProtoMajor == 2 {
			return h.env.Up.H2C(), nil
		}
		return h.env.Up.Plain(limits), nil
	}
	h2, h1 := h.env.Up.Peer(PeerKey{Addr: target, ID: ep.Identity})
	port := strconv.Itoa(int(ep.Address.Port()))
	if isUpgrade(r) {
		return h1, func(out *http.Request) { out.Header.Set(HeaderDstPort, port) }
	}
	orig := ""
	if r.ProtoMajor == 1 {
		orig = r.Proto
	}
	return h2, func(out *http.Request) {
		out.Header.Set(HeaderDstPort, port)
		if orig != "" {
			out.Header.Set(HeaderOrigProto, orig)
		}
	}
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
