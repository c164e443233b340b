package retry_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/retry"
)

func TestBudgetConfigValidate(t *testing.T) {
	ok := retry.DefaultBudgetConfig()
	tests := []struct {
		name    string
		mod     func(*retry.BudgetConfig)
		wantErr string // substring; "" means valid
	}{
		{"default", func(*retry.BudgetConfig) {}, ""},
		{"ratio 0", func(c *retry.BudgetConfig) { c.RetryRatio = 0 }, ""},
		{"ratio 1000", func(c *retry.BudgetConfig) { c.RetryRatio = 1000 }, ""},
		{"ratio negative", func(c *retry.BudgetConfig) { c.RetryRatio = -0.1 }, "RetryRatio is -0.1; set it between 0 and 1000"},
		{"ratio too big", func(c *retry.BudgetConfig) { c.RetryRatio = 1001 }, "RetryRatio"},
		{"ratio NaN", func(c *retry.BudgetConfig) { c.RetryRatio = nan() }, "RetryRatio"},
		{"min 0", func(c *retry.BudgetConfig) { c.MinRetriesPerSecond = 0 }, ""},
		{"min negative", func(c *retry.BudgetConfig) { c.MinRetriesPerSecond = -1 }, "MinRetriesPerSecond is -1; set it between 0"},
		{"ttl 1s", func(c *retry.BudgetConfig) { c.TTL = time.Second }, ""},
		{"ttl 60s", func(c *retry.BudgetConfig) { c.TTL = time.Minute }, ""},
		{"ttl zero", func(c *retry.BudgetConfig) { c.TTL = 0 }, "TTL is 0s; set it between 1s and 1m0s"},
		{"ttl too short", func(c *retry.BudgetConfig) { c.TTL = 999 * time.Millisecond }, "TTL"},
		{"ttl too long", func(c *retry.BudgetConfig) { c.TTL = 61 * time.Second }, "TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			b, err := retry.NewBudget(c)
			if tt.wantErr == "" {
				if err != nil || b == nil {
					t.Fatalf("NewBudget(%+v) = %v, %v; want a budget", c, b, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewBudget(%+v) error = %v; want it to contain %q", c, err, tt.wantErr)
			}
			if b != nil {
				t.Fatalf("NewBudget returned a budget with error %v", err)
			}
		})
	}
	if _, err := retry.NewBudget(retry.BudgetConfig{}); err == nil {
		t.Fatal("NewBudget(BudgetConfig{}) succeeded; zero TTL must be rejected")
	}
}

func nan() float64 { z := 0.0; return z / z }

// withdrawAll withdraws until the budget refuses and returns how many
// withdrawals succeeded.
func withdrawAll(b *retry.Budget) int {
	n := 0
	for b.TryWithdraw() {
		n++
		if n > 1e7 {
			panic("budget never refuses")
		}
	}
	return n
}

func TestBudgetAllowance(t *testing.T) {
	tests := []struct {
		name     string
		ratio    float64
		min      int
		ttl      time.Duration
		deposits int
		want     int
	}{
		{"linkerd default: 20% of 1000 plus 10/s over 10s", 0.2, 10, 10 * time.Second, 1000, 200 + 10*10},
		{"reserve only", 0, 10, 10 * time.Second, 1000, 100},
		{"no budget at all", 0, 0, 10 * time.Second, 1000, 0},
		{"ratio only", 0.2, 0, 10 * time.Second, 1000, 200},
		{"fraction rounds down", 0.5, 0, 10 * time.Second, 3, 1},
		{"ratio 1 doubles", 1, 0, time.Second, 7, 7},
		{"min scales with ttl", 0, 3, 60 * time.Second, 0, 180},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			b := newBudget(t, retry.BudgetConfig{RetryRatio: tt.ratio, MinRetriesPerSecond: tt.min, TTL: tt.ttl, Now: clk.Now})
			for range tt.deposits {
				b.Deposit()
			}
			if got := b.Available(); int(got) != tt.want {
				t.Errorf("Available() = %v; want %d", got, tt.want)
			}
			if got := withdrawAll(b); got != tt.want {
				t.Errorf("withdrawals allowed = %d; want %d", got, tt.want)
			}
			if b.TryWithdraw() {
				t.Error("TryWithdraw succeeded after the budget was exhausted")
			}
			if got := b.Available(); got >= 1 {
				t.Errorf("Available() after exhaustion = %v; want < 1", got)
			}
		})
	}
}

func TestBudgetExpiry(t *testing.T) {
	const ttl = 10 * time.Second
	t.Run("deposits expire after TTL", func(t *testing.T) {
		clk := newFakeClock()
		b := newBudget(t, retry.BudgetConfig{RetryRatio: 0.2, TTL: ttl, Now: clk.Now})
		for range 1000 {
			b.Deposit()
		}
		clk.Advance(ttl / 2)
		for range 500 {
			b.Deposit()
		}
		if got := b.Available(); got != 300 {
			t.Fatalf("Available() at TTL/2 = %v; want 300", got)
		}
		// Entries expire between TTL-TTL/10 and TTL after they were made.
		clk.Advance(ttl / 2)
		if got := b.Available(); got != 100 {
			t.Fatalf("Available() at TTL = %v; want 100 (only the later deposits)", got)
		}
		clk.Advance(ttl / 2)
		if got := b.Available(); got != 0 {
			t.Fatalf("Available() at 1.5 TTL = %v; want 0", got)
		}
		if b.TryWithdraw() {
			t.Fatal("TryWithdraw succeeded with every deposit expired")
		}
	})
	t.Run("deposits live at least TTL minus a tenth", func(t *testing.T) {
		clk := newFakeClock()
		b := newBudget(t, retry.BudgetConfig{RetryRatio: 1, TTL: ttl, Now: clk.Now})
		clk.Advance(ttl/10 - time.Nanosecond) // end of a slot: the worst case
		b.Deposit()
		clk.Advance(ttl - ttl/10)
		if got := b.Available(); got != 1 {
			t.Fatalf("Available() %v after deposit = %v; want 1", ttl-ttl/10, got)
		}
		clk.Advance(time.Nanosecond)
		if got := b.Available(); got != 0 {
			t.Fatalf("Available() just after the slot expired = %v; want 0", got)
		}
	})
	t.Run("withdrawals expire too, refilling the reserve", func(t *testing.T) {
		clk := newFakeClock()
		b := newBudget(t, retry.BudgetConfig{MinRetriesPerSecond: 10, TTL: ttl, Now: clk.Now})
		if got := withdrawAll(b); got != 100 {
			t.Fatalf("first window allowed %d retries; want 100", got)
		}
		clk.Advance(ttl / 2)
		if b.TryWithdraw() {
			t.Fatal("reserve refilled before TTL")
		}
		clk.Advance(ttl / 2)
		if got := withdrawAll(b); got != 100 {
			t.Fatalf("next window allowed %d retries; want 100", got)
		}
	})
	t.Run("a long idle gap clears everything", func(t *testing.T) {
		clk := newFakeClock()
		b := newBudget(t, retry.BudgetConfig{RetryRatio: 0.2, TTL: ttl, Now: clk.Now})
		for range 100 {
			b.Deposit()
		}
		clk.Advance(time.Hour)
		if got := b.Available(); got != 0 {
			t.Fatalf("Available() after an hour = %v; want 0", got)
		}
	})
	t.Run("a clock going backwards changes nothing", func(t *testing.T) {
		clk := newFakeClock()
		b := newBudget(t, retry.BudgetConfig{RetryRatio: 0.2, TTL: ttl, Now: clk.Now})
		for range 100 {
			b.Deposit()
		}
		clk.Advance(-time.Hour)
		b.Deposit()
		if got := b.Available(); got < 20 || got > 20.2+1e-9 {
			t.Fatalf("Available() after the clock went back = %v; want 20.2", got)
		}
	})
}

func TestBudgetConcurrent(t *testing.T) {
	const (
		workers = 8
		perW    = 2000
	)
	clk := newFakeClock()
	b := newBudget(t, retry.BudgetConfig{RetryRatio: 0.2, TTL: 10 * time.Second, Now: clk.Now})
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		withdrawn int
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for i := range perW {
				b.Deposit()
				if b.TryWithdraw() {
					n++
				}
				if w == 0 && i%500 == 0 {
					_ = b.Available()
				}
			}
			mu.Lock()
			withdrawn += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	const total = workers * perW * 0.2
	if withdrawn > total {
		t.Fatalf("%d withdrawals from %d deposits at ratio 0.2; want <= %v", withdrawn, workers*perW, total)
	}
	// Every token is accounted for: what was not withdrawn is available.
	if got := b.Available() + float64(withdrawn); got < total-1e-6 || got > total+1e-6 {
		t.Fatalf("withdrawn + available = %v; want %v", got, total)
	}
}
