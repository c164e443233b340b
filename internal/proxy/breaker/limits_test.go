package breaker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestNewLimitsValidation(t *testing.T) {
	tests := []struct {
		name string
		c    LimitsConfig
		want []string // parts of the error; none: valid
	}{
		{"zero value: unlimited", LimitsConfig{}, nil},
		{"fail fast", LimitsConfig{MaxRequests: 100}, nil},
		{"queue", LimitsConfig{MaxRequests: 100, MaxPending: 10, PendingTimeout: time.Second}, nil},
		{"queue bounded by the request deadline", LimitsConfig{MaxRequests: 100, MaxPending: 10}, nil},
		{"negative max_requests", LimitsConfig{MaxRequests: -1}, []string{"limits.max_requests: -1", "remove it"}},
		{"negative max_pending", LimitsConfig{MaxRequests: 1, MaxPending: -2}, []string{"limits.max_pending: -2"}},
		{"negative pending_timeout", LimitsConfig{MaxRequests: 1, MaxPending: 1, PendingTimeout: -time.Second}, []string{"limits.pending_timeout: -1s must be positive"}},
		{"pending without max_requests", LimitsConfig{MaxPending: 5}, []string{"limits.max_pending: 5 has no effect without limits.max_requests"}},
		{"timeout without pending", LimitsConfig{MaxRequests: 5, PendingTimeout: time.Second}, []string{"limits.pending_timeout: 1s has no effect without limits.max_pending"}},
		{"every problem at once", LimitsConfig{MaxRequests: -1, MaxPending: -1, PendingTimeout: -1}, []string{"limits.max_requests", "limits.max_pending", "limits.pending_timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := NewLimits(tt.c)
			checkErr(t, err, tt.want)
			if err == nil && l == nil {
				t.Fatal("nil Limits without an error")
			}
		})
	}
}

func TestLimitsFailFast(t *testing.T) {
	tests := []struct {
		name     string
		c        LimitsConfig
		admitted int // of 1000 concurrent Acquires
		wantMsg  []string
	}{
		{"unlimited", LimitsConfig{}, 1000, nil},
		{"max_requests 2", LimitsConfig{MaxRequests: 2}, 2, []string{"2 requests to the backend are in flight", "raise limits.max_requests", "set limits.max_pending"}},
		{"max_requests 700", LimitsConfig{MaxRequests: 700}, 700, []string{"700 requests"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := NewLimits(tt.c)
			if err != nil {
				t.Fatal(err)
			}
			var releases []func()
			for i := range 1000 {
				release, err := l.Acquire(t.Context())
				if i < tt.admitted {
					if err != nil {
						t.Fatalf("Acquire %d: %v, want a slot", i+1, err)
					}
					releases = append(releases, release)
					continue
				}
				if !errors.Is(err, ErrOpen) {
					t.Fatalf("Acquire %d: err = %v, want ErrOpen", i+1, err)
				}
				if i == tt.admitted {
					checkErr(t, err, tt.wantMsg)
				}
			}
			if got := l.InFlight(); got != tt.admitted {
				t.Errorf("InFlight() = %d, want %d", got, tt.admitted)
			}
			releases[0]()
			release, err := l.Acquire(t.Context())
			if err != nil {
				t.Fatalf("Acquire after a release: %v", err)
			}
			release()
			for _, r := range releases[1:] {
				r()
			}
			if got := l.InFlight(); got != 0 {
				t.Errorf("InFlight() = %d after every release, want 0", got)
			}
		})
	}
}

// TestLimitsPending runs in a synctest bubble: time is fake and
// synctest.Wait returns once every goroutine is blocked.
func TestLimitsPending(t *testing.T) {
	cfg := LimitsConfig{MaxRequests: 2, MaxPending: 2, PendingTimeout: time.Second}
	type result struct {
		err     error
		waited  time.Duration
		release func()
	}
	// wait starts an Acquire that is expected to queue, and returns its
	// result channel once it is queued.
	wait := func(t *testing.T, l *Limits, ctx context.Context) <-chan result {
		t.Helper()
		ch := make(chan result, 1)
		before := l.Pending()
		go func() {
			start := time.Now()
			release, err := l.Acquire(ctx)
			ch <- result{err, time.Since(start), release}
		}()
		synctest.Wait()
		if got := l.Pending(); got != before+1 {
			t.Fatalf("Pending() = %d, want %d: the Acquire did not queue", got, before+1)
		}
		return ch
	}
	tests := []struct {
		name string
		run  func(t *testing.T, l *Limits, release func())
	}{
		{"waiter gets the released slot", func(t *testing.T, l *Limits, release func()) {
			ch := wait(t, l, t.Context())
			release()
			r := <-ch
			if r.err != nil {
				t.Fatalf("queued Acquire: %v", r.err)
			}
			if l.InFlight() != 2 || l.Pending() != 0 {
				t.Errorf("InFlight, Pending = %d, %d, want 2, 0", l.InFlight(), l.Pending())
			}
			r.release()
		}},
		{"queue full fails fast", func(t *testing.T, l *Limits, release func()) {
			a, b := wait(t, l, t.Context()), wait(t, l, t.Context())
			_, err := l.Acquire(t.Context())
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("Acquire with a full queue: err = %v, want ErrOpen", err)
			}
			checkErr(t, err, []string{"limits.max_pending"})
			release()
			release()
			(<-a).release()
			(<-b).release()
		}},
		{"first come, first served", func(t *testing.T, l *Limits, release func()) {
			first, second := wait(t, l, t.Context()), wait(t, l, t.Context())
			release()
			synctest.Wait()
			select {
			case r := <-first:
				r.release() // hands its slot on to second
			case <-second:
				t.Fatal("the second waiter got the slot first")
			}
			if r := <-second; r.err != nil {
				t.Fatalf("second waiter: %v", r.err)
			} else {
				r.release()
			}
		}},
		{"pending timeout", func(t *testing.T, l *Limits, release func()) {
			r := <-wait(t, l, t.Context())
			if !errors.Is(r.err, ErrOpen) {
				t.Fatalf("err = %v, want ErrOpen after the pending timeout", r.err)
			}
			checkErr(t, r.err, []string{"limits.pending_timeout (1s)"})
			if r.waited != time.Second {
				t.Errorf("waited %v, want the pending timeout, 1s", r.waited)
			}
			if l.Pending() != 0 {
				t.Errorf("Pending() = %d after the timeout, want 0", l.Pending())
			}
			release()
		}},
		{"cancelled while pending", func(t *testing.T, l *Limits, release func()) {
			ctx, cancel := context.WithCancel(t.Context())
			ch := wait(t, l, ctx)
			cancel()
			r := <-ch
			if !errors.Is(r.err, context.Canceled) || errors.Is(r.err, ErrOpen) {
				t.Fatalf("err = %v, want context.Canceled and not ErrOpen", r.err)
			}
			if l.Pending() != 0 {
				t.Errorf("Pending() = %d after the cancel, want 0", l.Pending())
			}
			release() // nobody waits: the slot is free again
			if l.InFlight() != 1 {
				t.Errorf("InFlight() = %d, want 1", l.InFlight())
			}
		}},
		{"deadline before the pending timeout", func(t *testing.T, l *Limits, release func()) {
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			r := <-wait(t, l, ctx)
			if !errors.Is(r.err, context.DeadlineExceeded) || r.waited != 100*time.Millisecond {
				t.Fatalf("err = %v after %v, want DeadlineExceeded after 100ms", r.err, r.waited)
			}
			release()
		}},
		{"already cancelled does not queue", func(t *testing.T, l *Limits, release func()) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if _, err := l.Acquire(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if l.Pending() != 0 {
				t.Errorf("Pending() = %d, want 0", l.Pending())
			}
			release()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l, err := NewLimits(cfg)
				if err != nil {
					t.Fatal(err)
				}
				release, err := l.Acquire(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := l.Acquire(t.Context()); err != nil {
					t.Fatal(err)
				}
				// The backend is full; the case releases one slot as
				// release and leaves the other in flight.
				tt.run(t, l, release)
			})
		})
	}
}

// TestLimitsConcurrency hammers a Limits from many goroutines, some of which
// give up waiting, and checks that no more than MaxRequests ever hold a slot.
// Run it with -race.
func TestLimitsConcurrency(t *testing.T) {
	const maxRequests = 3
	l, err := NewLimits(LimitsConfig{MaxRequests: maxRequests, MaxPending: 4, PendingTimeout: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var holding, peak, admitted, refused, cancelled atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 300 {
				ctx, cancel := context.WithCancel(t.Context())
				if (g+i)%7 == 0 {
					time.AfterFunc(time.Duration(i%3)*100*time.Microsecond, cancel)
				}
				release, err := l.Acquire(ctx)
				switch {
				case err == nil:
					n := holding.Add(1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					admitted.Add(1)
					if i%4 == 0 {
						time.Sleep(50 * time.Microsecond)
					}
					holding.Add(-1)
					release()
				case errors.Is(err, ErrOpen):
					refused.Add(1)
				case errors.Is(err, context.Canceled):
					cancelled.Add(1)
				default:
					t.Errorf("Acquire: %v", err)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > maxRequests {
		t.Errorf("%d requests held a slot at once, want at most %d", p, maxRequests)
	}
	if l.InFlight() != 0 || l.Pending() != 0 {
		t.Errorf("InFlight, Pending = %d, %d at the end, want 0, 0", l.InFlight(), l.Pending())
	}
	if admitted.Load() == 0 || refused.Load() == 0 {
		t.Errorf("admitted %d, refused %d: want both to happen", admitted.Load(), refused.Load())
	}
	t.Logf("admitted %d, refused %d, cancelled %d, peak %d", admitted.Load(), refused.Load(), cancelled.Load(), peak.Load())
}
