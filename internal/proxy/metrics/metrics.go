package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// DefaultMaxLabelValues is the per-label-name limit applied when
// Options.MaxLabelValues is zero or negative.
const DefaultMaxLabelValues = 256

// Options configures New.
type Options struct {
	// MaxLabelValues is the number of distinct values recorded per label
	// name (service, peer, route, ...) before new values are recorded as
	// Overflow. Zero or negative means DefaultMaxLabelValues.
	MaxLabelValues int
}

// Labels identify the traffic a request or connection belongs to.
type Labels struct {
	// Direction is "inbound" or "outbound".
	Direction string
	// Service is the destination service (inbound: the local workload).
	Service string
	// Peer is the SPIFFE ID of the remote workload, or "" when the peer
	// presented no mesh identity.
	Peer string
	// Route is the name of the matched route, or "" when none applies.
	Route string
}

// Buckets of the latency histograms, in seconds.
var (
	// responseBuckets span 0.5ms to 30s.
	responseBuckets = []float64{
		0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
		1, 2.5, 5, 10, 30,
	}
	// overheadBuckets span 10µs to 50ms.
	overheadBuckets = []float64{
		0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
		0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	}
)

// Label names.
const (
	lDirection   = "direction"
	lService     = "service"
	lPeer        = "peer"
	lRoute       = "route"
	lProtocol    = "protocol"
	lReason      = "reason"
	lStatusClass = "status_class"
	lGRPCStatus  = "grpc_status"
	lResult      = "result"
	lVersion     = "version"
	lLabel       = "label"
	lMode        = "mode"
)

// Metrics is the proxy's set of golden metrics on its own registry. It is
// safe for concurrent use. Create it with New.
type Metrics struct {
	// Registry holds every metric of this Metrics plus the Go runtime and
	// process collectors. Serve it with promhttp.HandlerFor.
	Registry *prometheus.Registry

	requests        *prometheus.CounterVec
	responses       *prometheus.CounterVec
	responseSeconds *prometheus.HistogramVec
	overheadSeconds *prometheus.HistogramVec
	tcpConns        *prometheus.CounterVec
	tcpOpen         *prometheus.GaugeVec
	tcpRead         *prometheus.CounterVec
	tcpWrite        *prometheus.CounterVec
	configInfo      *prometheus.GaugeVec
	tlsRejected     *prometheus.CounterVec
	configRejected  prometheus.Counter
	detections      *prometheus.CounterVec
	labelOverflow   *prometheus.CounterVec
	policy          *policyMetrics
	authz           *authzMetrics

	direction, service, peer, route, protocol, reason *limiter

	reqMu    sync.RWMutex
	reqCache map[requestKey]*requestChildren

	connMu    sync.RWMutex
	connCache map[connKey]*connChildren

	configMu sync.Mutex
}

// New creates the metrics and registers them, with the Go runtime and
// process collectors, on a new private registry.
func New(opts Options) *Metrics {
	limit := opts.MaxLabelValues
	if limit <= 0 {
		limit = DefaultMaxLabelValues
	}
	reqLabels := []string{lDirection, lService, lPeer, lRoute}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_requests_total",
			Help: "HTTP requests and gRPC calls handled by the proxy, counted when they finish.",
		}, reqLabels),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_responses_total",
			Help: "Responses to HTTP requests and gRPC calls by status class (\"error\" when no response was received) and gRPC status code (\"\" when not gRPC).",
		}, []string{lDirection, lService, lPeer, lRoute, lStatusClass, lGRPCStatus}),
		responseSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "weft_response_duration_seconds",
			Help:    "Time from the start of a request until its response finished, as seen by the proxy.",
			Buckets: responseBuckets,
		}, []string{lDirection, lService, lStatusClass}),
		overheadSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "weft_proxy_overhead_seconds",
			Help:    "Time a request spent inside the proxy, excluding time waiting for the upstream.",
			Buckets: overheadBuckets,
		}, []string{lDirection}),
		tcpConns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_tcp_connections_total",
			Help: "TCP connections opened through the proxy, of any protocol.",
		}, []string{lDirection, lService, lPeer, lProtocol}),
		tcpOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weft_tcp_open_connections",
			Help: "TCP connections currently open through the proxy.",
		}, []string{lDirection, lService, lProtocol}),
		tcpRead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_tcp_read_bytes_total",
			Help: "Bytes read from the downstream side of closed TCP connections.",
		}, []string{lDirection, lService}),
		tcpWrite: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_tcp_write_bytes_total",
			Help: "Bytes written to the downstream side of closed TCP connections.",
		}, []string{lDirection, lService}),
		configInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weft_proxy_config_info",
			Help: "Version of the running proxy configuration; always 1.",
		}, []string{lVersion}),
		configRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weft_proxy_config_rejected_total",
			Help: "Config or certificate updates rejected; the proxy kept its last good one.",
		}),
		tlsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_proxy_tls_rejected_total",
			Help: "TLS handshakes or peers rejected by the proxy, by reason; mode says which mTLS setting refused a plaintext connection.",
		}, []string{lDirection, lReason, lMode}),
		detections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_proxy_protocol_detections_total",
			Help: "Protocol detections on new connections by outcome (detected, timeout or skipped).",
		}, []string{lDirection, lProtocol, lResult}),
		labelOverflow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_proxy_label_overflow_total",
			Help: "Label values recorded as \"overflow\" because their label had reached its limit of distinct values.",
		}, []string{lLabel}),
		reqCache:  make(map[requestKey]*requestChildren),
		connCache: make(map[connKey]*connChildren),
	}
	lim := func(name string) *limiter {
		return newLimiter(limit, m.labelOverflow.WithLabelValues(name))
	}
	m.direction = lim(lDirection)
	m.service = lim(lService)
	m.peer = lim(lPeer)
	m.route = lim(lRoute)
	m.protocol = lim(lProtocol)
	m.reason = lim(lReason)

	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.responses, m.responseSeconds, m.overheadSeconds,
		m.tcpConns, m.tcpOpen, m.tcpRead, m.tcpWrite,
		m.configInfo, m.configRejected, m.tlsRejected, m.detections, m.labelOverflow,
	)
	m.policy = newPolicyMetrics(m.Registry)
	m.authz = newAuthzMetrics(m.Registry, limit, m.labelOverflow)
	return m
}

// classError is the status class of a request without a valid response;
// other classes are status/100.
const classError uint8 = 0

var statusClassNames = [...]string{"error", "1xx", "2xx", "3xx", "4xx", "5xx"}

// statusClass maps an HTTP status to its class; 0 (no response) and values
// outside 100..599 are "error".
func statusClass(status int) uint8 {
	if status < 100 || status > 599 {
		return classError
	}
	return uint8(status / 100)
}

// noGRPC marks a request that is not a gRPC call.
const noGRPC int8 = -1

// grpcUnknown is codes.Unknown.
const grpcUnknown int8 = 2

var grpcStatusNames = [...]string{
	"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
}

// grpcCode parses a grpc-status value. "" is noGRPC; anything but a
// canonical code 0..16 is recorded as Unknown, which bounds the label's
// cardinality whatever the upstream sends.
func grpcCode(s string) int8 {
	switch len(s) {
	case 0:
		return noGRPC
	case 1:
		if s[0] >= '0' && s[0] <= '9' {
			return int8(s[0] - '0')
		}
	case 2:
		if s[0] == '1' && s[1] >= '0' && s[1] <= '6' {
			return int8(10 + s[1] - '0')
		}
	}
	return grpcUnknown
}

func grpcName(c int8) string {
	if c == noGRPC {
		return ""
	}
	return grpcStatusNames[c]
}

// requestKey identifies the child metrics updated by one RequestDone.
type requestKey struct {
	Labels
	class uint8
	grpc  int8
}

type requestChildren struct {
	requests  prometheus.Counter
	responses prometheus.Counter
	duration  prometheus.Observer
	overhead  prometheus.Observer
}

// RequestDone records one finished HTTP request or gRPC call. status is the
// HTTP status sent downstream, or 0 when no response was produced;
// grpcStatus is the grpc-status code ("0".."16"), or "" when the request is
// not gRPC. total is the whole request duration and inProxy the part of it
// spent inside the proxy (excluding the upstream).
//
// It does not allocate once the label combination has been seen.
func (m *Metrics) RequestDone(l Labels, status int, grpcStatus string, total, inProxy time.Duration) {
	k := requestKey{Labels: l, class: statusClass(status), grpc: grpcCode(grpcStatus)}
	m.reqMu.RLock()
	c, ok := m.reqCache[k]
	m.reqMu.RUnlock()
	if !ok {
		c = m.requestChildren(k)
	}
	c.requests.Inc()
	c.responses.Inc()
	c.duration.Observe(seconds(total))
	c.overhead.Observe(seconds(inProxy))
}

// requestChildren is RequestDone's slow path. The cache is keyed by the
// admitted label values, so values that overflow are never cached under
// their own name and keep being counted as overflow.
func (m *Metrics) requestChildren(k requestKey) *requestChildren {
	k.Labels = Labels{
		Direction: m.direction.admit(k.Direction),
		Service:   m.service.admit(k.Service),
		Peer:      m.peer.admit(k.Peer),
		Route:     m.route.admit(k.Route),
	}
	m.reqMu.Lock()
	defer m.reqMu.Unlock()
	if c, ok := m.reqCache[k]; ok {
		return c
	}
	class := statusClassNames[k.class]
	c := &requestChildren{
		requests:  m.requests.WithLabelValues(k.Direction, k.Service, k.Peer, k.Route),
		responses: m.responses.WithLabelValues(k.Direction, k.Service, k.Peer, k.Route, class, grpcName(k.grpc)),
		duration:  m.responseSeconds.WithLabelValues(k.Direction, k.Service, class),
		overhead:  m.overheadSeconds.WithLabelValues(k.Direction),
	}
	m.reqCache[k] = c
	return c
}

func seconds(d time.Duration) float64 {
	if d < 0 {
		return 0
	}
	return d.Seconds()
}

// connKey identifies the child metrics of one connection.
type connKey struct {
	direction, service, peer, protocol string
}

type connChildren struct {
	opened prometheus.Counter
	open   prometheus.Gauge
	read   prometheus.Counter
	write  prometheus.Counter
}

// ConnOpened records a newly opened TCP connection of the given protocol
// ("http1", "http2", "tls", "opaque", ...). l.Route is ignored. The returned
// function must be called when the connection closes, with the bytes read
// from and written to the downstream side; it records the close and the
// bytes, and calls after the first one do nothing.
func (m *Metrics) ConnOpened(l Labels, protocol string) func(readBytes, writeBytes int64) {
	k := connKey{direction: l.Direction, service: l.Service, peer: l.Peer, protocol: protocol}
	m.connMu.RLock()
	c, ok := m.connCache[k]
	m.connMu.RUnlock()
	if !ok {
		c = m.connChildren(k)
	}
	c.opened.Inc()
	c.open.Inc()

	var closed atomic.Bool
	return func(readBytes, writeBytes int64) {
		if !closed.CompareAndSwap(false, true) {
			return
		}
		c.open.Dec()
		if readBytes > 0 {
			c.read.Add(float64(readBytes))
		}
		if writeBytes > 0 {
			c.write.Add(float64(writeBytes))
		}
	}
}

func (m *Metrics) connChildren(k connKey) *connChildren {
	k = connKey{
		direction: m.direction.admit(k.direction),
		service:   m.service.admit(k.service),
		peer:      m.peer.admit(k.peer),
		protocol:  m.protocol.admit(k.protocol),
	}
	m.connMu.Lock()
	defer m.connMu.Unlock()
	if c, ok := m.connCache[k]; ok {
		return c
	}
	c := &connChildren{
		opened: m.tcpConns.WithLabelValues(k.direction, k.service, k.peer, k.protocol),
		open:   m.tcpOpen.WithLabelValues(k.direction, k.service, k.protocol),
		read:   m.tcpRead.WithLabelValues(k.direction, k.service),
		write:  m.tcpWrite.WithLabelValues(k.direction, k.service),
	}
	m.connCache[k] = c
	return c
}

// ConfigInfo sets weft_proxy_config_info{version} to 1 for the given
// version, removing the series of any previous version.
func (m *Metrics) ConfigInfo(version string) {
	version = sanitize(version)
	m.configMu.Lock()
	defer m.configMu.Unlock()
	m.configInfo.Reset()
	m.configInfo.WithLabelValues(version).Set(1)
}

// ConfigRejected counts an invalid config or certificate update that was
// refused while the last good one kept serving.
func (m *Metrics) ConfigRejected() { m.configRejected.Inc() }

// TLSRejected counts a TLS handshake or peer rejected for the given reason
// (a short fixed token such as "untrusted_peer" or "handshake_failed"),
// with mode "". Plaintext refused by an mTLS mode is PlaintextRejected.
func (m *Metrics) TLSRejected(direction, reason string) {
	m.tlsRejected.WithLabelValues(m.direction.admit(direction), m.reason.admit(reason), "").Inc()
}

// Detection results.
const (
	resultDetected = "detected"
	resultTimeout  = "timeout"
	resultSkipped  = "skipped"
)

// DetectResult counts one protocol detection that read from the connection:
// result "timeout" when the client stayed silent until the detection
// timeout, "detected" otherwise. protocol is what the connection was
// treated as ("http1", "http2", "tls", "opaque").
func (m *Metrics) DetectResult(direction, protocol string, timedOut bool) {
	result := resultDetected
	if timedOut {
		result = resultTimeout
	}
	m.detections.WithLabelValues(m.direction.admit(direction), m.protocol.admit(protocol), result).Inc()
}

// DetectSkipped counts a connection on which detection was skipped without
// reading (a port configured or remembered as opaque/server-first); it is
// recorded with protocol "opaque" and result "skipped".
func (m *Metrics) DetectSkipped(direction string) {
	m.detections.WithLabelValues(m.direction.admit(direction), m.protocol.admit("opaque"), resultSkipped).Inc()
}
