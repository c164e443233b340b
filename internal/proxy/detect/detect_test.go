package detect

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testPort is a port that is not opaque by default.
const testPort = 8080

// failsafe bounds every Detect call in these tests, so that a detector that
// waits when it should not fails the test with an error instead of hanging.
// It is far longer than anything a passing test waits for.
const failsafe = 30 * time.Second

// tcpPair returns both ends of a loopback TCP connection, closed on cleanup.
func tcpPair(t testing.TB) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	a := <-ch
	if a.err != nil {
		c.Close()
		t.Fatalf("accept: %v", a.err)
	}
	t.Cleanup(func() {
		c.Close()
		a.c.Close()
	})
	return c.(*net.TCPConn), a.c.(*net.TCPConn)
}

// captureClientHello returns the first TLS record a real crypto/tls client
// sends with cfg.
func captureClientHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	c, s := net.Pipe()
	defer c.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tls.Client(c, cfg).Handshake() // fails once s is closed
	}()
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(s, hdr); err != nil {
		t.Fatalf("reading record header: %v", err)
	}
	rec := make([]byte, 5+(int(hdr[3])<<8|int(hdr[4])))
	copy(rec, hdr)
	if _, err := io.ReadFull(s, rec[5:]); err != nil {
		t.Fatalf("reading record body: %v", err)
	}
	s.Close()
	<-done
	return rec
}

func detectCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), failsafe)
	t.Cleanup(cancel)
	return ctx
}

func checkResult(t testing.TB, got, want Result) {
	t.Helper()
	if got.Protocol != want.Protocol || got.SNI != want.SNI ||
		!slices.Equal(got.ALPN, want.ALPN) || got.ServerFirst != want.ServerFirst {
		t.Errorf("result = %+v, want %+v", got, want)
	}
}

func TestDetect(t *testing.T) {
	hello := captureClientHello(t, &tls.Config{ServerName: "api.example", NextProtos: []string{"weft.h2", "h2"}})
	helloNoSNI := captureClientHello(t, &tls.Config{InsecureSkipVerify: true})
	binary := make([]byte, 256)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range binary {
		binary[i] = byte(r.Uint32())
	}
	binary[0] = 0x00 // neither a token character nor a TLS record type

	const stallTimeout = 50 * time.Millisecond
	tests := []struct {
		name    string
		payload []byte
		// stall: the client stops sending; only the timeout can end detection.
		stall bool
		// closeWrite: the client half-closes right after the payload.
		closeWrite bool
		want       Result
	}{
		{name: "http1 GET", payload: []byte("GET /index.html HTTP/1.1\r\nHost: api.example\r\n\r\n"), want: Result{Protocol: HTTP1}},
		{name: "http1 POST", payload: []byte("POST /v1/items HTTP/1.1\r\nHost: api.example\r\nContent-Length: 2\r\n\r\n{}"), want: Result{Protocol: HTTP1}},
		{name: "http1 CONNECT", payload: []byte("CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n"), want: Result{Protocol: HTTP1}},
		{name: "http1 custom method", payload: []byte("PURGE-CACHE_v2 /x HTTP/1.1\r\nHost: a\r\n\r\n"), want: Result{Protocol: HTTP1}},
		{name: "http1.0", payload: []byte("GET / HTTP/1.0\r\n\r\n"), want: Result{Protocol: HTTP1}},
		{name: "http1 PRI method", payload: []byte("PRI /not-h2 HTTP/1.1\r\n\r\n"), want: Result{Protocol: HTTP1}},
		{name: "http1 method only, stalled", payload: []byte("GET "), stall: true, want: Result{Protocol: HTTP1}},
		{name: "http2 preface", payload: append([]byte(h2Preface), 0, 0, 0, 4, 0, 0, 0, 0, 0), want: Result{Protocol: HTTP2}},
		{name: "http2 preface only", payload: []byte(h2Preface), want: Result{Protocol: HTTP2}},
		{name: "http2 partial preface, stalled", payload: []byte("PRI * HTTP/2.0\r\n"), stall: true, want: Result{Protocol: Opaque}},
		{name: "tls client hello", payload: hello, want: Result{Protocol: TLS, SNI: "api.example", ALPN: []string{"weft.h2", "h2"}}},
		{name: "tls client hello without sni", payload: helloNoSNI, want: Result{Protocol: TLS}},
		{name: "tls header only, stalled", payload: []byte{0x16, 0x03, 0x01, 0x02, 0x00}, stall: true, want: Result{Protocol: TLS}},
		{name: "tls truncated hello, closed", payload: hello[:len(hello)/2], closeWrite: true, want: Result{Protocol: TLS}},
		{name: "tls malformed hello", payload: []byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0xff}, want: Result{Protocol: TLS}},
		{name: "tls oversized record", payload: []byte{0x16, 0x03, 0x03, 0x48, 0x01, 0x01}, want: Result{Protocol: TLS}},
		{name: "tls bad version", payload: []byte{0x16, 0x03, 0x05, 0x00, 0x01}, want: Result{Protocol: Opaque}},
		{name: "random binary", payload: binary, want: Result{Protocol: Opaque}},
		{name: "ssh banner", payload: []byte("SSH-2.0-OpenSSH_9.6\r\n"), want: Result{Protocol: Opaque}},
		{name: "method too long", payload: []byte(strings.Repeat("A", maxMethodLen+1) + " / HTTP/1.1\r\n"), want: Result{Protocol: Opaque}},
		{name: "partial PR, stalled", payload: []byte("PR"), stall: true, want: Result{Protocol: Opaque}},
		{name: "partial GE, closed", payload: []byte("GE"), closeWrite: true, want: Result{Protocol: Opaque}},
		{name: "server first", stall: true, want: Result{Protocol: Opaque, ServerFirst: true}},
		{name: "closed without data", closeWrite: true, want: Result{Protocol: Opaque}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout := time.Hour // conclusive input must never wait for the timeout
			if tt.stall {
				timeout = stallTimeout
			}
			d := New(Config{Timeout: timeout})
			client, server := tcpPair(t)
			if len(tt.payload) > 0 {
				if _, err := client.Write(tt.payload); err != nil {
					t.Fatalf("write: %v", err)
				}
			}
			if tt.closeWrite {
				if err := client.CloseWrite(); err != nil {
					t.Fatalf("close write: %v", err)
				}
			}

			start := time.Now()
			res, conn, err := d.Detect(detectCtx(t), server, testPort)
			elapsed := time.Since(start)
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			checkResult(t, res, tt.want)
			if tt.stall && res.Protocol == Opaque && elapsed < stallTimeout {
				t.Errorf("gave up after %v, before the %v timeout", elapsed, stallTimeout)
			}
			if got := d.Remembered(testPort); got != tt.want.ServerFirst {
				t.Errorf("Remembered = %v, want %v", got, tt.want.ServerFirst)
			}

			// Everything the client sent, before and after detection, must
			// come out of the returned conn. Reading the tail also proves the
			// read deadline was reset.
			want := slices.Clone(tt.payload)
			if !tt.closeWrite {
				tail := []byte("|sent after detection")
				if _, err := client.Write(tail); err != nil {
					t.Fatalf("write tail: %v", err)
				}
				want = append(want, tail...)
				if err := client.CloseWrite(); err != nil {
					t.Fatalf("close write: %v", err)
				}
			}
			got, err := io.ReadAll(conn)
			if err != nil {
				t.Fatalf("reading returned conn: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("replayed %q, want %q", got, want)
			}
		})
	}
}

// selfSigned returns a certificate for name and a pool that trusts it.
func selfSigned(t testing.TB, name string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestDetectTLSHandshakeCompletes runs a real TLS client against a real TLS
// server that reads through the conn returned by Detect: the handshake only
// succeeds if the ClientHello was replayed intact.
func TestDetectTLSHandshakeCompletes(t *testing.T) {
	cert, pool := selfSigned(t, "api.example")
	client, server := tcpPair(t)

	clientErr := make(chan error, 1)
	go func() {
		tc := tls.Client(client, &tls.Config{
			ServerName: "api.example",
			NextProtos: []string{"weft.h2", "h2"},
			RootCAs:    pool,
		})
		err := tc.Handshake()
		if err == nil && tc.ConnectionState().NegotiatedProtocol != "h2" {
			err = errors.New("client negotiated " + tc.ConnectionState().NegotiatedProtocol)
		}
		clientErr <- err
	}()

	d := New(Config{Timeout: time.Hour})
	res, conn, err := d.Detect(detectCtx(t), server, 443)
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	checkResult(t, res, Result{Protocol: TLS, SNI: "api.example", ALPN: []string{"weft.h2", "h2"}})

	srv := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
	if err := srv.HandshakeContext(detectCtx(t)); err != nil {
		t.Errorf("server handshake over replayed conn: %v", err)
	}
	if err := <-clientErr; err != nil {
		t.Errorf("client handshake: %v", err)
	}
	if got := srv.ConnectionState().ServerName; got != "api.example" {
		t.Errorf("server saw SNI %q", got)
	}
}

// TestDetectTLSFragmentedHello spreads one ClientHello over several records,
// each written separately, over net.Pipe.
func TestDetectTLSFragmentedHello(t *testing.T) {
	rec := captureClientHello(t, &tls.Config{ServerName: "api.example", NextProtos: []string{"h2"}})
	msg := rec[5:]
	var frag []byte
	for len(msg) > 0 {
		n := min(len(msg), 64)
		frag = append(frag, 0x16, 0x03, 0x01, byte(n>>8), byte(n))
		frag = append(frag, msg[:n]...)
		msg = msg[n:]
	}
	frag = append(frag, "trailing application bytes"...)

	c, s := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := frag; len(b) > 0; {
			n := min(len(b), 69)
			if _, err := c.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
		c.Close()
	}()
	defer func() {
		s.Close()
		<-done
	}()

	d := New(Config{Timeout: time.Hour})
	res, conn, err := d.Detect(detectCtx(t), tcpLikePipe{s}, testPort)
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	checkResult(t, res, Result{Protocol: TLS, SNI: "api.example", ALPN: []string{"h2"}})
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading returned conn: %v", err)
	}
	if !bytes.Equal(got, frag) {
		t.Errorf("replayed %d bytes, want the %d sent", len(got), len(frag))
	}
}

func TestServerFirstPortRemembered(t *testing.T) {
	const timeout = 20 * time.Millisecond
	d := New(Config{Timeout: timeout})

	_, server := tcpPair(t)
	start := time.Now()
	res, _, err := d.Detect(detectCtx(t), server, 3307)
	if err != nil {
		t.Fatalf("first Detect: %v", err)
	}
	checkResult(t, res, Result{Protocol: Opaque, ServerFirst: true})
	if elapsed := time.Since(start); elapsed < timeout {
		t.Errorf("first Detect returned after %v, before the %v timeout", elapsed, timeout)
	}
	if !d.Remembered(3307) {
		t.Fatal("port 3307 not remembered")
	}
	if d.Remembered(3308) {
		t.Error("port 3308 remembered without ever being seen")
	}

	// With a timeout of an hour, the second call can only return (before the
	// failsafe context expires) if it skips waiting entirely.
	d.timeout = time.Hour
	client, server := tcpPair(t)
	res, conn, err := d.Detect(detectCtx(t), server, 3307)
	if err != nil {
		t.Fatalf("second Detect: %v", err)
	}
	checkResult(t, res, Result{Protocol: Opaque, ServerFirst: true})
	if conn != net.Conn(server) {
		t.Errorf("second Detect returned a wrapped conn %T, want the original", conn)
	}
	// Nothing was consumed: what the client sends now arrives intact.
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	client.CloseWrite()
	if got, err := io.ReadAll(conn); err != nil || string(got) != "hello" {
		t.Errorf("read %q, %v; want %q", got, err, "hello")
	}

	// Other ports are still detected normally.
	client, server = tcpPair(t)
	client.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	res, _, err = d.Detect(detectCtx(t), server, 3308)
	if err != nil {
		t.Fatalf("Detect on another port: %v", err)
	}
	checkResult(t, res, Result{Protocol: HTTP1})
}

func TestOpaquePortsSkipDetection(t *testing.T) {
	d := New(Config{Timeout: time.Hour, OpaquePorts: []uint16{9999}})
	for _, port := range []uint16{25, 587, 3306, 4444, 5432, 6379, 9300, 11211, 9999} {
		if !d.IsOpaquePort(port) {
			t.Errorf("IsOpaquePort(%d) = false", port)
		}
		client, server := tcpPair(t)
		payload := []byte("GET / HTTP/1.1\r\n\r\n") // would be HTTP1 elsewhere
		if _, err := client.Write(payload); err != nil {
			t.Fatal(err)
		}
		client.CloseWrite()
		res, conn, err := d.Detect(detectCtx(t), server, port)
		if err != nil {
			t.Fatalf("port %d: Detect: %v", port, err)
		}
		checkResult(t, res, Result{Protocol: Opaque})
		if conn != net.Conn(server) {
			t.Errorf("port %d: returned a wrapped conn %T, want the original", port, conn)
		}
		if got, err := io.ReadAll(conn); err != nil || !bytes.Equal(got, payload) {
			t.Errorf("port %d: read %q, %v; want %q", port, got, err, payload)
		}
	}
	if d.IsOpaquePort(testPort) {
		t.Errorf("IsOpaquePort(%d) = true", testPort)
	}

	// Configured ports add to the defaults, and the defaults are a fresh
	// slice each time.
	if !New(Config{OpaquePorts: []uint16{1}}).IsOpaquePort(3306) {
		t.Error("configuring OpaquePorts dropped the defaults")
	}
	ports := DefaultOpaquePorts()
	ports[0] = 1
	if DefaultOpaquePorts()[0] != 25 {
		t.Error("DefaultOpaquePorts returned shared state")
	}
}

func TestDetectContext(t *testing.T) {
	t.Run("cancelled while waiting", func(t *testing.T) {
		d := New(Config{Timeout: time.Hour})
		client, server := tcpPair(t)
		client.Write([]byte("PR"))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			time.Sleep(20 * time.Millisecond)
			cancel()
		}()
		_, conn, err := d.Detect(ctx, server, testPort)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Detect error = %v, want context.Canceled", err)
		}
		if d.Remembered(testPort) {
			t.Error("port remembered after cancellation")
		}
		// The peeked bytes are still delivered and the deadline was reset.
		client.Write([]byte("I * HTTP/2.0"))
		client.CloseWrite()
		if got, err := io.ReadAll(conn); err != nil || string(got) != "PRI * HTTP/2.0" {
			t.Errorf("read %q, %v", got, err)
		}
	})
	t.Run("deadline while silent", func(t *testing.T) {
		d := New(Config{Timeout: time.Hour})
		_, server := tcpPair(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		res, _, err := d.Detect(ctx, server, testPort)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Detect error = %v, want context.DeadlineExceeded", err)
		}
		if res.ServerFirst || d.Remembered(testPort) {
			t.Error("silence cut short by the context must not mark the port server-first")
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		d := New(Config{Timeout: time.Hour})
		client, server := tcpPair(t)
		client.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, conn, err := d.Detect(ctx, server, testPort)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Detect error = %v, want context.Canceled", err)
		}
		if conn != net.Conn(server) {
			t.Errorf("returned a wrapped conn %T, want the original", conn)
		}
	})
}

// memConn is an in-memory net.Conn reading from r; once r is exhausted,
// Read returns readErr (io.EOF if nil).
type memConn struct {
	r       io.Reader
	readErr error
}

func (c *memConn) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if err == io.EOF && c.readErr != nil {
		err = c.readErr
	}
	return n, err
}
func (c *memConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

func TestDetectReadError(t *testing.T) {
	boom := errors.New("connection reset by test")
	d := New(Config{})
	conn := &memConn{r: strings.NewReader("GE"), readErr: boom}
	_, got, err := d.Detect(context.Background(), conn, testPort)
	if !errors.Is(err, boom) {
		t.Fatalf("Detect error = %v, want it to wrap %v", err, boom)
	}
	if !strings.Contains(err.Error(), "detect: reading") {
		t.Errorf("error %q does not say what failed", err)
	}
	b := make([]byte, 8)
	if n, _ := got.Read(b); string(b[:n]) != "GE" {
		t.Errorf("returned conn replays %q, want %q", b[:n], "GE")
	}
}

func TestPeekedConnWriteTo(t *testing.T) {
	d := New(Config{Timeout: time.Hour})
	client, server := tcpPair(t)
	payload := "GET / HTTP/1.1\r\nHost: a\r\n\r\nbody"
	client.Write([]byte(payload))
	res, conn, err := d.Detect(detectCtx(t), server, testPort)
	if err != nil || res.Protocol != HTTP1 {
		t.Fatalf("Detect = %v, %v", res, err)
	}
	client.Write([]byte("|more"))
	client.CloseWrite()
	var buf bytes.Buffer
	n, err := io.Copy(&buf, conn) // uses peekedConn.WriteTo
	if err != nil {
		t.Fatal(err)
	}
	if want := payload + "|more"; buf.String() != want || n != int64(len(want)) {
		t.Errorf("copied %d bytes %q, want %q", n, buf.String(), want)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		in   string
		want Protocol
		ok   bool
	}{
		{"", Opaque, false},
		{"G", Opaque, false},
		{"GET", Opaque, false},
		{"GET ", HTTP1, true},
		{" GET", Opaque, true},
		{"GET\r\n", Opaque, true},
		{"P", Opaque, false},
		{"PRI ", Opaque, false},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r", Opaque, false},
		{h2Preface, HTTP2, true},
		{"PRI * HTTP/1.1\r\n", HTTP1, true},
		{"PRIX ", HTTP1, true},
		{"\x16", Opaque, false},
		{"\x16\x03", Opaque, false},
		{"\x16\x03\x00", TLS, true},
		{"\x16\x03\x04", TLS, true},
		{"\x16\x03\x05", Opaque, true},
		{"\x16\x02", Opaque, true},
		{"\x00", Opaque, true},
		{strings.Repeat("X", maxMethodLen), Opaque, false},
		{strings.Repeat("X", maxMethodLen) + " ", HTTP1, true},
		{strings.Repeat("X", maxMethodLen+1), Opaque, true},
	}
	for _, tt := range tests {
		got, ok := classify([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("classify(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRememberExpiryAndEviction(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	d := New(Config{RememberTTL: time.Minute, MaxRemembered: 2})
	d.now = func() time.Time { return now }

	d.remember(1)
	now = now.Add(time.Second)
	d.remember(2)
	now = now.Add(time.Second)
	d.remember(3) // full: evicts 1, the oldest
	if d.Remembered(1) || !d.Remembered(2) || !d.Remembered(3) {
		t.Errorf("after eviction: 1=%v 2=%v 3=%v, want false true true", d.Remembered(1), d.Remembered(2), d.Remembered(3))
	}

	now = now.Add(time.Second)
	d.remember(2) // refresh: 3 is now the oldest
	d.remember(4)
	if !d.Remembered(2) || d.Remembered(3) || !d.Remembered(4) {
		t.Errorf("after refresh: 2=%v 3=%v 4=%v, want true false true", d.Remembered(2), d.Remembered(3), d.Remembered(4))
	}

	now = now.Add(time.Minute)
	if d.Remembered(2) || d.Remembered(4) {
		t.Error("entries did not expire after RememberTTL")
	}
	d.remember(5) // expired entries are swept rather than evicting live ones
	if len(d.remembered) != 1 || !d.Remembered(5) {
		t.Errorf("after sweep: %v", d.remembered)
	}
}

func TestRememberConcurrent(t *testing.T) {
	d := New(Config{MaxRemembered: 16})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				port := uint16(g*1000 + i)
				d.remember(port)
				d.Remembered(port)
			}
		})
	}
	wg.Wait()
	if n := len(d.remembered); n > 16 {
		t.Errorf("%d ports remembered, want at most 16", n)
	}
}

func TestNewDefaults(t *testing.T) {
	d := New(Config{})
	if d.timeout != 300*time.Millisecond || d.ttl != 10*time.Minute || d.maxRemembered != 4096 {
		t.Errorf("defaults: timeout %v, ttl %v, max %d", d.timeout, d.ttl, d.maxRemembered)
	}
}

func TestProtocolString(t *testing.T) {
	for p, want := range map[Protocol]string{Opaque: "opaque", HTTP1: "http1", HTTP2: "http2", TLS: "tls", 9: "Protocol(9)"} {
		if got := p.String(); got != want {
			t.Errorf("Protocol(%d).String() = %q, want %q", p, got, want)
		}
	}
}

func BenchmarkDetectHTTP1(b *testing.B) {
	d := New(Config{})
	req := []byte("GET /api/v1/items?limit=10 HTTP/1.1\r\nHost: api.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	r := bytes.NewReader(req)
	conn := &memConn{r: r}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		r.Reset(req)
		res, _, err := d.Detect(ctx, conn, testPort)
		if err != nil || res.Protocol != HTTP1 {
			b.Fatalf("Detect = %v, %v", res, err)
		}
	}
}
