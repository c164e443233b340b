// Package admin serves the sidecar proxy's admin HTTP endpoints on their own
// port, separate from the traffic listeners:
//
//	GET  /metrics      Prometheus metrics (text or OpenMetrics)
//	GET  /live         liveness: 200 "live" while the process serves HTTP
//	GET  /ready        readiness: 200 "ready", or 503 with the reason
//	GET  /config_dump  JSON of the running configuration (loopback only)
//	POST /shutdown     drain and exit (loopback only)
//
// /metrics, /live and /ready answer any client, because Prometheus and the
// kubelet reach them over the pod network. /config_dump and /shutdown answer
// only clients whose TCP peer address is loopback (127.0.0.0/8 or ::1); the
// check uses the connection's address only, never forwarding headers. Anyone
// else gets 403 and a hint to use `kubectl port-forward` or to run the
// request on the host. For this check to mean anything, the admin port must
// not be reachable through the proxy's own traffic listeners, which dial
// local destinations from loopback.
package admin
