// Package discovery is the control plane's end of the config stream: the
// gRPC Discovery service that keeps every weft-proxy's ProxyConfig current.
//
// State is kept apart from protocol, as in Envoy's go-control-plane. A Cache
// says WHAT each proxy should run: one snapshot (a whole ProxyConfig) per node
// identity (the proxy's SPIFFE ID), versioned by a hash of its content, so
// setting an identical config is a no-op. A Server says HOW it gets there: it
// serves weft.v1.Discovery/Stream, sends a proxy the snapshot for its identity
// as soon as one exists, pushes later versions (coalescing bursts of Sets),
// and records what each proxy acknowledged or rejected for Cache.Status.
//
// The protocol on one stream:
//
//   - The proxy's first DiscoveryRequest carries its node; without
//     node.identity the stream ends with codes.InvalidArgument.
//   - Each DiscoveryResponse carries a version and a fresh nonce. The proxy
//     answers with the nonce: an ACK, or a NACK when error_detail is set. Only
//     the answer to the latest nonce counts; older ones are stale and ignored.
//   - A rejected version is never resent: the proxy keeps its last good
//     config until the cache holds a new version.
//   - A snapshot that fails Options.Validate is never sent at all.
//
// Per stream the server holds at most one pending notification and always
// sends the cache's latest snapshot, so a slow proxy never makes it queue.
// Streams last as long as the proxy stays connected: stop the grpc.Server
// with Stop (GracefulStop waits for every proxy to hang up).
package discovery
