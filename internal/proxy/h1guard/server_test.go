package h1guard_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/h1guard"
)

const (
	get       = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
	postCL    = "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
	postChunk = "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Trailer\r\n\r\n" +
		"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t1\r\n\r\n"

	echoGet       = `GET /a cl=0 te=[] trailer="" body=""`
	echoPostCL    = `POST /p cl=5 te=[] trailer="" body="hello"`
	echoPostChunk = `POST /c cl=-1 te=["chunked"] trailer="t1" body="hello world"`
)

// bytewise splits s into one-byte writes.
func bytewise(s string) []string {
	w := make([]string, len(s))
	for i := range s {
		w[i] = s[i : i+1]
	}
	return w
}

func ok(body string) response    { return response{http.StatusOK, body} }
func bad(reason string) response { return response{http.StatusBadRequest, reason} }

func TestServer(t *testing.T) {
	smuggled := "GET /hidden HTTP/1.1\r\nHost: a\r\n\r\n"
	clte := "0\r\n\r\n" + smuggled
	tecl := "5c\r\nGPOST /hidden HTTP/1.1\r\nHost: a\r\nContent-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n"
	bigHead := "GET /big HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 90)+"\r\n", 800) + "\r\n"

	tests := []struct {
		name      string
		opt       h1guard.Options
		writes    []string
		pause     time.Duration // between writes
		want      []response    // status and a substring of the body
		wantClose bool          // the server must close after want
		check     func(t *testing.T, seen []handled)
	}{
		{name: "plain GET", writes: []string{get}, want: []response{ok(echoGet)}},
		{name: "POST with Content-Length", writes: []string{postCL}, want: []response{ok(echoPostCL)}},
		{name: "chunked POST with trailer", writes: []string{postChunk}, want: []response{ok(echoPostChunk)}},
		{
			name:   "pipelined in one write",
			writes: []string{postCL + get},
			want:   []response{ok(echoPostCL), ok(echoGet)},
		},
		{
			name:   "pipelined after chunked body",
			writes: []string{postChunk + get + postCL},
			want:   []response{ok(echoPostChunk), ok(echoGet), ok(echoPostCL)},
		},
		{
			name:   "one-byte writes",
			writes: bytewise(postChunk + postCL + get),
			pause:  100 * time.Microsecond,
			want:   []response{ok(echoPostChunk), ok(echoPostCL), ok(echoGet)},
		},
		{
			name:   "CRLF after POST body is tolerated",
			writes: []string{postCL + "\r\n\n\r" + get},
			want:   []response{ok(echoPostCL), ok(echoGet)},
		},
		{
			name:   "Transfer-Encoding is case-insensitive",
			writes: []string{"POST /c HTTP/1.1\r\nHost: a\r\ntransfer-encoding:  CHUNKED \r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
			want:   []response{ok(`body="abc"`)},
		},
		{
			name:      "CL and TE",
			writes:    []string{"POST /clte HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
			want:      []response{bad("both Transfer-Encoding and Content-Length")},
			wantClose: true,
			check: func(t *testing.T, seen []handled) {
				if len(seen) != 1 || seen[0].path != "/clte" || seen[0].body != "" || seen[0].contentLength != 0 {
					t.Errorf("handler saw %+v; want /clte without body", seen)
				}
			},
		},
		{
			name:      "duplicate equal Content-Length",
			writes:    []string{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"},
			want:      []response{bad("multiple Content-Length")},
			wantClose: true,
		},
		{
			name:      "duplicate different Content-Length",
			writes:    []string{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
			want:      []response{bad("multiple Content-Length")},
			wantClose: true,
		},
		{
			name:      "Content-Length list",
			writes:    []string{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello"},
			want:      []response{bad("Content-Length is not a decimal number")},
			wantClose: true,
		},
		{
			name:      "obs-fold",
			writes:    []string{"GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\r\n  folded\r\n\r\n"},
			want:      []response{bad("obs-fold")},
			wantClose: true,
		},
		{
			name:      "refused Upgrade request is not tunnelled",
			writes:    []string{"GET /up HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nX: 1\r\n\t2\r\n\r\n" + get},
			want:      []response{bad("obs-fold")},
			wantClose: true,
			check:     onlyPath("/up"),
		},
		{
			name:      "TE gzip, chunked",
			writes:    []string{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
			want:      []response{bad("Transfer-Encoding other than chunked")},
			wantClose: true,
		},
		{
			name:      "TE in HTTP/1.0",
			writes:    []string{"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
			want:      []response{bad("Transfer-Encoding in HTTP/1.0")},
			wantClose: true,
		},
		{
			name:      "space before colon",
			writes:    []string{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello"},
			want:      []response{bad("whitespace between header name and colon")},
			wantClose: true,
		},
		{
			name:      "bare CR in header",
			writes:    []string{"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n"},
			want:      []response{bad("CR or NUL")},
			wantClose: true,
		},
		{
			name:      "malformed request line",
			writes:    []string{"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"},
			want:      []response{bad("malformed request line")},
			wantClose: true,
			check: func(t *testing.T, seen []handled) {
				if len(seen) != 1 || seen[0].method != "GET" || seen[0].path != "/" {
					t.Errorf("handler saw %+v; want GET /", seen)
				}
			},
		},
		{
			name:      "oversized head",
			opt:       h1guard.Options{MaxHeaderBytes: 1024},
			writes:    []string{"GET /big HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 2000) + "\r\n\r\n"},
			want:      []response{{http.StatusRequestHeaderFieldsTooLarge, "request header too large"}},
			wantClose: true,
			check: func(t *testing.T, seen []handled) {
				if len(seen) != 1 || seen[0].path != "/big" {
					t.Errorf("handler saw %+v; want /big", seen)
				}
			},
		},
		{
			name:      "oversized head at default limit",
			writes:    []string{bigHead},
			want:      []response{{http.StatusRequestHeaderFieldsTooLarge, "request header too large"}},
			wantClose: true,
		},
		{
			name:   "head just below default limit",
			writes: []string{bigHead[:60<<10] + "\r\n\r\n"},
			want:   []response{ok("GET /big")},
		},
		{
			name:   "forged reject header removed",
			writes: []string{"GET /a HTTP/1.1\r\nHost: a\r\nweft-reject: forged\r\nWeft-Reject: again\r\n\r\n" + get},
			want:   []response{ok(echoGet), ok(echoGet)},
		},
		{
			name:      "forged reject header on refused request",
			writes:    []string{"GET / HTTP/1.1\r\nWeft-Reject: forged\r\nHost: a\r\nContent-Length: x\r\n\r\n"},
			want:      []response{bad("Content-Length is not a decimal number\n")},
			wantClose: true,
		},
		{
			name:      "smuggling CL.TE",
			writes:    []string{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(len(clte)) + "\r\nTransfer-Encoding: chunked\r\n\r\n" + clte},
			want:      []response{bad("both Transfer-Encoding and Content-Length")},
			wantClose: true,
			check:     onlyPath("/"),
		},
		{
			name:      "smuggling TE.CL",
			writes:    []string{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + tecl},
			want:      []response{bad("both Transfer-Encoding and Content-Length")},
			wantClose: true,
			check:     onlyPath("/"),
		},
		{
			name:      "refusal answered in order",
			writes:    []string{get + "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
			want:      []response{ok(echoGet), bad("both Transfer-Encoding and Content-Length")},
			wantClose: true,
			check: func(t *testing.T, seen []handled) {
				if len(seen) != 2 || seen[0].path != "/a" || seen[1].path != "/x" {
					t.Errorf("handler saw %+v; want /a then /x", seen)
				}
			},
		},
		{
			name:      "invalid chunk size",
			writes:    []string{"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n0\r\n\r\n" + smuggled},
			want:      []response{bad("body: h1guard: invalid chunk-size line")},
			wantClose: true,
			check:     onlyPath("/c"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, tt.opt)
			resps, closed := s.exchange(t, tt.writes, tt.pause, len(tt.want), tt.wantClose)
			if len(resps) != len(tt.want) {
				t.Fatalf("got %d responses %+v; want %d", len(resps), resps, len(tt.want))
			}
			for i, want := range tt.want {
				if got := resps[i]; got.status != want.status || !strings.Contains(got.body, want.body) {
					t.Errorf("response %d = %d %q; want %d with %q", i, got.status, got.body, want.status, want.body)
				}
			}
			if tt.wantClose && !closed {
				t.Error("server did not close the connection")
			}
			if tt.check != nil {
				tt.check(t, s.handled())
			}
		})
	}
}

// onlyPath checks that the handler saw exactly one request, for path.
func onlyPath(path string) func(t *testing.T, seen []handled) {
	return func(t *testing.T, seen []handled) {
		t.Helper()
		if len(seen) != 1 || seen[0].path != path {
			t.Errorf("handler saw %+v; want only %s", seen, path)
		}
	}
}

// TestUpgradeTunnel checks that after an Upgrade request the bytes that
// follow, which the guard would refuse as a request, reach the handler's
// hijacked conn unchanged.
func TestUpgradeTunnel(t *testing.T) {
	for _, head := range []string{
		"GET /up HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n",
		"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
	} {
		t.Run(strings.Fields(head)[0], func(t *testing.T) {
			t.Parallel()
			s := startServer(t, h1guard.Options{})
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(ioTimeout))
			if _, err := io.WriteString(c, head); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d; want 101", resp.StatusCode)
			}
			raw := "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n X: fold\r\n\r\n\x00\xff"
			for _, part := range []string{raw[:7], raw[7:]} {
				if _, err := io.WriteString(c, part); err != nil {
					t.Fatal(err)
				}
			}
			echo := make([]byte, len(raw))
			if _, err := io.ReadFull(br, echo); err != nil {
				t.Fatal(err)
			}
			if string(echo) != raw {
				t.Fatalf("echo %q; want %q", echo, raw)
			}
			if seen := s.handled(); len(seen) != 1 {
				t.Errorf("handler saw %+v; want one request", seen)
			}
		})
	}
}
