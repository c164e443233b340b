package tlsid_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.uber.org/goleak"

	"github.com/weft-mesh/weft/internal/proxy/tlsid"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const ioTimeout = 5 * time.Second

// echoServer accepts TLS connections on loopback, reports each handshake's
// outcome and echoes data back on successful ones.
type echoServer struct {
	addr    string
	results chan handshakeResult

	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

type handshakeResult struct {
	peer  spiffeid.ID
	proto string
	err   error
}

func startServer(t *testing.T, cfg *tls.Config) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{
		addr:    ln.Addr().String(),
		results: make(chan handshakeResult, 64),
		ln:      ln,
		conns:   map[net.Conn]struct{}{},
	}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Go(func() { s.serve(tls.Server(c, cfg)) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *echoServer) serve(c *tls.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		s.results <- handshakeResult{err: err}
		return
	}
	_ = c.SetDeadline(time.Time{})
	cs := c.ConnectionState()
	id, err := tlsid.PeerID(cs)
	s.results <- handshakeResult{peer: id, proto: cs.NegotiatedProtocol, err: err}
	_, _ = io.Copy(c, c)
}

// next returns the outcome of the next server-side handshake.
func (s *echoServer) next(t *testing.T) handshakeResult {
	t.Helper()
	select {
	case r := <-s.results:
		return r
	case <-time.After(ioTimeout):
		t.Fatal("timed out waiting for a server-side handshake")
		return handshakeResult{}
	}
}

func dial(t *testing.T, addr string, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	d := tls.Dialer{Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c.(*tls.Conn), nil
}

func mustDial(t *testing.T, addr string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	c, err := dial(t, addr, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

// roundTrip writes msg and reads it back from the echo server.
func roundTrip(c net.Conn, msg string) error {
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return errors.New("echo mismatch: got " + string(buf))
	}
	return nil
}

func mustLoad(t *testing.T, f tlsid.Files) *tlsid.Source {
	t.Helper()
	s, err := tlsid.Load(f)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
