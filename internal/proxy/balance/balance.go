package balance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoEndpoints is returned by Pick when the balancer has no endpoints.
var ErrNoEndpoints = errors.New("balance: no endpoints")

// Endpoint is one backend as the proxy's config describes it.
type Endpoint struct {
	Addr   string // "ip:port", unique key
	Weight uint32 // 0 means 1
	Zone   string
}

// Key carries what the hashing policy needs from a request or connection.
// Policies other than RingHash ignore it.
type Key struct {
	HashKey    string
	HasHashKey bool
}

// Policy is a load-balancing algorithm.
type Policy int

// Policies. The zero value is P2CPeakEWMA.
const (
	P2CPeakEWMA Policy = iota
	RoundRobin
	LeastRequest
	RingHash
)

var policyNames = [...]string{
	P2CPeakEWMA:  "p2c-ewma",
	RoundRobin:   "round-robin",
	LeastRequest: "least-request",
	RingHash:     "ring-hash",
}

// String returns the name of the policy as written in the config.
func (p Policy) String() string {
	if p >= 0 && int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ParsePolicy parses a policy name as written in the config. The empty string
// means the default, P2CPeakEWMA. The error for an unknown name lists the
// valid ones.
func ParsePolicy(s string) (Policy, error) {
	if s == "" {
		return P2CPeakEWMA, nil
	}
	for p, name := range policyNames {
		if s == name {
			return Policy(p), nil
		}
	}
	quoted := make([]string, len(policyNames))
	for i, name := range policyNames {
		quoted[i] = fmt.Sprintf("%q", name)
	}
	return 0, fmt.Errorf("balance: unknown policy %q; valid policies are %s", s, strings.Join(quoted, ", "))
}

// Defaults for Options.
const (
	DefaultDecayTime      = 10 * time.Second
	DefaultRTT            = 30 * time.Millisecond
	DefaultFailurePenalty = time.Second
	DefaultRingSize       = 1 << 17
)

// Options tune a Balancer. The zero value gives the defaults.
type Options struct {
	// DecayTime is the time constant with which the latency estimate decays
	// towards zero when no higher sample arrives. 0 means DefaultDecayTime.
	DecayTime time.Duration

	// DefaultRTT is the latency estimate given to endpoints when the
	// balancer has no other endpoint to compare them with (the first
	// Update, or one that replaces every endpoint). 0 means DefaultRTT.
	DefaultRTT time.Duration

	// FailurePenalty is the smallest latency a failed request (Done with a
	// non-nil error other than context.Canceled) is recorded as, so an
	// endpoint that fails fast looks slow rather than fast. Set it above
	// the latency a healthy endpoint of the service can have. 0 means
	// DefaultFailurePenalty; a negative value records failures with their
	// own latency.
	FailurePenalty time.Duration

	// Now is the clock, for tests. nil means time.Now.
	Now func() time.Time

	// Rand returns uniformly distributed random numbers, for tests. It must
	// be safe for concurrent use if the Balancer is. nil means the
	// math/rand/v2 top-level generator (per-thread, lock-free).
	Rand func() uint64

	// RingSize caps the number of virtual nodes on the RingHash ring. The
	// heaviest endpoint gets 256 virtual nodes and the others proportionally
	// fewer (at least one), unless that would exceed RingSize, in which case
	// all are scaled down. 0 means DefaultRingSize.
	RingSize int
}

// replicasPerEndpoint is the number of virtual nodes of the heaviest
// endpoint on the ring. It does not depend on the number of endpoints, so
// removing an endpoint does not reshuffle the virtual nodes of the others.
const replicasPerEndpoint = 256

// Balancer spreads requests over the endpoints of one service. It is safe
// for concurrent use.
type Balancer struct {
	policy         Policy
	now            func() time.Time
	epoch          time.Time
	rand           func() uint64
	invTau         float64 // 1 / DecayTime in 1/ns
	defaultRTT     float64 // ns
	failurePenalty float64 // ns; <= 0 disables
	ringSize       int

	snap atomic.Pointer[snapshot]

	mu   sync.Mutex           // serializes Update
	live map[string]*endpoint // by Addr; guarded by mu

	_  [64]byte // keep the round-robin counter off the read-mostly fields
	rr atomic.Uint64
	_  [56]byte
}

// endpoint is the state of one Addr, shared by every snapshot that contains
// it and by outstanding Picks.
type endpoint struct {
	addr     string
	inflight atomic.Int64
	// peak is the latency estimate in log form: the estimate at time t
	// (ns since the balancer's epoch) is exp(peak - t/DecayTime) ns. An
	// exponential decay in this form is a constant, so recording a sample s
	// at t is a lock-free max(peak, ln(s) + t/DecayTime).
	peak atomic.Uint64 // float64 bits
	_    [32]byte      // one endpoint per cache line
}

type member struct {
	ep     *endpoint
	weight uint32
	zone   string
}

// snapshot is an immutable endpoint set with what the policy needs
// precomputed.
type snapshot struct {
	members []member // sorted by Addr
	cum     []uint64 // cum[i] = weight of members[0..i]
	total   uint64
	uniform bool // all weights equal

	sched []int32 // RoundRobin, nil if uniform

	ringHashes []uint64 // RingHash, sorted
	ringOwners []int32
}

// New returns a Balancer with no endpoints using policy p. It panics if p is
// not one of the defined policies.
func New(p Policy, opts Options) *Balancer {
	if p < 0 || int(p) >= len(policyNames) {
		panic(fmt.Sprintf("balance: invalid policy %d", int(p)))
	}
	b := &Balancer{
		policy:         p,
		now:            opts.Now,
		rand:           opts.Rand,
		defaultRTT:     float64(orDefault(opts.DefaultRTT, DefaultRTT)),
		failurePenalty: float64(opts.FailurePenalty),
		ringSize:       opts.RingSize,
		live:           map[string]*endpoint{},
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.rand == nil {
		b.rand = rand.Uint64
	}
	if b.ringSize <= 0 {
		b.ringSize = DefaultRingSize
	}
	if opts.FailurePenalty == 0 {
		b.failurePenalty = float64(DefaultFailurePenalty)
	}
	b.invTau = 1 / float64(orDefault(opts.DecayTime, DefaultDecayTime))
	b.epoch = b.now()
	return b
}

// orDefault returns d, or def if d is not positive.
func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// clock returns the current time in ns since the balancer's epoch, scaled to
// units of DecayTime.
func (b *Balancer) clock() float64 {
	return float64(b.now().Sub(b.epoch)) * b.invTau
}

// estimate returns the endpoint's latency estimate in ns at time t (from
// clock).
func (e *endpoint) estimate(t float64) float64 {
	return math.Exp(math.Float64frombits(e.peak.Load()) - t)
}

// observe records a latency sample of ns nanoseconds at time t.
func (e *endpoint) observe(t, ns float64) {
	cand := math.Log(max(ns, 1)) + t
	for {
		old := e.peak.Load()
		if math.Float64frombits(old) >= cand || e.peak.CompareAndSwap(old, math.Float64bits(cand)) {
			return
		}
	}
}

// Update replaces the endpoint set. Endpoints whose Addr was already present
// keep their latency estimate and in-flight count (their Weight and Zone are
// updated). New endpoints start with the median latency estimate of the
// endpoints that stay, or Options.DefaultRTT if none stay: they are neither
// flooded (a zero estimate would win every comparison until the first
// responses come back) nor starved (the estimate decays like any other, so
// they are tried soon). Duplicate Addrs after the first are ignored.
func (b *Balancer) Update(eps []Endpoint) {
	b.mu.Lock()
	defer b.mu.Unlock()

	t := b.clock()
	live := make(map[string]*endpoint, len(eps))
	members := make([]member, 0, len(eps))
	var fresh []*endpoint
	var kept []float64
	for _, e := range eps {
		if _, dup := live[e.Addr]; dup {
			continue
		}
		ep := b.live[e.Addr]
		if ep == nil {
			ep = &endpoint{addr: e.Addr}
			fresh = append(fresh, ep)
		} else {
			kept = append(kept, ep.estimate(t))
		}
		live[e.Addr] = ep
		members = append(members, member{ep: ep, weight: max(e.Weight, 1), zone: e.Zone})
	}
	seed := b.defaultRTT
	if len(kept) > 0 {
		slices.Sort(kept)
		seed = kept[len(kept)/2]
		if len(kept)%2 == 0 {
			seed = (seed + kept[len(kept)/2-1]) / 2
		}
	}
	for _, ep := range fresh {
		ep.peak.Store(math.Float64bits(math.Log(max(seed, 1)) + t))
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.ep.addr, b.ep.addr) })

	s := &snapshot{members: members, cum: make([]uint64, len(members)), uniform: true}
	for i, m := range members {
		s.total += uint64(m.weight)
		s.cum[i] = s.total
		if m.weight != members[0].weight {
			s.uniform = false
		}
	}
	if b.policy == RoundRobin && !s.uniform || b.policy == RingHash {
		addrs := make([]string, len(members))
		weights := make([]uint32, len(members))
		for i, m := range members {
			addrs[i], weights[i] = m.ep.addr, m.weight
		}
		if b.policy == RoundRobin {
			s.sched = schedule(weights)
		} else {
			s.ringHashes, s.ringOwners = buildRing(addrs, weights, b.ringSize)
		}
	}
	b.live = live
	b.snap.Store(s)
}

// Pick is one use of an endpoint. Done must be called exactly once when the
// request or connection is over.
type Pick struct {
	Addr string

	ep   *endpoint
	b    *Balancer
	done atomic.Bool
}

// Pick chooses an endpoint for a request. It returns ErrNoEndpoints if the
// balancer has none.
func (b *Balancer) Pick(k Key) (*Pick, error) {
	s := b.snap.Load()
	if s == nil || len(s.members) == 0 {
		return nil, ErrNoEndpoints
	}
	var i int
	switch {
	case b.policy == RoundRobin:
		c := b.rr.Add(1) - 1
		if s.sched == nil {
			i = int(c % uint64(len(s.members)))
		} else {
			i = int(s.sched[c%uint64(len(s.sched))])
		}
	case b.policy == LeastRequest:
		i = b.pickLeastRequest(s)
	case b.policy == RingHash && k.HasHashKey:
		i = s.lookup(k.HashKey)
	default:
		i = b.pickP2C(s)
	}
	ep := s.members[i].ep
	ep.inflight.Add(1)
	return &Pick{Addr: ep.addr, ep: ep, b: b}, nil
}

// Done reports that the request or connection is over after rtt, with err if
// it failed. A failure is recorded as a latency of at least
// Options.FailurePenalty; context.Canceled (the caller gave up) is not
// counted as a failure of the endpoint. Done may be called after the
// endpoint was removed by Update. Calls after the first are ignored.
func (p *Pick) Done(rtt time.Duration, err error) {
	if !p.done.CompareAndSwap(false, true) {
		return
	}
	p.ep.inflight.Add(-1)
	ns := float64(rtt)
	if err != nil && p.b.failurePenalty > 0 && !errors.Is(err, context.Canceled) {
		ns = max(ns, p.b.failurePenalty)
	}
	p.ep.observe(p.b.clock(), ns)
}

// two draws two distinct member indices at random, weighted by Weight. The
// snapshot has at least two members.
func (b *Balancer) two(s *snapshot) (int, int) {
	n := uint64(len(s.members))
	if s.uniform {
		i := below(b.rand(), n)
		j := below(b.rand(), n-1)
		if j >= i {
			j++
		}
		return int(i), int(j)
	}
	i := s.find(below(b.rand(), s.total))
	w := uint64(s.members[i].weight)
	y := below(b.rand(), s.total-w)
	if y >= s.cum[i]-w {
		y += w // skip over member i
	}
	return i, s.find(y)
}

// below maps a uniform 64-bit random number to [0, n).
func below(r, n uint64) uint64 {
	hi, _ := bits.Mul64(r, n)
	return hi
}

// find returns the member whose weight interval contains x in [0, total).
func (s *snapshot) find(x uint64) int {
	i, _ := slices.BinarySearch(s.cum, x+1)
	return i
}

func (b *Balancer) pickP2C(s *snapshot) int {
	if len(s.members) == 1 {
		return 0
	}
	i, j := b.two(s)
	mi, mj := s.members[i], s.members[j]
	// j wins if est_j*(inflight_j+1)/w_j < est_i*(inflight_i+1)/w_i. Both
	// estimates decay by the same factor since their last samples, so the
	// ratio est_j/est_i is exp(peak_j - peak_i) at any time and the
	// comparison needs no clock.
	ratio := math.Exp(math.Float64frombits(mj.ep.peak.Load()) - math.Float64frombits(mi.ep.peak.Load()))
	if ratio*load(mj)*float64(mi.weight) < load(mi)*float64(mj.weight) {
		return j
	}
	return i
}

// load is in-flight + 1.
func load(m member) float64 {
	return float64(max(m.ep.inflight.Load(), 0) + 1)
}

// cost is the P2C peak-EWMA cost of a member at time t.
func cost(m member, t float64) float64 {
	return m.ep.estimate(t) * load(m) / float64(m.weight)
}

func (b *Balancer) pickLeastRequest(s *snapshot) int {
	if len(s.members) == 1 {
		return 0
	}
	i, j := b.two(s)
	mi, mj := s.members[i], s.members[j]
	// j wins if inflight_j/w_j < inflight_i/w_i. Without the +1 of the
	// EWMA cost, idle endpoints tie and the weighted draw decides, so
	// traffic follows the weights both when idle and under load.
	ii := uint64(max(mi.ep.inflight.Load(), 0))
	ij := uint64(max(mj.ep.inflight.Load(), 0))
	hiJ, loJ := bits.Mul64(ij, uint64(mi.weight))
	hiI, loI := bits.Mul64(ii, uint64(mj.weight))
	if hiJ < hiI || hiJ == hiI && loJ < loI {
		return j
	}
	return i
}

// EndpointStats is a snapshot of one endpoint for the admin dump.
type EndpointStats struct {
	Addr     string
	Weight   uint32
	Zone     string
	InFlight int64
	// EWMA is the current peak-EWMA latency estimate.
	EWMA time.Duration
	// Cost is the P2C cost, EWMA * (InFlight+1) / Weight, in nanoseconds.
	Cost float64
}

// Endpoints returns the current endpoints, sorted by Addr.
func (b *Balancer) Endpoints() []EndpointStats {
	s := b.snap.Load()
	if s == nil {
		return nil
	}
	t := b.clock()
	out := make([]EndpointStats, len(s.members))
	for i, m := range s.members {
		out[i] = EndpointStats{
			Addr:     m.ep.addr,
			Weight:   m.weight,
			Zone:     m.zone,
			InFlight: m.ep.inflight.Load(),
			EWMA:     time.Duration(min(m.ep.estimate(t), 1<<62)),
			Cost:     cost(m, t),
		}
	}
	return out
}

// Policy returns the balancer's policy.
func (b *Balancer) Policy() Policy { return b.policy }
