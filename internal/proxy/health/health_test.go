package health

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weft-mesh/weft/internal/clocktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const waitTimeout = 10 * time.Second

func TestParseSpec(t *testing.T) {
	cases := []struct {
		in      string
		want    Spec
		wantErr bool
	}{
		{"tcp", Spec{Kind: KindTCP}, false},
		{"none", Spec{Kind: KindNone}, false},
		{"http:/healthz", Spec{Kind: KindHTTP, Path: "/healthz"}, false},
		{"http:/ready?full=1", Spec{Kind: KindHTTP, Path: "/ready?full=1"}, false},
		{"http:healthz", Spec{}, true},
		{"http:", Spec{}, true},
		{"http:/a b", Spec{}, true},
		{"grpc", Spec{}, true},
		{"", Spec{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSpec(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("ParseSpec(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
			if err == nil && got.String() != tc.in {
				t.Errorf("String() = %q, want %q", got.String(), tc.in)
			}
		})
	}
}

// TestHysteresis: the first result decides; then two failures in a row to
// turn unhealthy, one success to recover.
func TestHysteresis(t *testing.T) {
	fail := errors.New("refused")
	cases := []struct {
		name    string
		results []error
		want    []string // status after each result, "" when unchanged
	}{
		{"first success", []error{nil, nil}, []string{"healthy", ""}},
		{"first failure decides at once", []error{fail, fail, nil}, []string{"unhealthy", "", "healthy"}},
		{"one failure is forgiven", []error{nil, fail, nil, fail, nil}, []string{"healthy", "", "", "", ""}},
		{"two failures in a row", []error{nil, fail, fail, fail, nil}, []string{"healthy", "", "unhealthy", "", "healthy"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Options{Spec: Spec{Kind: KindTCP}, Host: "127.0.0.1", Ports: []uint16{1}, OnChange: func(Status) {}})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range tc.results {
				st, changed := c.observe(r)
				got := ""
				if changed {
					got = map[bool]string{true: "healthy", false: "unhealthy"}[st.Healthy]
				}
				if got != tc.want[i] {
					t.Fatalf("after result %d (%v): %q, want %q", i, r, got, tc.want[i])
				}
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	cb := func(Status) {}
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"none", Options{Spec: Spec{Kind: KindNone}, Host: "127.0.0.1", Ports: []uint16{80}, OnChange: cb}, "none"},
		{"no ports", Options{Spec: Spec{Kind: KindTCP}, Host: "127.0.0.1", OnChange: cb}, "ports"},
		{"no host", Options{Spec: Spec{Kind: KindHTTP, Path: "/"}, Ports: []uint16{80}, OnChange: cb}, "host"},
		{"no callback", Options{Spec: Spec{Kind: KindTCP}, Host: "127.0.0.1", Ports: []uint16{80}}, "OnChange"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error about %s", err, tc.want)
			}
		})
	}
}

// run starts a checker on a manual clock and returns its status changes.
type run struct {
	t       *testing.T
	clk     *clocktest.Clock
	changes chan Status
}

func startChecker(t *testing.T, o Options) *run {
	t.Helper()
	r := &run{t: t, clk: clocktest.New(), changes: make(chan Status, 10)}
	o.Host, o.After, o.Interval = "127.0.0.1", r.clk.After, time.Second
	o.OnChange = func(s Status) { r.changes <- s }
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// next waits for the next status change.
func (r *run) next(wantHealthy bool, detail string) {
	r.t.Helper()
	select {
	case s := <-r.changes:
		if s.Healthy != wantHealthy || !strings.Contains(s.Detail, detail) {
			r.t.Fatalf("status %+v, want healthy=%v with %q in the detail", s, wantHealthy, detail)
		}
	case <-time.After(waitTimeout):
		r.t.Fatalf("no status change (want healthy=%v)", wantHealthy)
	}
}

// tick waits until the checker waits for its next probe, checks that the
// probe just done changed nothing when quiet is set, and moves the clock
// to the next probe.
func (r *run) tick(quiet bool) {
	r.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for r.clk.Waiters() == 0 {
		if time.Now().After(deadline) {
			r.t.Fatal("the checker never waited for its next probe")
		}
		time.Sleep(time.Millisecond)
	}
	if quiet {
		select {
		case s := <-r.changes:
			r.t.Fatalf("unexpected status change %+v", s)
		default:
		}
	}
	r.clk.Advance(time.Second)
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

func port(ln net.Listener) uint16 { return uint16(ln.Addr().(*net.TCPAddr).Port) }

// TestTCPCheck: every port must accept; an application that stops
// listening turns unhealthy on the second failed probe and healthy again
// on the first that succeeds.
func TestTCPCheck(t *testing.T) {
	a, b := listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
	defer a.Close()
	addrB := b.Addr().String()
	r := startChecker(t, Options{Spec: Spec{Kind: KindTCP}, Ports: []uint16{port(a), port(b)}})
	r.next(true, "tcp check passed")
	b.Close()
	r.tick(false)
	r.tick(true) // one failure: still healthy
	r.next(false, addrB)
	b = listen(t, addrB)
	defer b.Close()
	r.tick(false)
	r.next(true, "passed")
}

// TestHTTPCheck: GET on the first port, 2xx and 3xx are healthy (a
// redirect is not followed), other statuses and timeouts are not.
func TestHTTPCheck(t *testing.T) {
	var code atomic.Int64
	var stall atomic.Bool
	var paths atomic.Value
	code.Store(200)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		paths.Store(req.URL.RequestURI())
		if stall.Load() {
			select {
			case <-req.Context().Done():
			case <-stop:
			}
			return
		}
		if c := int(code.Load()); c == http.StatusFound {
			http.Redirect(w, req, "/elsewhere", c)
			return
		}
		w.WriteHeader(int(code.Load()))
	})}
	go srv.Serve(ln)
	defer func() { close(stop); srv.Close() }()

	r := startChecker(t, Options{Spec: Spec{Kind: KindHTTP, Path: "/healthz?deep=1"}, Ports: []uint16{port(ln), 1}, Timeout: 200 * time.Millisecond})
	r.next(true, "passed")
	if p, _ := paths.Load().(string); p != "/healthz?deep=1" {
		t.Errorf("the check asked for %q", p)
	}
	steps := []struct {
		name    string
		set     func()
		healthy bool
		detail  string
	}{
		{"server error", func() { code.Store(503) }, false, "status 503"},
		{"redirect", func() { code.Store(302) }, true, "passed"},
		{"not found", func() { code.Store(404) }, false, "status 404"},
		{"no content", func() { code.Store(204) }, true, "passed"},
		{"no answer within the timeout", func() { stall.Store(true) }, false, "deadline exceeded"},
	}
	for _, s := range steps {
		t.Log(s.name)
		s.set()
		r.tick(false)
		if !s.healthy {
			r.tick(true) // the first failure is forgiven
		}
		r.next(s.healthy, s.detail)
	}
}
