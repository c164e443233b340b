// Package detect identifies the application protocol spoken on a freshly
// accepted or dialed connection so that the sidecar proxy's inbound and
// outbound listeners can pick the right filter chain: HTTP/1.x, HTTP/2 with
// prior knowledge, TLS (with the ClientHello's SNI and ALPN), or opaque TCP.
//
// Detection peeks at the first bytes the client sends, without consuming
// them: [Detector.Detect] returns a [net.Conn] that replays every peeked byte
// before reading from the underlying connection. It decides as soon as the
// bytes seen are conclusive and gives up (reporting [Opaque]) when the client
// stalls for longer than the configured timeout.
//
// Server-first protocols (MySQL, SMTP, ...) send nothing until the server
// speaks, so detection on them can only end by timing out. Ports known to be
// opaque are therefore skipped entirely, and a port on which a client was
// observed to stay silent is remembered for a while so that later connections
// to it do not pay the timeout again.
package detect
