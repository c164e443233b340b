package retry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// Defaults and limits for Policy.
const (
	DefaultMaxRetries   = 2
	DefaultMaxBodyBytes = 64 << 10
	DefaultBackoffBase  = 25 * time.Millisecond
	DefaultBackoffMax   = 250 * time.Millisecond

	maxMaxRetries   = 10
	maxMaxBodyBytes = 16 << 20
)

// Policy says which failed tries of a request are retried, how often and how.
// Fields are taken literally (Policy{} retries nothing); start from
// DefaultPolicy.
type Policy struct {
	// MaxRetries is the most retries per request; 0 means no retries.
	MaxRetries int
	// Statuses are the HTTP statuses retried, for idempotent requests (or all
	// with RetryNonIdempotent). None by default.
	Statuses []StatusRange
	// GRPCCodes are the gRPC status codes retried when a trailers-only
	// response carries them in its Grpc-Status header (e.g. 14 UNAVAILABLE).
	// gRPC calls are POSTs; a listed code is retried anyway, like Envoy.
	GRPCCodes []int
	// OnConnectFailure retries tries whose error wraps ErrNotSent, for any
	// method: the request never reached the endpoint.
	OnConnectFailure bool
	// OnReset retries tries that failed after the request was (maybe) sent,
	// before response headers: reset, broken connection, per-try timeout.
	// Only for idempotent requests, or all with RetryNonIdempotent.
	OnReset bool
	// RetryNonIdempotent lets POST, PATCH and other non-idempotent requests
	// be retried on a listed status or on reset. Explicit opt-in.
	RetryNonIdempotent bool
	// MaxBodyBytes is the largest request body buffered so it can be sent
	// again. A request with a larger body (known length, or an unknown-length
	// body that turns out larger) is sent once, streamed, and not retried.
	// Requests with Request.GetBody set are not buffered and not limited.
	MaxBodyBytes int
	// Backoff is the wait before each retry.
	Backoff Backoff
	// PerTryTimeout bounds one try from the moment it is sent until its
	// whole response has been received (Gateway API's
	// timeouts.backendRequest): a try without response headers in time is
	// retried as a timeout; the body of the response Do returns is cut when
	// the time runs out. 0 means no limit beyond the request's context.
	// Upgraded connections (101) are not limited once established.
	PerTryTimeout time.Duration
	// Sleep waits d or until ctx is done, returning ctx's error then. nil
	// means a timer; tests inject a fake.
	Sleep func(ctx context.Context, d time.Duration) error
}

// StatusRange is an inclusive range of HTTP statuses, e.g. {502, 504}.
type StatusRange struct{ From, To int }

// Backoff is full-jitter exponential backoff: before retry n (1-based) Do
// waits Rand() * min(Max, Base * 2^(n-1)). A zero Base does not wait.
type Backoff struct {
	Base time.Duration
	Max  time.Duration
	// Rand returns a number in [0, 1); nil means math/rand/v2.Float64.
	Rand func() float64
}

// DefaultPolicy returns a safe policy: up to 2 retries of connect failures
// only, bodies up to 64 KiB, backoff 25ms doubling up to 250ms.
func DefaultPolicy() Policy {
	return Policy{
		MaxRetries:       DefaultMaxRetries,
		OnConnectFailure: true,
		MaxBodyBytes:     DefaultMaxBodyBytes,
		Backoff:          Backoff{Base: DefaultBackoffBase, Max: DefaultBackoffMax},
	}
}

// Validate reports the first invalid field of p, naming it and the fix.
func (p Policy) Validate() error {
	if p.MaxRetries < 0 || p.MaxRetries > maxMaxRetries {
		return fmt.Errorf("retry: Policy.MaxRetries is %d; set it between 0 (no retries) and %d (default %d)",
			p.MaxRetries, maxMaxRetries, DefaultMaxRetries)
	}
	for i, r := range p.Statuses {
		if r.From < 400 || r.To > 599 || r.From > r.To {
			return fmt.Errorf("retry: Policy.Statuses[%d] is %d-%d; set From <= To, both within 400-599 (e.g. 502-504)",
				i, r.From, r.To)
		}
	}
	for i, c := range p.GRPCCodes {
		if c < 1 || c > 16 {
			return fmt.Errorf("retry: Policy.GRPCCodes[%d] is %d; set a gRPC error code between 1 and 16 (e.g. 14 UNAVAILABLE)", i, c)
		}
	}
	if p.MaxBodyBytes < 0 || p.MaxBodyBytes > maxMaxBodyBytes {
		return fmt.Errorf("retry: Policy.MaxBodyBytes is %d; set it between 0 and %d (default %d)",
			p.MaxBodyBytes, maxMaxBodyBytes, DefaultMaxBodyBytes)
	}
	if p.Backoff.Base < 0 || p.Backoff.Max < p.Backoff.Base {
		return fmt.Errorf("retry: Policy.Backoff is {Base: %v, Max: %v}; set 0 <= Base <= Max (default {Base: %v, Max: %v})",
			p.Backoff.Base, p.Backoff.Max, DefaultBackoffBase, DefaultBackoffMax)
	}
	if p.PerTryTimeout < 0 {
		return fmt.Errorf("retry: Policy.PerTryTimeout is %v; set it >= 0 (0 means no per-try timeout)", p.PerTryTimeout)
	}
	return nil
}

// IsIdempotent reports whether an HTTP method is idempotent (RFC 9110
// 9.2.2): GET, HEAD, OPTIONS, TRACE, PUT, DELETE. "" means GET.
func IsIdempotent(method string) bool {
	switch method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// idempotent reports whether req may be sent twice: its method is
// idempotent or, as net/http's Transport assumes, it carries an
// Idempotency-Key.
func idempotent(req *http.Request) bool {
	if IsIdempotent(req.Method) {
		return true
	}
	if _, ok := req.Header["Idempotency-Key"]; ok {
		return true
	}
	_, ok := req.Header["X-Idempotency-Key"]
	return ok
}

// statusListed reports whether code is in one of p.Statuses.
func (p *Policy) statusListed(code int) bool {
	for _, r := range p.Statuses {
		if code >= r.From && code <= r.To {
			return true
		}
	}
	return false
}

// grpcListed reports whether code is in p.GRPCCodes.
func (p *Policy) grpcListed(code int) bool {
	for _, c := range p.GRPCCodes {
		if c == code {
			return true
		}
	}
	return false
}

// backoff returns the wait before retry n (1-based).
func (p *Policy) backoff(n int) time.Duration {
	b := p.Backoff
	if b.Base <= 0 {
		return 0
	}
	ceil := b.Max
	if n <= 62 && b.Base <= b.Max>>(n-1) {
		ceil = b.Base << (n - 1)
	}
	r := b.Rand
	if r == nil {
		r = rand.Float64
	}
	f := r()
	if !(f >= 0) { // negative or NaN
		f = 0
	} else if f > 1 {
		f = 1
	}
	return time.Duration(f * float64(ceil))
}

// sleep waits d or until ctx is done.
func (p *Policy) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
