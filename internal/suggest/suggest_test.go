package suggest

import (
	"math"
	"strings"
	"testing"
)

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"web", "web", 0},
		{"web", "wbe", 2},
		{"kitten", "sitting", 3},
		{"", "abc", 3},
		{"payments", "payment", 1},
		{strings.Repeat("a", 65), "a", math.MaxInt},
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
