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
//   - Updates are incremental when they can be, as in Envoy's delta xDS:
//     the first response of a stream is the whole config; later ones carry
//     the services added or changed (whole Service messages) and the names
//     of those removed since the version the proxy last acknowledged on the
//     stream (base_version), with every field but services in config, and
//     the version of the whole resulting config as always. A response is
//     whole instead when the proxy's node does not set supports_incremental
//     (a proxy older than incremental updates), when the proxy has
//     acknowledged nothing yet on the stream, has not answered the previous
//     response or asked for a full config (full_resync, answered at once,
//     without debounce), when the new config's services are not sorted by
//     name, or when the incremental form would not be smaller. A NACK
//     leaves the base at the last acknowledged version. Per stream the
//     server keeps the snapshot last acknowledged (for as long as the
//     stream lasts) and the one in flight; services are compared by the
//     SHA-256 of their deterministic encoding, computed once per snapshot.
//
// Per stream the server holds at most one pending notification and always
// sends the cache's latest snapshot, so a slow proxy never makes it queue.
// Streams last as long as the proxy stays connected: stop the grpc.Server
// with Stop (GracefulStop waits for every proxy to hang up).
package discovery
