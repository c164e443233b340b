// Package fault injects faults into a route's requests for resilience
// testing, like Envoy's fault filter and Istio's VirtualService fault
// section: a configured percentage of requests is delayed before being
// forwarded, and a configured percentage is aborted with an HTTP status (or
// a gRPC status for gRPC requests) instead of being forwarded at all.
//
// An [Injector] makes the per-request [Decision] with independent random
// draws for the delay and the abort, so with DelayPercent 10 and AbortPercent
// 5 about 0.5% of requests are both delayed and then aborted. The caller
// applies the decision: [Sleep] for the delay (cut short when the client
// goes away), then the abort, answering gRPC requests with HTTP 200 and a
// grpc-status of Decision.GRPCStatus.
package fault
