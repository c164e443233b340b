package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/balance"
	"github.com/weft-mesh/weft/internal/proxy/breaker"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/fault"
	"github.com/weft-mesh/weft/internal/proxy/mirror"
	"github.com/weft-mesh/weft/internal/proxy/ratelimit"
	"github.com/weft-mesh/weft/internal/proxy/retry"
)

// Backend is one service's endpoints and balancer for one config generation.
type Backend struct {
	Service *config.Service
	*shared
	policies
	rules map[config.RuleKey]*Rule
}

// policies are a generation's retry budget and circuit breaker. A new
// generation starts from a copy of the previous one's (so budgets and
// ejections carry over) and replaces what its config changed, never
// touching the previous generation, which may still be serving.
type policies struct {
	budget    *retry.Budget
	budgetCfg retry.BudgetConfig

	limits   *breaker.Limits   // nil: no limits
	outlier  *breaker.Detector // nil: outlier detection off
	adaptive *breaker.Adaptive // nil: adaptive concurrency off
	breaker  config.Breaker    // what the three were built from
}

// Rule is the running state of one route rule's policies.
type Rule struct {
	Policy  *config.RulePolicy
	Limiter *ratelimit.Limiter // nil: no rate limit
	Fault   *fault.Injector    // nil: no fault injection
	Mirrors []*mirror.Mirror
}

// Options carry what building a backend needs from the proxy around it.
type Options struct {
	// MirrorSend returns the function that sends a mirrored request to the
	// named service.
	MirrorSend func(service string) func(ctx context.Context, r *http.Request) (*http.Response, error)
	// OnEject is told when outlier detection ejects an endpoint.
	OnEject func(service, addr, reason string)
}

// shared is what generations of the same service have in common: the
// balancer, and the newest endpoint set, which connections of an older
// generation see too (the balancer only hands out current endpoints).
type shared struct {
	bal *balance.Balancer
	eps atomic.Pointer[map[string]config.Endpoint] // by balancer key (Endpoint.Address)

	mu    sync.Mutex
	conns map[string]*atomic.Int64 // open opaque connections per endpoint
}

// New builds the backend of svc. When prev (the same service in the previous
// config) uses the same policy, its balancer is kept and updated in place.
func New(svc *config.Service, prev *Backend, opts Options) (*Backend, error) {
	policy, err := balance.ParsePolicy(svc.Policy)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	b := &Backend{Service: svc}
	if prev != nil {
		b.policies = prev.policies
	}
	if prev != nil && prev.Service.Policy == svc.Policy {
		b.shared = prev.shared
	} else {
		b.shared = &shared{bal: balance.New(policy, balance.Options{})}
	}
	eps := make(map[string]config.Endpoint, len(svc.Endpoints))
	list := make([]balance.Endpoint, 0, len(svc.Endpoints))
	for _, ep := range svc.Endpoints {
		key := ep.Address.String()
		eps[key] = ep
		list = append(list, balance.Endpoint{Addr: key, Weight: ep.Weight, Zone: ep.Zone})
	}
	if old := b.eps.Load(); old != nil {
		// Until the balancer has the new set, it may still hand out an old
		// endpoint: keep both sets visible for that moment.
		union := make(map[string]config.Endpoint, len(*old)+len(eps))
		for k, v := range *old {
			union[k] = v
		}
		for k, v := range eps {
			union[k] = v
		}
		b.eps.Store(&union)
	}
	b.bal.Update(list)
	b.eps.Store(&eps)
	if b.budget == nil || !sameBudget(b.budgetCfg, svc.RetryBudget) {
		budget, err := retry.NewBudget(svc.RetryBudget)
		if err != nil {
			return nil, fmt.Errorf("service %s: retry budget: %w", svc.Name, err)
		}
		b.budget, b.budgetCfg = budget, svc.RetryBudget
	}
	if err := b.buildBreaker(opts, list); err != nil {
		return nil, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	if err := b.buildRules(opts); err != nil {
		return nil, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	return b, nil
}

// buildBreaker (re)builds the circuit breaker when its config changed, and
// tells outlier detection about the current endpoints.
func (b *Backend) buildBreaker(opts Options, eps []balance.Endpoint) error {
	cfg := b.Service.Breaker
	if b.limits == nil || !sameBreaker(b.breaker, cfg) {
		l, err := breaker.NewLimits(cfg.Limits)
		if err != nil {
			return fmt.Errorf("circuit breaker: %w", err)
		}
		b.limits, b.outlier, b.adaptive = l, nil, nil
		if cfg.Outlier != nil {
			d, err := breaker.NewDetector(*cfg.Outlier)
			if err != nil {
				return fmt.Errorf("outlier detection: %w", err)
			}
			if opts.OnEject != nil {
				name := b.Service.Name
				d.OnEject(func(addr, reason string) { opts.OnEject(name, addr, reason) })
			}
			b.outlier = d
		}
		if cfg.Adaptive != nil {
			a, err := breaker.NewAdaptive(*cfg.Adaptive)
			if err != nil {
				return fmt.Errorf("adaptive concurrency: %w", err)
			}
			b.adaptive = a
		}
		b.breaker = cfg
	}
	if b.outlier != nil {
		addrs := make([]string, len(eps))
		for i, e := range eps {
			addrs[i] = e.Addr
		}
		b.outlier.SetEndpoints(addrs)
	}
	return nil
}

func sameBreaker(a, b config.Breaker) bool {
	// Config values hold no clocks here (those are for tests), so deep
	// equality is value equality.
	return reflect.DeepEqual(a, b)
}

// Admit takes a slot under the service's limits and adaptive concurrency
// limit. It fails fast with an error wrapping breaker.ErrOpen when full;
// otherwise done must be called with the request's outcome.
func (b *Backend) Admit(ctx context.Context) (done func(rtt time.Duration, failed bool), err error) {
	release, err := b.limits.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", b.Service.Name, err)
	}
	if b.adaptive == nil {
		return func(time.Duration, bool) { release() }, nil
	}
	finish, ok := b.adaptive.Acquire()
	if !ok {
		release()
		return nil, fmt.Errorf("service %s: adaptive concurrency limit %d reached: %w", b.Service.Name, b.adaptive.Limit(), breaker.ErrOpen)
	}
	return func(rtt time.Duration, failed bool) { finish(rtt, failed); release() }, nil
}

// Report tells outlier detection how a request to an endpoint went.
func (b *Backend) Report(ep config.Endpoint, success bool) {
	if b.outlier != nil {
		b.outlier.Report(ep.Address.String(), success)
	}
}

// Ejections lists the endpoints outlier detection keeps out, for the config
// dump.
func (b *Backend) Ejections() []breaker.Ejection {
	if b.outlier == nil {
		return nil
	}
	return b.outlier.Ejected()
}

func sameBudget(a, b retry.BudgetConfig) bool {
	return a.RetryRatio == b.RetryRatio && a.MinRetriesPerSecond == b.MinRetriesPerSecond && a.TTL == b.TTL
}

func (b *Backend) buildRules(opts Options) error {
	b.rules = make(map[config.RuleKey]*Rule, len(b.Service.Policies))
	for key, pol := range b.Service.Policies {
		r := &Rule{Policy: pol}
		if pol.RateLimit != nil {
			l, err := ratelimit.New(*pol.RateLimit)
			if err != nil {
				return fmt.Errorf("route %s rule %d: rate limit: %w", key.Route, key.Index, err)
			}
			r.Limiter = l
		}
		if pol.Fault != nil {
			f, err := fault.New(*pol.Fault, nil)
			if err != nil {
				return fmt.Errorf("route %s rule %d: fault: %w", key.Route, key.Index, err)
			}
			r.Fault = f
		}
		for _, m := range pol.Mirrors {
			if opts.MirrorSend == nil {
				return fmt.Errorf("route %s rule %d: mirroring is not available here", key.Route, key.Index)
			}
			mr, err := mirror.New(mirror.Config{Percent: m.Percent}, opts.MirrorSend(m.Service), nil)
			if err != nil {
				return fmt.Errorf("route %s rule %d: mirror to %s: %w", key.Route, key.Index, m.Service, err)
			}
			r.Mirrors = append(r.Mirrors, mr)
		}
		b.rules[key] = r
	}
	return nil
}

// Rule returns the running state of a route rule of this service.
func (b *Backend) Rule(key config.RuleKey) *Rule { return b.rules[key] }

// Budget is the retry budget shared by all retries to this service.
func (b *Backend) Budget() *retry.Budget { return b.budget }

// pickTries bounds how often Pick draws again when it lands on an endpoint
// that outlier detection keeps out; past it, the last draw is used (fail
// open: a mesh that refuses every endpoint helps nobody).
const pickTries = 4

// Pick chooses an endpoint for a request or connection, avoiding ejected
// endpoints. The returned Pick must be finished with Done.
func (b *Backend) Pick(k balance.Key) (config.Endpoint, *balance.Pick, error) {
	var p *balance.Pick
	for i := 0; ; i++ {
		var err error
		p, err = b.bal.Pick(k)
		if err != nil {
			return config.Endpoint{}, nil, fmt.Errorf("service %s has no endpoints: %w", b.Service.Name, err)
		}
		if b.outlier == nil || i == pickTries-1 || b.outlier.Available(p.Addr) {
			break
		}
		p.Done(0, context.Canceled) // not sent: no latency sample, no failure
	}
	ep, ok := (*b.eps.Load())[p.Addr]
	if !ok {
		// A newer config removed the endpoint between Pick and here.
		p.Done(0, nil)
		return config.Endpoint{}, nil, fmt.Errorf("service %s: endpoint %s was just removed", b.Service.Name, p.Addr)
	}
	return ep, p, nil
}

// Stats is the balancer's view of the endpoints, for the config dump.
func (b *Backend) Stats() []balance.EndpointStats { return b.bal.Endpoints() }

// RequestKey is the hash key of an HTTP request under the service's
// ring-hash settings.
func (b *Backend) RequestKey(r *http.Request, client netip.AddrPort) balance.Key {
	h := b.Service.HashOn
	switch {
	case h.Header != "":
		if v := r.Header.Get(h.Header); v != "" {
			return balance.Key{HashKey: v, HasHashKey: true}
		}
	case h.Cookie != "":
		if c, err := r.Cookie(h.Cookie); err == nil {
			return balance.Key{HashKey: c.Value, HasHashKey: true}
		}
	case h.SourceIP:
		return b.ConnKey(client)
	}
	return balance.Key{}
}

// ConnKey is the hash key of a TCP connection: only source_ip applies.
func (b *Backend) ConnKey(client netip.AddrPort) balance.Key {
	if b.Service.HashOn.SourceIP && client.IsValid() {
		return balance.Key{HashKey: client.Addr().String(), HasHashKey: true}
	}
	return balance.Key{}
}

// ErrPoolFull is returned by Acquire when an endpoint has as many open
// connections as the service's connection_pool.max_connections allows.
var ErrPoolFull = errors.New("endpoint connection limit reached")

// Acquire counts one more opaque connection to ep, failing fast when the
// service's max_connections is reached. release must be called when the
// connection closes. (HTTP connections are bounded by their transport.)
func (b *Backend) Acquire(ep config.Endpoint) (release func(), err error) {
	key := ep.Address.String()
	b.mu.Lock()
	if b.conns == nil {
		b.conns = map[string]*atomic.Int64{}
	}
	n, ok := b.conns[key]
	if !ok {
		n = new(atomic.Int64)
		b.conns[key] = n
	}
	b.mu.Unlock()
	if n.Add(1) > int64(b.Service.Pool.MaxConnections) {
		n.Add(-1)
		return nil, fmt.Errorf("service %s endpoint %s has %d open connections: %w (raise load_balancer.connection_pool.max_connections)", b.Service.Name, key, b.Service.Pool.MaxConnections, ErrPoolFull)
	}
	return func() { n.Add(-1) }, nil
}
