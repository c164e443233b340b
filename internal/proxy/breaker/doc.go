// Package breaker protects a service's backend, and the proxy, from
// overload and from failing endpoints: it decides, before a request is
// sent, whether it may be sent at all and to which endpoints not.
//
// Three independent parts, each configured per service:
//
//   - [Limits]: fixed limits that fail fast, like Envoy's circuit breakers.
//     At most MaxRequests requests are in flight to the backend; beyond that
//     up to MaxPending wait, in arrival order, for at most PendingTimeout.
//     A request that finds no room fails at once with an error wrapping
//     [ErrOpen], which the proxy answers with 503 (UNAVAILABLE for gRPC)
//     without contacting the backend.
//   - [Detector]: outlier detection (failure accrual) per endpoint. An
//     endpoint is ejected after ConsecutiveFailures failed requests in a
//     row, or when its success rate over an Interval is far below that of
//     its peers (mean - SuccessRateStdevFactor * stdev, as Envoy does). An
//     ejection lasts BaseEjectionTime, and n times that for the n-th
//     ejection in a row; then the endpoint is on probation and gets one
//     request at a time until one succeeds (back in service) or fails
//     (ejected again, for longer). No more than MaxEjectionPercent of the
//     endpoints, and never all of them, are ejected at once.
//   - [Adaptive]: a concurrency limit that adapts to the latency the backend
//     shows, after Netflix's Gradient2 (see [Adaptive] for the algorithm and
//     how it differs). It is off unless configured.
//
// On the request path of the proxy they are used in this order: Adaptive
// and Limits admit the request (both fail fast), the balancer picks an
// endpoint among those for which [Detector.Available] is true, and when the
// request is over its outcome goes to [Detector.Report] and the functions
// returned on admission.
//
// Nothing here runs a goroutine: success rates are evaluated by the first
// Report after each Interval. The hot paths (admission, release, Available
// and Report of an endpoint in service) do not allocate. Config errors name
// the config field (limits.*, outlier.*, adaptive.*) and the fix.
package breaker
