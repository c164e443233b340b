package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// Scopes reported by [Limiter.Allow] for a refused request.
const (
	// ScopeRoute: the route's total bucket is empty.
	ScopeRoute = "route"
	// ScopeIdentity: the calling identity's own bucket is empty.
	ScopeIdentity = "identity"
)

const (
	// DefaultMaxIdentities bounds the identities tracked when
	// Config.MaxIdentities is 0.
	DefaultMaxIdentities = 10000

	// maxRate and maxBurst keep the fixed-point arithmetic below within
	// int64: a bucket holds at most maxBurst*nanoTokens < 2^63.
	maxRate  = 1e9
	maxBurst = 1 << 30

	// nanoTokens is one token in the buckets' fixed-point unit. Whole
	// numbers of nano-tokens make refills exact: 10 ms at 10 req/s adds
	// exactly 1e8, where float64 tokens would add 0.1 ten times and fall
	// short of 1.
	nanoTokens = int64(1e9)
)

// Config configures a [Limiter]. The zero value of an optional field selects
// its default.
type Config struct {
	// RequestsPerSecond is the total rate (of a route, or of an inbound
	// port). Required, > 0, unless PerIdentityRequestsPerSecond is set:
	// then 0 means no total limit.
	RequestsPerSecond float64
	// Burst is how many requests the total admits at once after being
	// idle. Default ceil(RequestsPerSecond).
	Burst int
	// PerIdentityRequestsPerSecond is each client identity's rate; 0 turns
	// per-identity limiting off.
	PerIdentityRequestsPerSecond float64
	// PerIdentityBurst is each identity's burst. Default
	// ceil(PerIdentityRequestsPerSecond).
	PerIdentityBurst int
	// MaxIdentities bounds the identities tracked at once; the least
	// recently seen one is evicted first. Default 10000.
	MaxIdentities int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Validate reports every invalid field of c, naming the field and the fix.
func (c Config) Validate() error {
	var errs []error
	rate := func(name string, v float64, required bool) {
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			errs = append(errs, fmt.Errorf("ratelimit: %s is %v: set it to a finite number of requests per second", name, v))
		case v < 0 || (required && v == 0):
			errs = append(errs, fmt.Errorf("ratelimit: %s is %v: set it to the requests per second allowed, greater than 0", name, v))
		case v > maxRate:
			errs = append(errs, fmt.Errorf("ratelimit: %s is %v: at most %v requests per second can be limited; lower it or remove the limit", name, v, float64(maxRate)))
		}
	}
	burst := func(name string, v int) {
		if v < 0 || v > maxBurst {
			errs = append(errs, fmt.Errorf("ratelimit: %s is %d: set it from 1 to %d, or 0 for the default ceil(rate)", name, v, maxBurst))
		}
	}
	rate("RequestsPerSecond", c.RequestsPerSecond, c.PerIdentityRequestsPerSecond == 0)
	burst("Burst", c.Burst)
	rate("PerIdentityRequestsPerSecond", c.PerIdentityRequestsPerSecond, false)
	burst("PerIdentityBurst", c.PerIdentityBurst)
	if c.MaxIdentities < 0 {
		errs = append(errs, fmt.Errorf("ratelimit: MaxIdentities is %d: set it to a positive bound, or 0 for the default %d", c.MaxIdentities, DefaultMaxIdentities))
	}
	if c.RequestsPerSecond == 0 && c.PerIdentityRequestsPerSecond > 0 && c.Burst != 0 {
		errs = append(errs, fmt.Errorf("ratelimit: Burst is %d but there is no total limit (RequestsPerSecond is 0): set RequestsPerSecond, or remove Burst", c.Burst))
	}
	if c.PerIdentityRequestsPerSecond == 0 {
		if c.PerIdentityBurst != 0 {
			errs = append(errs, fmt.Errorf("ratelimit: PerIdentityBurst is %d but per-identity limiting is off (PerIdentityRequestsPerSecond is 0): set PerIdentityRequestsPerSecond, or remove PerIdentityBurst", c.PerIdentityBurst))
		}
		if c.MaxIdentities != 0 {
			errs = append(errs, fmt.Errorf("ratelimit: MaxIdentities is %d but per-identity limiting is off (PerIdentityRequestsPerSecond is 0): set PerIdentityRequestsPerSecond, or remove MaxIdentities", c.MaxIdentities))
		}
	}
	return errors.Join(errs...)
}

// bucket is a token bucket in fixed point: tokens in nano-tokens, last in
// nanoseconds since the Limiter's epoch.
//
// The bucket is written here rather than taken from golang.org/x/time/rate:
// it is one small struct, the per-identity buckets need our own bounded LRU
// map around them anyway, and keeping it inline makes an identity's bucket
// 16 bytes with no pointer or lock of its own (rate.Limiter is ~80 bytes with
// its own mutex, and would need a second lock to take tokens from the route
// and identity buckets atomically).
type bucket struct {
	tokens int64
	last   int64
}

// refill adds the tokens earned since b.last at rate tokens per second, up
// to capacity (both in nano-tokens).
func (b *bucket) refill(now int64, rate float64, capacity int64) {
	if now <= b.last {
		return // clock did not move, or went back: earn nothing
	}
	// rate tokens/s is rate nano-tokens/ns.
	earned := float64(now-b.last) * rate
	if earned >= float64(capacity-b.tokens) {
		b.tokens = capacity
	} else {
		b.tokens += int64(earned)
	}
	b.last = now
}

// wait is how long until b holds one whole token.
func (b *bucket) wait(rate float64) time.Duration {
	need := nanoTokens - b.tokens
	if need <= 0 {
		return 0
	}
	d := math.Ceil(float64(need) / rate)
	if d*rate < float64(need) {
		d++
	}
	if d >= math.MaxInt64 {
		return time.Duration(math.MaxInt64) // a rate so low it never refills
	}
	return time.Duration(d)
}

// identity is one tracked client identity: its bucket and its place in the
// LRU list (most recently seen at the head).
type identity struct {
	key        string
	b          bucket
	prev, next *identity
}

// Limiter admits or refuses requests of one route. It is safe for concurrent
// use. Allow does not allocate for an identity already tracked.
type Limiter struct {
	now   func() time.Time
	epoch time.Time

	total    bool    // false: no total limit, only per identity
	rate     float64 // route tokens per second
	capacity int64   // route burst, nano-tokens

	perID      bool
	idRate     float64
	idCapacity int64
	maxIDs     int

	// One lock for everything: a request must take a token from the route
	// and from its identity atomically, and the critical section is a few
	// dozen nanoseconds.
	mu    sync.Mutex
	route bucket
	ids   map[string]*identity
	head  *identity // most recently seen
	tail  *identity // least recently seen, evicted first
}

// New returns a Limiter for c, with every bucket full.
func New(c Config) (*Limiter, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("ratelimit: invalid config: %w", err)
	}
	if c.Burst == 0 {
		c.Burst = int(math.Ceil(c.RequestsPerSecond))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	l := &Limiter{
		now:      c.Now,
		epoch:    c.Now(),
		total:    c.RequestsPerSecond > 0,
		rate:     c.RequestsPerSecond,
		capacity: int64(c.Burst) * nanoTokens,
	}
	l.route.tokens = l.capacity
	if c.PerIdentityRequestsPerSecond > 0 {
		if c.PerIdentityBurst == 0 {
			c.PerIdentityBurst = int(math.Ceil(c.PerIdentityRequestsPerSecond))
		}
		if c.MaxIdentities == 0 {
			c.MaxIdentities = DefaultMaxIdentities
		}
		l.perID = true
		l.idRate = c.PerIdentityRequestsPerSecond
		l.idCapacity = int64(c.PerIdentityBurst) * nanoTokens
		l.maxIDs = c.MaxIdentities
		l.ids = make(map[string]*identity, min(c.MaxIdentities, 1024))
	}
	return l, nil
}

// Allow takes one token from the route's bucket and, when per-identity
// limiting is on, one from identity's bucket ("" is the unauthenticated
// clients' shared bucket). It takes either both or none.
//
// ok=false means refuse the request. retryAfter is then how long until every
// bucket involved holds a token again (the caller rounds it up to whole
// seconds for Retry-After), and scope names the bucket that holds the request
// back longest: [ScopeRoute] or [ScopeIdentity] (the identity on a tie). When
// ok is true, retryAfter is 0 and scope is "".
func (l *Limiter) Allow(identity string) (ok bool, retryAfter time.Duration, scope string) {
	now := int64(l.now().Sub(l.epoch))
	l.mu.Lock()
	defer l.mu.Unlock()

	l.route.refill(now, l.rate, l.capacity)
	if !l.perID {
		if l.route.tokens >= nanoTokens {
			l.route.tokens -= nanoTokens
			return true, 0, ""
		}
		return false, l.route.wait(l.rate), ScopeRoute
	}

	id := l.lookup(identity, now)
	id.b.refill(now, l.idRate, l.idCapacity)
	if !l.total {
		if id.b.tokens >= nanoTokens {
			id.b.tokens -= nanoTokens
			return true, 0, ""
		}
		return false, id.b.wait(l.idRate), ScopeIdentity
	}
	if l.route.tokens >= nanoTokens && id.b.tokens >= nanoTokens {
		l.route.tokens -= nanoTokens
		id.b.tokens -= nanoTokens
		return true, 0, ""
	}
	routeWait, idWait := l.route.wait(l.rate), id.b.wait(l.idRate)
	if idWait >= routeWait {
		return false, idWait, ScopeIdentity
	}
	return false, routeWait, ScopeRoute
}

// lookup returns key's entry, moved to the head of the LRU list. A new
// identity gets a full bucket, in the entry of the least recently seen one
// when the map is at its bound. l.mu must be held.
func (l *Limiter) lookup(key string, now int64) *identity {
	if id, ok := l.ids[key]; ok {
		if id != l.head {
			l.unlink(id)
			l.pushFront(id)
		}
		return id
	}
	var id *identity
	if len(l.ids) >= l.maxIDs {
		id = l.tail
		l.unlink(id)
		delete(l.ids, id.key)
	} else {
		id = new(identity)
	}
	// Clone: the caller's string may point into a larger buffer (a parsed
	// certificate) that the map would otherwise keep alive.
	*id = identity{key: strings.Clone(key), b: bucket{tokens: l.idCapacity, last: now}}
	l.ids[id.key] = id
	l.pushFront(id)
	return id
}

func (l *Limiter) unlink(id *identity) {
	if id.prev != nil {
		id.prev.next = id.next
	} else {
		l.head = id.next
	}
	if id.next != nil {
		id.next.prev = id.prev
	} else {
		l.tail = id.prev
	}
	id.prev, id.next = nil, nil
}

func (l *Limiter) pushFront(id *identity) {
	id.next = l.head
	if l.head != nil {
		l.head.prev = id
	}
	l.head = id
	if l.tail == nil {
		l.tail = id
	}
}
