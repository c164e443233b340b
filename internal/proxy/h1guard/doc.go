// Package h1guard refuses HTTP/1.x requests that a proxy must not forward
// because different HTTP implementations could frame them differently
// (request smuggling), before Go's net/http server gets to parse them.
//
// Go's HTTP/1 server is lenient where a proxy must be strict: it silently
// drops Content-Length when Transfer-Encoding is also present and it folds
// obs-fold continuation lines into the previous header value. It offers no
// hook to see a request head as sent, so the guard sits below it instead:
// [Wrap] wraps each accepted [net.Conn] (typically in a listener handed to
// [net/http.Server.Serve]) and validates every request head in the byte
// stream before the server reads it.
//
// An acceptable request is passed on byte for byte, except that a client-sent
// [RejectHeader] field is removed so that it cannot be forged. Body bytes
// are passed on as they arrive while the guard tracks the Content-Length or
// chunked framing, so that each later request head on a keep-alive or
// pipelined connection is validated too.
//
// A refused request is not dropped silently: the guard hands the server a
// rewritten, body-less head carrying a [RejectHeader] field that names the
// problem plus "Connection: close", and then end of stream. The handler
// therefore sees the refusal in order with the requests before it and answers
// it, typically with 400 Bad Request, or 431 Request Header Fields Too Large
// when the reason is "request header too large"; [Reason] reads the field.
// A malformed chunked body (whose head was already passed on) makes Read fail
// instead, and the server closes the connection.
//
// After a request with an Upgrade header field or the CONNECT method (see
// [Tunnel]) the guard stops validating and passes every later byte through:
// those bytes are tunnel bytes if the upgrade is accepted. The handler must
// therefore either tunnel such a connection or close it after responding;
// it must never serve further requests on it.
//
// The server's [net/http.Server.MaxHeaderBytes] should be at least
// [Options.MaxHeaderBytes] (both default to at least 64 KiB), so that the
// server can parse every head that the guard releases, rewritten ones
// included.
package h1guard
