// Package httpproxy forwards HTTP/1.1, HTTP/2 and gRPC requests for the
// sidecar's outbound and inbound sides.
//
// Outbound, a request from the local workload is balanced over the
// destination service's endpoints. A meshed endpoint is reached over one
// multiplexed HTTP/2 connection with mutual TLS (ALPN weft.h2), whatever the
// client spoke; HTTP/1 requests carry Weft-Orig-Proto so the peer's inbound
// side turns them back into HTTP/1.1 for its application. Upgrade (WebSocket)
// and CONNECT requests cannot ride HTTP/2 streams, so they take a dedicated
// mTLS connection that speaks HTTP/1.1 (ALPN weft.http1).
//
// Inbound, a request from a peer proxy or a plaintext client is forwarded to
// the local application in the protocol the original client spoke.
//
// Errors the proxy itself produces carry a Weft-Proxy-Error header, and gRPC
// calls get a gRPC status instead of an HTTP one; statuses returned by
// applications are passed through untouched.
package httpproxy
