// Package backend joins a configured service to its load balancer: it picks
// an endpoint for a request or connection and keeps balancer state (latency
// estimates, in-flight counts) across config swaps, so a reload neither resets
// what the balancer learnt nor drops requests in flight.
package backend
