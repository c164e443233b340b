// Package tcpproxy relays opaque TCP byte streams between two connections,
// the L4 data path of weft's proxy.
//
// Relay copies both directions concurrently, propagates half-close (EOF on
// one side becomes CloseWrite on the other, so request/response protocols
// that signal "end of request" with a FIN, like `nc -N`, keep working), and
// ends on completion, context cancellation or an idle timeout.
//
// # Zero-copy
//
// When both legs are plain *net.TCPConn on Linux, each direction is copied
// with (*net.TCPConn).ReadFrom, which the standard library implements with
// splice(2): bytes move socket -> pipe -> socket inside the kernel and never
// reach user space. To keep that path, callers must pass the *net.TCPConn
// itself, not a wrapper (a wrapper, even one that embeds *net.TCPConn, is a
// different type and takes the buffered path). Any other connection (TLS,
// connections wrapped to replay peeked bytes, ...) is copied through a pooled
// 32 KiB buffer with io.CopyBuffer.
//
// # Idle timeout
//
// Splice reports how many bytes it moved only when it returns, so on the
// splice path the relay cannot count bytes itself. Instead it asks the kernel:
// getsockopt(TCP_INFO) gives, per socket, the milliseconds since data was
// last received (tcpi_last_data_recv) and last sent (tcpi_last_data_sent).
// The relay is idle for the smallest of those four values (two per leg).
// On the buffered path the copy loop timestamps every write instead. A
// single timer in the Relay goroutine checks at the earliest moment the
// timeout could expire, so an active relay costs about one check per idle
// period. See idle.go for why this design was chosen.
package tcpproxy
