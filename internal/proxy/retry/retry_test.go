package retry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/retry"
)

const testURL = "http://web.default.svc:8080/api"

func newRequest(t testing.TB, ctx context.Context, method string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, testURL, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func newGet(t testing.TB) *http.Request { return newRequest(t, context.Background(), "GET", nil) }

func TestDoConditions(t *testing.T) {
	type mods func(*retry.Policy)
	statuses := func(p *retry.Policy) { p.Statuses = []retry.StatusRange{{502, 504}} }
	tests := []struct {
		name      string
		method    string
		header    http.Header
		policy    mods
		outcomes  []outcome
		wantTries int
		want      int   // final status; 0 when an error is wanted
		wantErr   error // errors.Is target
	}{
		{"connect failure on POST retried", "POST", nil, nil,
			[]outcome{{err: errRefused}, status(200)}, 2, 200, nil},
		{"connect failure not retried when OnConnectFailure is off", "POST", nil,
			func(p *retry.Policy) { p.OnConnectFailure = false },
			[]outcome{{err: errRefused}, status(200)}, 1, 0, retry.ErrNotSent},
		{"connect failure retried until MaxRetries", "GET", nil, nil,
			[]outcome{{err: errRefused}}, 3, 0, retry.ErrNotSent},
		{"reset on GET retried with OnReset", "GET", nil,
			func(p *retry.Policy) { p.OnReset = true },
			[]outcome{{err: errReset}, status(200)}, 2, 200, nil},
		{"reset on GET not retried without OnReset", "GET", nil, nil,
			[]outcome{{err: errReset}, status(200)}, 1, 0, errReset},
		{"reset on POST not retried", "POST", nil,
			func(p *retry.Policy) { p.OnReset = true },
			[]outcome{{err: errReset}, status(200)}, 1, 0, errReset},
		{"reset on POST retried with RetryNonIdempotent", "POST", nil,
			func(p *retry.Policy) { p.OnReset, p.RetryNonIdempotent = true, true },
			[]outcome{{err: errReset}, status(200)}, 2, 200, nil},
		{"503 on GET retried", "GET", nil, statuses,
			[]outcome{status(503), status(200)}, 2, 200, nil},
		{"503 on DELETE retried", "DELETE", nil, statuses,
			[]outcome{status(503), status(200)}, 2, 200, nil},
		{"503 on POST not retried", "POST", nil, statuses,
			[]outcome{status(503), status(200)}, 1, 503, nil},
		{"503 on PATCH not retried", "PATCH", nil, statuses,
			[]outcome{status(503), status(200)}, 1, 503, nil},
		{"503 on POST retried with RetryNonIdempotent", "POST", nil,
			func(p *retry.Policy) { statuses(p); p.RetryNonIdempotent = true },
			[]outcome{status(503), status(200)}, 2, 200, nil},
		{"503 on POST with an Idempotency-Key retried", "POST", http.Header{"Idempotency-Key": {"a1"}}, statuses,
			[]outcome{status(503), status(200)}, 2, 200, nil},
		{"status outside the ranges not retried", "GET", nil, statuses,
			[]outcome{status(500), status(200)}, 1, 500, nil},
		{"no status retried by default", "GET", nil, nil,
			[]outcome{status(503), status(200)}, 1, 503, nil},
		{"gRPC UNAVAILABLE trailers-only retried when listed", "POST", nil,
			func(p *retry.Policy) { p.GRPCCodes = []int{14} },
			[]outcome{grpcStatus("14"), grpcStatus("0")}, 2, 200, nil},
		{"gRPC UNAVAILABLE not retried when not listed", "POST", nil,
			func(p *retry.Policy) { p.GRPCCodes = []int{4} },
			[]outcome{grpcStatus("14"), grpcStatus("0")}, 1, 200, nil},
		{"gRPC UNAVAILABLE not retried by default", "POST", nil, nil,
			[]outcome{grpcStatus("14"), grpcStatus("0")}, 1, 200, nil},
		{"gRPC status in trailers (after streaming) not retried", "POST", nil,
			func(p *retry.Policy) { p.GRPCCodes = []int{14} },
			[]outcome{{status: 200, header: http.Header{"Content-Type": {"application/grpc"}}, trailer: http.Header{"Grpc-Status": {"14"}}, body: "msg"}, grpcStatus("0")},
			1, 200, nil},
		{"gRPC OK not retried", "POST", nil,
			func(p *retry.Policy) { p.GRPCCodes = []int{14} },
			[]outcome{grpcStatus("0")}, 1, 200, nil},
		{"MaxRetries respected", "GET", nil, statuses,
			[]outcome{status(503)}, 3, 503, nil},
		{"MaxRetries 5", "GET", nil, func(p *retry.Policy) { statuses(p); p.MaxRetries = 5 },
			[]outcome{status(503)}, 6, 503, nil},
		{"MaxRetries 0 means no retries", "GET", nil, func(p *retry.Policy) { statuses(p); p.MaxRetries = 0 },
			[]outcome{status(503), status(200)}, 1, 503, nil},
		{"zero Policy retries nothing", "GET", nil, func(p *retry.Policy) { *p = retry.Policy{} },
			[]outcome{{err: errRefused}, status(200)}, 1, 0, retry.ErrNotSent},
		{"success not retried", "GET", nil, statuses,
			[]outcome{status(200), status(503)}, 1, 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy()
			if tt.policy != nil {
				tt.policy(&p)
			}
			p.Sleep = noSleep
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			req := newRequest(t, context.Background(), tt.method, strings.NewReader("hello"))
			for k, v := range tt.header {
				req.Header[k] = v
			}
			s := &script{outcomes: tt.outcomes}
			resp, res, err := retry.Do(req, p, plentyBudget(t), s.attempt)
			if got := s.tries(); got != tt.wantTries {
				t.Errorf("tries = %d; want %d", got, tt.wantTries)
			}
			if res.Retries != tt.wantTries-1 || res.BudgetExhausted {
				t.Errorf("Result = %+v; want {Retries: %d}", res, tt.wantTries-1)
			}
			for i, b := range s.bodies {
				if string(b) != "hello" {
					t.Errorf("try %d sent body %q; want %q", i+1, b, "hello")
				}
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || resp != nil {
					t.Fatalf("Do() = %v, %v; want nil, an error wrapping %v", resp, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Do() error = %v", err)
			}
			checkFinal(t, s, resp, tt.want)
		})
	}
}

// checkFinal checks that resp is the last response the script made, with the
// wanted status and untouched, and that every earlier one was closed.
func checkFinal(t *testing.T, s *script, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Errorf("final status = %d; want %d", resp.StatusCode, want)
	}
	last := s.resps[len(s.resps)-1]
	if resp.Body != io.ReadCloser(last) {
		t.Fatalf("final response body is not the last try's")
	}
	if last.isClosed() || int64(last.r.Len()) != last.r.Size() {
		t.Errorf("final response body was read or closed by Do")
	}
	for i, b := range s.resps[:len(s.resps)-1] {
		if !b.isClosed() {
			t.Errorf("response of retried try %d was not closed", i+1)
		}
	}
	resp.Body.Close()
}

func TestDoNilBudgetDisablesRetries(t *testing.T) {
	s := &script{outcomes: []outcome{{err: errRefused}, status(200)}}
	_, res, err := retry.Do(newGet(t), testPolicy(), nil, s.attempt)
	if !errors.Is(err, retry.ErrNotSent) || s.tries() != 1 || res.Retries != 0 {
		t.Fatalf("Do with nil budget: tries %d, %+v, %v; want 1 try and the connect error", s.tries(), res, err)
	}
}

func TestDoRetriedResponseDrainedBounded(t *testing.T) {
	// A small retried body is read to the end so the connection can be
	// reused; a big one is read at most 4 KiB and then closed.
	for _, size := range []int{100, 1 << 20} {
		p := testPolicy()
		p.Statuses = []retry.StatusRange{{503, 503}}
		s := &script{outcomes: []outcome{{status: 503, body: strings.Repeat("x", size)}, status(200)}}
		resp, _, err := retry.Do(newGet(t), p, plentyBudget(t), s.attempt)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		first := s.resps[0]
		read := first.r.Size() - int64(first.r.Len())
		if !first.isClosed() || read > 4<<10 || (size <= 4<<10 && read != int64(size)) {
			t.Errorf("retried %d-byte body: closed %v, %d bytes read; want closed, min(size, 4 KiB) read", size, first.isClosed(), read)
		}
	}
}

func TestDoContext(t *testing.T) {
	p := testPolicy()
	p.Statuses = []retry.StatusRange{{503, 503}}
	p.OnReset = true

	t.Run("cancelled during a try: no more tries", func(t *testing.T) {
		for _, o := range []outcome{status(503), {err: errReset}, {err: errRefused}} {
			ctx, cancel := context.WithCancel(context.Background())
			s := &script{outcomes: []outcome{o, status(200)}, hook: func(int, *http.Request) { cancel() }}
			resp, res, err := retry.Do(newRequest(t, ctx, "GET", nil), p, plentyBudget(t), s.attempt)
			if s.tries() != 1 || res.Retries != 0 {
				t.Errorf("outcome %+v: %d tries; want 1", o, s.tries())
			}
			if resp != nil {
				resp.Body.Close()
			} else if err == nil {
				t.Errorf("outcome %+v: no response and no error", o)
			}
			cancel()
		}
	})

	t.Run("try gets the request's context", func(t *testing.T) {
		type key struct{}
		ctx := context.WithValue(context.Background(), key{}, "v")
		var got []any
		s := &script{outcomes: []outcome{status(503), status(200)}, hook: func(_ int, r *http.Request) { got = append(got, r.Context().Value(key{})) }}
		resp, _, err := retry.Do(newRequest(t, ctx, "GET", nil), p, plentyBudget(t), s.attempt)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if len(got) != 2 || got[0] != "v" || got[1] != "v" {
			t.Fatalf("tries saw context values %v; want [v v]", got)
		}
	})

	t.Run("cancelled during backoff: the wait ends at once", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p := p
		p.Sleep = nil // the real timer
		p.Backoff = retry.Backoff{Base: time.Hour, Max: time.Hour, Rand: func() float64 { return 1 }}
		s := &script{outcomes: []outcome{status(503), status(200)}, hook: func(int, *http.Request) {
			time.AfterFunc(10*time.Millisecond, cancel)
		}}
		done := make(chan struct{})
		var (
			resp *http.Response
			res  retry.Result
			err  error
		)
		go func() {
			defer close(done)
			resp, res, err = retry.Do(newRequest(t, ctx, "GET", nil), p, plentyBudget(t), s.attempt)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Do still waiting 10s after its context was cancelled")
		}
		if resp != nil || !errors.Is(err, context.Canceled) {
			t.Fatalf("Do() = %v, %v; want nil, context.Canceled", resp, err)
		}
		if s.tries() != 1 || res.Retries != 0 {
			t.Fatalf("%d tries, %+v; want 1 try, no retry", s.tries(), res)
		}
		if !s.resps[0].isClosed() {
			t.Fatal("response dropped for the retry was not closed")
		}
	})
}

func TestDoPerTryTimeoutScripted(t *testing.T) {
	p := testPolicy()
	p.OnReset = true
	p.PerTryTimeout = 20 * time.Millisecond
	// A try that blocks until its context is done, as a transport does.
	block := func(req *http.Request) (*http.Response, error) {
		<-req.Context().Done()
		return nil, context.Cause(req.Context())
	}
	tries := 0
	attempt := func(req *http.Request) (*http.Response, error) {
		tries++
		return block(req)
	}
	_, res, err := retry.Do(newGet(t), p, plentyBudget(t), attempt)
	if !errors.Is(err, retry.ErrPerTryTimeout) {
		t.Fatalf("error = %v; want one wrapping ErrPerTryTimeout", err)
	}
	if tries != 3 || res.Retries != 2 {
		t.Fatalf("%d tries, %+v; want 3 tries (MaxRetries 2)", tries, res)
	}

	// Without OnReset a timed-out try is final.
	p.OnReset = false
	tries = 0
	if _, _, err := retry.Do(newGet(t), p, plentyBudget(t), attempt); !errors.Is(err, retry.ErrPerTryTimeout) || tries != 1 {
		t.Fatalf("without OnReset: %d tries, %v; want 1 try and ErrPerTryTimeout", tries, err)
	}
}

func TestDoBodies(t *testing.T) {
	const limit = 64 << 10
	small, big := payload(10<<10), payload(200<<10)
	tests := []struct {
		name      string
		req       func(t *testing.T) *http.Request
		sent      []byte
		wantTries int
	}{
		{"known length within limit, no GetBody", func(t *testing.T) *http.Request {
			return serverSide(newRequest(t, context.Background(), "PUT", bytes.NewReader(small)))
		}, small, 3},
		{"unknown length within limit", func(t *testing.T) *http.Request {
			return serverSide(newRequest(t, context.Background(), "PUT", unknownLength(small)))
		}, small, 3},
		{"unknown length exactly at the limit", func(t *testing.T) *http.Request {
			return serverSide(newRequest(t, context.Background(), "PUT", unknownLength(big[:limit])))
		}, big[:limit], 3},
		{"unknown length empty", func(t *testing.T) *http.Request {
			return serverSide(newRequest(t, context.Background(), "PUT", unknownLength(nil)))
		}, nil, 3},
		{"known length over the limit: sent once", func(t *testing.T) *http.Request {
			return serverSide(newRequest(t, context.Background(), "PUT", bytes.NewReader(big)))
		}, big, 1},
		{"unknown length one byte over the limit: sent once", func(t *testing.T) *http.Request {
			return serverSide(newRequest(t, context.Background(), "PUT", unknownLength(big[:limit+1])))
		}, big[:limit+1], 1},
		{"unknown length over the limit: sent once", func(t *testing.T) *http.Request {
			return serverSide(newRequest(t, context.Background(), "PUT", unknownLength(big)))
		}, big, 1},
		{"GetBody: any size is retried", func(t *testing.T) *http.Request {
			return newRequest(t, context.Background(), "PUT", bytes.NewReader(big))
		}, big, 3},
		{"no body", func(t *testing.T) *http.Request {
			return newRequest(t, context.Background(), "PUT", nil)
		}, nil, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy()
			p.Statuses = []retry.StatusRange{{503, 503}}
			p.MaxBodyBytes = limit
			s := &script{outcomes: []outcome{status(503)}}
			resp, res, err := retry.Do(tt.req(t), p, plentyBudget(t), s.attempt)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if s.tries() != tt.wantTries || res.Retries != tt.wantTries-1 {
				t.Fatalf("%d tries, %+v; want %d tries", s.tries(), res, tt.wantTries)
			}
			for i, b := range s.bodies {
				if !bytes.Equal(b, tt.sent) {
					t.Errorf("try %d sent %d bytes, not the %d of the request body", i+1, len(b), len(tt.sent))
				}
			}
		})
	}
}

// closeRecorder is a request body that records Close.
type closeRecorder struct {
	io.Reader
	closed int
}

func (c *closeRecorder) Close() error { c.closed++; return nil }

func TestDoClosesRequestBody(t *testing.T) {
	p := testPolicy()
	p.Statuses = []retry.StatusRange{{503, 503}}
	for _, size := range []int{10, 100 << 10} {
		for _, outcomes := range [][]outcome{{status(200)}, {status(503)}, {status(503), status(200)}} {
			body := &closeRecorder{Reader: bytes.NewReader(payload(size))}
			req := serverSide(newRequest(t, context.Background(), "PUT", body))
			s := &script{outcomes: outcomes}
			resp, _, err := retry.Do(req, p, plentyBudget(t), s.attempt)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if body.closed != 1 {
				t.Errorf("%d-byte body, outcomes %v: closed %d times; want once", size, outcomes, body.closed)
			}
		}
	}
}

func TestDoBodyReadError(t *testing.T) {
	// The client's body breaks after 100 bytes: the try fails and nothing is
	// retried, the body cannot be sent whole.
	p := testPolicy()
	p.OnReset = true
	broken := errors.New("client went away")
	req := serverSide(newRequest(t, context.Background(), "PUT", io.MultiReader(bytes.NewReader(payload(100)), iotestErr(broken))))
	s := &script{outcomes: []outcome{status(200)}}
	_, res, err := retry.Do(req, p, plentyBudget(t), s.attempt)
	if !errors.Is(err, broken) || s.tries() != 1 || res.Retries != 0 {
		t.Fatalf("%d tries, %+v, %v; want 1 try and the body's error", s.tries(), res, err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func iotestErr(err error) io.Reader { return errReader{err} }

func TestDoGetBodyCalledPerRetry(t *testing.T) {
	p := testPolicy()
	p.Statuses = []retry.StatusRange{{503, 503}}
	req := newRequest(t, context.Background(), "PUT", strings.NewReader("abc"))
	calls := 0
	getBody := req.GetBody
	req.GetBody = func() (io.ReadCloser, error) { calls++; return getBody() }
	s := &script{outcomes: []outcome{status(503)}}
	resp, _, err := retry.Do(req, p, plentyBudget(t), s.attempt)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if calls != 2 || s.tries() != 3 {
		t.Fatalf("GetBody called %d times over %d tries; want 2 over 3", calls, s.tries())
	}

	// GetBody failing leaves the last response final.
	req = newRequest(t, context.Background(), "PUT", strings.NewReader("abc"))
	req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("gone") }
	s = &script{outcomes: []outcome{status(503), status(200)}}
	resp, _, err = retry.Do(req, p, plentyBudget(t), s.attempt)
	if err != nil || resp.StatusCode != 503 || s.tries() != 1 {
		t.Fatalf("with failing GetBody: %d tries, %v; want the first 503", s.tries(), err)
	}
	checkFinal(t, s, resp, 503)
}
