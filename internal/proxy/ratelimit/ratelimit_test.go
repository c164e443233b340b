package ratelimit_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/clocktest"
	"github.com/weft-mesh/weft/internal/proxy/ratelimit"
	"github.com/weft-mesh/weft/internal/validatetest"
)

// fakeClock is a settable clock for exact token counts.
func mustNew(t testing.TB, c ratelimit.Config) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(c)
	if err != nil {
		t.Fatalf("New(%+v): %v", c, err)
	}
	return l
}

func TestBurstThenSteadyRate(t *testing.T) {
	type step struct {
		advance   time.Duration
		tries     int
		wantOK    int
		wantRetry time.Duration // of the first refusal; 0 when none is expected
	}
	tests := []struct {
		name  string
		rps   float64
		burst int
		steps []step
	}{
		{
			name: "burst, partial refills, cap at burst", rps: 10, burst: 5,
			steps: []step{
				{0, 6, 5, 100 * time.Millisecond},
				{100 * time.Millisecond, 3, 1, 100 * time.Millisecond},
				{250 * time.Millisecond, 5, 2, 50 * time.Millisecond},
				{50 * time.Millisecond, 1, 1, 0},
				{10 * time.Second, 10, 5, 100 * time.Millisecond},
			},
		},
		{
			name: "default burst is ceil(rps)", rps: 2.5,
			steps: []step{
				{0, 4, 3, 400 * time.Millisecond},
				{400 * time.Millisecond, 2, 1, 400 * time.Millisecond},
			},
		},
		{
			name: "rate below one per second", rps: 0.5,
			steps: []step{
				{0, 2, 1, 2 * time.Second},
				{time.Second, 1, 0, time.Second},
				{time.Second, 2, 1, 2 * time.Second},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			l := mustNew(t, ratelimit.Config{RequestsPerSecond: tt.rps, Burst: tt.burst, Now: clk.Now})
			for i, s := range tt.steps {
				clk.Advance(s.advance)
				got, firstRetry := 0, time.Duration(0)
				for range s.tries {
					ok, retry, scope := l.Allow("")
					if ok {
						got++
						if retry != 0 || scope != "" {
							t.Fatalf("step %d: admitted with retryAfter %v scope %q, want 0 and \"\"", i, retry, scope)
						}
						continue
					}
					if scope != ratelimit.ScopeRoute {
						t.Fatalf("step %d: refused with scope %q, want %q", i, scope, ratelimit.ScopeRoute)
					}
					if firstRetry == 0 {
						firstRetry = retry
					}
				}
				if got != s.wantOK || firstRetry != s.wantRetry {
					t.Fatalf("step %d (+%v, %d tries): admitted %d retryAfter %v, want %d and %v",
						i, s.advance, s.tries, got, firstRetry, s.wantOK, s.wantRetry)
				}
			}
		})
	}
}

// TestSteadyRateExact polls in small steps for a long time: the admitted
// count must be exactly burst + rate*elapsed, with no drift from
// accumulating fractional refills.
func TestSteadyRateExact(t *testing.T) {
	tests := []struct {
		rps   float64
		burst int
		step  time.Duration
		total time.Duration
		want  int
	}{
		{rps: 10, burst: 1, step: 10 * time.Millisecond, total: 10 * time.Second, want: 1 + 100},
		{rps: 100, burst: 20, step: time.Millisecond, total: 60 * time.Second, want: 20 + 6000},
		{rps: 0.25, burst: 1, step: 100 * time.Millisecond, total: 40 * time.Second, want: 1 + 10},
		{rps: 1000, burst: 1000, step: 3 * time.Millisecond, total: 3 * time.Second, want: 1000 + 3000},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%vrps_burst%d_every%v", tt.rps, tt.burst, tt.step), func(t *testing.T) {
			clk := newFakeClock()
			l := mustNew(t, ratelimit.Config{RequestsPerSecond: tt.rps, Burst: tt.burst, Now: clk.Now})
			got := 0
			for elapsed := time.Duration(0); elapsed <= tt.total; elapsed += tt.step {
				for {
					ok, _, _ := l.Allow("")
					if !ok {
						break
					}
					got++
				}
				clk.Advance(tt.step)
			}
			if got != tt.want {
				t.Fatalf("admitted %d over %v, want exactly %d", got, tt.total, tt.want)
			}
		})
	}
}

type call struct {
	id        string
	advance   time.Duration
	wantOK    bool
	wantScope string
	wantRetry time.Duration
}

func runCalls(t *testing.T, c ratelimit.Config, calls []call) {
	t.Helper()
	clk := newFakeClock()
	c.Now = clk.Now
	l := mustNew(t, c)
	for i, cl := range calls {
		clk.Advance(cl.advance)
		ok, retry, scope := l.Allow(cl.id)
		if ok != cl.wantOK || scope != cl.wantScope || retry != cl.wantRetry {
			t.Fatalf("call %d Allow(%q) after +%v = (%v, %v, %q), want (%v, %v, %q)",
				i, cl.id, cl.advance, ok, retry, scope, cl.wantOK, cl.wantRetry, cl.wantScope)
		}
	}
}

func repeat(n int, c call) []call {
	out := make([]call, n)
	for i := range out {
		out[i] = c
	}
	return out
}

func concat(parts ...[]call) []call {
	var out []call
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestPerIdentity(t *testing.T) {
	const noisy, quiet = "spiffe://mesh/ns/a/sa/noisy", "spiffe://mesh/ns/a/sa/quiet"
	tests := []struct {
		name  string
		cfg   ratelimit.Config
		calls []call
	}{
		{
			name: "noisy identity limited, quiet one unaffected",
			cfg:  ratelimit.Config{RequestsPerSecond: 1000, PerIdentityRequestsPerSecond: 2, PerIdentityBurst: 3},
			calls: concat(
				repeat(3, call{id: noisy, wantOK: true}),
				repeat(2, call{id: noisy, wantScope: ratelimit.ScopeIdentity, wantRetry: 500 * time.Millisecond}),
				repeat(3, call{id: quiet, wantOK: true}),
				[]call{
					{id: quiet, wantScope: ratelimit.ScopeIdentity, wantRetry: 500 * time.Millisecond},
					{id: noisy, advance: 500 * time.Millisecond, wantOK: true},
					{id: quiet, wantOK: true},
				},
			),
		},
		{
			name: "total bucket still applies",
			cfg:  ratelimit.Config{RequestsPerSecond: 1, Burst: 8, PerIdentityRequestsPerSecond: 1, PerIdentityBurst: 5},
			calls: concat(
				repeat(5, call{id: noisy, wantOK: true}),
				[]call{{id: noisy, wantScope: ratelimit.ScopeIdentity, wantRetry: time.Second}},
				repeat(3, call{id: quiet, wantOK: true}),
				// The quiet identity has 2 tokens left, the route none.
				[]call{
					{id: quiet, wantScope: ratelimit.ScopeRoute, wantRetry: time.Second},
					// Both buckets empty for 1s: the identity is named on a tie.
					{id: noisy, wantScope: ratelimit.ScopeIdentity, wantRetry: time.Second},
					{id: quiet, advance: time.Second, wantOK: true},
					{id: noisy, wantScope: ratelimit.ScopeRoute, wantRetry: time.Second},
				},
			),
		},
		{
			name: "refused request takes no token from either bucket",
			cfg:  ratelimit.Config{RequestsPerSecond: 1, Burst: 1, PerIdentityRequestsPerSecond: 1, PerIdentityBurst: 2},
			calls: []call{
				{id: noisy, wantOK: true},
				{id: noisy, wantScope: ratelimit.ScopeRoute, wantRetry: time.Second},
				{id: noisy, wantScope: ratelimit.ScopeRoute, wantRetry: time.Second},
				// The identity still holds its second token.
				{id: noisy, advance: time.Second, wantOK: true},
			},
		},
		{
			name: "per identity only: no total, each identity its own budget",
			cfg:  ratelimit.Config{PerIdentityRequestsPerSecond: 1, PerIdentityBurst: 1},
			calls: []call{
				{id: noisy, wantOK: true},
				{id: noisy, wantScope: ratelimit.ScopeIdentity, wantRetry: time.Second},
				{id: quiet, wantOK: true},
				{id: quiet, wantScope: ratelimit.ScopeIdentity, wantRetry: time.Second},
				{id: "", wantOK: true},
				{id: noisy, advance: time.Second, wantOK: true},
			},
		},
		{
			name: "unauthenticated clients share one bucket of their own",
			cfg:  ratelimit.Config{RequestsPerSecond: 100, PerIdentityRequestsPerSecond: 1, PerIdentityBurst: 2},
			calls: concat(
				repeat(2, call{id: "", wantOK: true}),
				[]call{
					{id: "", wantScope: ratelimit.ScopeIdentity, wantRetry: time.Second},
					{id: noisy, wantOK: true},
				},
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runCalls(t, tt.cfg, tt.calls) })
	}
}

func TestIdentityLRUBound(t *testing.T) {
	cfg := ratelimit.Config{RequestsPerSecond: 1000, PerIdentityRequestsPerSecond: 1, PerIdentityBurst: 1, MaxIdentities: 2}
	refused := call{wantScope: ratelimit.ScopeIdentity, wantRetry: time.Second}
	with := func(id string, c call) call { c.id = id; return c }
	tests := []struct {
		name  string
		calls []call
	}{
		{
			name: "least recently seen is evicted and starts over full",
			calls: []call{
				{id: "a", wantOK: true},
				{id: "b", wantOK: true},
				with("a", refused),      // a is now the most recent
				{id: "c", wantOK: true}, // evicts b
				with("a", refused),      // a kept its empty bucket
				{id: "b", wantOK: true}, // b forgotten: full again; evicts c
				with("a", refused),
				{id: "c", wantOK: true}, // c forgotten: full again; evicts b
				with("a", refused),
			},
		},
		{
			name: "a refused lookup also counts as seen",
			calls: []call{
				{id: "a", wantOK: true},
				{id: "b", wantOK: true},
				with("a", refused),
				with("b", refused),      // b most recent, a least
				{id: "c", wantOK: true}, // evicts a
				{id: "a", wantOK: true}, // full again; evicts b
				{id: "b", wantOK: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runCalls(t, cfg, tt.calls) })
	}
}

// TestBoundedMemory feeds many more identities than the bound and checks
// the ones still tracked behave as tracked.
func TestBoundedMemory(t *testing.T) {
	clk := newFakeClock()
	l := mustNew(t, ratelimit.Config{RequestsPerSecond: 1e6, PerIdentityRequestsPerSecond: 1, PerIdentityBurst: 1, MaxIdentities: 100, Now: clk.Now})
	for i := range 10000 {
		if ok, _, _ := l.Allow(fmt.Sprint("id-", i)); !ok {
			t.Fatalf("new identity %d refused", i)
		}
	}
	// The last 100 are tracked with empty buckets; the one before is not.
	for i := 9900; i < 10000; i++ {
		if ok, _, _ := l.Allow(fmt.Sprint("id-", i)); ok {
			t.Fatalf("identity %d (tracked) admitted twice without a refill", i)
		}
	}
	if ok, _, _ := l.Allow("id-9899"); !ok {
		t.Fatal("identity 9899 (evicted) refused; want a fresh bucket")
	}
}

func TestNoAllocationForTrackedIdentity(t *testing.T) {
	l := mustNew(t, ratelimit.Config{RequestsPerSecond: 1e9, Burst: 1 << 30, PerIdentityRequestsPerSecond: 1e9, PerIdentityBurst: 1 << 30})
	ids := []string{"spiffe://mesh/a", "spiffe://mesh/b", ""}
	for _, id := range ids {
		l.Allow(id)
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		l.Allow(ids[i%len(ids)])
		i++
	})
	if allocs != 0 {
		t.Fatalf("Allow allocates %v times per call for tracked identities, want 0", allocs)
	}
}

// TestConcurrentNeverOverGrants hammers a limiter on the real clock from
// several goroutines: the total admitted can never exceed burst + rate *
// elapsed, for the route and for each identity.
func TestConcurrentNeverOverGrants(t *testing.T) {
	tests := []struct {
		name string
		cfg  ratelimit.Config
		ids  []string
	}{
		{name: "route only", cfg: ratelimit.Config{RequestsPerSecond: 2000, Burst: 50}, ids: []string{""}},
		{
			name: "per identity",
			cfg:  ratelimit.Config{RequestsPerSecond: 3000, Burst: 60, PerIdentityRequestsPerSecond: 1000, PerIdentityBurst: 20, MaxIdentities: 8},
			ids:  []string{"", "spiffe://mesh/a", "spiffe://mesh/b", "spiffe://mesh/c"},
		},
	}
	const workers, run = 4, 150 * time.Millisecond
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			l := mustNew(t, tt.cfg)
			admitted := make([]atomic.Int64, len(tt.ids))
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for n := w; time.Since(start) < run; n++ {
						k := n % len(tt.ids)
						if ok, _, _ := l.Allow(tt.ids[k]); ok {
							admitted[k].Add(1)
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start).Seconds()
			total := int64(0)
			for k := range admitted {
				got := admitted[k].Load()
				total += got
				if tt.cfg.PerIdentityRequestsPerSecond > 0 {
					limit := float64(tt.cfg.PerIdentityBurst) + tt.cfg.PerIdentityRequestsPerSecond*elapsed
					if float64(got) > limit {
						t.Errorf("identity %q: admitted %d in %.3fs, more than burst+rate*elapsed = %.1f", tt.ids[k], got, elapsed, limit)
					}
				}
			}
			limit := float64(tt.cfg.Burst) + tt.cfg.RequestsPerSecond*elapsed
			if float64(total) > limit {
				t.Errorf("route: admitted %d in %.3fs, more than burst+rate*elapsed = %.1f", total, elapsed, limit)
			}
			if total < int64(tt.cfg.Burst) {
				t.Errorf("route: admitted only %d, less than the burst %d", total, tt.cfg.Burst)
			}
			t.Logf("admitted %d in %.3fs (bound %.1f)", total, elapsed, limit)
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  ratelimit.Config
		want []string // substrings of the error; none: valid
	}{
		{name: "minimal", cfg: ratelimit.Config{RequestsPerSecond: 1}},
		{name: "full", cfg: ratelimit.Config{RequestsPerSecond: 100, Burst: 10, PerIdentityRequestsPerSecond: 5, PerIdentityBurst: 2, MaxIdentities: 10}},
		{name: "zero rate", cfg: ratelimit.Config{}, want: []string{"RequestsPerSecond is 0", "greater than 0"}},
		{name: "negative rate", cfg: ratelimit.Config{RequestsPerSecond: -1}, want: []string{"RequestsPerSecond is -1"}},
		{name: "NaN rate", cfg: ratelimit.Config{RequestsPerSecond: nan()}, want: []string{"RequestsPerSecond is NaN", "finite"}},
		{name: "huge rate", cfg: ratelimit.Config{RequestsPerSecond: 2e9}, want: []string{"RequestsPerSecond is 2e+09", "remove the limit"}},
		{name: "negative burst", cfg: ratelimit.Config{RequestsPerSecond: 1, Burst: -1}, want: []string{"Burst is -1", "0 for the default"}},
		{name: "huge burst", cfg: ratelimit.Config{RequestsPerSecond: 1, Burst: 1 << 31}, want: []string{"Burst is 2147483648"}},
		{name: "negative identity rate", cfg: ratelimit.Config{RequestsPerSecond: 1, PerIdentityRequestsPerSecond: -2}, want: []string{"PerIdentityRequestsPerSecond is -2"}},
		{name: "negative identity burst", cfg: ratelimit.Config{RequestsPerSecond: 1, PerIdentityRequestsPerSecond: 1, PerIdentityBurst: -3}, want: []string{"PerIdentityBurst is -3"}},
		{name: "negative max identities", cfg: ratelimit.Config{RequestsPerSecond: 1, PerIdentityRequestsPerSecond: 1, MaxIdentities: -1}, want: []string{"MaxIdentities is -1"}},
		{name: "identity burst without identity rate", cfg: ratelimit.Config{RequestsPerSecond: 1, PerIdentityBurst: 3}, want: []string{"PerIdentityBurst is 3 but per-identity limiting is off", "set PerIdentityRequestsPerSecond"}},
		{name: "max identities without identity rate", cfg: ratelimit.Config{RequestsPerSecond: 1, MaxIdentities: 5}, want: []string{"MaxIdentities is 5 but per-identity limiting is off"}},
		{name: "per identity only", cfg: ratelimit.Config{PerIdentityRequestsPerSecond: 1}},
		{name: "total burst without total rate", cfg: ratelimit.Config{Burst: 4, PerIdentityRequestsPerSecond: 1}, want: []string{"Burst is 4 but there is no total limit", "set RequestsPerSecond"}},
		{name: "negative total rate with identity rate", cfg: ratelimit.Config{RequestsPerSecond: -1, PerIdentityRequestsPerSecond: 1}, want: []string{"RequestsPerSecond is -1"}},
		{name: "every problem reported", cfg: ratelimit.Config{Burst: -1, MaxIdentities: -1}, want: []string{"RequestsPerSecond", "Burst is -1", "MaxIdentities is -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			_, newErr := ratelimit.New(tt.cfg)
			validatetest.Check(t, err, newErr, tt.want)
		})
	}
}

func nan() float64 {
	var zero float64
	return zero / zero
}

// fakeClock is the manual clock shared by weft's tests.
type fakeClock = clocktest.Clock

func newFakeClock() *fakeClock { return clocktest.New() }
