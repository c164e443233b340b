package h1guard_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/h1guard"
)

// guardRead reads all of in through the guard, one byte at a time, and
// returns the output and the error that ended it.
func guardRead(t *testing.T, in string, opt h1guard.Options) (string, error) {
	t.Helper()
	g := h1guard.Wrap(&memConn{data: []byte(in), chunk: 1}, opt)
	out, err := drain(t, g, 1, 3*len(in)+1024)
	return string(out), err
}

func TestPassThroughExact(t *testing.T) {
	for _, in := range []string{
		postCL + get + postChunk + get,
		"GET / HTTP/1.0\n\nGET /x HTTP/1.1\nHost: a\nX: \t v \xff\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 0003 \r\n\r\nabc\r\n\n\rGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\nA;a=b;c=\"d e\"\r\n0123456789\r\n000\r\nX-A: 1\nX-B:2\r\n\n" + get,
		"PUT /u HTTP/1.1\r\nContent-Length: 4\r\nUpgrade: x\r\n\r\nbodyGET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		get + "GET / HTTP/1.1\r\nHost: a\r\n", // partial head at EOF is held back
	} {
		out, err := guardRead(t, in, h1guard.Options{})
		if err != io.EOF {
			t.Errorf("%q: error %v", in, err)
		}
		want := in
		if strings.HasSuffix(in, "Host: a\r\n") {
			want = get
		}
		if out != want {
			t.Errorf("out %q\nwant %q", out, want)
		}
	}
}

func TestForgedRemoved(t *testing.T) {
	in := "GET / HTTP/1.1\r\nWeft-Reject: x\r\nHost: a\r\nweft-reject:\r\n\r\n" + postCL
	out, err := guardRead(t, in, h1guard.Options{})
	if want := "GET / HTTP/1.1\r\nHost: a\r\n\r\n" + postCL; out != want || err != io.EOF {
		t.Errorf("got %q, %v; want %q, EOF", out, err, want)
	}
}

func TestRewrite(t *testing.T) {
	tests := []struct {
		name, in, want string
		opt            h1guard.Options
	}{
		{
			name: "CL and TE",
			in: "POST /p?q HTTP/1.1\r\nHost: a\r\nContent-Length: 5\nWeft-Reject: forged\r\nTransfer-Encoding: chunked\r\nX-B: 1\r\n\r\n" +
				"0\r\n\r\n" + get,
			want: "POST /p?q HTTP/1.1\r\nWeft-Reject: both Transfer-Encoding and Content-Length\r\nConnection: close\r\nHost: a\r\nX-B: 1\r\n\r\n",
		},
		{
			name: "obs-fold after valid request",
			in:   get + "GET /f HTTP/1.1\r\nHost: a\r\nX: a\r\n  b\r\n\tc\r\nY: 2\r\n\r\n",
			want: get + "GET /f HTTP/1.1\r\nWeft-Reject: obs-fold header line (starts with whitespace)\r\nConnection: close\r\nHost: a\r\nX: a\r\nY: 2\r\n\r\n",
		},
		{
			name: "malformed request line",
			in:   "GET / HTTP/1.1 x\r\nHost: a\r\nBad Name: 1\r\n\r\n",
			want: "GET / HTTP/1.1\r\nWeft-Reject: malformed request line\r\nConnection: close\r\nHost: a\r\n\r\n",
		},
		{
			name: "target net/url refuses",
			in:   "GET %zz HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
			want: "GET / HTTP/1.1\r\nWeft-Reject: Content-Length is not a decimal number\r\nConnection: close\r\nHost: a\r\n\r\n",
		},
		{
			name: "too large",
			opt:  h1guard.Options{MaxHeaderBytes: 40},
			in:   "GET /x HTTP/1.1\r\nHost: a\r\nX-Long: 0123456789abcdef\r\n\r\n",
			want: "GET /x HTTP/1.1\r\nWeft-Reject: request header too large\r\nConnection: close\r\nHost: a\r\n\r\n",
		},
		{
			name: "too large request line",
			opt:  h1guard.Options{MaxHeaderBytes: 10},
			in:   "GET /xyzzy HTTP/1.1\r\n\r\n",
			want: "GET / HTTP/1.1\r\nWeft-Reject: request header too large\r\nConnection: close\r\n\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := guardRead(t, tt.in, tt.opt)
			if out != tt.want || err != io.EOF {
				t.Errorf("got %q, %v\nwant %q, EOF", out, err, tt.want)
			}
		})
	}
}

func TestReasons(t *testing.T) {
	const host = "Host: a\r\n"
	tests := []struct{ in, reason string }{
		{"GET / HTTP/2.0\r\n\r\n", "malformed request line"},
		{"GET /\r\n\r\n", "malformed request line"},
		{"G(T / HTTP/1.1\r\n\r\n", "malformed request line"},
		{"GET /\x7f HTTP/1.1\r\n\r\n", "malformed request line"},
		{"GET / HTTP/1.1\r\r\n\r\n", "malformed request line"},
		{"\r\nGET / HTTP/1.1\r\n\r\n", "malformed request line"},
		{"GET / HTTP/1.1\r\n X: 1\r\n\r\n", "obs-fold"},
		{"GET / HTTP/1.1\r\n" + host + "X: a\x00b\r\n\r\n", "CR or NUL"},
		{"GET / HTTP/1.1\r\n" + host + "X\rY: 1\r\n\r\n", "CR or NUL"},
		{"GET / HTTP/1.1\r\n" + host + "X\r\n\r\n", "header line without colon"},
		{"GET / HTTP/1.1\r\n" + host + ": x\r\n\r\n", "empty header name"},
		{"GET / HTTP/1.1\r\n" + host + "X\t: x\r\n\r\n", "whitespace between header name and colon"},
		{"GET / HTTP/1.1\r\n" + host + "X(Y): x\r\n\r\n", "invalid header name"},
		{"GET / HTTP/1.1\r\n" + host + "X: \x01\r\n\r\n", "invalid character in header value"},
		{"POST / HTTP/1.1\r\n" + host + "Content-Length: +5\r\n\r\n", "Content-Length is not a decimal number"},
		{"POST / HTTP/1.1\r\n" + host + "Content-Length:\r\n\r\n", "Content-Length is not a decimal number"},
		{"POST / HTTP/1.1\r\n" + host + "Content-Length: 1234567890123456789\r\n\r\n", "Content-Length is not a decimal number"},
		{"POST / HTTP/1.1\r\n" + host + "Content-Length: 1\r\ncontent-length: 1\r\n\r\n", "multiple Content-Length headers"},
		{"POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "multiple Transfer-Encoding headers"},
		{"POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, chunked\r\n\r\n", "Transfer-Encoding other than chunked"},
		{"POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: identity\r\n\r\n", "Transfer-Encoding other than chunked"},
		{"POST / HTTP/1.1\r\n" + host + "Tranſfer-Encoding: chunked\r\n\r\n", "invalid header name"},
		{"POST / HTTP/1.0\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding in HTTP/1.0 request"},
	}
	for _, tt := range tests {
		out, err := guardRead(t, tt.in, h1guard.Options{})
		if err != io.EOF {
			t.Errorf("%q: error %v", tt.in, err)
			continue
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(out)))
		if err != nil {
			t.Errorf("%q: rewritten head %q: %v", tt.in, out, err)
			continue
		}
		if got := h1guard.Reason(req); got != tt.reason && !strings.HasPrefix(got, tt.reason) {
			t.Errorf("%q: reason %q; want %q", tt.in, got, tt.reason)
		}
	}
}

func TestChunkedErrors(t *testing.T) {
	const head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	tests := []struct{ body, err string }{
		{"x\r\n", "invalid chunk-size line"},
		{"\r\n", "invalid chunk-size line"},
		{"5\n", "invalid chunk-size line"},
		{"5\r\r\n", "invalid chunk-size line"},
		{"5 x\r\n", "invalid chunk-size line"},
		{"5;a\x00\r\n", "invalid chunk-size line"},
		{"-5\r\n", "invalid chunk-size line"},
		{"10000000000000000\r\n", "invalid chunk-size line"},
		{"5;" + strings.Repeat("e", 5000) + "\r\n", "chunk-size line too long"},
		{"5\r\nhelloX\r\n", "chunk data not followed by CRLF"},
		{"5\r\nhello\n0\r\n\r\n", "chunk data not followed by CRLF"},
		{"0\r\n X: 1\r\n\r\n", "malformed trailer field"},
		{"0\r\nX : 1\r\n\r\n", "malformed trailer field"},
		{"0\r\nX: \x00\r\n\r\n", "malformed trailer field"},
		{"0\r\n\rX\r\n", "malformed trailer field"},
		{"0\r\nX: 1\r\r\n", "malformed trailer field"},
		{"0\r\n" + strings.Repeat("X: 1\r\n", 20000), "trailer section too large"},
	}
	for _, tt := range tests {
		g := h1guard.Wrap(&memConn{data: []byte(head + tt.body + get)}, h1guard.Options{})
		out, err := drain(t, g, 4096, 1000)
		if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "h1guard: ") {
			t.Errorf("%q: error %v; want %q", tt.body, err, tt.err)
		}
		if !bytes.HasPrefix([]byte(head+tt.body), out) {
			t.Errorf("%q: output %q is not a prefix of the input", tt.body, out)
		}
		if _, err2 := g.Read(make([]byte, 1)); err2 != err {
			t.Errorf("%q: next read: %v; want %v", tt.body, err2, err)
		}
	}
}
