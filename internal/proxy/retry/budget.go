package retry

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Defaults and limits for BudgetConfig.
const (
	DefaultRetryRatio          = 0.2
	DefaultMinRetriesPerSecond = 10
	DefaultTTL                 = 10 * time.Second

	maxRetryRatio          = 1000
	maxMinRetriesPerSecond = 1_000_000
	minTTL                 = time.Second
	maxTTL                 = 60 * time.Second
)

// budgetSlots is how many time slices the TTL window is cut into; a deposit
// or withdrawal expires between TTL-TTL/budgetSlots and TTL after it was
// made, as Finagle's WindowedAdder does.
const budgetSlots = 10

// tokenScale is the fixed-point scale of the budget: one retry costs
// tokenScale units and a deposit adds RetryRatio*tokenScale, so the ratio is
// kept to 1e-6 without float drift.
const tokenScale = 1_000_000

// BudgetConfig configures a Budget. Fields are taken literally; start from
// DefaultBudgetConfig.
type BudgetConfig struct {
	// RetryRatio is how much retries may add to live traffic: 0.2 means at
	// most one retry per five original requests (plus the reserve). In [0,
	// 1000].
	RetryRatio float64
	// MinRetriesPerSecond lets a service with little traffic still retry:
	// MinRetriesPerSecond*TTL retries are always available per TTL. >= 0.
	MinRetriesPerSecond int
	// TTL is the window deposits and withdrawals count in. In [1s, 60s].
	TTL time.Duration
	// Now is the clock; nil means time.Now. For tests.
	Now func() time.Time
}

// DefaultBudgetConfig returns the budget Linkerd uses: retries add at most
// 20% to live traffic, plus 10 retries per second, over a 10s window.
func DefaultBudgetConfig() BudgetConfig {
	return BudgetConfig{
		RetryRatio:          DefaultRetryRatio,
		MinRetriesPerSecond: DefaultMinRetriesPerSecond,
		TTL:                 DefaultTTL,
	}
}

// Validate reports the first invalid field of c, naming it and the fix.
func (c BudgetConfig) Validate() error {
	if math.IsNaN(c.RetryRatio) || c.RetryRatio < 0 || c.RetryRatio > maxRetryRatio {
		return fmt.Errorf("retry: BudgetConfig.RetryRatio is %v; set it between 0 and %d (%v lets retries add %v%% to live traffic)",
			c.RetryRatio, maxRetryRatio, DefaultRetryRatio, DefaultRetryRatio*100)
	}
	if c.MinRetriesPerSecond < 0 || c.MinRetriesPerSecond > maxMinRetriesPerSecond {
		return fmt.Errorf("retry: BudgetConfig.MinRetriesPerSecond is %d; set it between 0 and %d (default %d)",
			c.MinRetriesPerSecond, maxMinRetriesPerSecond, DefaultMinRetriesPerSecond)
	}
	if c.TTL < minTTL || c.TTL > maxTTL {
		return fmt.Errorf("retry: BudgetConfig.TTL is %v; set it between %v and %v (default %v)",
			c.TTL, minTTL, maxTTL, DefaultTTL)
	}
	return nil
}

// Budget is a retry budget shared by all requests to one service. It is safe
// for concurrent use; Deposit, TryWithdraw and Available take one short lock
// and do not allocate.
type Budget struct {
	now     func() time.Time
	origin  time.Time
	slotDur time.Duration
	deposit int64 // units added by Deposit
	reserve int64 // units always available: MinRetriesPerSecond*TTL retries

	mu    sync.Mutex
	cur   int64 // index of the current slot since origin
	sum   int64 // sum of slots
	slots [budgetSlots]int64
}

// NewBudget returns an empty budget (only the reserve is available), or an
// error naming the invalid field of c.
func NewBudget(c BudgetConfig) (*Budget, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("retry: creating budget: %w", err)
	}
	now := c.Now
	if now == nil {
		now = time.Now
	}
	return &Budget{
		now:     now,
		origin:  now(),
		slotDur: c.TTL / budgetSlots,
		deposit: int64(math.Round(c.RetryRatio * tokenScale)),
		reserve: int64(math.Round(float64(c.MinRetriesPerSecond) * c.TTL.Seconds() * tokenScale)),
	}, nil
}

// advance moves the window to now, expiring the slots that fell out of it.
// A clock that goes backwards leaves the window where it is. b.mu is held.
func (b *Budget) advance() {
	idx := int64(b.now().Sub(b.origin) / b.slotDur)
	if idx <= b.cur {
		return
	}
	if idx-b.cur >= budgetSlots {
		b.slots = [budgetSlots]int64{}
		b.sum = 0
	} else {
		for i := b.cur + 1; i <= idx; i++ {
			s := &b.slots[i%budgetSlots]
			b.sum -= *s
			*s = 0
		}
	}
	b.cur = idx
}

// Deposit records one original (not retried) request.
func (b *Budget) Deposit() {
	b.mu.Lock()
	b.advance()
	b.slots[b.cur%budgetSlots] += b.deposit
	b.sum += b.deposit
	b.mu.Unlock()
}

// TryWithdraw takes the budget for one retry. It reports false, taking
// nothing, when the budget is exhausted.
func (b *Budget) TryWithdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance()
	if b.sum+b.reserve < tokenScale {
		return false
	}
	b.slots[b.cur%budgetSlots] -= tokenScale
	b.sum -= tokenScale
	return true
}

// Available returns how many retries the budget allows right now (it may be
// fractional, and is never negative).
func (b *Budget) Available() float64 {
	b.mu.Lock()
	b.advance()
	units := b.sum + b.reserve
	b.mu.Unlock()
	return max(0, float64(units)/tokenScale)
}
