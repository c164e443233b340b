package tcpproxy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// generous bound for "it ends": never a precision assertion.
const endsWithin = 15 * time.Second

// tcpPair returns both ends of a fresh loopback TCP connection.
func tcpPair(tb testing.TB) (dialed, accepted *net.TCPConn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	type acc struct {
		c   net.Conn
		err error
	}
	ch := make(chan acc, 1)
	go func() {
		c, err := ln.Accept()
		ch <- acc{c, err}
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	r := <-ch
	if r.err != nil {
		d.Close()
		tb.Fatalf("accept: %v", r.err)
	}
	tb.Cleanup(func() { d.Close(); r.c.Close() })
	return d.(*net.TCPConn), r.c.(*net.TCPConn)
}

// wrappedConn stands for a wrapped connection (peek/replay wrappers): not a
// *net.TCPConn, so the relay must take the buffered path. It keeps
// CloseWrite so half-close still propagates.
type wrappedConn struct{ *net.TCPConn }

// testTLSConfigs returns a server config with a fresh self-signed
// certificate for 127.0.0.1 and a client config that trusts exactly it.
func testTLSConfigs(tb testing.TB) (server, client *tls.Config) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "weft tcpproxy test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS13,
	}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	return server, client
}

// legKind selects what connections the relay gets.
type legKind string

const (
	kindSplice   legKind = "tcp-tcp" // both *net.TCPConn: splice path
	kindBuffered legKind = "wrapped" // both wrapped TCP: buffered path
	kindTLSDown  legKind = "tls-tcp" // TLS downstream, plain upstream
	kindTLSBoth  legKind = "tls-tls" // TLS on both legs
)

var allKinds = []legKind{kindSplice, kindBuffered, kindTLSDown, kindTLSBoth}

func (k legKind) wantMode() copyMode {
	if k == kindSplice && spliceSupported {
		return modeSplice
	}
	return modeBuffered
}

type relayOutcome struct {
	res     relayResult
	onBytes [][2]int64
	elapsed time.Duration
}

// harness is client <-> [a] relay [b] <-> upstream.
type harness struct {
	client, upstream net.Conn
	done             chan relayOutcome
}

// halfCloser is implemented by *net.TCPConn and *tls.Conn.
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

func startRelay(t testing.TB, ctx context.Context, kind legKind, opt Options) *harness {
	t.Helper()
	client, a := tcpPair(t)
	b, upstream := tcpPair(t)
	h := &harness{client: client, upstream: upstream, done: make(chan relayOutcome, 1)}
	var ra, rb net.Conn = a, b
	switch kind {
	case kindSplice:
	case kindBuffered:
		ra, rb = wrappedConn{a}, wrappedConn{b}
	case kindTLSDown, kindTLSBoth:
		srv, cli := testTLSConfigs(t)
		h.client = tls.Client(client, cli)
		ra = tls.Server(a, srv)
		if kind == kindTLSBoth {
			rb = tls.Client(b, cli)
			h.upstream = tls.Server(upstream, srv)
		}
	default:
		t.Fatalf("unknown kind %q", kind)
	}
	t.Cleanup(func() { h.client.Close(); h.upstream.Close() })

	var (
		mu    sync.Mutex
		calls [][2]int64
	)
	opt.OnBytes = func(up, down int64) {
		mu.Lock()
		calls = append(calls, [2]int64{up, down})
		mu.Unlock()
	}
	go func() {
		start := time.Now()
		res := relay(ctx, ra, rb, opt)
		el := time.Since(start)
		mu.Lock()
		defer mu.Unlock()
		h.done <- relayOutcome{res: res, onBytes: calls, elapsed: el}
	}()
	return h
}

func (h *harness) wait(t testing.TB) relayOutcome {
	t.Helper()
	select {
	case out := <-h.done:
		return out
	case <-time.After(endsWithin):
		t.Fatalf("relay did not end within %v", endsWithin)
		return relayOutcome{}
	}
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// sendAndReceive writes out then half-closes c, while reading everything c
// receives until EOF.
func sendAndReceive(c net.Conn, out []byte) (got []byte, err error) {
	werr := make(chan error, 1)
	go func() {
		if _, err := c.Write(out); err != nil {
			werr <- err
			return
		}
		werr <- c.(halfCloser).CloseWrite()
	}()
	got, rerr := io.ReadAll(c)
	if err := <-werr; err != nil {
		return got, err
	}
	return got, rerr
}

func TestRelayBothWaysIntact(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			const size = 1 << 20
			toUp, toDown := randomBytes(t, size), randomBytes(t, size)
			h := startRelay(t, context.Background(), kind, Options{})

			type side struct {
				got []byte
				err error
			}
			upc := make(chan side, 1)
			go func() {
				got, err := sendAndReceive(h.upstream, toDown)
				upc <- side{got, err}
			}()
			gotDown, err := sendAndReceive(h.client, toUp)
			if err != nil {
				t.Fatalf("client: %v", err)
			}
			up := <-upc
			if up.err != nil {
				t.Fatalf("upstream: %v", up.err)
			}
			if !bytes.Equal(up.got, toUp) {
				t.Errorf("upstream got %d bytes, not the %d the client sent", len(up.got), len(toUp))
			}
			if !bytes.Equal(gotDown, toDown) {
				t.Errorf("client got %d bytes, not the %d upstream sent", len(gotDown), len(toDown))
			}

			out := h.wait(t)
			if out.res.err != nil {
				t.Errorf("relay error: %v", out.res.err)
			}
			if out.res.aToB != size || out.res.bToA != size {
				t.Errorf("relay counted a->b %d, b->a %d; want %d each", out.res.aToB, out.res.bToA, size)
			}
			if len(out.onBytes) != 1 || out.onBytes[0] != [2]int64{size, size} {
				t.Errorf("OnBytes calls = %v, want exactly one with (%d, %d)", out.onBytes, size, size)
			}
			if out.res.mode != kind.wantMode() {
				t.Errorf("copy mode = %v, want %v", out.res.mode, kind.wantMode())
			}
		})
	}
}

// TestRelayHalfClose is the `nc -N` pattern: the client sends a request and
// half-closes; the server reads to EOF and only then replies.
func TestRelayHalfClose(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			h := startRelay(t, context.Background(), kind, Options{})
			request := []byte("the whole request, terminated by EOF")
			reply := []byte("read 36 bytes, bye")

			upErr := make(chan error, 1)
			go func() {
				got, err := io.ReadAll(h.upstream) // only returns on half-close
				if err != nil {
					upErr <- err
					return
				}
				if !bytes.Equal(got, request) {
					upErr <- errors.New("upstream got " + string(got))
					return
				}
				if _, err := h.upstream.Write(reply); err != nil {
					upErr <- err
					return
				}
				upErr <- h.upstream.Close()
			}()

			got, err := sendAndReceive(h.client, request)
			if err != nil {
				t.Fatalf("client: %v", err)
			}
			if err := <-upErr; err != nil {
				t.Fatalf("upstream: %v", err)
			}
			if !bytes.Equal(got, reply) {
				t.Fatalf("client got %q, want %q", got, reply)
			}
			out := h.wait(t)
			if out.res.err != nil {
				t.Errorf("relay error: %v", out.res.err)
			}
			if out.res.aToB != int64(len(request)) || out.res.bToA != int64(len(reply)) {
				t.Errorf("counts a->b %d b->a %d, want %d %d", out.res.aToB, out.res.bToA, len(request), len(reply))
			}
		})
	}
}

// assertClosedByRelay checks the client side sees the relay's close.
func assertClosedByRelay(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(endsWithin))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil {
		t.Fatalf("client read after relay end = %d, %v; want EOF or error", n, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("client connection still open after relay ended: %v", err)
	}
}

func TestRelayIdleTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			h := startRelay(t, context.Background(), kind, Options{IdleTimeout: idle})
			out := h.wait(t)
			if !errors.Is(out.res.err, ErrIdleTimeout) {
				t.Fatalf("relay error = %v, want ErrIdleTimeout", out.res.err)
			}
			// Lower bound with slack only: the kernel's clock for a
			// splice leg started when the connection was set up.
			if out.elapsed < idle/2 {
				t.Errorf("relay ended after %v, before the %v idle timeout", out.elapsed, idle)
			}
			if len(out.onBytes) != 1 {
				t.Errorf("OnBytes called %d times, want 1", len(out.onBytes))
			}
			assertClosedByRelay(t, h.client)
		})
	}
}

// TestRelayIdleKeptAliveByTraffic checks that a trickle in one direction
// only keeps the relay alive, on both the splice and the buffered path, and
// that it times out once the trickle stops.
func TestRelayIdleKeptAliveByTraffic(t *testing.T) {
	const (
		idle     = time.Second
		interval = 50 * time.Millisecond
		duration = 2 * time.Second
	)
	for _, kind := range []legKind{kindSplice, kindBuffered} {
		for _, dir := range []string{"client->upstream", "upstream->client"} {
			t.Run(string(kind)+"/"+dir, func(t *testing.T) {
				t.Parallel() // mostly sleeping; keeps the suite short
				h := startRelay(t, context.Background(), kind, Options{IdleTimeout: idle})
				src, dst := h.client, h.upstream
				if dir == "upstream->client" {
					src, dst = dst, src
				}
				sent := 0
				buf := make([]byte, 1)
				for start := time.Now(); time.Since(start) < duration; sent++ {
					if _, err := src.Write([]byte{byte(sent)}); err != nil {
						t.Fatalf("write %d: %v", sent, err)
					}
					if _, err := io.ReadFull(dst, buf); err != nil {
						t.Fatalf("read %d: %v", sent, err)
					}
					select {
					case out := <-h.done:
						t.Fatalf("relay ended while traffic was flowing: %v", out.res.err)
					case <-time.After(interval):
					}
				}
				out := h.wait(t)
				if !errors.Is(out.res.err, ErrIdleTimeout) {
					t.Fatalf("relay error = %v, want ErrIdleTimeout", out.res.err)
				}
				total := out.res.aToB + out.res.bToA
				if total != int64(sent) {
					t.Errorf("relay counted %d bytes, want %d", total, sent)
				}
			})
		}
	}
}

func TestRelayContextCancel(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h := startRelay(t, ctx, kind, Options{IdleTimeout: -1})
			// Move a few bytes first so the copy loops are running.
			if _, err := h.client.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(h.upstream, make([]byte, 4)); err != nil {
				t.Fatal(err)
			}
			cancel()
			out := h.wait(t)
			if !errors.Is(out.res.err, context.Canceled) {
				t.Fatalf("relay error = %v, want context.Canceled", out.res.err)
			}
			if out.res.aToB != 4 {
				t.Errorf("a->b = %d, want 4", out.res.aToB)
			}
			assertClosedByRelay(t, h.client)
		})
	}
}

// TestRelayUpstreamReset checks a real error is reported, wrapped, and
// tears the other direction down.
func TestRelayUpstreamReset(t *testing.T) {
	for _, kind := range []legKind{kindSplice, kindBuffered} {
		t.Run(string(kind), func(t *testing.T) {
			h := startRelay(t, context.Background(), kind, Options{})
			up := h.upstream.(*net.TCPConn)
			if err := up.SetLinger(0); err != nil { // Close sends RST
				t.Fatal(err)
			}
			up.Close()
			out := h.wait(t)
			if out.res.err == nil {
				t.Fatal("relay returned no error after upstream reset")
			}
			if !strings.Contains(out.res.err.Error(), "b->a") {
				t.Errorf("error %q does not say which direction failed", out.res.err)
			}
			assertClosedByRelay(t, h.client)
		})
	}
}

// TestRelayWithoutCloseWrite: a conn type without CloseWrite cannot be
// half-closed; the relay still ends when the other direction finishes.
func TestRelayWithoutCloseWrite(t *testing.T) {
	client, a := tcpPair(t)
	b, upstream := tcpPair(t)
	done := make(chan error, 1)
	go func() {
		_, _, err := Relay(context.Background(), struct{ net.Conn }{a}, b, Options{})
		done <- err
	}()
	// a->b: EOF from the client half-closes b, which has CloseWrite.
	client.CloseWrite()
	if _, err := io.ReadAll(upstream); err != nil {
		t.Fatal(err)
	}
	// b->a: the hidden a cannot be half-closed, so the client sees EOF only
	// when the relay, both directions done, closes a.
	upstream.Write([]byte("x"))
	upstream.CloseWrite()
	if got, err := io.ReadAll(client); err != nil || string(got) != "x" {
		t.Fatalf("client got %q, %v", got, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("relay error: %v", err)
		}
	case <-time.After(endsWithin):
		t.Fatal("relay did not end")
	}
}

func BenchmarkRelay(b *testing.B) {
	const chunk = 64 << 10
	for _, kind := range []legKind{kindSplice, kindBuffered} {
		b.Run(string(kind), func(b *testing.B) {
			h := startRelay(b, context.Background(), kind, Options{})
			sink := make(chan error, 1)
			go func() {
				_, err := io.Copy(io.Discard, h.upstream)
				sink <- err
			}()
			buf := make([]byte, chunk)
			b.SetBytes(chunk)
			b.ResetTimer()
			for b.Loop() {
				if _, err := h.client.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			h.client.(halfCloser).CloseWrite()
			if err := <-sink; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			h.upstream.(halfCloser).CloseWrite()
			if out := h.wait(b); out.res.err != nil {
				b.Fatal(out.res.err)
			}
		})
	}
}
