package model

import (
	"cmp"
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

	// idx holds lookups by reference, built on first use.
	idx atomic.Pointer[index]
}

type index struct {
	routes   map[ServiceRef][]*Route
	budgets  map[ServiceRef][]*RetryBudgetPolicy
	breakers map[ServiceRef][]*CircuitBreakerPolicy
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

// index builds the lookups once; concurrent first callers may each build
// them, and they build the same thing.
func (s *Snapshot) index() *index {
	if ix := s.idx.Load(); ix != nil {
		return ix
	}
	ix := &index{
		routes:   map[ServiceRef][]*Route{},
		budgets:  map[ServiceRef][]*RetryBudgetPolicy{},
		breakers: map[ServiceRef][]*CircuitBreakerPolicy{},
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
	if !s.idx.CompareAndSwap(nil, ix) {
		return s.idx.Load()
	}
	return ix
}

func emptySnapshot() *Snapshot {
	return &Snapshot{
		Services:        map[ServiceRef]*Service{},
		Endpoints:       map[ServiceRef][]Endpoint{},
		Workloads:       map[ObjectRef]*Workload{},
		Routes:          map[RouteRef]*Route{},
		RetryBudgets:    map[ObjectRef]*RetryBudgetPolicy{},
		CircuitBreakers: map[ObjectRef]*CircuitBreakerPolicy{},
	}
}
