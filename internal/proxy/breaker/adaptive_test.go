package breaker

import (
	"container/heap"
	"math/rand/v2"
	"testing"
	"time"
)

func TestNewAdaptiveValidation(t *testing.T) {
	tests := []struct {
		name string
		c    AdaptiveConfig
		want []string
	}{
		{"zero value: defaults", AdaptiveConfig{}, nil},
		{"all set", AdaptiveConfig{InitialLimit: 10, MinLimit: 2, MaxLimit: 50, Smoothing: 0.5, LongWindow: 100, Tolerance: 2}, nil},
		{"negative initial", AdaptiveConfig{InitialLimit: -1}, []string{"adaptive.initial_limit: -1 must be positive; remove it to use 20"}},
		{"negative window", AdaptiveConfig{LongWindow: -1}, []string{"adaptive.long_window: -1", "600"}},
		{"min above max", AdaptiveConfig{MinLimit: 50, MaxLimit: 10}, []string{"adaptive.min_limit: 50 is above adaptive.max_limit 10"}},
		{"initial above default max", AdaptiveConfig{InitialLimit: 5000}, []string{"adaptive.initial_limit: 5000 is outside [min_limit 1, max_limit 1000]"}},
		{"initial below min", AdaptiveConfig{MinLimit: 30}, []string{"adaptive.initial_limit: 20 is outside [min_limit 30"}},
		{"smoothing above 1", AdaptiveConfig{Smoothing: 1.5}, []string{"adaptive.smoothing: 1.5", "0.2"}},
		{"tolerance below 1", AdaptiveConfig{Tolerance: 0.5}, []string{"adaptive.tolerance: 0.5 must be at least 1", "1.5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewAdaptive(tt.c)
			checkErr(t, err, tt.want)
		})
	}
}

func TestAdaptiveAcquireRefusesBeyondLimit(t *testing.T) {
	for _, limit := range []int{1, 3, 20} {
		a, err := NewAdaptive(AdaptiveConfig{InitialLimit: limit, Now: newFakeClock().Now})
		if err != nil {
			t.Fatal(err)
		}
		var dones []func(time.Duration, bool)
		for range limit {
			done, ok := a.Acquire()
			if !ok {
				t.Fatalf("limit %d: refused at %d in flight", limit, a.InFlight())
			}
			dones = append(dones, done)
		}
		if _, ok := a.Acquire(); ok {
			t.Fatalf("limit %d: admitted request %d", limit, limit+1)
		}
		// A request that finishes frees its place (no RTT information:
		// a handful of samples at low load do not move the limit).
		dones[0](time.Millisecond, false)
		if _, ok := a.Acquire(); !ok {
			t.Fatalf("limit %d: refused after a request finished", limit)
		}
		if a.Limit() != limit || a.InFlight() != limit {
			t.Errorf("limit %d: Limit, InFlight = %d, %d", limit, a.Limit(), a.InFlight())
		}
	}
}

func TestAdaptiveDroppedBacksOffOncePerRTT(t *testing.T) {
	clock := newFakeClock()
	a, err := NewAdaptive(AdaptiveConfig{InitialLimit: 100, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	acquire := func() func(time.Duration, bool) {
		done, ok := a.Acquire()
		if !ok {
			t.Fatal("refused")
		}
		return done
	}
	early := []func(time.Duration, bool){acquire(), acquire(), acquire()}
	clock.Advance(time.Second)
	early[0](time.Second, true) // timed out: cut
	if got := a.Limit(); got != 90 {
		t.Fatalf("Limit() = %d after a drop, want 90", got)
	}
	late := acquire() // starts after the cut
	clock.Advance(100 * time.Millisecond)
	early[1](1100*time.Millisecond, true) // same overload episode: no new cut
	if got := a.Limit(); got != 90 {
		t.Fatalf("Limit() = %d after a second drop of the same RTT, want 90", got)
	}
	late(100*time.Millisecond, true) // started after the cut: cuts again
	if got := a.Limit(); got != 81 {
		t.Fatalf("Limit() = %d, want 81", got)
	}
	early[2](time.Millisecond, false)
	if a.InFlight() != 0 {
		t.Errorf("InFlight() = %d, want 0", a.InFlight())
	}
}

// simPhase is a stretch of time during which the simulated backend has a
// fixed number of workers and mean service time.
type simPhase struct {
	length  time.Duration
	workers int
	service time.Duration // each request takes 0.5 to 1.5 times this
}

// simStats describe the second half of a phase.
type simStats struct {
	meanLimit   float64 // seen by arrivals, so a time average
	maxLimit    int
	meanLatency time.Duration
	admitted    int
	refused     int
}

func (s simStats) refusedShare() float64 { return float64(s.refused) / float64(s.admitted+s.refused) }

type simEvent struct {
	at      time.Duration
	arrival time.Duration // for completions
	done    bool
}

type simEvents []simEvent

func (h simEvents) Len() int           { return len(h) }
func (h simEvents) Less(i, j int) bool { return h[i].at < h[j].at }
func (h simEvents) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *simEvents) Push(x any)        { *h = append(*h, x.(simEvent)) }
func (h *simEvents) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// freeAt holds the times at which the backend's workers become free.
type freeAt []time.Duration

func (h freeAt) Len() int           { return len(h) }
func (h freeAt) Less(i, j int) bool { return h[i] < h[j] }
func (h freeAt) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *freeAt) Push(x any)        { *h = append(*h, x.(time.Duration)) }
func (h *freeAt) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// simulate sends Poisson arrivals at rate per second through a to a
// backend of workers behind one FIFO queue: once more requests are in flight
// than there are workers, latency grows with the queue. Time is the fake
// clock; the run is deterministic.
func simulate(a *Adaptive, clock *fakeClock, rate float64, phases []simPhase) []simStats {
	rng := rand.New(rand.NewPCG(1, 2))
	var (
		done    func(time.Duration, bool)
		now     time.Duration
		events  = &simEvents{{at: 0}}
		workers = &freeAt{}
		stats   = make([]simStats, len(phases))
		limits  = make([]float64, len(phases))
		latSum  = make([]time.Duration, len(phases))
		latN    = make([]int, len(phases))
	)
	phase, phaseStart := -1, time.Duration(0)
	for phase < len(phases) {
		ev := heap.Pop(events).(simEvent)
		for phase < 0 || ev.at >= phaseStart+phases[phase].length {
			if phase >= 0 {
				phaseStart += phases[phase].length
			}
			phase++
			if phase == len(phases) {
				break
			}
			for workers.Len() > phases[phase].workers {
				heap.Pop(workers)
			}
			for workers.Len() < phases[phase].workers {
				heap.Push(workers, phaseStart)
			}
		}
		if phase == len(phases) {
			break
		}
		clock.Advance(ev.at - now)
		now = ev.at
		p := &phases[phase]
		measuring := now >= phaseStart+p.length/2
		if ev.done {
			done(now-ev.arrival, false)
			if measuring {
				latSum[phase] += now - ev.arrival
				latN[phase]++
			}
			continue
		}
		heap.Push(events, simEvent{at: now + time.Duration(rng.ExpFloat64()/rate*float64(time.Second))})
		if measuring {
			l := a.Limit()
			limits[phase] += float64(l)
			stats[phase].maxLimit = max(stats[phase].maxLimit, l)
		}
		d, ok := a.Acquire()
		if !ok {
			if measuring {
				stats[phase].refused++
			}
			continue
		}
		done = d // the same for every request
		if measuring {
			stats[phase].admitted++
		}
		start := max(now, heap.Pop(workers).(time.Duration))
		end := start + time.Duration((0.5+rng.Float64())*float64(p.service))
		heap.Push(workers, end)
		heap.Push(events, simEvent{at: end, arrival: now, done: true})
	}
	for i := range stats {
		stats[i].meanLimit = limits[i] / float64(stats[i].admitted+stats[i].refused)
		stats[i].meanLatency = latSum[i] / time.Duration(max(latN[i], 1))
	}
	return stats
}

// TestAdaptiveFollowsBackendCapacity runs the limit against a simulated
// backend whose latency grows once more than its number of workers are in
// flight, under more load than it can serve.
func TestAdaptiveFollowsBackendCapacity(t *testing.T) {
	const ms = time.Millisecond
	// check is what a user would notice in the second half of a phase.
	type check struct {
		minLimit, maxLimit float64       // bounds of the mean limit
		maxLatency         time.Duration // bound of the mean latency
		maxRefused         float64       // bound of the share refused
	}
	tests := []struct {
		name   string
		cfg    AdaptiveConfig
		rate   float64 // requests per second
		phases []simPhase
		checks []check
		// relative: phase i's mean limit must be below (or above) factor
		// times that of phase i-1.
		relative []float64
	}{
		{
			// Unbounded Gradient2 would drift to MaxLimit with a latency
			// of 100 times the service time.
			name:   "10 workers, 1.5x overload: limit near 10, latency bounded",
			rate:   1500,
			phases: []simPhase{{40 * time.Second, 10, 10 * ms}},
			checks: []check{{minLimit: 10, maxLimit: 35, maxLatency: 25 * ms, maxRefused: 0.5}},
		},
		{
			// The first RTTs already include queueing: the no-load RTT
			// starts too high and has to be measured.
			name:   "starting far above capacity",
			cfg:    AdaptiveConfig{InitialLimit: 200},
			rate:   1500,
			phases: []simPhase{{40 * time.Second, 10, 10 * ms}},
			checks: []check{{minLimit: 10, maxLimit: 35, maxLatency: 25 * ms, maxRefused: 0.5}},
		},
		{
			name: "workers drop to 4 and come back: limit drops and rises again",
			rate: 1500,
			phases: []simPhase{
				{20 * time.Second, 10, 10 * ms},
				{20 * time.Second, 4, 10 * ms},
				{20 * time.Second, 10, 10 * ms},
			},
			checks: []check{
				{minLimit: 10, maxLimit: 35, maxLatency: 25 * ms, maxRefused: 0.5},
				{minLimit: 4, maxLimit: 16, maxLatency: 30 * ms, maxRefused: 0.85},
				{minLimit: 10, maxLimit: 35, maxLatency: 25 * ms, maxRefused: 0.5},
			},
			relative: []float64{0, 0.7, 1.5},
		},
		{
			// Nothing queues: the limit must not throttle the traffic
			// when the backend becomes slower for good, once it has
			// measured the new no-load latency.
			name: "ample capacity, latency triples for good: limit recovers",
			rate: 3000,
			phases: []simPhase{
				{20 * time.Second, 1000, 10 * ms},
				{30 * time.Second, 1000, 30 * ms},
			},
			checks: []check{
				{minLimit: 40, maxLimit: 1000, maxLatency: 11 * ms, maxRefused: 0.01},
				{minLimit: 120, maxLimit: 1000, maxLatency: 31 * ms, maxRefused: 0.01},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			tt.cfg.Now = clock.Now
			a, err := NewAdaptive(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			stats := simulate(a, clock, tt.rate, tt.phases)
			for i, s := range stats {
				t.Logf("phase %d (%d workers, %v): mean limit %.1f (max %d), mean latency %v, refused %.0f%%",
					i+1, tt.phases[i].workers, tt.phases[i].service, s.meanLimit, s.maxLimit, s.meanLatency.Round(100*time.Microsecond), 100*s.refusedShare())
				c := tt.checks[i]
				if s.meanLimit < c.minLimit || s.meanLimit > c.maxLimit {
					t.Errorf("phase %d: mean limit %.1f, want %v..%v", i+1, s.meanLimit, c.minLimit, c.maxLimit)
				}
				if s.meanLatency > c.maxLatency {
					t.Errorf("phase %d: mean latency %v, want at most %v", i+1, s.meanLatency, c.maxLatency)
				}
				if s.refusedShare() > c.maxRefused {
					t.Errorf("phase %d: %.1f%% refused, want at most %.1f%%", i+1, 100*s.refusedShare(), 100*c.maxRefused)
				}
				if i > 0 && i < len(tt.relative) {
					f, prev := tt.relative[i], stats[i-1].meanLimit
					if f < 1 && s.meanLimit > f*prev {
						t.Errorf("phase %d: mean limit %.1f did not drop below %.1f x %.1f", i+1, s.meanLimit, f, prev)
					}
					if f > 1 && s.meanLimit < f*prev {
						t.Errorf("phase %d: mean limit %.1f did not rise above %.1f x %.1f", i+1, s.meanLimit, f, prev)
					}
				}
			}
		})
	}
}
