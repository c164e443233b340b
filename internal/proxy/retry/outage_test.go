package retry_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/retry"
)

// outage sends n GET requests, spread evenly over span on the budget's fake
// clock, to a service where every try fails with 503, and returns the total
// number of tries and how many requests were refused a retry by the budget.
func outage(t *testing.T, b *retry.Budget, clk *fakeClock, p retry.Policy, n int, span time.Duration) (tries, exhausted int) {
	t.Helper()
	s := &script{outcomes: []outcome{status(503)}}
	for range n {
		resp, res, err := retry.Do(newGet(t), p, b, s.attempt)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d; want 503", resp.StatusCode)
		}
		if res.BudgetExhausted {
			exhausted++
		}
		clk.Advance(span / time.Duration(n))
	}
	return s.tries(), exhausted
}

func TestOutageRetriesDoNotMultiply(t *testing.T) {
	const (
		ratio   = 0.2
		minPerS = 10
		ttl     = 10 * time.Second
	)
	p := testPolicy()
	p.MaxRetries = 3
	p.Statuses = []retry.StatusRange{{503, 503}}
	tests := []struct {
		name string
		n    int
		span time.Duration
	}{
		{"1000 requests in one window", 1000, ttl},
		{"5000 requests in one window", 5000, ttl},
		{"6000 requests at 100/s for a minute", 6000, 6 * ttl},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			b := newBudget(t, retry.BudgetConfig{RetryRatio: ratio, MinRetriesPerSecond: minPerS, TTL: ttl, Now: clk.Now})
			tries, exhausted := outage(t, b, clk, p, tt.n, tt.span)
			// Every window of TTL may hold ratio*deposits + min*TTL retries;
			// over a span that covers span/TTL windows plus the one it
			// started in, the reserve is renewed as many times.
			windows := float64(tt.span/ttl) + 1
			if tt.span <= ttl {
				windows = 1
			}
			bound := float64(tt.n)*(1+ratio) + minPerS*ttl.Seconds()*windows
			naive := tt.n * (1 + p.MaxRetries)
			t.Logf("%d requests: %d tries (bound %.0f, %d without a budget), %d refused a retry", tt.n, tries, bound, naive, exhausted)
			if float64(tries) > bound {
				t.Fatalf("%d tries for %d requests; want <= %.0f: retries multiplied the outage", tries, tt.n, bound)
			}
			if retries := tries - tt.n; float64(retries) < ratio*float64(tt.n)*0.9 {
				t.Fatalf("only %d retries for %d requests; the budget allows about %v", retries, tt.n, ratio*float64(tt.n))
			}
			if exhausted == 0 {
				t.Fatal("no request was refused a retry")
			}
		})
	}
}

func TestFewFailuresAreRetried(t *testing.T) {
	// The same policy and budget when failures are rare: the reserve lets
	// every request use all its retries.
	clk := newFakeClock()
	b := newBudget(t, retry.BudgetConfig{RetryRatio: 0.2, MinRetriesPerSecond: 10, TTL: 10 * time.Second, Now: clk.Now})
	p := testPolicy()
	p.MaxRetries = 3
	p.Statuses = []retry.StatusRange{{503, 503}}
	tries, exhausted := outage(t, b, clk, p, 5, 10*time.Second)
	if tries != 5*4 || exhausted != 0 {
		t.Fatalf("%d tries, %d refused; want 20 tries (3 retries each), none refused", tries, exhausted)
	}
}
