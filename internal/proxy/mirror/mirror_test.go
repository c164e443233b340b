package mirror_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/mirror"
	"github.com/weft-mesh/weft/internal/validatetest"
)

// received is what a test backend saw of one request.
type received struct {
	method, uri, host string
	header            http.Header
	contentLength     int64
	transferEncoding  []string
	body              []byte
}

func record(r *http.Request) received {
	body, _ := io.ReadAll(r.Body)
	return received{
		method: r.Method, uri: r.RequestURI, host: r.Host, header: r.Header.Clone(),
		contentLength: r.ContentLength, transferEncoding: r.TransferEncoding, body: body,
	}
}

// env is a client, a front proxy that tees every request, a primary backend
// and a shadow backend, all on loopback.
type env struct {
	m            *mirror.Mirror
	client       *http.Client
	front        *httptest.Server
	primaryReqs  chan received
	shadowReqs   chan received
	shadowTarget string // where send dials; the shadow server's address by default
}

// newEnv starts the servers. shadow handles mirrored requests after they are
// recorded; nil answers 200.
func newEnv(t *testing.T, c mirror.Config, shadow http.HandlerFunc) *env {
	t.Helper()
	e := &env{primaryReqs: make(chan received, 100), shadowReqs: make(chan received, 100)}

	primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.primaryReqs <- record(r)
		_, _ = io.WriteString(w, "from primary")
	}))
	t.Cleanup(primary.Close)
	shadowSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.shadowReqs <- record(r)
		if shadow != nil {
			shadow(w, r)
		}
	}))
	t.Cleanup(shadowSrv.Close)
	e.shadowTarget = shadowSrv.Listener.Addr().String()

	shadowTr := &http.Transport{}
	t.Cleanup(shadowTr.CloseIdleConnections)
	send := func(ctx context.Context, r *http.Request) (*http.Response, error) {
		r.URL.Scheme, r.URL.Host = "http", e.shadowTarget
		return shadowTr.RoundTrip(r)
	}
	m, err := mirror.New(c, send, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	t.Cleanup(m.Wait) // before the servers close

	primaryTr := &http.Transport{}
	t.Cleanup(primaryTr.CloseIdleConnections)
	e.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := m.Tee(r)
		// The proxy rewrites the request for its upstream after Tee:
		// the mirror copy must not see this.
		out.URL.Scheme, out.URL.Host = "http", primary.Listener.Addr().String()
		out.RequestURI = ""
		out.Header.Set("X-Changed-After-Tee", "yes")
		resp, err := primaryTr.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(e.front.Close)

	clientTr := &http.Transport{}
	t.Cleanup(clientTr.CloseIdleConnections)
	e.client = &http.Client{Transport: clientTr}
	return e
}

// opaqueReader hides its type so that the client sends its body chunked.
type opaqueReader struct{ r io.Reader }

func (o opaqueReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// do sends a request through the front and checks the client got the
// primary's answer.
func (e *env) do(t *testing.T, method, path string, body []byte, chunked bool) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
		if chunked {
			rd = opaqueReader{rd}
		}
	}
	req, err := http.NewRequest(method, e.front.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "web.prod:8080"
	req.Header.Set("X-Request-Id", "abc-123")
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("client request: %v", err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(got) != "from primary" {
		t.Fatalf("client got %d %q (read error %v), want 200 \"from primary\"", resp.StatusCode, got, err)
	}
}

func (e *env) wantStats(t *testing.T, want mirror.Stats) {
	t.Helper()
	if got := e.m.Stats(); got != want {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}
}

func TestMirroredRequestIsIdentical(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		path    string
		body    []byte
		chunked bool
	}{
		{name: "GET without body", method: "GET", path: "/a/b?x=1&y=2"},
		{name: "POST with known length", method: "POST", path: "/orders", body: []byte(`{"id":42,"items":["a","b"]}`)},
		{name: "PUT chunked", method: "PUT", path: "/blob/7", body: bytes.Repeat([]byte("0123456789"), 1000), chunked: true},
		{name: "PATCH chunked, empty", method: "PATCH", path: "/empty", body: []byte{}, chunked: true},
		{name: "POST at the size limit", method: "POST", path: "/max", body: bytes.Repeat([]byte{'x'}, 64<<10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, mirror.Config{}, nil)
			e.do(t, tt.method, tt.path, tt.body, tt.chunked)
			e.m.Wait()
			p, s := <-e.primaryReqs, <-e.shadowReqs
			if s.method != tt.method || s.uri != tt.path || p.uri != tt.path {
				t.Errorf("mirror got %s %s, primary %s %s; want %s %s", s.method, s.uri, p.method, p.uri, tt.method, tt.path)
			}
			if p.host != "web.prod:8080" || s.host != "web.prod-shadow:8080" {
				t.Errorf("hosts: primary %q, mirror %q; want web.prod:8080 and web.prod-shadow:8080", p.host, s.host)
			}
			if p.header.Get("X-Changed-After-Tee") != "yes" {
				t.Fatal("test proxy did not change the forwarded request")
			}
			p.header.Del("X-Changed-After-Tee")
			if !reflect.DeepEqual(p.header, s.header) {
				t.Errorf("headers differ:\nprimary %v\nmirror  %v", p.header, s.header)
			}
			if !bytes.Equal(s.body, tt.body) || !bytes.Equal(p.body, tt.body) {
				t.Errorf("bodies: primary %d bytes, mirror %d bytes, want %d identical bytes", len(p.body), len(s.body), len(tt.body))
			}
			if p.contentLength != s.contentLength || !reflect.DeepEqual(p.transferEncoding, s.transferEncoding) {
				t.Errorf("framing: primary length %d %v, mirror %d %v", p.contentLength, p.transferEncoding, s.contentLength, s.transferEncoding)
			}
			e.wantStats(t, mirror.Stats{Sent: 1})
		})
	}
}

// TestSlowMirrorDoesNotDelayClient: the mirror's handler holds its answer
// until the client has its response. Were the client's request to wait for
// the mirror, the mirror would finish first (after its 10s fallback) and the
// test would fail rather than hang.
func TestSlowMirrorDoesNotDelayClient(t *testing.T) {
	release, mirrorDone := make(chan struct{}), make(chan struct{})
	e := newEnv(t, mirror.Config{Timeout: time.Minute}, func(w http.ResponseWriter, r *http.Request) {
		defer close(mirrorDone)
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
	})
	var once sync.Once
	releaseOnce := func() { once.Do(func() { close(release) }) }
	defer releaseOnce()

	e.do(t, "POST", "/slow", []byte("payload"), false)
	select {
	case <-mirrorDone:
		t.Fatal("the mirror finished before the client got its response")
	default:
	}
	releaseOnce()
	e.m.Wait()
	select {
	case <-mirrorDone:
	default:
		t.Fatal("Wait returned before the mirror finished")
	}
	e.wantStats(t, mirror.Stats{Sent: 1})
}

func TestFailingMirrorDoesNotAffectClient(t *testing.T) {
	refused := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		target  func(*testing.T) string // nil: the shadow server
	}{
		{name: "500", handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }},
		{name: "503 with a large body", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(503)
			_, _ = w.Write(bytes.Repeat([]byte("z"), 1<<20))
		}},
		{name: "connection refused", target: refused},
		{name: "connection closed mid-answer", handler: func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_, _ = conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Len"))
				conn.Close()
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, mirror.Config{}, tt.handler)
			if tt.target != nil {
				e.shadowTarget = tt.target(t)
			}
			e.do(t, "POST", "/x", []byte("data"), false)
			e.do(t, "GET", "/y", nil, false)
			e.m.Wait()
			e.wantStats(t, mirror.Stats{Sent: 2, Failed: 2})
		})
	}
}

func TestMaxInFlightDrops(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, mirror.Config{MaxInFlight: 1, Timeout: time.Minute}, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/first" {
			<-release
		}
	})
	// Registered after newEnv's cleanups, so it runs before m.Wait.
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })

	e.do(t, "GET", "/first", nil, false)           // mirrored, held by the shadow
	e.do(t, "POST", "/second", []byte("b"), false) // dropped, not queued
	e.do(t, "PUT", "/third", []byte("c"), true)    // dropped too (unknown length)
	e.wantStats(t, mirror.Stats{Sent: 1, Dropped: 2})
	if n := len(e.primaryReqs); n != 3 {
		t.Fatalf("primary got %d requests, want 3", n)
	}

	once.Do(func() { close(release) })
	e.m.Wait()
	e.do(t, "GET", "/fourth", nil, false) // a slot is free again
	e.m.Wait()
	e.wantStats(t, mirror.Stats{Sent: 2, Dropped: 2})
	for _, want := range []string{"/first", "/fourth"} {
		if got := (<-e.shadowReqs).uri; got != want {
			t.Fatalf("mirror got %s, want %s", got, want)
		}
	}
}

func TestLargeBodyNotMirrored(t *testing.T) {
	const limit = 16
	tests := []struct {
		name     string
		size     int
		chunked  bool
		mirrored bool
	}{
		{name: "known length at the limit", size: limit, mirrored: true},
		{name: "known length over the limit", size: limit + 1},
		{name: "known length far over the limit", size: 1 << 20},
		{name: "chunked at the limit", size: limit, chunked: true, mirrored: true},
		{name: "chunked over the limit", size: limit + 1, chunked: true},
		{name: "chunked far over the limit", size: 1 << 20, chunked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, mirror.Config{MaxBodyBytes: limit}, nil)
			body := make([]byte, tt.size)
			for i := range body {
				body[i] = byte('a' + i%26)
			}
			e.do(t, "POST", "/upload", body, tt.chunked)
			e.m.Wait()
			if p := <-e.primaryReqs; !bytes.Equal(p.body, body) {
				t.Fatalf("primary got %d bytes, want the original %d intact", len(p.body), len(body))
			}
			if tt.mirrored {
				if s := <-e.shadowReqs; !bytes.Equal(s.body, body) {
					t.Fatalf("mirror got %d bytes, want %d", len(s.body), len(body))
				}
				e.wantStats(t, mirror.Stats{Sent: 1})
				return
			}
			if n := len(e.shadowReqs); n != 0 {
				t.Fatalf("mirror got %d requests, want none", n)
			}
			e.wantStats(t, mirror.Stats{TooLarge: 1})
		})
	}
}

// okSend answers every mirror with 200 at once, without a network.
func okSend(ctx context.Context, r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
}

func TestPercentSampling(t *testing.T) {
	const n = 20000
	tests := []struct {
		percent float64
		want    float64 // fraction mirrored
		exact   bool
	}{
		{percent: 0, want: 1, exact: true}, // the default, 100
		{percent: 100, want: 1, exact: true},
		{percent: 30, want: 0.3},
		{percent: 2.5, want: 0.025},
		{percent: 99, want: 0.99},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v percent", tt.percent), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(7, 11)).Float64 // used from one goroutine only
			m, err := mirror.New(mirror.Config{Percent: tt.percent, MaxInFlight: n}, okSend, rnd)
			if err != nil {
				t.Fatal(err)
			}
			for range n {
				req := httptest.NewRequest("GET", "/", nil)
				if out := m.Tee(req); out != req {
					t.Fatal("Tee replaced a request without a body")
				}
			}
			m.Wait()
			st := m.Stats()
			got, want := float64(st.Sent), n*tt.want
			tol := 5 * math.Sqrt(n*tt.want*(1-tt.want))
			if st.Dropped != 0 || (tt.exact && got != want) || math.Abs(got-want) > tol {
				t.Fatalf("mirrored %v of %d (dropped %d), want %.0f ± %.0f", got, n, st.Dropped, want, tol)
			}
		})
	}
}

func TestShadowHost(t *testing.T) {
	tests := []struct {
		host, urlHost, want string
	}{
		{host: "web.prod:8080", want: "web.prod-shadow:8080"},
		{host: "web.prod", want: "web.prod-shadow"},
		{host: "10.1.2.3:80", want: "10.1.2.3-shadow:80"},
		{host: "[fd00::1]:443", want: "[fd00::1]-shadow:443"},
		{host: "[fd00::1]", want: "[fd00::1]-shadow"},
		{urlHost: "api.internal:9000", want: "api.internal-shadow:9000"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := make(chan string, 1)
			m, err := mirror.New(mirror.Config{}, func(ctx context.Context, r *http.Request) (*http.Response, error) {
				got <- r.Host
				return okSend(ctx, r)
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			req := &http.Request{Method: "GET", URL: &url.URL{Scheme: "http", Host: tt.urlHost, Path: "/"}, Host: tt.host, Header: http.Header{}}
			m.Tee(req)
			m.Wait()
			if g := <-got; g != tt.want {
				t.Fatalf("mirror Host = %q, want %q", g, tt.want)
			}
			if req.Host != tt.host {
				t.Fatalf("original Host changed to %q", req.Host)
			}
		})
	}
}

// TestMirrorContext runs in a synctest bubble (virtual time, no network):
// the mirror keeps the request's values, outlives the client's cancel, and
// ends at its Timeout.
func TestMirrorContext(t *testing.T) {
	type key struct{}
	synctest.Test(t, func(t *testing.T) {
		var (
			sawValue any
			took     time.Duration
			cause    error
		)
		m, err := mirror.New(mirror.Config{Timeout: 3 * time.Second}, func(ctx context.Context, r *http.Request) (*http.Response, error) {
			if r.Context() != ctx {
				t.Error("the copy's context is not the ctx given to send")
			}
			start := time.Now()
			sawValue = ctx.Value(key{})
			<-ctx.Done()
			took, cause = time.Since(start), context.Cause(ctx)
			return nil, ctx.Err()
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.WithValue(t.Context(), key{}, "trace-7"))
		req := httptest.NewRequestWithContext(ctx, "POST", "/", strings.NewReader("body"))
		out := m.Tee(req)
		cancel() // the client goes away at once
		if b, _ := io.ReadAll(out.Body); string(b) != "body" {
			t.Fatalf("original body = %q, want %q", b, "body")
		}
		m.Wait()
		if sawValue != "trace-7" || took != 3*time.Second || !errors.Is(cause, context.DeadlineExceeded) {
			t.Fatalf("mirror saw value %v, ran %v, ended by %v; want trace-7, 3s, deadline exceeded", sawValue, took, cause)
		}
		if st := m.Stats(); st != (mirror.Stats{Sent: 1, Failed: 1}) {
			t.Fatalf("Stats() = %+v, want 1 sent, 1 failed", st)
		}
	})
}

// failingBody yields some bytes, then an error, as a client that drops its
// connection mid-upload.
type failingBody struct {
	data []byte
	err  error
}

func (f *failingBody) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}
func (f *failingBody) Close() error { return nil }

func TestBrokenOrAbandonedBodyNotMirrored(t *testing.T) {
	errBroken := errors.New("connection reset by client")
	tests := []struct {
		name          string
		contentLength int64
		body          func() io.ReadCloser
		readAll       bool // else the original's body is closed after 3 bytes
		wantErr       error
		wantRead      string
	}{
		{name: "known length, client fails", contentLength: 10, readAll: true, wantErr: errBroken, wantRead: "hello",
			body: func() io.ReadCloser { return &failingBody{data: []byte("hello"), err: errBroken} }},
		{name: "known length, client sends less", contentLength: 10, readAll: true, wantRead: "hello",
			body: func() io.ReadCloser { return &failingBody{data: []byte("hello"), err: io.EOF} }},
		{name: "unknown length, client fails", contentLength: -1, readAll: true, wantErr: errBroken, wantRead: "hello",
			body: func() io.ReadCloser { return &failingBody{data: []byte("hello"), err: errBroken} }},
		{name: "unknown length, closed before its end", contentLength: -1, wantRead: "hel",
			body: func() io.ReadCloser { return io.NopCloser(strings.NewReader("hello")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := mirror.New(mirror.Config{}, okSend, nil)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest("POST", "/", nil)
			req.Body, req.ContentLength = tt.body(), tt.contentLength
			out := m.Tee(req)
			var got []byte
			if tt.readAll {
				got, err = io.ReadAll(out.Body)
			} else {
				got = make([]byte, 3)
				_, err = io.ReadFull(out.Body, got)
				if cerr := out.Body.Close(); cerr != nil {
					t.Fatal(cerr)
				}
				_, _ = io.ReadAll(out.Body) // a late read after Close must not start the mirror
			}
			if string(got) != tt.wantRead || !errors.Is(err, tt.wantErr) {
				t.Fatalf("original body read %q, %v; want %q, %v", got, err, tt.wantRead, tt.wantErr)
			}
			m.Wait()
			if st := m.Stats(); st != (mirror.Stats{}) {
				t.Fatalf("Stats() = %+v, want nothing mirrored", st)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  mirror.Config
		want []string
	}{
		{name: "defaults", cfg: mirror.Config{}},
		{name: "all set", cfg: mirror.Config{Percent: 12.5, MaxBodyBytes: 1, MaxInFlight: 1, Timeout: time.Millisecond}},
		{name: "percent over 100", cfg: mirror.Config{Percent: 101}, want: []string{"Percent is 101", "from 0 to 100"}},
		{name: "percent negative", cfg: mirror.Config{Percent: -5}, want: []string{"Percent is -5"}},
		{name: "percent NaN", cfg: mirror.Config{Percent: math.NaN()}, want: []string{"Percent is NaN"}},
		{name: "negative body limit", cfg: mirror.Config{MaxBodyBytes: -1}, want: []string{"MaxBodyBytes is -1", "0 or more"}},
		{name: "negative in flight", cfg: mirror.Config{MaxInFlight: -2}, want: []string{"MaxInFlight is -2"}},
		{name: "negative timeout", cfg: mirror.Config{Timeout: -time.Second}, want: []string{"Timeout is -1s"}},
		{name: "every problem", cfg: mirror.Config{Percent: 200, MaxInFlight: -1, Timeout: -1}, want: []string{"Percent", "MaxInFlight", "Timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			_, newErr := mirror.New(tt.cfg, okSend, nil)
			validatetest.Check(t, err, newErr, tt.want)
		})
	}
	if _, err := mirror.New(mirror.Config{}, nil, nil); err == nil || !strings.Contains(err.Error(), "send is nil") {
		t.Errorf("New with a nil send = %v, want an error naming send", err)
	}
}
