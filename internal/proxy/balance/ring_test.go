package balance

import (
	"fmt"
	"slices"
	"testing"
)

func ringOwners(t *testing.T, b *Balancer, keys int) []string {
	t.Helper()
	out := make([]string, keys)
	for i := range out {
		p := mustPick(t, b, Key{HashKey: fmt.Sprintf("user-%d", i), HasHashKey: true})
		out[i] = p.Addr
		p.Done(0, nil)
	}
	return out
}

func TestRingHashSameKeySameEndpoint(t *testing.T) {
	eps := endpoints(5)
	b := New(RingHash, Options{})
	b.Update(eps)
	first := ringOwners(t, b, 1000)
	if again := ringOwners(t, b, 1000); !slices.Equal(first, again) {
		t.Error("the same keys went to different endpoints on a second pass")
	}
	// The order endpoints are listed in does not matter, nor does the
	// balancer instance (every proxy agrees).
	reversed := slices.Clone(eps)
	slices.Reverse(reversed)
	other := New(RingHash, Options{})
	other.Update(reversed)
	if got := ringOwners(t, other, 1000); !slices.Equal(first, got) {
		t.Error("another balancer with the endpoints in another order maps keys differently")
	}
}

func TestRingHashMinimalDisruption(t *testing.T) {
	const keys = 20000
	tests := []struct {
		name   string
		before []Endpoint
		after  []Endpoint
	}{
		{"remove 1 of 10", endpoints(10), endpoints(10)[1:]},
		{"remove 1 of 3", endpoints(3), endpoints(3)[:2]},
		{"add 1 to 10", endpoints(10), endpoints(11)},
		{"remove a light one of weighted", endpoints(6, 1, 2, 3, 4, 5, 6), endpoints(6, 1, 2, 3, 4, 5, 6)[1:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(RingHash, Options{})
			b.Update(tt.before)
			before := ringOwners(t, b, keys)
			b.Update(tt.after)
			after := ringOwners(t, b, keys)

			var gone, added []string
			for _, e := range tt.before {
				if !slices.ContainsFunc(tt.after, func(x Endpoint) bool { return x.Addr == e.Addr }) {
					gone = append(gone, e.Addr)
				}
			}
			for _, e := range tt.after {
				if !slices.ContainsFunc(tt.before, func(x Endpoint) bool { return x.Addr == e.Addr }) {
					added = append(added, e.Addr)
				}
			}
			moved := 0
			for i := range before {
				if before[i] == after[i] {
					continue
				}
				moved++
				// Only keys of a removed endpoint move, and only to an added
				// one otherwise.
				if !slices.Contains(gone, before[i]) && !slices.Contains(added, after[i]) {
					t.Fatalf("key %d moved from %s to %s, neither of which changed", i, before[i], after[i])
				}
			}
			n := max(len(tt.before), len(tt.after))
			if got, limit := float64(moved)/keys, 1/float64(n)+0.05; got > limit {
				t.Errorf("%.3f of keys moved, want <= %.3f (1/%d + slack)", got, limit, n)
			}
			if moved == 0 {
				t.Error("no key moved")
			}
		})
	}
}
