// Package clocktest is a manual clock for tests of time-driven code (rate
// limits, budgets, ejections, latency estimates): the code under test takes
// a `Now func() time.Time`, the test passes Clock.Now and moves time with
// Advance.
package clocktest

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock is a clock that moves only when told to. Safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	t       time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	c  chan time.Time  // After's channel, or
	fn func(time.Time) // called instead (AfterOrReal)
	// fired is set once an AfterOrReal waiter fired by real time: it no
	// longer counts as waiting.
	fired *atomic.Bool
}

// New returns a clock at 2026-01-01T00:00:00Z.
func New() *Clock {
	return &Clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.t) {
			kept = append(kept, w)
			continue
		}
		if w.fn != nil {
			w.fn(c.t)
		} else {
			w.c <- c.t
		}
	}
	c.waiters = kept
}

// After is time.After on this clock: the channel receives once Advance has
// moved the clock d past the time of the call (at once when d <= 0).
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.t
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.t.Add(d), c: ch})
	return ch
}

// Waiters returns how many After channels have not fired yet: a test can
// wait for the code under test to be waiting before it advances the clock.
func (c *Clock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, w := range c.waiters {
		if w.fired == nil || !w.fired.Load() {
			n++
		}
	}
	return n
}

// AfterOrReal is After that also fires once d of real time has passed,
// whichever comes first, for waits of up to a minute; longer ones follow
// the fake clock only. For code whose long waits (a renewal due in 17
// hours) the test drives with Advance, but whose short waits (a retry
// after a second) must not hang a test that does not advance the clock.
func (c *Clock) AfterOrReal(d time.Duration) <-chan time.Time {
	out := make(chan time.Time, 1)
	var once sync.Once
	fired := new(atomic.Bool)
	send := func(t time.Time) {
		once.Do(func() {
			fired.Store(true)
			out <- t
		})
	}
	if d <= time.Minute {
		time.AfterFunc(d, func() { send(c.Now()) })
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d <= 0 {
		send(c.t)
		return out
	}
	c.waiters = append(c.waiters, waiter{at: c.t.Add(d), fn: send, fired: fired})
	return out
}
