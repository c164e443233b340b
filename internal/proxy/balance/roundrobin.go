package balance

// Smooth weighted round robin is precomputed: schedule returns one period of
// the sequence of member indices, and Pick walks it with an atomic counter.

const (
	// maxPeriod caps the schedule length. Weights whose sum (divided by
	// their greatest common divisor) is larger are scaled down to fit,
	// which changes the ratios by at most one slot in maxPeriod per
	// endpoint.
	maxPeriod = 1 << 16
	// maxSWRRWork bounds the work of the exact nginx algorithm, which costs
	// endpoints*period; above it the schedule is built with a heap instead.
	maxSWRRWork = 1 << 22
)

func schedule(weights []uint32) []int32 {
	w := make([]uint64, len(weights))
	var g, total uint64
	for i, x := range weights {
		w[i] = uint64(x)
		g = gcd(g, w[i])
	}
	for i := range w {
		w[i] /= g
		total += w[i]
	}
	if total > maxPeriod {
		scaled := total
		total, g = 0, 0
		for i := range w {
			w[i] = max(1, w[i]*maxPeriod/scaled)
			g = gcd(g, w[i])
		}
		for i := range w {
			w[i] /= g
			total += w[i]
		}
	}
	if uint64(len(w))*total <= maxSWRRWork {
		return nginxSWRR(w, total)
	}
	return strideSchedule(w, total)
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// nginxSWRR is nginx's smooth weighted round robin: every step each
// endpoint's current weight grows by its weight, the largest (first on ties)
// is chosen and reduced by the total.
func nginxSWRR(w []uint64, total uint64) []int32 {
	cur := make([]int64, len(w))
	out := make([]int32, total)
	for t := range out {
		best := 0
		for i := range w {
			cur[i] += int64(w[i])
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= int64(total)
		out[t] = int32(best)
	}
	return out
}

// strideSchedule gives endpoint i its c-th turn at time (c+1/2)/w[i]
// (Sainte-Laguë), ties to the lower index, using a heap: as smooth as
// nginx's order for large endpoint sets at O(total log n).
func strideSchedule(w []uint64, total uint64) []int32 {
	type slot struct {
		i     int32
		turns uint64
	}
	// a before b iff (2a.turns+1)/w[a] < (2b.turns+1)/w[b].
	less := func(a, b slot) bool {
		l, r := (2*a.turns+1)*w[b.i], (2*b.turns+1)*w[a.i]
		return l < r || l == r && a.i < b.i
	}
	h := make([]slot, len(w))
	for i := range h {
		h[i] = slot{i: int32(i)}
	}
	down := func(k int) {
		for {
			c := 2*k + 1
			if c >= len(h) {
				return
			}
			if c+1 < len(h) && less(h[c+1], h[c]) {
				c++
			}
			if !less(h[c], h[k]) {
				return
			}
			h[k], h[c] = h[c], h[k]
			k = c
		}
	}
	for k := len(h)/2 - 1; k >= 0; k-- {
		down(k)
	}
	out := make([]int32, total)
	for t := range out {
		out[t] = h[0].i
		h[0].turns++
		down(0)
	}
	return out
}
