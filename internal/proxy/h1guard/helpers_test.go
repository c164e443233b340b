package h1guard_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weft-mesh/weft/internal/proxy/h1guard"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const ioTimeout = 10 * time.Second

// memConn is an in-memory net.Conn whose Read serves data, at most chunk
// bytes at a time (0: no limit), then io.EOF. Writes are discarded.
type memConn struct {
	data  []byte
	chunk int
	// eofWithData makes the Read that returns the last bytes return
	// io.EOF too.
	eofWithData bool
}

func (m *memConn) Read(b []byte) (int, error) {
	if len(m.data) == 0 {
		return 0, io.EOF
	}
	if m.chunk > 0 && len(b) > m.chunk {
		b = b[:m.chunk]
	}
	n := copy(b, m.data)
	m.data = m.data[n:]
	if len(m.data) == 0 && m.eofWithData {
		return n, io.EOF
	}
	return n, nil
}

func (m *memConn) Write(b []byte) (int, error)        { return len(b), nil }
func (m *memConn) Close() error                       { return nil }
func (m *memConn) LocalAddr() net.Addr                { return memAddr{} }
func (m *memConn) RemoteAddr() net.Addr               { return memAddr{} }
func (m *memConn) SetDeadline(time.Time) error        { return nil }
func (m *memConn) SetReadDeadline(time.Time) error    { return nil }
func (m *memConn) SetWriteDeadline(t time.Time) error { return nil }

type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "mem" }

// drain reads c with reads of at most bufSize bytes until an error and
// returns what it read and that error. It fails the test if c stops making
// progress.
func drain(t testing.TB, c net.Conn, bufSize, maxReads int) ([]byte, error) {
	t.Helper()
	var out []byte
	buf := make([]byte, bufSize)
	for range maxReads {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
	}
	t.Fatalf("no end after %d reads; %d bytes out", maxReads, len(out))
	return nil, nil
}

// guardListener wraps every accepted conn with h1guard.
type guardListener struct {
	net.Listener
	opt h1guard.Options
}

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return h1guard.Wrap(c, l.opt), nil
}

// handled is what the test handler saw of one request.
type handled struct {
	method, path, reason string
	contentLength        int64
	body                 string
}

// testServer is a real http.Server on loopback behind the guard. Its
// handler answers refused requests with 400 (431 for a too large head) and
// the reason, tunnels Upgrade requests by echoing the hijacked conn, and
// otherwise echoes what it got.
type testServer struct {
	addr    string
	mu      sync.Mutex
	seen    []handled
	tunnels sync.WaitGroup
}

func startServer(t *testing.T, opt h1guard.Options) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{addr: ln.Addr().String()}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: ioTimeout,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(guardListener{ln, opt})
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		srv.Shutdown(ctx)
		srv.Close()
		<-served
		s.tunnels.Wait()
	})
	return s
}

func (s *testServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reason := h1guard.Reason(r)
	if h1guard.Tunnel(r) {
		s.record(r, "", "")
		s.tunnel(w)
		return
	}
	body, err := io.ReadAll(r.Body)
	s.record(r, reason, string(body))
	switch {
	case reason != "":
		code := http.StatusBadRequest
		if strings.Contains(reason, "too large") {
			code = http.StatusRequestHeaderFieldsTooLarge
		}
		http.Error(w, reason, code)
	case err != nil:
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
	default:
		fmt.Fprintf(w, "%s %s cl=%d te=%q trailer=%q body=%q",
			r.Method, r.URL.Path, r.ContentLength, r.TransferEncoding, r.Trailer.Get("X-Trailer"), body)
	}
}

// tunnel answers 101 on the hijacked conn and echoes what follows.
func (s *testServer) tunnel(w http.ResponseWriter) {
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.tunnels.Add(1)
	defer s.tunnels.Done()
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	if brw.Flush() != nil {
		return
	}
	io.Copy(c, brw.Reader)
}

func (s *testServer) record(r *http.Request, reason, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, handled{r.Method, r.URL.Path, reason, r.ContentLength, body})
}

func (s *testServer) handled() []handled {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]handled(nil), s.seen...)
}

// response is a status and body read by the test client.
type response struct {
	status int
	body   string
}

// exchange connects to s, sends writes one by one (pausing between them if
// pause) while reading responses, and returns the responses read until the
// server closed the connection or, unless wantClose, n responses arrived.
// closed reports whether the server closed the connection.
func (s *testServer) exchange(t *testing.T, writes []string, pause time.Duration, n int, wantClose bool) (resps []response, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	wrote := make(chan error, 1)
	go func() {
		for _, w := range writes {
			if _, err := io.WriteString(c, w); err != nil {
				wrote <- err
				return
			}
			if pause > 0 {
				time.Sleep(pause)
			}
		}
		wrote <- nil
	}()
	defer func() {
		c.Close()
		<-wrote
	}()
	br := bufio.NewReader(c)
	for wantClose || len(resps) < n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
				return resps, true
			}
			t.Fatalf("after %d responses: %v", len(resps), err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("response %d body: %v", len(resps), err)
		}
		resps = append(resps, response{resp.StatusCode, string(body)})
	}
	return resps, false
}
