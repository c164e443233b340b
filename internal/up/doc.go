// Package up runs the whole mesh on one machine (`weft up`): a certificate
// authority in a data directory, the control plane reading the mesh from
// YAML files there, a demo application of three services (HTTP/1.1, gRPC
// and an opaque TCP protocol) each with its own weft-proxy in explicit mode,
// mTLS between all of them, and a steady trickle of demo traffic. Ctrl-C
// stops every process it started.
package up
