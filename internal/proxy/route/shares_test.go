package route_test

import (
	"math"
	"slices"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/route"
)

// TestBackendShares checks the shares against PickBackend itself: over
// random numbers spread evenly across the uint64 range, each backend is
// picked its share of the time (PickBackend maps rnd to a backend by its
// high bits, so an even sweep is exact up to one pick per backend).
func TestBackendShares(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint32
		want    []float64
	}{
		{"canary 90:10", []uint32{90, 10}, []float64{0.9, 0.1}},
		{"with a zero", []uint32{1, 0, 3}, []float64{0.25, 0, 0.75}},
		{"one backend", []uint32{7}, []float64{1}},
		{"all zero", []uint32{0, 0}, []float64{0, 0}},
		{"none", nil, []float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel := weighted(tt.weights...)
			got := sel.Rule.BackendShares()
			if !slices.EqualFunc(got, tt.want, func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }) {
				t.Fatalf("BackendShares() = %v, want %v", got, tt.want)
			}
			const sweep = 10_000
			counts := make([]int, len(tt.weights))
			for i := range sweep {
				b, ok := sel.PickBackend(uint64(i) * (math.MaxUint64 / sweep))
				if !ok {
					if slices.ContainsFunc(got, func(s float64) bool { return s > 0 }) {
						t.Fatalf("PickBackend picked nothing, but shares are %v", got)
					}
					continue
				}
				counts[int(b.Service[0]-'a')]++
			}
			for i, share := range got {
				if picked := float64(counts[i]) / sweep; math.Abs(picked-share) > 2.0/sweep {
					t.Errorf("backend %d: picked %.4f of the time, share %.4f", i, picked, share)
				}
			}
		})
	}
	if got := (*route.Rule)(nil).BackendShares(); got != nil {
		t.Errorf("a nil rule has shares %v", got)
	}
}
