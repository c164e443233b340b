// Package up runs the whole mesh on one machine (`weft up`): the control
// plane with its certificate authority in a data directory, reading the
// mesh from YAML files there, proxies that join it with single-use tokens, a demo application of three services (HTTP/1.1, gRPC
// and an opaque TCP protocol) each with its own weft-proxy in explicit mode,
// mTLS between all of them, and a steady trickle of demo traffic. Ctrl-C
// stops every process it started.
package up
