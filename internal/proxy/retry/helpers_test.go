package retry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weft-mesh/weft/internal/clocktest"
	"github.com/weft-mesh/weft/internal/proxy/retry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a BudgetConfig.Now that only moves when told to.
// newBudget returns a budget for c, failing the test when c is invalid.
func newBudget(t testing.TB, c retry.BudgetConfig) *retry.Budget {
	t.Helper()
	b, err := retry.NewBudget(c)
	if err != nil {
		t.Fatalf("NewBudget(%+v): %v", c, err)
	}
	return b
}

// plentyBudget is a budget that never refuses in a test: a reserve of 60000
// retries on a clock that does not move.
func plentyBudget(t testing.TB) *retry.Budget {
	return newBudget(t, retry.BudgetConfig{MinRetriesPerSecond: 1000, TTL: time.Minute, Now: newFakeClock().Now})
}

// noSleep is a Policy.Sleep that does not wait.
func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// testPolicy is DefaultPolicy without backoff waits.
func testPolicy() retry.Policy {
	p := retry.DefaultPolicy()
	p.Sleep = noSleep
	return p
}

// Errors an Attempt may return.
var (
	errRefused = fmt.Errorf("dial 10.0.0.7:8080: %w: %w", retry.ErrNotSent, errors.New("connection refused"))
	errReset   = errors.New("read tcp 10.0.0.7:8080: connection reset by peer")
)

// outcome is the scripted result of one try.
type outcome struct {
	status  int
	header  http.Header
	trailer http.Header
	body    string
	err     error
}

func status(code int) outcome { return outcome{status: code, body: http.StatusText(code)} }

func grpcStatus(code string) outcome {
	return outcome{status: 200, header: http.Header{"Content-Type": {"application/grpc"}, "Grpc-Status": {code}}}
}

// trackedBody is a response body that records whether it was closed and how
// much of it was read.
type trackedBody struct {
	r      *strings.Reader
	mu     sync.Mutex
	closed bool
}

func (b *trackedBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *trackedBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

func (b *trackedBody) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// script is an Attempt that plays outcomes in order (the last one repeats),
// records the request body of every try and the response bodies it made.
type script struct {
	mu       sync.Mutex
	outcomes []outcome
	bodies   [][]byte
	resps    []*trackedBody
	hook     func(try int, req *http.Request) // called before answering
}

func (s *script) attempt(req *http.Request) (*http.Response, error) {
	var (
		body    []byte
		readErr error
	)
	if req.Body != nil {
		body, readErr = io.ReadAll(req.Body)
		req.Body.Close()
	}
	s.mu.Lock()
	try := len(s.bodies)
	s.bodies = append(s.bodies, body)
	o := s.outcomes[min(try, len(s.outcomes)-1)]
	hook := s.hook
	s.mu.Unlock()
	if readErr != nil {
		return nil, fmt.Errorf("reading request body: %w", readErr)
	}
	if hook != nil {
		hook(try, req)
	}
	if o.err != nil {
		return nil, o.err
	}
	tb := &trackedBody{r: strings.NewReader(o.body)}
	s.mu.Lock()
	s.resps = append(s.resps, tb)
	s.mu.Unlock()
	h := o.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{StatusCode: o.status, Header: h, Trailer: o.trailer, Body: tb, Request: req}, nil
}

func (s *script) tries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

// unknownLength wraps r so that http.NewRequest cannot tell its length nor
// set GetBody, like a proxied chunked request body.
func unknownLength(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

// serverSide makes req look like one the proxy received: no GetBody, and
// ContentLength -1 when unknown.
func serverSide(req *http.Request) *http.Request {
	req.GetBody = nil
	if req.ContentLength == 0 && req.Body != nil && req.Body != http.NoBody {
		req.ContentLength = -1
	}
	return req
}

// payload returns n deterministic, non-repeating-looking bytes.
func payload(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// fakeClock is the manual clock shared by weft's tests.
type fakeClock = clocktest.Clock

func newFakeClock() *fakeClock { return clocktest.New() }
