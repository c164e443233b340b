package detect

import (
	"bytes"
	"crypto/tls"
	"net"
	"strings"
	"time"
)

// h2Preface is the HTTP/2 client connection preface (RFC 9113, section 3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// maxMethodLen bounds the HTTP/1 method token we wait for. RFC 9110 sets no
// limit; registered methods are far shorter, and a longer run of token
// characters is more likely to be some other text protocol.
const maxMethodLen = 64

// classify inspects the bytes received so far. It returns ok=false if more
// bytes are needed to decide; with ok=true, p is the decision (for TLS only
// the record header has been checked).
func classify(b []byte) (p Protocol, ok bool) {
	if len(b) == 0 {
		return Opaque, false
	}

	// TLS handshake record: content type 22, legacy version 3.0 to 3.4.
	if b[0] == 0x16 {
		if len(b) >= 2 && b[1] != 0x03 || len(b) >= 3 && b[2] > 0x04 {
			return Opaque, true
		}
		if len(b) < 3 {
			return Opaque, false
		}
		return TLS, true
	}

	// HTTP/2 preface. Its first bytes ("PRI ") also form a valid HTTP/1
	// request line prefix, so as long as they match, wait for all of it.
	n := min(len(b), len(h2Preface))
	if string(b[:n]) == h2Preface[:n] {
		if n == len(h2Preface) {
			return HTTP2, true
		}
		return Opaque, false
	}

	// HTTP/1 request line: a method token followed by a space.
	for i, c := range b {
		if c == ' ' && i > 0 {
			return HTTP1, true
		}
		if !isTokenChar(c) || i == maxMethodLen {
			return Opaque, true
		}
	}
	return Opaque, false
}

// isTokenChar reports whether c is a tchar (RFC 9110, section 5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// clientHelloLen walks the TLS records at the start of b (which begins with a
// handshake record header) and reports how many bytes are needed to hold the
// complete first handshake message, the ClientHello. If complete is true,
// b[:need] holds it, or holds all that can usefully be parsed (a malformed
// record sequence ends the walk early). If complete is false, at least need
// bytes must be buffered before calling again.
func clientHelloLen(b []byte) (need int, complete bool) {
	var hdr [4]byte // handshake message header: type, uint24 length
	hdrLen, payload := 0, 0
	off := 0
	for {
		if off+5 > len(b) {
			return off + 5, false
		}
		if b[off] != 0x16 {
			// A non-handshake record before the hello is complete.
			return off, true
		}
		recLen := int(b[off+3])<<8 | int(b[off+4])
		if recLen == 0 || recLen > 16384 {
			return off + 5, true
		}
		end := off + 5 + recLen
		if end > len(b) {
			return end, false
		}
		for i := off + 5; i < end && hdrLen < len(hdr); i++ {
			hdr[hdrLen] = b[i]
			hdrLen++
		}
		payload += recLen
		if hdrLen == len(hdr) {
			msgLen := len(hdr) + (int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3]))
			if payload >= msgLen {
				return end, true
			}
		}
		off = end
	}
}

// parseClientHello extracts SNI and ALPN from the TLS records in hello.
//
// Rather than hand-writing a ClientHello parser (extension walking, GREASE,
// length checks: exactly the kind of code that goes wrong on hostile input),
// it lets crypto/tls do the parsing. The bytes are fed to a tls.Server over a
// read-only fake connection; GetConfigForClient runs right after the hello
// has been parsed, captures the ClientHelloInfo, and aborts the handshake.
// Anything the server tries to write (an alert) is discarded, and nothing
// touches the real connection. Malformed input simply fails the handshake
// before the callback runs, leaving SNI and ALPN empty.
func parseClientHello(hello []byte) Result {
	res := Result{Protocol: TLS}
	var info *tls.ClientHelloInfo
	srv := tls.Server(&helloConn{r: bytes.NewReader(hello)}, &tls.Config{
		GetConfigForClient: func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
			info = chi
			return nil, errHelloCaptured{}
		},
	})
	_ = srv.Handshake() // always fails: errHelloCaptured, or a parse error
	if info != nil {
		res.SNI = info.ServerName
		res.ALPN = info.SupportedProtos
	}
	return res
}

// errHelloCaptured aborts the handshake once the ClientHello has been seen.
type errHelloCaptured struct{}

func (errHelloCaptured) Error() string { return "detect: client hello captured" }

// helloConn is the fake connection parseClientHello hands to crypto/tls:
// reads come from the buffered hello (then EOF), writes are discarded.
type helloConn struct {
	r *bytes.Reader
}

func (c *helloConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *helloConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c *helloConn) Close() error                     { return nil }
func (c *helloConn) LocalAddr() net.Addr              { return helloAddr{} }
func (c *helloConn) RemoteAddr() net.Addr             { return helloAddr{} }
func (c *helloConn) SetDeadline(time.Time) error      { return nil }
func (c *helloConn) SetReadDeadline(time.Time) error  { return nil }
func (c *helloConn) SetWriteDeadline(time.Time) error { return nil }

type helloAddr struct{}

func (helloAddr) Network() string { return "detect" }
func (helloAddr) String() string  { return "client-hello" }
