package route_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/route"
)

func weighted(ws ...uint32) *route.Selected {
	r := &route.Rule{Route: "ns/w"}
	for i, w := range ws {
		r.Backends = append(r.Backends, route.Backend{Service: string(rune('a' + i)), Port: 80, Weight: w})
	}
	return &route.Selected{Rule: r, MatchIndex: -1}
}

func TestPickBackendDistribution(t *testing.T) {
	const draws = 100_000
	tests := []struct {
		name    string
		weights []uint32
		seed    uint64
	}{
		{"1:3:6 with a zero", []uint32{1, 3, 0, 6}, 1},
		{"1:3:6 other seed", []uint32{1, 3, 0, 6}, 2},
		{"equal", []uint32{1, 1, 1, 1}, 3},
		{"90:10 canary", []uint32{90, 10}, 4},
		{"tiny share", []uint32{999_999, 1_000, 1}, 5},
		{"max weights", []uint32{1_000_000, 1_000_000}, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel := weighted(tt.weights...)
			rnd := rand.New(rand.NewPCG(tt.seed, tt.seed*0x9e3779b97f4a7c15))
			counts := make(map[string]int)
			for range draws {
				b, ok := sel.PickBackend(rnd.Uint64())
				if !ok {
					t.Fatal("no backend picked")
				}
				counts[b.Service]++
			}
			var total float64
			for _, w := range tt.weights {
				total += float64(w)
			}
			for i, w := range tt.weights {
				name := string(rune('a' + i))
				p := float64(w) / total
				got := float64(counts[name]) / draws
				// Six standard deviations of a binomial share, at least
				// 0.001: a failure is a bug, not bad luck.
				bound := math.Max(6*math.Sqrt(p*(1-p)/draws), 0.001)
				if math.Abs(got-p) > bound {
					t.Errorf("backend %s (weight %d): share %.4f, want %.4f ± %.4f", name, w, got, p, bound)
				}
				if w == 0 && counts[name] != 0 {
					t.Errorf("backend %s has weight 0 but was picked %d times", name, counts[name])
				}
			}
		})
	}
}

func TestPickBackendEdges(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint32
		rnd     uint64
		want    string // "" for no pick
	}{
		{"no backends", nil, 1, ""},
		{"all weights zero", []uint32{0, 0}, 1, ""},
		{"lowest random, leading zero weight", []uint32{0, 5, 5}, 0, "b"},
		{"highest random, trailing zero weight", []uint32{5, 5, 0}, math.MaxUint64, "b"},
		{"half: below", []uint32{1, 1}, 1<<63 - 1, "a"},
		{"half: at", []uint32{1, 1}, 1 << 63, "b"},
		{"single", []uint32{7}, 12345, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, ok := weighted(tt.weights...).PickBackend(tt.rnd)
			switch {
			case tt.want == "" && ok:
				t.Errorf("picked %s, want none", b.Service)
			case tt.want != "" && (!ok || b.Service != tt.want):
				t.Errorf("picked %v %v, want %s", b, ok, tt.want)
			}
		})
	}
}

func TestPickBackendFromTable(t *testing.T) {
	tab := mustTable(t, rules("ns/t", route.Rule{Backends: []route.Backend{{Service: "x", Port: 80, Weight: 1}}}, route.Rule{
		Matches: []route.Match{{Path: prefix("/empty")}},
	}))
	sel, _ := tab.Match(req("GET", "/"))
	if b, ok := sel.PickBackend(42); !ok || b.Service != "x" || b != &sel.Rule.Backends[0] {
		t.Errorf("PickBackend = %v, %v", b, ok)
	}
	sel, _ = tab.Match(req("GET", "/empty"))
	if b, ok := sel.PickBackend(42); ok {
		t.Errorf("rule without backends picked %v", b)
	}
	if n := testing.AllocsPerRun(100, func() { sel.PickBackend(7) }); n != 0 {
		t.Errorf("PickBackend allocates %.0f times", n)
	}
}
