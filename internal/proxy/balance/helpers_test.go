package balance

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weft-mesh/weft/internal/clocktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// seeded returns a deterministic, concurrency-safe Options.Rand.
func seeded(seed uint64) func() uint64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	return func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Uint64()
	}
}

// fakeClock is an Options.Now that only moves when told to.
// endpoints returns n endpoints 10.0.0.i:80 with the given weights (all 1 if
// weights is nil).
func endpoints(n int, weights ...uint32) []Endpoint {
	eps := make([]Endpoint, n)
	for i := range eps {
		eps[i] = Endpoint{Addr: fmt.Sprintf("10.0.0.%d:80", i+1), Weight: 1}
		if weights != nil {
			eps[i].Weight = weights[i]
		}
	}
	return eps
}

func mustPick(t testing.TB, b *Balancer, k Key) *Pick {
	t.Helper()
	p, err := b.Pick(k)
	if err != nil {
		t.Fatalf("Pick: %v", err)
	}
	return p
}

// latencyFunc says how an endpoint answers a request.
type latencyFunc func(addr string) (time.Duration, error)

// serve sends n requests dt apart on clk, each completing at once with what
// lat says, and returns how many each endpoint got.
func serve(t testing.TB, b *Balancer, clk *fakeClock, n int, dt time.Duration, lat latencyFunc) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		clk.Advance(dt)
		p := mustPick(t, b, Key{})
		got[p.Addr]++
		p.Done(lat(p.Addr))
	}
	return got
}

func share(counts map[string]int, addr string) float64 {
	total := 0
	for _, c := range counts {
		total += c
	}
	return float64(counts[addr]) / float64(total)
}

func statsByAddr(b *Balancer) map[string]EndpointStats {
	m := map[string]EndpointStats{}
	for _, s := range b.Endpoints() {
		m[s.Addr] = s
	}
	return m
}

// fakeClock is the manual clock shared by weft's tests.
type fakeClock = clocktest.Clock

func newFakeClock() *fakeClock { return clocktest.New() }
