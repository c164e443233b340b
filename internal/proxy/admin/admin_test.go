package admin_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weft-mesh/weft/internal/proxy/admin"
	"github.com/weft-mesh/weft/internal/proxy/metrics"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const waitTimeout = 5 * time.Second

// server is a Serve running on a real loopback listener.
type server struct {
	base   string
	client *http.Client
	cancel context.CancelFunc
	done   chan error
}

// startServer serves o on network/addr (loopback) and stops it, checking
// for a clean stop, when the test ends.
func startServer(t *testing.T, network, addr string, o admin.Options) *server {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{
		base:   "http://" + ln.Addr().String(),
		client: &http.Client{Transport: &http.Transport{}, Timeout: waitTimeout},
		cancel: cancel,
		done:   make(chan error, 1),
	}
	go func() { s.done <- admin.Serve(ctx, ln, o) }()
	t.Cleanup(func() {
		s.client.CloseIdleConnections()
		if err := s.stop(t); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

func (s *server) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		s.done <- err // keep it for a later stop
		return err
	case <-time.After(waitTimeout):
		t.Fatal("Serve did not return after cancel")
		return nil
	}
}

func (s *server) do(t *testing.T, method, path string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, string(b)
}

func expect(t *testing.T, resp *http.Response, body string, status int, wantBody string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s %s: status %d, want %d (body %q)", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
	if body != wantBody {
		t.Errorf("%s %s: body %q, want %q", resp.Request.Method, resp.Request.URL.Path, body, wantBody)
	}
}

func TestEndpointsOverLoopback(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.RequestDone(metrics.Labels{Direction: "inbound", Service: "cart"}, 200, "", time.Millisecond, time.Microsecond)
	var notReady atomic.Bool
	notReady.Store(true)
	shutdowns := make(chan struct{}, 4)
	var shutdownCalls atomic.Int32
	s := startServer(t, "tcp", "127.0.0.1:0", admin.Options{
		Metrics: m,
		Ready: func() error {
			if notReady.Load() {
				return errors.New("waiting for first config")
			}
			return nil
		},
		ConfigDump: func() ([]byte, error) { return []byte(`{"version":"v1"}`), nil },
		Shutdown: func() {
			shutdownCalls.Add(1)
			shutdowns <- struct{}{}
		},
	})

	resp, body := s.do(t, "GET", "/live", nil)
	expect(t, resp, body, 200, "live\n")

	resp, body = s.do(t, "GET", "/ready", nil)
	expect(t, resp, body, 503, "not ready: waiting for first config\n")
	notReady.Store(false)
	resp, body = s.do(t, "GET", "/ready", nil)
	expect(t, resp, body, 200, "ready\n")

	resp, body = s.do(t, "HEAD", "/live", nil)
	expect(t, resp, body, 200, "")

	resp, body = s.do(t, "GET", "/metrics", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `weft_requests_total{direction="inbound",peer="",route="",service="cart"} 1`) {
		t.Errorf("GET /metrics: status %d, body lacks the request counter:\n%.2000s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET /metrics: Content-Type %q, want text/plain", ct)
	}
	resp, body = s.do(t, "GET", "/metrics", http.Header{"Accept": {"application/openmetrics-text;version=1.0.0"}})
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("OpenMetrics scrape: Content-Type %q", ct)
	}
	if !strings.HasSuffix(body, "# EOF\n") {
		t.Errorf("OpenMetrics scrape does not end with # EOF")
	}

	resp, body = s.do(t, "GET", "/config_dump", nil)
	expect(t, resp, body, 200, `{"version":"v1"}`)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("config_dump Content-Type %q", ct)
	}

	resp, body = s.do(t, "GET", "/shutdown", nil)
	expect(t, resp, body, 405, "405 method not allowed: /shutdown accepts POST\n")
	if got := resp.Header.Get("Allow"); got != "POST" {
		t.Errorf("Allow = %q, want POST", got)
	}
	resp, _ = s.do(t, "POST", "/live", nil)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /live: status %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}

	resp, body = s.do(t, "GET", "/nope", nil)
	if resp.StatusCode != 404 {
		t.Errorf("GET /nope: status %d", resp.StatusCode)
	}
	for _, ep := range []string{"/metrics", "/live", "/ready", "/config_dump", "/shutdown"} {
		if !strings.Contains(body, ep) {
			t.Errorf("404 body does not list %s:\n%s", ep, body)
		}
	}

	if n := shutdownCalls.Load(); n != 0 {
		t.Fatalf("Shutdown called %d times before POST", n)
	}
	resp, body = s.do(t, "POST", "/shutdown", nil)
	expect(t, resp, body, 202, "draining\n")
	select {
	case <-shutdowns:
	case <-time.After(waitTimeout):
		t.Fatal("Shutdown not called after POST /shutdown")
	}
	resp, body = s.do(t, "POST", "/shutdown", nil)
	expect(t, resp, body, 202, "draining\n")
	if err := s.stop(t); err != nil {
		t.Errorf("Serve: %v", err)
	}
	if n := shutdownCalls.Load(); n != 1 {
		t.Errorf("Shutdown called %d times, want 1", n)
	}
}

func TestIPv6Loopback(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
	s := startServer(t, "tcp", "[::1]:0", admin.Options{
		ConfigDump: func() ([]byte, error) { return []byte(`{}`), nil },
	})
	resp, body := s.do(t, "GET", "/config_dump", nil)
	expect(t, resp, body, 200, `{}`)
}

// serveDirect calls h without any network traffic, as if from remoteAddr.
func serveDirect(h http.Handler, method, path, remoteAddr string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	req.RemoteAddr = remoteAddr
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestLoopbackOnly(t *testing.T) {
	var shutdownCalls, dumpCalls atomic.Int32
	h := admin.Handler(admin.Options{
		Metrics:    metrics.New(metrics.Options{}),
		ConfigDump: func() ([]byte, error) { dumpCalls.Add(1); return []byte(`{}`), nil },
		Shutdown:   func() { shutdownCalls.Add(1) },
	})

	const remote = "10.1.2.3:5555" // never dialed: the handler is called directly
	for _, tc := range []struct{ method, path string }{
		{"GET", "/config_dump"},
		{"POST", "/shutdown"},
		{"GET", "/shutdown"}, // 403 before 405: reveal nothing to remote clients
	} {
		rec := serveDirect(h, tc.method, tc.path, remote)
		if rec.Code != http.StatusForbidden {
			t.Errorf("%s %s from %s: status %d, want 403", tc.method, tc.path, remote, rec.Code)
		}
		body := rec.Body.String()
		for _, want := range []string{"loopback-only", "kubectl port-forward", "host"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s %s: 403 body lacks %q:\n%s", tc.method, tc.path, want, body)
			}
		}
	}
	if n := dumpCalls.Load(); n != 0 {
		t.Errorf("ConfigDump called %d times for a remote client", n)
	}
	if n := shutdownCalls.Load(); n != 0 {
		t.Errorf("Shutdown called %d times for a remote client", n)
	}

	// The public endpoints answer anyone.
	for _, path := range []string{"/metrics", "/live", "/ready"} {
		if rec := serveDirect(h, "GET", path, remote); rec.Code != http.StatusOK {
			t.Errorf("GET %s from %s: status %d, want 200", path, remote, rec.Code)
		}
	}
}

func TestLoopbackAddresses(t *testing.T) {
	h := admin.Handler(admin.Options{ConfigDump: func() ([]byte, error) { return []byte(`{}`), nil }})
	for addr, want := range map[string]int{
		"127.0.0.1:1":          200,
		"127.8.9.10:1":         200,
		"[::1]:1":              200,
		"[::ffff:127.0.0.1]:1": 200,
		"[::ffff:10.0.0.1]:1":  403,
		"[fe80::1%eth0]:1":     403,
		"10.1.2.3:5555":        403,
		"0.0.0.0:1":            403,
		"127.0.0.1":            403, // no port: unparsable, refused
		"":                     403,
		"@":                    403,
	} {
		if rec := serveDirect(h, "GET", "/config_dump", addr); rec.Code != want {
			t.Errorf("RemoteAddr %q: status %d, want %d", addr, rec.Code, want)
		}
	}
}

func TestHandlerEdgeCases(t *testing.T) {
	const local = "127.0.0.1:4444"
	t.Run("nil options", func(t *testing.T) {
		h := admin.Handler(admin.Options{})
		for _, tc := range []struct {
			method, path string
			want         int
		}{
			{"GET", "/live", 200},
			{"GET", "/ready", 200},
			{"GET", "/metrics", 503},
			{"GET", "/config_dump", 503},
			{"POST", "/shutdown", 503},
			{"GET", "/", 404},
			{"GET", "/metrics/", 404},
		} {
			if rec := serveDirect(h, tc.method, tc.path, local); rec.Code != tc.want {
				t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, rec.Code, tc.want)
			}
		}
	})
	t.Run("config dump error", func(t *testing.T) {
		h := admin.Handler(admin.Options{ConfigDump: func() ([]byte, error) { return nil, errors.New("marshal: boom") }})
		rec := serveDirect(h, "GET", "/config_dump", local)
		if rec.Code != 500 || !strings.Contains(rec.Body.String(), "marshal: boom") {
			t.Errorf("status %d body %q", rec.Code, rec.Body.String())
		}
	})
	t.Run("concurrent shutdown posts", func(t *testing.T) {
		var calls atomic.Int32
		done := make(chan struct{})
		h := admin.Handler(admin.Options{Shutdown: func() {
			if calls.Add(1) == 1 {
				close(done)
			}
		}})
		recs := make(chan int, 8)
		for range 8 {
			go func() { recs <- serveDirect(h, "POST", "/shutdown", local).Code }()
		}
		for range 8 {
			if code := <-recs; code != http.StatusAccepted {
				t.Errorf("status %d, want 202", code)
			}
		}
		<-done
		if n := calls.Load(); n != 1 {
			t.Errorf("Shutdown called %d times, want 1", n)
		}
	})
}

func TestServeAlreadyCancelled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := admin.Serve(ctx, ln, admin.Options{}); err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Error("listener still open after Serve returned")
	}
}

func TestServeClosedListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ln.Close()
	err = admin.Serve(context.Background(), ln, admin.Options{})
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve = %v, want an error wrapping net.ErrClosed", err)
	}
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	s := startServer(t, "tcp", "127.0.0.1:0", admin.Options{Ready: func() error {
		close(entered)
		<-release
		return nil
	}})
	got := make(chan string, 1)
	go func() {
		resp, err := s.client.Get(s.base + "/ready")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-entered
	s.cancel()
	time.Sleep(50 * time.Millisecond) // let Serve begin its graceful shutdown
	close(release)
	if body := <-got; body != "ready\n" {
		t.Errorf("in-flight request got %q, want ready", body)
	}
	if err := s.stop(t); err != nil {
		t.Errorf("Serve: %v", err)
	}
}
