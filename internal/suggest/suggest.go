// Package suggest finds the names closest to a mistyped one, for error
// messages that say "did you mean ...".
package suggest

import "math"

// Distance is the Levenshtein distance of a and b; names longer than 64
// bytes are never close (math.MaxInt), which bounds the cost on hostile
// input.
func Distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
