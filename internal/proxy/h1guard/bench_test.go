package h1guard_test

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/h1guard"
)

// loopConn is a net.Conn whose Read serves data over and over, at most
// chunk bytes per read, like a client sending an endless keep-alive stream.
type loopConn struct {
	memConn
	data  []byte
	off   int
	chunk int
}

func (l *loopConn) Read(b []byte) (int, error) {
	if len(b) > l.chunk {
		b = b[:l.chunk]
	}
	n := copy(b, l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	return n, nil
}

// benchStream reads b.N copies of req through conn (guarded or not) with a
// 4 KiB buffer, as net/http's server does.
func benchStream(b *testing.B, req string, guard bool) {
	data := bytes.Repeat([]byte(req), 64)
	var c net.Conn = &loopConn{data: data, chunk: 4096}
	if guard {
		c = h1guard.Wrap(c, h1guard.Options{})
	}
	buf := make([]byte, 4096)
	total := int64(b.N) * int64(len(req))
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	b.ResetTimer()
	for total > 0 {
		n, err := c.Read(buf[:min(int64(len(buf)), total)])
		if err != nil && err != io.EOF {
			b.Fatal(err)
		}
		total -= int64(n)
	}
}

const benchGET = "GET /api/v1/items/12345?expand=owner HTTP/1.1\r\n" +
	"Host: items.internal.svc:8080\r\n" +
	"User-Agent: weft-bench/1.0\r\n" +
	"Accept: application/json\r\n" +
	"Accept-Encoding: gzip\r\n" +
	"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl\r\n" +
	"X-Request-Id: 2b7f9c1e-4d5a-4f3b-9a8e-1c2d3e4f5a6b\r\n" +
	"Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n" +
	"\r\n"

// BenchmarkKeepAliveGET reads a keep-alive stream of GET requests through
// the guard.
func BenchmarkKeepAliveGET(b *testing.B) { benchStream(b, benchGET, true) }

// BenchmarkKeepAliveGETUnguarded is the same stream without the guard.
func BenchmarkKeepAliveGETUnguarded(b *testing.B) { benchStream(b, benchGET, false) }

// BenchmarkChunkedPOST reads a keep-alive stream of chunked 16 KiB uploads
// through the guard, mostly body passthrough.
func BenchmarkChunkedPOST(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 4000)
	req := "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
		string(bytes.Repeat(append([]byte("fa0\r\n"), append(body, "\r\n"...)...), 4)) + "0\r\n\r\n"
	benchStream(b, req, true)
}
