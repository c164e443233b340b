// Package health checks the application a weft-proxy runs beside, for a
// proxy that registers its workload with the control plane: a Checker
// probes the application every interval (a TCP connect to each port, or an
// HTTP GET), turns the results into healthy or unhealthy with hysteresis,
// and reports each change through a callback.
//
// The first probe runs as soon as Checker.Run starts and decides the first
// status at once; afterwards FailureThreshold consecutive failures (2 by
// default) make a healthy application unhealthy and SuccessThreshold
// consecutive successes (1) make it healthy again, so one lost connection
// does not take a workload out of its load balancers. Each probe has a
// timeout, at most the interval. The package uses the standard library
// only: it is part of weft-proxy.
package health
