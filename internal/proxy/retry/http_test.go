package retry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/retry"
)

// upstream is an httptest server that answers 503 to its first failFirst
// requests and 200 "ok" after, recording every request body it received.
type upstream struct {
	*httptest.Server
	failFirst int
	mu        sync.Mutex
	bodies    [][]byte
}

func newUpstream(t *testing.T, failFirst int) *upstream {
	u := &upstream{failFirst: failFirst}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		u.mu.Lock()
		u.bodies = append(u.bodies, body)
		n := len(u.bodies)
		u.mu.Unlock()
		if n <= u.failFirst {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) received() [][]byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.bodies
}

// transportAttempt sends each try with a clone of http.DefaultTransport to
// the next of addrs, round robin, marking dial failures ErrNotSent.
func transportAttempt(t *testing.T, addrs ...string) retry.Attempt {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	var next atomic.Int64
	return func(req *http.Request) (*http.Response, error) {
		addr := addrs[int(next.Add(1)-1)%len(addrs)]
		req.URL.Scheme, req.URL.Host = "http", addr
		resp, err := tr.RoundTrip(req)
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("endpoint %s: %w: %w", addr, retry.ErrNotSent, err)
		}
		return resp, err
	}
}

func hostOf(s *httptest.Server) string { return s.Listener.Addr().String() }

func TestHTTPServerFailingFirstTries(t *testing.T) {
	up := newUpstream(t, 2)
	p := testPolicy()
	p.Statuses = []retry.StatusRange{{502, 504}}
	body := payload(20 << 10)
	req := serverSide(newRequest(t, context.Background(), "PUT", unknownLength(body)))

	resp, res, err := retry.Do(req, p, plentyBudget(t), transportAttempt(t, hostOf(up.Server)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(got) != "ok" {
		t.Fatalf("final response %d %q, %v; want 200 ok", resp.StatusCode, got, err)
	}
	if res.Retries != 2 {
		t.Fatalf("Retries = %d; want 2", res.Retries)
	}
	recv := up.received()
	if len(recv) != 3 {
		t.Fatalf("upstream got %d requests; want 3", len(recv))
	}
	for i, b := range recv {
		if !bytes.Equal(b, body) {
			t.Errorf("try %d delivered %d bytes that differ from the %d-byte body", i+1, len(b), len(body))
		}
	}
}

func TestHTTPLargeBodyDeliveredOnceIntact(t *testing.T) {
	big := payload(300 << 10)
	for _, known := range []bool{true, false} {
		t.Run(fmt.Sprintf("known length %v", known), func(t *testing.T) {
			up := newUpstream(t, 1000)
			p := testPolicy()
			p.Statuses = []retry.StatusRange{{503, 503}}
			var r io.Reader = bytes.NewReader(big)
			if !known {
				r = unknownLength(big)
			}
			req := serverSide(newRequest(t, context.Background(), "PUT", r))
			resp, res, err := retry.Do(req, p, plentyBudget(t), transportAttempt(t, hostOf(up.Server)))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 503 || res.Retries != 0 {
				t.Fatalf("status %d, %+v; want the first 503, no retry", resp.StatusCode, res)
			}
			recv := up.received()
			if len(recv) != 1 || !bytes.Equal(recv[0], big) {
				t.Fatalf("upstream got %d requests; want 1 with the whole %d-byte body", len(recv), len(big))
			}
		})
	}
}

func TestHTTPConnectFailureRetriedElsewhere(t *testing.T) {
	// The first endpoint refuses connections; the POST never left, so it is
	// retried, on the next endpoint.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	up := newUpstream(t, 0)
	body := []byte(`{"order": 42}`)
	req := serverSide(newRequest(t, context.Background(), "POST", unknownLength(body)))

	resp, res, err := retry.Do(req, testPolicy(), plentyBudget(t), transportAttempt(t, dead, hostOf(up.Server)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || res.Retries != 1 {
		t.Fatalf("status %d, %+v; want 200 after one retry", resp.StatusCode, res)
	}
	if recv := up.received(); len(recv) != 1 || !bytes.Equal(recv[0], body) {
		t.Fatalf("upstream got %q; want the body once", recv)
	}
}

func TestHTTPPerTryTimeout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		bodyAfter time.Duration
		wantBody  bool
	}{
		{"body within the per-try timeout", 10 * time.Millisecond, true},
		// Gateway API's backendRequest covers the whole response.
		{"body later than the per-try timeout is cut", 300 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch calls.Add(1) {
				case 1: // hangs before the headers
					select {
					case <-r.Context().Done():
					case <-release:
					}
					return
				default: // headers at once, then the body
					w.WriteHeader(200)
					w.(http.Flusher).Flush()
					select {
					case <-time.After(tc.bodyAfter):
					case <-r.Context().Done():
						return
					}
					io.WriteString(w, "slow body")
				}
			}))
			defer srv.Close()
			defer close(release)

			p := testPolicy()
			p.OnReset = true
			p.PerTryTimeout = 100 * time.Millisecond
			resp, res, err := retry.Do(newGet(t), p, plentyBudget(t), transportAttempt(t, hostOf(srv)))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if full := err == nil && string(got) == "slow body"; full != tc.wantBody {
				t.Fatalf("body %q, %v; want the whole body: %v", got, err, tc.wantBody)
			}
			if res.Retries != 1 || calls.Load() != 2 {
				t.Fatalf("%d calls, %+v; want the hung try retried once", calls.Load(), res)
			}
		})
	}
}
