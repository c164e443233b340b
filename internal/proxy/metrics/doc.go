// Package metrics holds the sidecar proxy's golden metrics: request and
// response counts, response latency and proxy overhead for HTTP and gRPC
// traffic, connection counts and bytes for all TCP traffic, and a few
// operational series (running config version, TLS rejections, protocol
// detection outcomes), and the inbound authorization decisions.
//
// Every metric lives on the private [prometheus.Registry] held by a
// [Metrics] value, never on the global default registry, so that several
// proxies (or tests) in one process do not interfere. The registry also
// carries the Go runtime and process collectors; the admin server exposes it
// on /metrics.
//
// Label values that come from traffic (service, peer, route, and defensively
// direction, protocol and reason) pass through a per-label-name limiter: once
// a label name has seen [Options.MaxLabelValues] distinct values, further
// new values are recorded as "overflow" and weft_proxy_label_overflow_total
// is incremented, so a misbehaving client cannot blow up the number of
// series. gRPC status codes outside the standard 0..16 are recorded as "2"
// (UNKNOWN), as the gRPC specification asks clients to do.
//
// [Metrics.RequestDone] is on the per-request hot path: it looks up cached
// child metrics by the raw label values and does not allocate once a label
// combination has been seen.
package metrics
