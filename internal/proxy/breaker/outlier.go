package breaker

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Reasons for an ejection, as in Ejection.Reason and the OnEject hook.
const (
	ReasonConsecutiveFailures = "consecutive-failures"
	ReasonSuccessRate         = "success-rate"
)

// Defaults of OutlierConfig, as DefaultOutlierConfig returns them.
const (
	DefaultConsecutiveFailures    = 5
	DefaultSuccessRateMinRequests = 100
	DefaultSuccessRateStdevFactor = 1.9
	DefaultInterval               = 10 * time.Second
	DefaultBaseEjectionTime       = 30 * time.Second
	DefaultMaxEjectionTime        = 300 * time.Second
	DefaultMaxEjectionPercent     = 50
)

// OutlierConfig tunes a Detector. Start from DefaultOutlierConfig: in the
// zero value both detectors are off, because 0 turns ConsecutiveFailures and
// SuccessRateMinRequests off. Every other zero field means its default.
type OutlierConfig struct {
	// ConsecutiveFailures ejects an endpoint after this many failed
	// requests in a row. 0 turns this detector off.
	ConsecutiveFailures int

	// SuccessRateMinRequests is the number of requests an endpoint needs in
	// one Interval to take part in success-rate ejection. 0 turns this
	// detector off.
	SuccessRateMinRequests int

	// SuccessRateStdevFactor: at the end of each Interval, endpoints whose
	// success rate is below mean - factor*stdev (over the endpoints with
	// enough requests, at least 3 of them) are ejected. 0 means 1.9, as in
	// Envoy. With a single bad endpoint among n, its distance from the mean
	// is at most sqrt(n-1) standard deviations, so with 1.9 it can only be
	// caught among 5 or more endpoints.
	SuccessRateStdevFactor float64

	// Interval is how often success rates are evaluated, and how long a
	// probe of an endpoint on probation may take before another request may
	// probe it. 0 means 10s.
	Interval time.Duration

	// BaseEjectionTime is the length of a first ejection. The n-th
	// ejection in a row of the same endpoint lasts n*BaseEjectionTime, up
	// to MaxEjectionTime; n goes down by one for every BaseEjectionTime the
	// endpoint then stays in service. 0 means 30s.
	BaseEjectionTime time.Duration

	// MaxEjectionTime caps the length of an ejection. 0 means 300s.
	MaxEjectionTime time.Duration

	// MaxEjectionPercent is the largest share of the endpoints that may be
	// ejected at once (rounded down); at least one endpoint always stays in
	// service. 0 means 50.
	MaxEjectionPercent int

	// Now is the clock, for tests. nil means time.Now.
	Now func() time.Time
}

// DefaultOutlierConfig returns the config with every detector on and every
// field at its default.
func DefaultOutlierConfig() OutlierConfig {
	return OutlierConfig{
		ConsecutiveFailures:    DefaultConsecutiveFailures,
		SuccessRateMinRequests: DefaultSuccessRateMinRequests,
		SuccessRateStdevFactor: DefaultSuccessRateStdevFactor,
		Interval:               DefaultInterval,
		BaseEjectionTime:       DefaultBaseEjectionTime,
		MaxEjectionTime:        DefaultMaxEjectionTime,
		MaxEjectionPercent:     DefaultMaxEjectionPercent,
	}
}

// Ejection describes an endpoint that is out of service.
type Ejection struct {
	Addr string
	// Since is when the endpoint was ejected. Failed probes extend an
	// ejection without moving Since.
	Since time.Time
	// Until is when the current ejection time ends. From then on the
	// endpoint is on probation.
	Until time.Time
	// Reason is ReasonConsecutiveFailures or ReasonSuccessRate, the reason
	// of the ejection that started at Since.
	Reason string
	// Count is the number of ejections in a row (the first is 1); the
	// current ejection time was Count*BaseEjectionTime, capped.
	Count int
	// Probation is true once Until has passed: one request at a time is let
	// through to probe the endpoint.
	Probation bool
}

// Detector finds the endpoints of one service that fail more than the others
// and takes them out of service for a while (outlier detection, or failure
// accrual). It is safe for concurrent use.
//
// Report and Available on an endpoint in service take no lock and do not
// allocate.
type Detector struct {
	consecutive int32  // 0: off
	srMin       uint64 // 0: off
	srFactor    float64
	interval    time.Duration
	base        time.Duration
	maxEject    time.Duration
	maxCount    int // the Count from which an ejection lasts maxEject
	maxPercent  int
	now         func() time.Time
	epoch       time.Time

	set      atomic.Pointer[map[string]*endpoint] // immutable once stored
	nextEval atomic.Int64                         // ns since epoch

	mu      sync.Mutex
	ejected int                         // guarded by mu; endpoints of set that are ejected
	hooks   []func(addr, reason string) // guarded by mu; append only
	rated   []rated                     // guarded by mu; scratch for evaluate
}

// endpoint is the state of one Addr, kept across SetEndpoints.
type endpoint struct {
	addr     string
	ejected  atomic.Bool   // set and cleared under Detector.mu
	failures atomic.Int32  // consecutive failures
	counts   atomic.Uint64 // requests<<32 | successes in this Interval

	// Guarded by Detector.mu.
	removed  bool
	since    time.Time
	until    time.Time
	reason   string
	count    int       // ejections in a row, see OutlierConfig.BaseEjectionTime
	returned time.Time // when it last came back into service
	probing  bool      // a probe is in flight
	probeAt  time.Time
}

type rated struct {
	ep   *endpoint
	rate float64
}

// NewDetector checks c and returns a Detector with no endpoints. The error
// names every field that is wrong and how to fix it.
func NewDetector(c OutlierConfig) (*Detector, error) {
	var errs []error
	if c.ConsecutiveFailures < 0 || c.ConsecutiveFailures > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("outlier.consecutive_failures: %d is out of range; use a positive count, or 0 to turn this detector off", c.ConsecutiveFailures))
	}
	if c.SuccessRateMinRequests < 0 || uint64(c.SuccessRateMinRequests) > math.MaxUint32 {
		errs = append(errs, fmt.Errorf("outlier.success_rate_min_requests: %d is out of range; use a positive count, or 0 to turn this detector off", c.SuccessRateMinRequests))
	}
	if c.SuccessRateStdevFactor < 0 || math.IsNaN(c.SuccessRateStdevFactor) || math.IsInf(c.SuccessRateStdevFactor, 0) {
		errs = append(errs, fmt.Errorf("outlier.success_rate_stdev_factor: %v must be a positive number; remove it to use %v", c.SuccessRateStdevFactor, DefaultSuccessRateStdevFactor))
	}
	for _, f := range []struct {
		field string
		v     time.Duration
		def   time.Duration
	}{
		{"outlier.interval", c.Interval, DefaultInterval},
		{"outlier.base_ejection_time", c.BaseEjectionTime, DefaultBaseEjectionTime},
		{"outlier.max_ejection_time", c.MaxEjectionTime, DefaultMaxEjectionTime},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %s must be positive; remove it to use %s", f.field, f.v, f.def))
		}
	}
	if c.MaxEjectionPercent < 0 || c.MaxEjectionPercent > 100 {
		errs = append(errs, fmt.Errorf("outlier.max_ejection_percent: %d must be between 1 and 100; remove it to use %d", c.MaxEjectionPercent, DefaultMaxEjectionPercent))
	}
	base := positiveOr(c.BaseEjectionTime, DefaultBaseEjectionTime)
	maxEject := positiveOr(c.MaxEjectionTime, DefaultMaxEjectionTime)
	if c.BaseEjectionTime >= 0 && c.MaxEjectionTime >= 0 && maxEject < base {
		errs = append(errs, fmt.Errorf("outlier.max_ejection_time: %s is shorter than outlier.base_ejection_time %s; raise max_ejection_time or lower base_ejection_time", maxEject, base))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	d := &Detector{
		consecutive: int32(c.ConsecutiveFailures),
		srMin:       uint64(c.SuccessRateMinRequests),
		srFactor:    c.SuccessRateStdevFactor,
		interval:    positiveOr(c.Interval, DefaultInterval),
		base:        base,
		maxEject:    maxEject,
		maxPercent:  c.MaxEjectionPercent,
		now:         c.Now,
	}
	if d.srFactor == 0 {
		d.srFactor = DefaultSuccessRateStdevFactor
	}
	if d.maxPercent == 0 {
		d.maxPercent = DefaultMaxEjectionPercent
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.maxCount = int((maxEject + base - 1) / base)
	d.epoch = d.now()
	d.nextEval.Store(int64(d.interval))
	empty := map[string]*endpoint{}
	d.set.Store(&empty)
	return d, nil
}

func positiveOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// SetEndpoints replaces the endpoint set. Endpoints that stay keep their
// state, ejections included; new endpoints start in service. If the set
// shrinks so that more endpoints are ejected than MaxEjectionPercent allows,
// those whose ejection would end first come back into service at once.
func (d *Detector) SetEndpoints(addrs []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := *d.set.Load()
	next := make(map[string]*endpoint, len(addrs))
	var ejected []*endpoint
	for _, a := range addrs {
		if _, dup := next[a]; dup {
			continue
		}
		ep := old[a]
		if ep == nil {
			ep = &endpoint{addr: a}
		} else if ep.ejected.Load() {
			ejected = append(ejected, ep)
		}
		next[a] = ep
	}
	for a, ep := range old {
		if next[a] != ep {
			ep.removed = true
		}
	}
	d.set.Store(&next)
	d.ejected = len(ejected)
	if over := d.ejected - d.maxEjectable(); over > 0 {
		slices.SortFunc(ejected, func(a, b *endpoint) int {
			return cmp.Or(a.until.Compare(b.until), cmp.Compare(a.addr, b.addr))
		})
		now := d.now()
		for _, ep := range ejected[:over] {
			d.restore(ep, now)
		}
	}
}

// OnEject registers f to be called, outside the Detector's lock, each time an
// endpoint is ejected. A failed probe counts as an ejection, with the reason
// of the ejection it extends. Use it to count
// weft_proxy_endpoint_ejections_total.
func (d *Detector) OnEject(f func(addr, reason string)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hooks = append(d.hooks, f)
}

// Available reports whether a request may be sent to addr. It is false while
// addr is ejected. Once the ejection time has passed, addr is on probation:
// Available is true for one request at a time, the probe, whose outcome
// passed to Report decides whether addr comes back into service or is
// ejected again for longer. A probe whose outcome is not reported within
// Interval is given up.
//
// Call Available only for an endpoint the request will then be sent to, and
// Report the outcome. Unknown addresses are available.
func (d *Detector) Available(addr string) bool {
	ep := (*d.set.Load())[addr]
	if ep == nil || !ep.ejected.Load() {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !ep.ejected.Load() {
		return true
	}
	now := d.now()
	if now.Before(ep.until) || (ep.probing && now.Sub(ep.probeAt) < d.interval) {
		return false
	}
	ep.probing = true
	ep.probeAt = now
	return true
}

// Report records the outcome of a finished request to addr. success is
// false for what should count against the endpoint (5xx, reset, connect
// failure); the caller decides. Reports for unknown addresses, and for an
// ejected endpoint other than its probe's, are ignored.
//
// Success rates are evaluated here, by the first Report after each
// Interval; the Detector runs no goroutine of its own.
func (d *Detector) Report(addr string, success bool) {
	ep := (*d.set.Load())[addr]
	if ep == nil {
		return
	}
	if d.srMin > 0 {
		d.maybeEvaluate()
	}
	if ep.ejected.Load() {
		d.reportProbe(ep, success)
		return
	}
	if d.srMin > 0 {
		if success {
			ep.counts.Add(1<<32 | 1)
		} else {
			ep.counts.Add(1 << 32)
		}
	}
	if success {
		if ep.failures.Load() != 0 {
			ep.failures.Store(0)
		}
		return
	}
	if d.consecutive > 0 && ep.failures.Add(1) >= d.consecutive {
		d.ejectForFailures(ep)
	}
}

func (d *Detector) ejectForFailures(ep *endpoint) {
	d.mu.Lock()
	if ep.removed || ep.ejected.Load() || ep.failures.Load() < d.consecutive {
		d.mu.Unlock()
		return
	}
	if d.ejected >= d.maxEjectable() {
		// Too many are out already. Keep the count just below the
		// threshold (it cannot overflow) so the next failure tries again.
		ep.failures.Store(d.consecutive - 1)
		d.mu.Unlock()
		return
	}
	d.eject(ep, d.now(), ReasonConsecutiveFailures)
	hooks := d.hooks
	d.mu.Unlock()
	for _, h := range hooks {
		h(ep.addr, ReasonConsecutiveFailures)
	}
}

func (d *Detector) reportProbe(ep *endpoint, success bool) {
	d.mu.Lock()
	if ep.removed || !ep.ejected.Load() || !ep.probing {
		d.mu.Unlock()
		return
	}
	now := d.now()
	if success {
		d.restore(ep, now)
		d.mu.Unlock()
		return
	}
	d.eject(ep, now, ep.reason)
	reason := ep.reason
	hooks := d.hooks
	d.mu.Unlock()
	for _, h := range hooks {
		h(ep.addr, reason)
	}
}

// eject takes ep out of service, or extends its ejection after a failed
// probe. d.mu must be held.
func (d *Detector) eject(ep *endpoint, now time.Time, reason string) {
	if !ep.ejected.Load() {
		if ep.count > 0 {
			ep.count = max(0, ep.count-int(now.Sub(ep.returned)/d.base))
		}
		ep.since = now
		ep.reason = reason
		d.ejected++
	}
	ep.count = min(ep.count+1, d.maxCount)
	ep.until = now.Add(min(time.Duration(ep.count)*d.base, d.maxEject))
	ep.probing = false
	ep.failures.Store(0)
	ep.counts.Store(0)
	ep.ejected.Store(true)
}

// restore puts ep back into service. d.mu must be held.
func (d *Detector) restore(ep *endpoint, now time.Time) {
	ep.probing = false
	ep.returned = now
	ep.failures.Store(0)
	ep.counts.Store(0)
	ep.ejected.Store(false)
	d.ejected--
}

// maxEjectable is how many endpoints of the current set may be ejected at
// once. d.mu must be held.
func (d *Detector) maxEjectable() int {
	n := len(*d.set.Load())
	return max(0, min(n*d.maxPercent/100, n-1))
}

// maybeEvaluate runs the success-rate evaluation if an Interval has passed
// since the last one.
func (d *Detector) maybeEvaluate() {
	now := d.now()
	t := int64(now.Sub(d.epoch))
	if t < d.nextEval.Load() {
		return
	}
	d.mu.Lock()
	if t < d.nextEval.Load() {
		d.mu.Unlock()
		return
	}
	d.nextEval.Store(t + int64(d.interval))
	out := d.evaluate(now)
	hooks := d.hooks
	d.mu.Unlock()
	for _, ep := range out {
		for _, h := range hooks {
			h(ep.addr, ReasonSuccessRate)
		}
	}
}

// evaluate ejects the endpoints whose success rate over the last interval is
// an outlier, starts a new interval and returns the ejected endpoints. d.mu
// must be held.
func (d *Detector) evaluate(now time.Time) []*endpoint {
	rs := d.rated[:0]
	for _, ep := range *d.set.Load() {
		v := ep.counts.Swap(0)
		if ep.ejected.Load() {
			continue
		}
		if total := v >> 32; total >= d.srMin {
			rs = append(rs, rated{ep, float64(v&math.MaxUint32) / float64(total)})
		}
	}
	d.rated = rs
	if len(rs) < 3 {
		return nil
	}
	var sum float64
	for _, r := range rs {
		sum += r.rate
	}
	mean := sum / float64(len(rs))
	var sq float64
	for _, r := range rs {
		sq += (r.rate - mean) * (r.rate - mean)
	}
	threshold := mean - d.srFactor*math.Sqrt(sq/float64(len(rs)))
	// Rates equal to the mean may come out a rounding error below it.
	const epsilon = 1e-9
	slices.SortFunc(rs, func(a, b rated) int {
		return cmp.Or(cmp.Compare(a.rate, b.rate), cmp.Compare(a.ep.addr, b.ep.addr))
	})
	var out []*endpoint
	for _, r := range rs {
		if r.rate >= threshold-epsilon || d.ejected >= d.maxEjectable() {
			break
		}
		d.eject(r.ep, now, ReasonSuccessRate)
		out = append(out, r.ep)
	}
	clear(rs) // drop the pointers
	return out
}

// Ejected returns the endpoints that are out of service (ejected or on
// probation), sorted by Addr, for /config_dump and metrics.
func (d *Detector) Ejected() []Ejection {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	out := make([]Ejection, 0, d.ejected)
	for _, ep := range *d.set.Load() {
		if !ep.ejected.Load() {
			continue
		}
		out = append(out, Ejection{
			Addr:      ep.addr,
			Since:     ep.since,
			Until:     ep.until,
			Reason:    ep.reason,
			Count:     ep.count,
			Probation: !now.Before(ep.until),
		})
	}
	slices.SortFunc(out, func(a, b Ejection) int { return cmp.Compare(a.Addr, b.Addr) })
	return out
}
