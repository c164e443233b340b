package balance

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

var allPolicies = []Policy{P2CPeakEWMA, RoundRobin, LeastRequest, RingHash}

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		in      string
		want    Policy
		wantErr bool
	}{
		{"", P2CPeakEWMA, false},
		{"p2c-ewma", P2CPeakEWMA, false},
		{"round-robin", RoundRobin, false},
		{"least-request", LeastRequest, false},
		{"ring-hash", RingHash, false},
		{"roundrobin", 0, true},
		{"P2C-EWMA", 0, true},
		{"maglev", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePolicy(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParsePolicy(%q) = %v, want error", tt.in, got)
				}
				for _, name := range []string{"p2c-ewma", "round-robin", "least-request", "ring-hash", tt.in} {
					if !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
						t.Errorf("error %q does not mention %q", err, name)
					}
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParsePolicy(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if tt.in != "" && got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestNoEndpoints(t *testing.T) {
	for _, p := range allPolicies {
		t.Run(p.String(), func(t *testing.T) {
			b := New(p, Options{})
			for _, k := range []Key{{}, {HashKey: "user-1", HasHashKey: true}} {
				if _, err := b.Pick(k); !errors.Is(err, ErrNoEndpoints) {
					t.Errorf("Pick before Update: err = %v, want ErrNoEndpoints", err)
				}
			}
			b.Update(endpoints(2))
			if _, err := b.Pick(Key{}); err != nil {
				t.Fatalf("Pick with endpoints: %v", err)
			}
			b.Update(nil)
			_, err := b.Pick(Key{HashKey: "k", HasHashKey: true})
			if !errors.Is(fmt.Errorf("service web: %w", err), ErrNoEndpoints) {
				t.Errorf("Pick after emptying: err = %v, want ErrNoEndpoints", err)
			}
			if got := b.Endpoints(); len(got) != 0 {
				t.Errorf("Endpoints() = %v, want none", got)
			}
		})
	}
}

// TestDistribution checks that every policy spreads traffic over all
// endpoints in proportion to their weights.
func TestDistribution(t *testing.T) {
	const picks = 60060 // a multiple of the round-robin periods
	tests := []struct {
		name    string
		policy  Policy
		weights []uint32
		// hold keeps every request in flight (sustained load); otherwise
		// each completes at once with the same latency.
		hold bool
		key  bool // use a distinct hash key per request
		tol  float64
	}{
		{"p2c equal idle", P2CPeakEWMA, []uint32{1, 1, 1}, false, false, 0.02},
		{"p2c equal loaded", P2CPeakEWMA, []uint32{1, 1, 1}, true, false, 0.01},
		{"p2c weighted loaded", P2CPeakEWMA, []uint32{1, 2, 3, 4}, true, false, 0.01},
		{"round-robin equal", RoundRobin, []uint32{1, 1, 1, 1, 1}, false, false, 0},
		{"round-robin weighted", RoundRobin, []uint32{5, 1, 1}, false, false, 0},
		{"round-robin weighted loaded", RoundRobin, []uint32{1, 2, 3}, true, false, 0},
		{"least-request equal idle", LeastRequest, []uint32{1, 1, 1}, false, false, 0.02},
		{"least-request weighted idle", LeastRequest, []uint32{1, 2, 3, 4}, false, false, 0.02},
		{"least-request weighted loaded", LeastRequest, []uint32{1, 2, 3, 4}, true, false, 0.01},
		// A ring's shares vary with the virtual node positions: about
		// 1/sqrt(nodes) relative, so a few percent here.
		{"ring-hash equal", RingHash, []uint32{1, 1, 1, 1}, false, true, 0.04},
		{"ring-hash weighted", RingHash, []uint32{1, 2, 3, 4}, false, true, 0.04},
		{"ring-hash without key falls back to p2c", RingHash, []uint32{1, 2, 3}, true, false, 0.01},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			b := New(tt.policy, Options{Now: clk.Now, Rand: seeded(1)})
			eps := endpoints(len(tt.weights), tt.weights...)
			b.Update(eps)
			counts := map[string]int{}
			var held []*Pick
			for i := range picks {
				k := Key{}
				if tt.key {
					k = Key{HashKey: fmt.Sprintf("session-%d", i), HasHashKey: true}
				}
				p := mustPick(t, b, k)
				counts[p.Addr]++
				if tt.hold {
					held = append(held, p)
				} else {
					p.Done(10*time.Millisecond, nil)
				}
			}
			for _, p := range held {
				p.Done(10*time.Millisecond, nil)
			}
			var total uint32
			for _, w := range tt.weights {
				total += w
			}
			for i, e := range eps {
				want := float64(tt.weights[i]) / float64(total)
				got := share(counts, e.Addr)
				if math.Abs(got-want) > tt.tol+1e-9 {
					t.Errorf("%s (weight %d) got %.4f of picks, want %.4f ± %.3f", e.Addr, e.Weight, got, want, tt.tol)
				}
			}
			for _, s := range b.Endpoints() {
				if s.InFlight != 0 {
					t.Errorf("%s has %d in flight after every Done", s.Addr, s.InFlight)
				}
			}
		})
	}
}

func TestRoundRobinSmooth(t *testing.T) {
	b := New(RoundRobin, Options{})
	b.Update([]Endpoint{{Addr: "a", Weight: 5}, {Addr: "b", Weight: 1}, {Addr: "c", Weight: 1}})
	var seq strings.Builder
	for range 14 {
		p := mustPick(t, b, Key{})
		seq.WriteString(p.Addr)
		p.Done(0, nil)
	}
	// nginx's smooth weighted round robin for {a:5, b:1, c:1}.
	if got, want := seq.String(), "aabacaaaabacaa"; got != want {
		t.Errorf("sequence %q, want %q", got, want)
	}
}

// TestRoundRobinLarge covers weight sets too large for the exact nginx
// schedule: counts over a period are still exact and each endpoint's turns
// are spread out.
func TestRoundRobinLarge(t *testing.T) {
	for _, tt := range []struct {
		name    string
		weights []uint32
	}{
		{"heap schedule", func() []uint32 {
			w := make([]uint32, 300)
			for i := range w {
				w[i] = uint32(1 + i%97)
			}
			return w
		}()},
		{"scaled weights", []uint32{1_000_000, 3_000_000, 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var total uint64
			for _, w := range tt.weights {
				total += uint64(w)
			}
			sched := schedule(tt.weights)
			period := float64(len(sched))
			counts := make([]int, len(tt.weights))
			// Smoothness: at every point of the period each endpoint has
			// had its fair share of turns, give or take 2.
			worst := 0.0
			for pos, i := range sched {
				fair := float64(pos+1) * float64(tt.weights[i]) / float64(total)
				worst = max(worst, fair-float64(counts[i])-1, float64(counts[i]+1)-fair)
				counts[i]++
			}
			if worst > 2 {
				t.Errorf("an endpoint strays %.2f turns from its fair share within the period, want <= 2", worst)
			}
			for i, w := range tt.weights {
				want := float64(w) / float64(total)
				got := float64(counts[i]) / period
				if math.Abs(got-want) > 1/period+want*1e-3 {
					t.Errorf("endpoint %d (weight %d): %.6f of the period, want %.6f", i, w, got, want)
				}
			}
		})
	}
}

func TestUpdateKeepsState(t *testing.T) {
	clk := newFakeClock()
	b := New(P2CPeakEWMA, Options{Now: clk.Now, Rand: seeded(2)})
	b.Update([]Endpoint{{Addr: "a:1"}, {Addr: "b:1"}, {Addr: "c:1"}})

	// Put one request in flight on a:1 and give b:1 a slow sample.
	var held *Pick
	slowed := false
	for held == nil || !slowed {
		p := mustPick(t, b, Key{})
		switch {
		case p.Addr == "a:1" && held == nil:
			held = p
		case p.Addr == "b:1":
			p.Done(200*time.Millisecond, nil)
			slowed = true
		default:
			p.Done(DefaultRTT, nil)
		}
	}
	before := statsByAddr(b)

	b.Update([]Endpoint{{Addr: "d:1"}, {Addr: "b:1", Weight: 5, Zone: "z2"}, {Addr: "a:1"}})
	after := statsByAddr(b)
	if len(after) != 3 || after["c:1"].Addr != "" {
		t.Fatalf("Endpoints after Update = %v, want a:1, b:1, d:1", b.Endpoints())
	}
	if got := after["a:1"].InFlight; got != 1 {
		t.Errorf("a:1 in flight = %d after Update, want 1 (kept)", got)
	}
	if got, want := after["b:1"].EWMA, before["b:1"].EWMA; got != want || got < 200*time.Millisecond {
		t.Errorf("b:1 EWMA = %v after Update, want %v (kept)", got, want)
	}
	if got := after["b:1"]; got.Weight != 5 || got.Zone != "z2" {
		t.Errorf("b:1 = %+v, want weight 5 zone z2 from the new config", got)
	}
	// A new endpoint starts at the median estimate of those that stayed
	// (a:1 at the default, b:1 at 200ms).
	if got, want := after["d:1"].EWMA, (before["a:1"].EWMA+before["b:1"].EWMA)/2; absDur(got-want) > time.Microsecond {
		t.Errorf("new endpoint d:1 EWMA = %v, want median of the others %v", got, want)
	}
	held.Done(time.Millisecond, nil)
	if got := statsByAddr(b)["a:1"].InFlight; got != 0 {
		t.Errorf("a:1 in flight = %d after Done, want 0", got)
	}
}

func TestFirstEndpointsStartAtDefaultRTT(t *testing.T) {
	clk := newFakeClock()
	b := New(P2CPeakEWMA, Options{Now: clk.Now, DefaultRTT: 42 * time.Millisecond})
	b.Update(endpoints(3))
	for _, s := range b.Endpoints() {
		if absDur(s.EWMA-42*time.Millisecond) > time.Microsecond {
			t.Errorf("%s EWMA = %v, want DefaultRTT 42ms", s.Addr, s.EWMA)
		}
		if s.Cost <= 0 {
			t.Errorf("%s cost = %v, want > 0", s.Addr, s.Cost)
		}
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func TestDoneAfterRemoval(t *testing.T) {
	for _, p := range allPolicies {
		t.Run(p.String(), func(t *testing.T) {
			b := New(p, Options{Rand: seeded(3)})
			b.Update(endpoints(3))
			var picks []*Pick
			for range 30 {
				picks = append(picks, mustPick(t, b, Key{HashKey: "x", HasHashKey: len(picks)%2 == 0}))
			}
			b.Update(nil)
			for _, pk := range picks {
				pk.Done(time.Millisecond, errors.New("connection reset"))
			}
			// Re-adding an address starts afresh.
			b.Update(endpoints(3))
			for _, s := range b.Endpoints() {
				if s.InFlight != 0 {
					t.Errorf("%s in flight = %d after re-adding, want 0", s.Addr, s.InFlight)
				}
			}
		})
	}
}

func TestDoneTwiceIsIgnored(t *testing.T) {
	b := New(LeastRequest, Options{})
	b.Update(endpoints(1))
	p := mustPick(t, b, Key{})
	p.Done(time.Millisecond, nil)
	p.Done(time.Millisecond, nil)
	if got := b.Endpoints()[0].InFlight; got != 0 {
		t.Errorf("in flight = %d after double Done, want 0", got)
	}
}

func TestDuplicateAddrs(t *testing.T) {
	b := New(RoundRobin, Options{})
	b.Update([]Endpoint{{Addr: "a", Weight: 2}, {Addr: "b"}, {Addr: "a", Weight: 9}})
	got := b.Endpoints()
	if len(got) != 2 || got[0].Addr != "a" || got[0].Weight != 2 {
		t.Errorf("Endpoints() = %+v, want a (weight 2, first wins) and b", got)
	}
}

func TestConcurrent(t *testing.T) {
	sets := [][]Endpoint{endpoints(3), endpoints(5, 1, 2, 3, 4, 5), endpoints(2), nil, endpoints(4)}
	for _, p := range allPolicies {
		t.Run(p.String(), func(t *testing.T) {
			b := New(p, Options{})
			b.Update(sets[0])
			stop := make(chan struct{})
			var updater, workers sync.WaitGroup
			updater.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					b.Update(sets[i%len(sets)])
					_ = b.Endpoints()
				}
			})
			for w := range 4 {
				workers.Go(func() {
					for i := range 3000 {
						pk, err := b.Pick(Key{HashKey: fmt.Sprint(i), HasHashKey: w%2 == 0})
						if errors.Is(err, ErrNoEndpoints) {
							continue
						}
						if err != nil {
							t.Errorf("Pick: %v", err)
							return
						}
						var failure error
						if i%7 == 0 {
							failure = errors.New("503")
						}
						pk.Done(time.Duration(i%50)*time.Microsecond, failure)
					}
				})
			}
			workers.Wait()
			close(stop)
			updater.Wait()
			b.Update(sets[1])
			for _, s := range b.Endpoints() {
				if s.InFlight != 0 {
					t.Errorf("%s in flight = %d after every Done, want 0", s.Addr, s.InFlight)
				}
			}
		})
	}
}

func TestNewPanicsOnInvalidPolicy(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New(Policy(42)) did not panic")
		}
	}()
	New(Policy(42), Options{})
}
