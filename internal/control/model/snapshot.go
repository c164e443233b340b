package model

import (
	"cmp"
	"net/netip"
	"slices"
	"sync/atomic"
)

// Snapshot is the whole model at one revision. A Snapshot taken from a Store
// never changes: read it from any goroutine, never modify it or what it
// holds. Tests may build one as a literal; use it by pointer (it must not be
// copied).
type Snapshot struct {
	// Revision counts the changes the store has applied.
	Revision        uint64
	Services        map[ServiceRef]*Service
	Endpoints       map[ServiceRef][]Endpoint
	Workloads       map[ObjectRef]*Workload
	Routes          map[RouteRef]*Route
	RetryBudgets    map[ObjectRef]*RetryBudgetPolicy
	CircuitBreakers map[ObjectRef]*CircuitBreakerPolicy
	LoadBalancers   map[ObjectRef]*LoadBalancerPolicy
	// Namespaces holds the namespaces applied, by name: a namespace
	// need not be applied for objects to be in it.
	Namespaces            map[string]*Namespace
	AuthorizationPolicies map[ObjectRef]*AuthorizationPolicy
	MutualTLSPolicies     map[ObjectRef]*MutualTLSPolicy
	// RateLimits and FaultInjections are what route rules' ExtensionRef
	// filters name.
	RateLimits      map[ObjectRef]*RateLimitPolicy
	FaultInjections map[ObjectRef]*FaultInjectionPolicy

	// idx holds lookups by reference, built on first use.
	idx atomic.Pointer[index]
}

type index struct {
	routes   map[ServiceRef][]*Route
	budgets  map[ServiceRef][]*RetryBudgetPolicy
	breakers map[ServiceRef][]*CircuitBreakerPolicy
	lbs      map[ServiceRef][]*LoadBalancerPolicy
	authz    map[string][]*AuthorizationPolicy
	mtls     map[string][]*MutualTLSPolicy
	limits   map[string][]*RateLimitPolicy
	// Endpoints by the workload they name, and (those naming none) by
	// address.
	byWorkload map[ObjectRef][]Endpoint
	byAddress  map[netip.Addr][]Endpoint
}

// RoutesFor returns the routes with at least one parentRef to svc (whatever
// the port), ordered by namespace, name and kind.
func (s *Snapshot) RoutesFor(svc ServiceRef) []*Route { return s.index().routes[svc] }

// RetryBudgetsFor returns the retry budget policies targeting svc, in
// precedence order: oldest first, then by namespace and name.
func (s *Snapshot) RetryBudgetsFor(svc ServiceRef) []*RetryBudgetPolicy {
	return s.index().budgets[svc]
}

// CircuitBreakersFor returns the circuit breaker policies targeting svc, in
// precedence order: oldest first, then by namespace and name.
func (s *Snapshot) CircuitBreakersFor(svc ServiceRef) []*CircuitBreakerPolicy {
	return s.index().breakers[svc]
}

// LoadBalancersFor returns the load balancer policies targeting svc, in
// precedence order: oldest first, then by namespace and name.
func (s *Snapshot) LoadBalancersFor(svc ServiceRef) []*LoadBalancerPolicy {
	return s.index().lbs[svc]
}

// AuthorizationPoliciesIn returns the authorization policies of namespace
// ns, oldest first, then by name.
func (s *Snapshot) AuthorizationPoliciesIn(ns string) []*AuthorizationPolicy {
	return s.index().authz[ns]
}

// MutualTLSPoliciesIn returns the mTLS policies of namespace ns in
// precedence order: oldest first, then by name.
func (s *Snapshot) MutualTLSPoliciesIn(ns string) []*MutualTLSPolicy {
	return s.index().mtls[ns]
}

// TargetedRateLimitsIn returns the RateLimits of namespace ns that have
// targetRefs, in precedence order: oldest first, then by name.
func (s *Snapshot) TargetedRateLimitsIn(ns string) []*RateLimitPolicy {
	return s.index().limits[ns]
}

// EndpointsOf returns the endpoints, of services of w's namespace, that
// are workload w: those naming it, and those naming no workload at its
// address. They say which service ports w backs. Ordered by service, then
// address.
func (s *Snapshot) EndpointsOf(w *Workload) []Endpoint {
	ix := s.index()
	out := slices.Clone(ix.byWorkload[w.Ref()])
	if w.Address.IsValid() {
		for _, e := range ix.byAddress[w.Address.Unmap()] {
			if e.Service.Namespace == w.Namespace {
				out = append(out, e)
			}
		}
	}
	slices.SortStableFunc(out, compareEndpoints)
	return out
}

func compareEndpoints(a, b Endpoint) int {
	return cmp.Or(cmp.Compare(a.Service.Namespace, b.Service.Namespace), cmp.Compare(a.Service.Name, b.Service.Name),
		a.Address.Compare(b.Address), cmp.Compare(a.PortName, b.PortName))
}

// index builds the lookups once; concurrent first callers may each build
// them, and they build the same thing.
func (s *Snapshot) index() *index {
	if ix := s.idx.Load(); ix != nil {
		return ix
	}
	ix := &index{
		routes:     map[ServiceRef][]*Route{},
		budgets:    map[ServiceRef][]*RetryBudgetPolicy{},
		breakers:   map[ServiceRef][]*CircuitBreakerPolicy{},
		lbs:        map[ServiceRef][]*LoadBalancerPolicy{},
		authz:      map[string][]*AuthorizationPolicy{},
		mtls:       map[string][]*MutualTLSPolicy{},
		limits:     map[string][]*RateLimitPolicy{},
		byWorkload: map[ObjectRef][]Endpoint{},
		byAddress:  map[netip.Addr][]Endpoint{},
	}
	for _, r := range s.Routes {
		seen := map[ServiceRef]bool{}
		for _, p := range r.Parents {
			if !seen[p.ServiceRef] {
				seen[p.ServiceRef] = true
				ix.routes[p.ServiceRef] = append(ix.routes[p.ServiceRef], r)
			}
		}
	}
	for _, rs := range ix.routes {
		slices.SortFunc(rs, func(a, b *Route) int {
			return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Kind, b.Kind))
		})
	}
	for _, p := range s.RetryBudgets {
		ix.budgets[p.TargetRef] = append(ix.budgets[p.TargetRef], p)
	}
	for _, ps := range ix.budgets {
		slices.SortFunc(ps, func(a, b *RetryBudgetPolicy) int {
			return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
		})
	}
	for _, p := range s.CircuitBreakers {
		ix.breakers[p.TargetRef] = append(ix.breakers[p.TargetRef], p)
	}
	for _, ps := range ix.breakers {
		slices.SortFunc(ps, func(a, b *CircuitBreakerPolicy) int {
			return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
		})
	}
	for _, p := range s.LoadBalancers {
		ix.lbs[p.TargetRef] = append(ix.lbs[p.TargetRef], p)
	}
	for _, ps := range ix.lbs {
		slices.SortFunc(ps, func(a, b *LoadBalancerPolicy) int {
			return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
		})
	}
	s.indexSecurity(ix)
	if !s.idx.CompareAndSwap(nil, ix) {
		return s.idx.Load()
	}
	return ix
}

// indexSecurity builds the lookups of the security policies and of the
// endpoints by workload.
func (s *Snapshot) indexSecurity(ix *index) {
	for _, p := range s.AuthorizationPolicies {
		ix.authz[p.Namespace] = append(ix.authz[p.Namespace], p)
	}
	for _, ps := range ix.authz {
		slices.SortFunc(ps, func(a, b *AuthorizationPolicy) int {
			return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Name, b.Name))
		})
	}
	for _, p := range s.MutualTLSPolicies {
		ix.mtls[p.Namespace] = append(ix.mtls[p.Namespace], p)
	}
	for _, ps := range ix.mtls {
		slices.SortFunc(ps, func(a, b *MutualTLSPolicy) int {
			return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Name, b.Name))
		})
	}
	for _, p := range s.RateLimits {
		if len(p.TargetRefs) > 0 {
			ix.limits[p.Namespace] = append(ix.limits[p.Namespace], p)
		}
	}
	for _, ps := range ix.limits {
		slices.SortFunc(ps, func(a, b *RateLimitPolicy) int {
			return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Name, b.Name))
		})
	}
	for svc, eps := range s.Endpoints {
		for _, e := range eps {
			e.Service = svc
			if e.Workload != "" {
				ref := ObjectRef{svc.Namespace, e.Workload}
				ix.byWorkload[ref] = append(ix.byWorkload[ref], e)
			} else if e.Address.IsValid() {
				a := e.Address.Addr().Unmap()
				ix.byAddress[a] = append(ix.byAddress[a], e)
			}
		}
	}
}

// shallowCopy returns a snapshot sharing every map of s, without s's index.
// It names every field: keep it in step with Snapshot.
func (s *Snapshot) shallowCopy() *Snapshot {
	return &Snapshot{
		Revision: s.Revision, Services: s.Services, Endpoints: s.Endpoints, Workloads: s.Workloads,
		Routes: s.Routes, RetryBudgets: s.RetryBudgets, CircuitBreakers: s.CircuitBreakers,
		LoadBalancers: s.LoadBalancers,
		Namespaces:    s.Namespaces, AuthorizationPolicies: s.AuthorizationPolicies, MutualTLSPolicies: s.MutualTLSPolicies,
		RateLimits: s.RateLimits, FaultInjections: s.FaultInjections,
	}
}

// WithEndpoints returns a snapshot like s whose endpoints are eps; s is not
// changed. For sources that add endpoints on top of the store's (the
// workload registry).
func (s *Snapshot) WithEndpoints(eps map[ServiceRef][]Endpoint) *Snapshot {
	c := s.shallowCopy()
	c.Endpoints = eps
	return c
}

func emptySnapshot() *Snapshot {
	return &Snapshot{
		Services:              map[ServiceRef]*Service{},
		Endpoints:             map[ServiceRef][]Endpoint{},
		Workloads:             map[ObjectRef]*Workload{},
		Routes:                map[RouteRef]*Route{},
		RetryBudgets:          map[ObjectRef]*RetryBudgetPolicy{},
		CircuitBreakers:       map[ObjectRef]*CircuitBreakerPolicy{},
		LoadBalancers:         map[ObjectRef]*LoadBalancerPolicy{},
		Namespaces:            map[string]*Namespace{},
		AuthorizationPolicies: map[ObjectRef]*AuthorizationPolicy{},
		MutualTLSPolicies:     map[ObjectRef]*MutualTLSPolicy{},
		RateLimits:            map[ObjectRef]*RateLimitPolicy{},
		FaultInjections:       map[ObjectRef]*FaultInjectionPolicy{},
	}
}
