package breaker

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of AdaptiveConfig.
const (
	DefaultInitialLimit = 20
	DefaultMinLimit     = 1
	DefaultMaxLimit     = 1000
	DefaultSmoothing    = 0.2
	DefaultLongWindow   = 600
	DefaultTolerance    = 1.5
)

const (
	// warmupSamples are averaged plainly before the long-term average
	// becomes exponential, so the first sample does not weigh 1/300.
	warmupSamples = 10
	// probeConcurrency is the limit while the no-load RTT is measured.
	probeConcurrency = 4
	// probeSamples is the number of RTTs a measurement of the no-load RTT
	// averages.
	probeSamples = 20
	// backoff multiplies the limit when a request was dropped.
	backoff = 0.9
	// longDecay pulls the long-term average down when it is more than
	// twice the latest RTT.
	longDecay = 0.95
)

// AdaptiveConfig tunes an Adaptive limit. Every zero field means its
// default.
type AdaptiveConfig struct {
	// InitialLimit is the concurrency limit to start with. 0 means 20.
	InitialLimit int
	// MinLimit and MaxLimit bound the limit. 0 means 1 and 1000.
	MinLimit, MaxLimit int
	// Smoothing is the weight, in (0, 1], of each new estimate in the
	// limit. 0 means 0.2.
	Smoothing float64
	// LongWindow is the number of samples the long-term RTT average spans.
	// It is also the number of samples in a row after which an average RTT
	// above Tolerance times the no-load RTT, which a lower limit did not
	// bring down, leads to measuring the no-load RTT again. 0 means 600.
	LongWindow int
	// Tolerance is how much above the no-load RTT the RTT may rise before
	// the limit is lowered; it must be at least 1. 0 means 1.5.
	Tolerance float64
	// Now is the clock, for tests. nil means time.Now. The RTTs passed to
	// done must be measured on the same clock.
	Now func() time.Time
}

// Adaptive is a concurrency limit for a backend that finds itself from the
// latencies it observes, so that requests queue in the proxy, where they can
// be refused fast, rather than in the backend. It is safe for concurrent use.
//
// The algorithm follows the Gradient2 limit of Netflix's concurrency-limits
// library (com.netflix.concurrency.limits.limit.Gradient2Limit), which
// compares a short-term RTT with a long-term one, as TCP Vegas compares the
// current RTT with the base RTT. For every finished request:
//
//   - short RTT = the request's RTT. The long-term RTT is an exponential
//     average over LongWindow samples (a plain average of the first ten); it
//     is cut by 5% whenever it is more than twice the short RTT, so it comes
//     down quickly once a slow spell is over.
//   - gradient = clamp(Tolerance * base RTT / short RTT, 0.5, 1): 1 while the
//     RTT is within tolerance, down to 0.5 (halving) as requests queue.
//   - new = limit*gradient + sqrt(limit); the square root is the queue
//     allowed on top, which lets the limit grow while the RTT stays low
//     (Gradient2's default is a constant 4; the square root, as in Envoy's
//     adaptive concurrency filter, keeps growth brisk at large limits).
//   - limit = limit*(1-Smoothing) + new*Smoothing, clamped to [MinLimit,
//     MaxLimit].
//   - The limit is left alone while fewer than limit/2 requests are in
//     flight: the traffic, not the backend, sets the concurrency then.
//   - A dropped request (timeout, overload answer) multiplies the limit by
//     0.9, at most once per RTT: only a request that started after the last
//     cut can cut again. Its RTT is not used.
//
// One change to Gradient2 makes the limit settle: Gradient2 uses the
// long-term average itself as the base RTT. Under sustained load the short
// RTT sits above it in equilibrium, the average follows, and the limit
// drifts up without bound (Netflix/concurrency-limits issues #134 and #137)
// until drops or timeouts stop it, with latency to match. Here the base RTT
// is a no-load RTT instead: it starts as the average of the first samples
// and follows the long-term average down, never up. When the long-term
// average has stayed above Tolerance times the no-load RTT for LongWindow
// samples in a row, the backend may have become slower for good (or the
// start was already overloaded), so the no-load RTT is measured again, as
// Netflix's older Gradient limit and Envoy's adaptive concurrency filter do:
// the limit is held at 4 (MinLimit if that is higher, the limit if that is
// lower) until the requests already in flight have drained to it, and the
// mean RTT of the next 20 requests that start after that is the new no-load
// RTT. Then the limit returns to its estimate. A measurement takes about
// the drain plus five RTTs, during which requests beyond 4 are refused;
// under sustained overload one follows every LongWindow samples or more.
// Without the change, a simulated backend with 10 workers under 1.5 times
// the load it can serve drives the limit to MaxLimit and the latency to 100
// times the service time; with it the limit settles around 20 and the
// latency around twice the service time (see the tests).
type Adaptive struct {
	minLimit, maxLimit float64
	smoothing          float64
	alpha              float64 // 2/(LongWindow+1)
	window             int
	tolerance          float64
	now                func() time.Time

	done func(time.Duration, bool) // a.sample, bound once so Acquire does not allocate

	inFlight atomic.Int64
	limit    atomic.Int64 // what Acquire enforces

	mu         sync.Mutex // guards the rest
	est        float64    // limit estimate
	long       float64    // long-term average RTT, ns
	samples    int        // up to warmupSamples
	noLoad     float64    // ns
	above      int        // samples in a row with long > tolerance*noLoad
	lastCut    time.Time
	probing    bool
	probeLimit int64
	drained    bool
	drainedAt  time.Time
	probeSum   float64
	probeN     int
}

// NewAdaptive checks c and returns an Adaptive limit. The error names every
// field that is wrong and how to fix it.
func NewAdaptive(c AdaptiveConfig) (*Adaptive, error) {
	var errs []error
	for _, f := range []struct {
		field  string
		v, def int
	}{
		{"adaptive.initial_limit", c.InitialLimit, DefaultInitialLimit},
		{"adaptive.min_limit", c.MinLimit, DefaultMinLimit},
		{"adaptive.max_limit", c.MaxLimit, DefaultMaxLimit},
		{"adaptive.long_window", c.LongWindow, DefaultLongWindow},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %d must be positive; remove it to use %d", f.field, f.v, f.def))
		}
	}
	if !(c.Smoothing >= 0 && c.Smoothing <= 1) {
		errs = append(errs, fmt.Errorf("adaptive.smoothing: %v must be above 0 and at most 1; remove it to use %v", c.Smoothing, DefaultSmoothing))
	}
	if !(c.Tolerance == 0 || c.Tolerance >= 1) || math.IsInf(c.Tolerance, 0) {
		errs = append(errs, fmt.Errorf("adaptive.tolerance: %v must be at least 1 (1 tolerates no latency increase); remove it to use %v", c.Tolerance, DefaultTolerance))
	}
	initial := positiveIntOr(c.InitialLimit, DefaultInitialLimit)
	lo := positiveIntOr(c.MinLimit, DefaultMinLimit)
	hi := positiveIntOr(c.MaxLimit, DefaultMaxLimit)
	if c.MinLimit >= 0 && c.MaxLimit >= 0 && c.InitialLimit >= 0 {
		if lo > hi {
			errs = append(errs, fmt.Errorf("adaptive.min_limit: %d is above adaptive.max_limit %d; lower min_limit or raise max_limit", lo, hi))
		} else if initial < lo || initial > hi {
			errs = append(errs, fmt.Errorf("adaptive.initial_limit: %d is outside [min_limit %d, max_limit %d]; set it in that range", initial, lo, hi))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	window := positiveIntOr(c.LongWindow, DefaultLongWindow)
	a := &Adaptive{
		minLimit:  float64(lo),
		maxLimit:  float64(hi),
		smoothing: c.Smoothing,
		alpha:     2 / float64(window+1),
		window:    window,
		tolerance: c.Tolerance,
		now:       c.Now,
		est:       float64(initial),
	}
	if a.smoothing == 0 {
		a.smoothing = DefaultSmoothing
	}
	if a.tolerance == 0 {
		a.tolerance = DefaultTolerance
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.limit.Store(int64(initial))
	a.done = a.sample
	return a, nil
}

func positiveIntOr(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Acquire admits one request if fewer requests than the limit are in
// flight. When ok is false the caller fails the request at once (503, or
// UNAVAILABLE for gRPC). Otherwise it calls done exactly once when the
// request is over, with the request's RTT and whether it was dropped: timed
// out, or refused by the backend as overloaded (503, RESOURCE_EXHAUSTED).
// A request that failed for another reason is not dropped, but one that
// failed before it reached the backend should not report an RTT at all; the
// caller then reports it as dropped. done is shared by all requests and does
// not protect against being called twice.
func (a *Adaptive) Acquire() (done func(rtt time.Duration, dropped bool), ok bool) {
	for {
		n := a.inFlight.Load()
		if n >= a.limit.Load() {
			return nil, false
		}
		if a.inFlight.CompareAndSwap(n, n+1) {
			return a.done, true
		}
	}
}

// Limit returns the current concurrency limit: the estimate rounded down,
// or 4 while the no-load RTT is being measured.
func (a *Adaptive) Limit() int { return int(a.limit.Load()) }

// InFlight returns the number of admitted requests not yet done.
func (a *Adaptive) InFlight() int { return int(a.inFlight.Load()) }

// sample is the done function handed out by Acquire.
func (a *Adaptive) sample(rtt time.Duration, dropped bool) {
	n := a.inFlight.Add(-1)
	if n < 0 { // done called more often than Acquire succeeded
		a.inFlight.Add(1)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	rtt = max(rtt, 1)
	// The clock is read only when needed: time.Now costs as much as the
	// rest of this function.
	if a.probing {
		now := a.now()
		a.probe(now, now.Add(-rtt), float64(rtt), dropped, n)
		return
	}
	if dropped {
		now := a.now()
		if !now.Add(-rtt).Before(a.lastCut) {
			a.lastCut = now
			a.setEstimate(a.est * backoff)
		}
		return
	}
	short := float64(rtt)
	if a.samples < warmupSamples {
		a.samples++
		a.long += (short - a.long) / float64(a.samples)
		a.noLoad = a.long
	} else {
		a.long += a.alpha * (short - a.long)
	}
	if a.long > 2*short {
		a.long *= longDecay
	}
	a.noLoad = min(a.noLoad, a.long)

	if a.long > a.tolerance*a.noLoad {
		a.above++
		if a.above >= a.window {
			a.startProbe(a.now(), n)
			return
		}
	} else {
		a.above = 0
	}

	if float64(n) < a.est/2 {
		return
	}
	gradient := max(0.5, min(1, a.tolerance*a.noLoad/short))
	next := a.est*gradient + math.Sqrt(a.est)
	a.setEstimate(a.est*(1-a.smoothing) + next*a.smoothing)
}

// setEstimate sets the limit estimate, clamped, and publishes it to Acquire.
// a.mu must be held and no probe running.
func (a *Adaptive) setEstimate(v float64) {
	a.est = max(a.minLimit, min(a.maxLimit, v))
	a.limit.Store(int64(a.est))
}

// startProbe starts measuring the no-load RTT. a.mu must be held.
func (a *Adaptive) startProbe(now time.Time, inFlight int64) {
	a.probing = true
	a.above = 0
	a.probeSum, a.probeN = 0, 0
	a.probeLimit = min(int64(a.est), max(int64(a.minLimit), probeConcurrency))
	a.limit.Store(a.probeLimit)
	a.drained = inFlight <= a.probeLimit
	a.drainedAt = now
}

// probe takes one sample while the no-load RTT is measured. a.mu must be
// held.
func (a *Adaptive) probe(now, start time.Time, rtt float64, dropped bool, inFlight int64) {
	if !a.drained {
		if inFlight <= a.probeLimit {
			a.drained = true
			a.drainedAt = now
		}
		return
	}
	if dropped || start.Before(a.drainedAt) {
		return // it queued behind the requests of before the probe
	}
	a.probeSum += rtt
	a.probeN++
	if a.probeN < probeSamples {
		return
	}
	a.noLoad = a.probeSum / float64(a.probeN)
	// Restart the long-term average from the measurement, so that under
	// sustained overload it takes it a while to climb back and trigger the
	// next measurement.
	a.long = min(a.long, a.noLoad)
	a.probing = false
	a.setEstimate(a.est)
}
