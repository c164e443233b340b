// Package balance chooses which endpoint of a service the weft proxy sends a
// request or connection to.
//
// A Balancer holds the current endpoint set of one service (replaced with
// Update whenever the config changes) and hands out a Pick per request. The
// caller dials Pick.Addr and calls Pick.Done exactly once when the request or
// connection is over, with its latency and error; that feedback drives the
// load-aware policies.
//
// Policies:
//
//   - P2CPeakEWMA ("p2c-ewma", the default): power of two choices over a
//     peak-sensitive latency estimate, like Linkerd and Finagle. Two distinct
//     endpoints are drawn at random (weighted by Weight) and the one with the
//     lower cost = latency estimate * (in-flight + 1) / weight wins. The
//     estimate jumps up at once to any sample above it and otherwise decays
//     exponentially towards zero with time constant Options.DecayTime, so an
//     endpoint that got slow is avoided at once and is tried again after a
//     while (how long grows with the logarithm of how much slower it was).
//     Failures count as a latency of at least Options.FailurePenalty, so an
//     endpoint that fails fast does not attract traffic.
//   - RoundRobin ("round-robin"): smooth weighted round robin in the order of
//     nginx, precomputed per endpoint set so a pick is one atomic add.
//   - LeastRequest ("least-request"): two random choices (weighted), the one
//     with fewer in-flight requests per unit of weight wins, like Envoy.
//   - RingHash ("ring-hash"): consistent hashing of Key.HashKey on a ring of
//     virtual nodes proportional to weight. Removing one of N endpoints moves
//     only the keys it owned (about 1/N). Requests without a hash key fall
//     back to P2CPeakEWMA. What the key is made of (header, cookie, source
//     address) is the caller's decision.
//
// Endpoints are identified by Addr. Across an Update, an endpoint that stays
// keeps its latency estimate and in-flight count; a Pick on an endpoint that
// was removed can still be completed with Done. Zone is carried for the
// admin dump only; zone-aware routing is not done here.
//
// Pick takes no lock: the endpoint set is an immutable snapshot behind an
// atomic pointer and per-endpoint state is atomic. The only allocation on the
// Pick path is the *Pick itself.
package balance
