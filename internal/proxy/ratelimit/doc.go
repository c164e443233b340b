// Package ratelimit is the weft proxy's local rate limiting of a route
// (outbound) or of an inbound port (at the destination, where the caller's
// identity is verified): it decides, per request (or, on an opaque inbound
// port, per connection), whether one more may pass now or must be refused (the caller answers 429 with a Retry-After header, or
// RESOURCE_EXHAUSTED for gRPC).
//
// A [Limiter] holds a token bucket for the total traffic (optional when
// per-identity limiting is on) and, optionally, one bucket per client identity (the caller's SPIFFE ID; the
// empty identity stands for every unauthenticated client together and has a
// bucket of its own). A request is admitted only when every bucket that
// applies to it has a token, and then takes one from each; a refused request
// takes none.
//
// The limit is local: each proxy instance enforces it on the traffic it sees,
// so N replicas of a sidecar together admit up to N times the configured
// rate. Identity buckets are kept for at most Config.MaxIdentities identities;
// the least recently seen one is forgotten first, and an identity seen again
// after that starts with a full bucket.
package ratelimit
