package metrics_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/weft-mesh/weft/internal/proxy/metrics"
)

const (
	spiffeA = "spiffe://cluster.local/ns/shop/sa/frontend"
	spiffeB = "spiffe://cluster.local/ns/shop/sa/checkout"
)

func TestRequestDone(t *testing.T) {
	m := metrics.New(metrics.Options{})
	in := metrics.Labels{Direction: "inbound", Service: "cart", Peer: spiffeA, Route: "get-cart"}
	out := metrics.Labels{Direction: "outbound", Service: "payments", Peer: spiffeB, Route: "pay"}

	m.RequestDone(in, 200, "", 3*time.Millisecond, 50*time.Microsecond)
	m.RequestDone(in, 204, "", 7*time.Millisecond, 40*time.Microsecond)
	m.RequestDone(in, 503, "", 2*time.Second, 30*time.Microsecond)
	m.RequestDone(in, 0, "", 0, 20*time.Microsecond)
	m.RequestDone(out, 200, "0", 10*time.Millisecond, 100*time.Microsecond)
	m.RequestDone(out, 200, "14", 20*time.Millisecond, 100*time.Microsecond)

	want := `# HELP weft_requests_total HTTP requests and gRPC calls handled by the proxy, counted when they finish.
# TYPE weft_requests_total counter
weft_requests_total{direction="inbound",peer="spiffe://cluster.local/ns/shop/sa/frontend",route="get-cart",service="cart"} 4
weft_requests_total{direction="outbound",peer="spiffe://cluster.local/ns/shop/sa/checkout",route="pay",service="payments"} 2
# HELP weft_responses_total Responses to HTTP requests and gRPC calls by status class ("error" when no response was received) and gRPC status code ("" when not gRPC).
# TYPE weft_responses_total counter
weft_responses_total{direction="inbound",grpc_status="",peer="spiffe://cluster.local/ns/shop/sa/frontend",route="get-cart",service="cart",status_class="2xx"} 2
weft_responses_total{direction="inbound",grpc_status="",peer="spiffe://cluster.local/ns/shop/sa/frontend",route="get-cart",service="cart",status_class="5xx"} 1
weft_responses_total{direction="inbound",grpc_status="",peer="spiffe://cluster.local/ns/shop/sa/frontend",route="get-cart",service="cart",status_class="error"} 1
weft_responses_total{direction="outbound",grpc_status="0",peer="spiffe://cluster.local/ns/shop/sa/checkout",route="pay",service="payments",status_class="2xx"} 1
weft_responses_total{direction="outbound",grpc_status="14",peer="spiffe://cluster.local/ns/shop/sa/checkout",route="pay",service="payments",status_class="2xx"} 1
`
	if got := gatherText(t, m.Registry, "weft_requests_total", "weft_responses_total"); got != want {
		t.Errorf("gathered:\n%s\nwant:\n%s", got, want)
	}

	// Latency histogram: 2xx inbound saw 3ms and 7ms.
	h := sample(t, m.Registry, "weft_response_duration_seconds",
		map[string]string{"direction": "inbound", "service": "cart", "status_class": "2xx"}).GetHistogram()
	if h.GetSampleCount() != 2 || !approx(h.GetSampleSum(), 0.010) {
		t.Errorf("inbound 2xx duration: count %d sum %g, want 2 and 0.010", h.GetSampleCount(), h.GetSampleSum())
	}
	buckets := h.GetBucket()
	if first, last := buckets[0].GetUpperBound(), buckets[len(buckets)-1].GetUpperBound(); first != 0.0005 || last != 30 {
		t.Errorf("duration buckets span %g..%g, want 0.0005..30", first, last)
	}
	for _, b := range buckets {
		if b.GetUpperBound() == 0.005 && b.GetCumulativeCount() != 1 {
			t.Errorf("bucket le=0.005 has %d, want 1", b.GetCumulativeCount())
		}
	}

	o := sample(t, m.Registry, "weft_proxy_overhead_seconds", map[string]string{"direction": "inbound"}).GetHistogram()
	if o.GetSampleCount() != 4 || !approx(o.GetSampleSum(), 140e-6) {
		t.Errorf("inbound overhead: count %d sum %g, want 4 and 140e-6", o.GetSampleCount(), o.GetSampleSum())
	}
	ob := o.GetBucket()
	if first, last := ob[0].GetUpperBound(), ob[len(ob)-1].GetUpperBound(); first != 0.00001 || last != 0.05 {
		t.Errorf("overhead buckets span %g..%g, want 0.00001..0.05", first, last)
	}
}

func approx(a, b float64) bool {
	d := a - b
	return d < 1e-9 && d > -1e-9
}

func TestStatusClassAndGRPCStatus(t *testing.T) {
	tests := []struct {
		status    int
		grpc      string
		wantClass string
		wantGRPC  string
	}{
		{0, "", "error", ""},
		{101, "", "1xx", ""},
		{200, "", "2xx", ""},
		{302, "", "3xx", ""},
		{404, "", "4xx", ""},
		{599, "", "5xx", ""},
		{600, "", "error", ""},
		{-1, "", "error", ""},
		{200, "0", "2xx", "0"},
		{200, "9", "2xx", "9"},
		{200, "16", "2xx", "16"},
		{200, "17", "2xx", "2"},
		{200, "07", "2xx", "2"},
		{200, "-1", "2xx", "2"},
		{200, "garbage", "2xx", "2"},
		{0, "4", "error", "4"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%q", tt.status, tt.grpc), func(t *testing.T) {
			m := metrics.New(metrics.Options{})
			l := metrics.Labels{Direction: "outbound", Service: "s"}
			m.RequestDone(l, tt.status, tt.grpc, time.Millisecond, time.Microsecond)
			got := value(t, m.Registry, "weft_responses_total", map[string]string{
				"direction": "outbound", "service": "s", "peer": "", "route": "",
				"status_class": tt.wantClass, "grpc_status": tt.wantGRPC,
			})
			if got != 1 {
				t.Errorf("value = %g, want 1", got)
			}
		})
	}
}

func TestLabelOverflow(t *testing.T) {
	m := metrics.New(metrics.Options{MaxLabelValues: 2})
	req := func(service, peer string) {
		m.RequestDone(metrics.Labels{Direction: "inbound", Service: service, Peer: peer, Route: "r"}, 200, "", time.Millisecond, time.Microsecond)
	}
	req("a", "")
	req("b", "") // "" peers are free: service limit reached, peer limit not touched
	req("c", "")
	req("d", spiffeA)
	req("a", spiffeB) // a is known; spiffeA and spiffeB fill the peer limit
	req("c", "")      // overflows again: overflowed values are not cached
	req("e", "spiffe://x/y")

	svc := func(service, peer string) float64 {
		return value(t, m.Registry, "weft_requests_total", map[string]string{
			"direction": "inbound", "service": service, "peer": peer, "route": "r",
		})
	}
	if got := svc("a", ""); got != 1 {
		t.Errorf("a = %g, want 1", got)
	}
	if got := svc("b", ""); got != 1 {
		t.Errorf("b = %g, want 1", got)
	}
	if got := svc(metrics.Overflow, ""); got != 2 {
		t.Errorf("overflow/\"\" = %g, want 2", got)
	}
	if got := svc(metrics.Overflow, spiffeA); got != 1 {
		t.Errorf("overflow/spiffeA = %g, want 1", got)
	}
	if got := svc("a", spiffeB); got != 1 {
		t.Errorf("a/spiffeB = %g, want 1", got)
	}
	if got := svc(metrics.Overflow, metrics.Overflow); got != 1 {
		t.Errorf("overflow/overflow = %g, want 1", got)
	}
	if got := seriesCount(t, m.Registry, "weft_requests_total"); got != 6 {
		t.Errorf("weft_requests_total has %d series, want 6\n%s", got, gatherText(t, m.Registry, "weft_requests_total"))
	}

	want := `# HELP weft_proxy_label_overflow_total Label values recorded as "overflow" because their label had reached its limit of distinct values.
# TYPE weft_proxy_label_overflow_total counter
weft_proxy_label_overflow_total{label="direction"} 0
weft_proxy_label_overflow_total{label="peer"} 1
weft_proxy_label_overflow_total{label="policy"} 0
weft_proxy_label_overflow_total{label="protocol"} 0
weft_proxy_label_overflow_total{label="reason"} 0
weft_proxy_label_overflow_total{label="route"} 0
weft_proxy_label_overflow_total{label="rule"} 0
weft_proxy_label_overflow_total{label="service"} 4
`
	if got := gatherText(t, m.Registry, "weft_proxy_label_overflow_total"); got != want {
		t.Errorf("gathered:\n%s\nwant:\n%s", got, want)
	}

	// The limit is shared by every metric using the label.
	m.ConnOpened(metrics.Labels{Direction: "inbound", Service: "z"}, "opaque")(1, 1)
	if got := value(t, m.Registry, "weft_tcp_connections_total", map[string]string{
		"direction": "inbound", "service": metrics.Overflow, "peer": "", "protocol": "opaque",
	}); got != 1 {
		t.Errorf("tcp overflow = %g, want 1", got)
	}
}

func TestDefaultLimit(t *testing.T) {
	m := metrics.New(metrics.Options{})
	for i := range metrics.DefaultMaxLabelValues + 10 {
		m.RequestDone(metrics.Labels{Direction: "outbound", Service: fmt.Sprintf("svc-%d", i)}, 200, "", time.Millisecond, 0)
	}
	if got := seriesCount(t, m.Registry, "weft_requests_total"); got != metrics.DefaultMaxLabelValues+1 {
		t.Errorf("series = %d, want %d", got, metrics.DefaultMaxLabelValues+1)
	}
	if got := value(t, m.Registry, "weft_proxy_label_overflow_total", map[string]string{"label": "service"}); got != 10 {
		t.Errorf("overflow = %g, want 10", got)
	}
}

func TestHostileLabelValues(t *testing.T) {
	m := metrics.New(metrics.Options{})
	long := strings.Repeat("é", 1000) // 2000 bytes
	// Invalid UTF-8 would make client_golang panic if passed through.
	m.RequestDone(metrics.Labels{Direction: "inbound", Service: "bad\xff\xfe", Peer: long, Route: "\xc3"}, 200, "", 0, 0)
	m.TLSRejected("inbound", "\xff")
	m.DetectResult("inbound", "\xff", false)
	m.ConfigInfo("v\xff")
	m.ConnOpened(metrics.Labels{Direction: "inbound", Service: "\xff"}, "\xff")(0, 0)

	mt := sample(t, m.Registry, "weft_requests_total", map[string]string{
		"direction": "inbound", "service": "bad\uFFFD", "peer": strings.Repeat("é", 512), "route": "\uFFFD",
	})
	if mt == nil {
		t.Fatalf("sanitized series missing:\n%s", gatherText(t, m.Registry, "weft_requests_total"))
	}
}

func TestConnections(t *testing.T) {
	m := metrics.New(metrics.Options{})
	l := metrics.Labels{Direction: "inbound", Service: "db", Peer: spiffeA, Route: "ignored"}
	close1 := m.ConnOpened(l, "opaque")
	close2 := m.ConnOpened(l, "opaque")
	close3 := m.ConnOpened(metrics.Labels{Direction: "inbound", Service: "db", Peer: spiffeB}, "tls")

	open := func(protocol string) float64 {
		return value(t, m.Registry, "weft_tcp_open_connections", map[string]string{"direction": "inbound", "service": "db", "protocol": protocol})
	}
	if got := open("opaque"); got != 2 {
		t.Errorf("open opaque = %g, want 2", got)
	}
	close1(100, 2000)
	close1(100, 2000) // second call is a no-op
	close2(-5, 1)     // negative byte counts are ignored
	close3(1, 0)
	if got := open("opaque"); got != 0 {
		t.Errorf("open opaque after close = %g, want 0", got)
	}
	if got := open("tls"); got != 0 {
		t.Errorf("open tls after close = %g, want 0", got)
	}

	want := `# HELP weft_tcp_connections_total TCP connections opened through the proxy, of any protocol.
# TYPE weft_tcp_connections_total counter
weft_tcp_connections_total{direction="inbound",peer="spiffe://cluster.local/ns/shop/sa/checkout",protocol="tls",service="db"} 1
weft_tcp_connections_total{direction="inbound",peer="spiffe://cluster.local/ns/shop/sa/frontend",protocol="opaque",service="db"} 2
# HELP weft_tcp_read_bytes_total Bytes read from the downstream side of closed TCP connections.
# TYPE weft_tcp_read_bytes_total counter
weft_tcp_read_bytes_total{direction="inbound",service="db"} 101
# HELP weft_tcp_write_bytes_total Bytes written to the downstream side of closed TCP connections.
# TYPE weft_tcp_write_bytes_total counter
weft_tcp_write_bytes_total{direction="inbound",service="db"} 2001
`
	got := gatherText(t, m.Registry, "weft_tcp_connections_total", "weft_tcp_read_bytes_total", "weft_tcp_write_bytes_total")
	if got != want {
		t.Errorf("gathered:\n%s\nwant:\n%s", got, want)
	}
}

func TestConfigInfo(t *testing.T) {
	m := metrics.New(metrics.Options{})
	if n := seriesCount(t, m.Registry, "weft_proxy_config_info"); n != 0 {
		t.Errorf("series before any config = %d, want 0", n)
	}
	m.ConfigInfo("v1")
	m.ConfigInfo("v2")
	want := `# HELP weft_proxy_config_info Version of the running proxy configuration; always 1.
# TYPE weft_proxy_config_info gauge
weft_proxy_config_info{version="v2"} 1
`
	if got := gatherText(t, m.Registry, "weft_proxy_config_info"); got != want {
		t.Errorf("gathered:\n%s\nwant:\n%s", got, want)
	}
}

func TestTLSRejectedAndDetections(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.TLSRejected("inbound", "untrusted_peer")
	m.TLSRejected("inbound", "untrusted_peer")
	m.TLSRejected("outbound", "handshake_failed")
	m.PlaintextRejected(metrics.ModeStrict)
	m.PlaintextRejected(metrics.ModeStrict)
	m.PlaintextRejected(metrics.ModeRequireMTLS)
	m.DetectResult("inbound", "http1", false)
	m.DetectResult("inbound", "http1", false)
	m.DetectResult("inbound", "opaque", true)
	m.DetectSkipped("outbound")

	want := `# HELP weft_proxy_protocol_detections_total Protocol detections on new connections by outcome (detected, timeout or skipped).
# TYPE weft_proxy_protocol_detections_total counter
weft_proxy_protocol_detections_total{direction="inbound",protocol="http1",result="detected"} 2
weft_proxy_protocol_detections_total{direction="inbound",protocol="opaque",result="timeout"} 1
weft_proxy_protocol_detections_total{direction="outbound",protocol="opaque",result="skipped"} 1
# HELP weft_proxy_tls_rejected_total TLS handshakes or peers rejected by the proxy, by reason; mode says which mTLS setting refused a plaintext connection.
# TYPE weft_proxy_tls_rejected_total counter
weft_proxy_tls_rejected_total{direction="inbound",mode="",reason="untrusted_peer"} 2
weft_proxy_tls_rejected_total{direction="inbound",mode="require_mtls",reason="plaintext"} 1
weft_proxy_tls_rejected_total{direction="inbound",mode="strict",reason="plaintext"} 2
weft_proxy_tls_rejected_total{direction="outbound",mode="",reason="handshake_failed"} 1
`
	got := gatherText(t, m.Registry, "weft_proxy_tls_rejected_total", "weft_proxy_protocol_detections_total")
	if got != want {
		t.Errorf("gathered:\n%s\nwant:\n%s", got, want)
	}
}

// recordAll exercises every method so that every family has a series.
func recordAll(m *metrics.Metrics) {
	l := metrics.Labels{Direction: "inbound", Service: "cart", Peer: spiffeA, Route: "r"}
	m.RequestDone(l, 200, "0", time.Millisecond, time.Microsecond)
	m.ConnOpened(l, "http2")(10, 20)
	m.ConfigInfo("v1")
	m.TLSRejected("inbound", "untrusted_peer")
	m.DetectResult("inbound", "http2", false)
	m.AuthzDecision(metrics.AuthzAllow, "default/api-allow", "frontend")
}

func TestLint(t *testing.T) {
	m := metrics.New(metrics.Options{})
	recordAll(m)
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	// promlint.NewWithMetricFamilies(...).Lint() is what
	// testutil.GatherAndLint does.
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestRegistryContents(t *testing.T) {
	a := metrics.New(metrics.Options{})
	b := metrics.New(metrics.Options{}) // would panic on a shared registry
	recordAll(a)
	if n := seriesCount(t, b.Registry, "weft_requests_total"); n != 0 {
		t.Errorf("second Metrics sees %d request series, want 0", n)
	}
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatalf("gather default: %v", err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "weft_") {
			t.Errorf("%s registered on the default registry", mf.GetName())
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "weft_proxy_overhead_seconds", "weft_tcp_open_connections"} {
		if seriesCount(t, a.Registry, name) == 0 {
			t.Errorf("%s missing from the registry", name)
		}
	}
}

func TestConcurrent(t *testing.T) {
	m := metrics.New(metrics.Options{MaxLabelValues: 8})
	const workers, perWorker = 4, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				l := metrics.Labels{Direction: "outbound", Service: fmt.Sprintf("s%d", i%16), Route: "r"}
				m.RequestDone(l, 200, "", time.Millisecond, time.Microsecond)
				m.ConnOpened(l, "http1")(1, 1)
				if i%100 == 0 {
					m.ConfigInfo(fmt.Sprintf("v%d-%d", w, i))
				}
			}
		})
	}
	wg.Wait()

	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() == "weft_requests_total" {
			if len(mf.GetMetric()) != 9 {
				t.Errorf("series = %d, want 8 + overflow", len(mf.GetMetric()))
			}
			for _, s := range mf.GetMetric() {
				total += s.GetCounter().GetValue()
			}
		}
	}
	if total != workers*perWorker {
		t.Errorf("total requests = %g, want %d", total, workers*perWorker)
	}
	if n := seriesCount(t, m.Registry, "weft_proxy_config_info"); n != 1 {
		t.Errorf("config_info series = %d, want 1", n)
	}
}

func TestRequestDoneDoesNotAllocate(t *testing.T) {
	m := metrics.New(metrics.Options{})
	l := metrics.Labels{Direction: "inbound", Service: "cart", Peer: spiffeA, Route: "get-cart"}
	m.RequestDone(l, 200, "0", time.Millisecond, time.Microsecond)
	allocs := testing.AllocsPerRun(1000, func() {
		m.RequestDone(l, 200, "0", time.Millisecond, time.Microsecond)
	})
	if allocs != 0 {
		t.Errorf("RequestDone allocates %g times per call, want 0", allocs)
	}
}

func BenchmarkRequestDone(b *testing.B) {
	m := metrics.New(metrics.Options{})
	labels := []metrics.Labels{
		{Direction: "inbound", Service: "cart", Peer: spiffeA, Route: "get-cart"},
		{Direction: "outbound", Service: "payments", Peer: spiffeB, Route: "pay"},
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.RequestDone(labels[i&1], 200, "", 3*time.Millisecond, 40*time.Microsecond)
		i++
	}
}

func BenchmarkRequestDoneParallel(b *testing.B) {
	m := metrics.New(metrics.Options{})
	l := metrics.Labels{Direction: "inbound", Service: "cart", Peer: spiffeA, Route: "get-cart"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.RequestDone(l, 200, "0", 3*time.Millisecond, 40*time.Microsecond)
		}
	})
}

func BenchmarkConnOpened(b *testing.B) {
	m := metrics.New(metrics.Options{})
	l := metrics.Labels{Direction: "inbound", Service: "db", Peer: spiffeA}
	b.ReportAllocs()
	for b.Loop() {
		m.ConnOpened(l, "opaque")(100, 100)
	}
}
