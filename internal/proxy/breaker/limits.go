package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrOpen is returned, wrapped in an error that names the limit that was hit
// and how to raise it, when a request is refused because the backend is at
// its limit. The proxy answers such a request with 503 (HTTP) or UNAVAILABLE
// (gRPC) without contacting the backend. Test for it with errors.Is.
var ErrOpen = errors.New("circuit breaker open")

// LimitsConfig sets the fixed limits of one backend (a service's endpoints
// taken together), like Envoy's circuit breaker thresholds. The zero value
// sets no limit.
type LimitsConfig struct {
	// MaxRequests is the most requests that may be in flight to the backend
	// at once. 0 means unlimited.
	MaxRequests int

	// MaxPending is the most requests that may wait, in arrival order, for
	// one of the MaxRequests slots when all are taken. 0 means none wait: a
	// request that finds the backend full fails at once. It needs
	// MaxRequests.
	MaxPending int

	// PendingTimeout is the longest a request waits for a slot before it
	// fails with ErrOpen. 0 means it waits as long as its context allows
	// (the request's own deadline). It needs MaxPending.
	PendingTimeout time.Duration
}

// Limits enforces a LimitsConfig. It is safe for concurrent use.
type Limits struct {
	maxRequests int
	maxPending  int
	timeout     time.Duration

	// The errors are built once so that refusing a request, which happens
	// most when the proxy is busiest, does not allocate.
	errFull, errTimeout error

	release func() // l.releaseSlot, bound once so Acquire does not allocate

	mu       sync.Mutex
	inFlight int       // guarded by mu
	queue    []*waiter // guarded by mu; FIFO, len <= maxPending
}

// waiter is a request waiting for a slot. ready is closed, with granted set
// under Limits.mu, when a released slot is handed to it.
type waiter struct {
	ready   chan struct{}
	granted bool
}

// NewLimits checks c and returns the Limits it describes. The error names
// every field that is wrong and how to fix it.
func NewLimits(c LimitsConfig) (*Limits, error) {
	var errs []error
	if c.MaxRequests < 0 {
		errs = append(errs, fmt.Errorf("limits.max_requests: %d must not be negative; remove it for no limit", c.MaxRequests))
	}
	if c.MaxPending < 0 {
		errs = append(errs, fmt.Errorf("limits.max_pending: %d must not be negative; remove it to fail fast when the backend is full", c.MaxPending))
	}
	if c.PendingTimeout < 0 {
		errs = append(errs, fmt.Errorf("limits.pending_timeout: %s must be positive; remove it to let requests wait as long as their own deadline allows", c.PendingTimeout))
	}
	if c.MaxPending > 0 && c.MaxRequests == 0 {
		errs = append(errs, fmt.Errorf("limits.max_pending: %d has no effect without limits.max_requests; set max_requests or remove max_pending", c.MaxPending))
	}
	if c.PendingTimeout > 0 && c.MaxPending <= 0 {
		errs = append(errs, fmt.Errorf("limits.pending_timeout: %s has no effect without limits.max_pending; set max_pending or remove pending_timeout", c.PendingTimeout))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	l := &Limits{
		maxRequests: c.MaxRequests,
		maxPending:  c.MaxPending,
		timeout:     c.PendingTimeout,
		queue:       make([]*waiter, 0, min(c.MaxPending, 64)),
	}
	l.release = l.releaseSlot
	if c.MaxPending == 0 {
		l.errFull = fmt.Errorf("%d requests to the backend are in flight (limits.max_requests); raise limits.max_requests if the backend can take more, or set limits.max_pending to let requests wait: %w", c.MaxRequests, ErrOpen)
	} else {
		l.errFull = fmt.Errorf("%d requests to the backend are in flight and %d are waiting (limits.max_requests, limits.max_pending); raise either if the backend can take more: %w", c.MaxRequests, c.MaxPending, ErrOpen)
	}
	l.errTimeout = fmt.Errorf("no request to the backend finished within limits.pending_timeout (%s) while %d were in flight; raise limits.pending_timeout or limits.max_requests: %w", c.PendingTimeout, c.MaxRequests, ErrOpen)
	return l, nil
}

// Acquire takes a slot for one request to the backend. On success the caller
// must call release exactly once, when the request is over (response fully
// read or stream closed). The release function is shared by all requests and
// does not protect against being called twice.
//
// When MaxRequests requests are in flight, Acquire waits in a FIFO queue of
// at most MaxPending requests, for at most PendingTimeout. It fails with an
// error wrapping ErrOpen when the queue is full or the timeout passes, and
// with an error wrapping ctx.Err() when ctx ends first. A request never
// overtakes one that is already waiting.
func (l *Limits) Acquire(ctx context.Context) (release func(), err error) {
	l.mu.Lock()
	if l.maxRequests == 0 || (l.inFlight < l.maxRequests && len(l.queue) == 0) {
		l.inFlight++
		l.mu.Unlock()
		return l.release, nil
	}
	if len(l.queue) >= l.maxPending {
		l.mu.Unlock()
		return nil, l.errFull
	}
	if err := ctx.Err(); err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("request ended before waiting for a backend slot: %w", err)
	}
	w := &waiter{ready: make(chan struct{})}
	l.queue = append(l.queue, w)
	l.mu.Unlock()

	var expired <-chan time.Time
	if l.timeout > 0 {
		t := time.NewTimer(l.timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-w.ready:
		return l.release, nil
	case <-expired:
		if l.leave(w) {
			return l.release, nil // a slot came at the last moment: use it
		}
		return nil, l.errTimeout
	case <-ctx.Done():
		if l.leave(w) {
			l.releaseSlot() // pass the slot on to the next waiter
		}
		return nil, fmt.Errorf("request ended while waiting for a backend slot (limits.max_requests %d reached): %w", l.maxRequests, ctx.Err())
	}
}

// leave removes w from the queue. It reports whether w was granted a slot
// before it could leave; the caller then holds that slot.
func (l *Limits) leave(w *waiter) (granted bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.granted {
		return true
	}
	for i, q := range l.queue {
		if q == w {
			copy(l.queue[i:], l.queue[i+1:])
			l.queue[len(l.queue)-1] = nil
			l.queue = l.queue[:len(l.queue)-1]
			break
		}
	}
	return false
}

// releaseSlot frees one slot, handing it straight to the longest waiting
// request if there is one.
func (l *Limits) releaseSlot() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) > 0 {
		w := l.queue[0]
		copy(l.queue, l.queue[1:])
		l.queue[len(l.queue)-1] = nil
		l.queue = l.queue[:len(l.queue)-1]
		w.granted = true
		close(w.ready)
		return
	}
	if l.inFlight > 0 {
		l.inFlight--
	}
}

// InFlight returns the number of requests holding a slot.
func (l *Limits) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inFlight
}

// Pending returns the number of requests waiting for a slot.
func (l *Limits) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}
