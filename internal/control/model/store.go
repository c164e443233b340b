package model

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sync"
)

// ErrInvalid is wrapped by the errors of changes a Store refuses.
var ErrInvalid = errors.New("invalid change")

// Source fills a Store: a Kubernetes informer, a directory of YAML files, a
// test fixture. Run applies changes until ctx ends, under the name Name
// returns (unique among the store's sources), and returns nil when ctx
// ended. The objects of a source that stopped stay in the store as they
// were: stale state is safer than none.
type Source interface {
	Name() string
	Run(ctx context.Context, s *Store) error
}

// Change is an upsert or a deletion of one object: set exactly one of
// Upsert (a *Service, *EndpointSet, *Workload, *Route, *RetryBudgetPolicy,
// *CircuitBreakerPolicy, *LoadBalancerPolicy, *Namespace, *AuthorizationPolicy,
// *MutualTLSPolicy, *RateLimitPolicy or *FaultInjectionPolicy) and Delete (the Key of the object to delete).
type Change struct {
	Upsert Object
	Delete Key
}

// Store is the model of the mesh: sources apply changes, consumers read
// immutable snapshots and subscribe to changes. It is safe for concurrent
// use.
type Store struct {
	mu  sync.Mutex
	cur *Snapshot
	// published is set once cur has been handed out: the next change
	// starts a new Snapshot. fresh says which of cur's maps were copied
	// since (and may be written in place).
	published bool
	fresh     map[Kind]bool
	// owners holds every source's copy of each object; the snapshot shows
	// the copy of the source whose name sorts first.
	owners   map[Key]map[string]Object
	bySource map[string]map[Key]struct{}
	subs     map[chan uint64]struct{}
}

// NewStore returns an empty store at revision 0.
func NewStore() *Store {
	s := &Store{
		cur:      emptySnapshot(),
		fresh:    map[Kind]bool{},
		owners:   map[Key]map[string]Object{},
		bySource: map[string]map[Key]struct{}{},
		subs:     map[chan uint64]struct{}{},
	}
	for _, k := range []Kind{KindService, KindEndpoints, KindWorkload, KindHTTPRoute, KindRetryBudget, KindCircuitBreaker,
		KindLoadBalancer, KindNamespace, KindAuthorization, KindMutualTLS, KindRateLimit, KindFault} {
		s.fresh[k] = true
	}
	return s
}

// Apply upserts or deletes objects on behalf of source, all at once: the
// revision goes up by one if the snapshot changed, and subscribers hear of
// it once. Nothing is applied if any change is invalid. Objects are copied:
// the caller may reuse them.
func (s *Store) Apply(source string, changes ...Change) error {
	if source == "" {
		return fmt.Errorf("model: apply: %w: empty source name", ErrInvalid)
	}
	objs := make([]Object, len(changes))
	for i, ch := range changes {
		switch {
		case ch.Upsert != nil && ch.Delete != (Key{}):
			return fmt.Errorf("model: apply from %s: change %d: %w: both Upsert and Delete are set", source, i, ErrInvalid)
		case ch.Upsert != nil:
			if err := validate(ch.Upsert); err != nil {
				return fmt.Errorf("model: apply from %s: change %d: %w", source, i, err)
			}
			objs[i] = ch.Upsert.clone()
		default:
			if err := validateKey(ch.Delete); err != nil {
				return fmt.Errorf("model: apply from %s: change %d: delete: %w", source, i, err)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for i, ch := range changes {
		if objs[i] != nil {
			changed = s.upsert(source, objs[i]) || changed
		} else {
			changed = s.delete(source, ch.Delete) || changed
		}
	}
	if changed {
		s.commit()
	}
	return nil
}

// Replace makes objects the whole state of source: what the source held
// before and objects lacks is deleted. Use it for a source's initial list
// and every re-list. Like Apply it is all or nothing, and one revision.
func (s *Store) Replace(source string, objects []Object) error {
	if source == "" {
		return fmt.Errorf("model: replace: %w: empty source name", ErrInvalid)
	}
	keys := make(map[Key]struct{}, len(objects))
	objs := make([]Object, len(objects))
	for i, o := range objects {
		if o == nil {
			return fmt.Errorf("model: replace from %s: object %d: %w: nil object", source, i, ErrInvalid)
		}
		if err := validate(o); err != nil {
			return fmt.Errorf("model: replace from %s: object %d: %w", source, i, err)
		}
		if _, dup := keys[o.Key()]; dup {
			return fmt.Errorf("model: replace from %s: object %d: %w: %s is listed twice", source, i, ErrInvalid, o.Key())
		}
		keys[o.Key()] = struct{}{}
		objs[i] = o
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for k := range s.bySource[source] {
		if _, keep := keys[k]; !keep {
			changed = s.delete(source, k) || changed
		}
	}
	for _, o := range objs {
		// Cloned only when it changed: a source that sends its whole state
		// on every change makes no garbage for what stayed the same.
		if prev, ok := s.owners[o.Key()][source]; ok && reflect.DeepEqual(prev, o) {
			continue
		}
		changed = s.upsert(source, o.clone()) || changed
	}
	if changed {
		s.commit()
	}
	return nil
}

// Snapshot returns the current state. It never changes afterwards.
func (s *Store) Snapshot() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.published = true
	return s.cur
}

// Subscribe returns a channel that receives the current revision at once
// and the latest revision after every change. Revisions are coalesced: a
// reader that falls behind receives only the latest, and Apply never waits
// for readers. The channel is closed when ctx ends.
func (s *Store) Subscribe(ctx context.Context) <-chan uint64 {
	ch := make(chan uint64, 1)
	s.mu.Lock()
	ch <- s.cur.Revision
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subs, ch)
		close(ch)
	})
	return ch
}

// commit counts a change and tells the subscribers. s.mu is held.
func (s *Store) commit() {
	s.cur.Revision++
	for ch := range s.subs {
		// Only this function sends, under s.mu: once the stale value is
		// drained the buffer has room.
		select {
		case <-ch:
		default:
		}
		select {
		case ch <- s.cur.Revision:
		default:
		}
	}
}

// upsert records source's copy of o and reports whether the snapshot
// changed (it does not when another source's copy wins).
func (s *Store) upsert(source string, o Object) bool {
	k := o.Key()
	if prev, ok := s.owners[k][source]; ok && reflect.DeepEqual(prev, o) {
		return false // unchanged: no new snapshot, nothing to push
	}
	if s.owners[k] == nil {
		s.owners[k] = map[string]Object{}
	}
	s.owners[k][source] = o
	if s.bySource[source] == nil {
		s.bySource[source] = map[Key]struct{}{}
	}
	s.bySource[source][k] = struct{}{}
	if winner(s.owners[k]) != source {
		return false
	}
	s.write(k, o)
	return true
}

// delete drops source's copy of k and reports whether the snapshot changed.
func (s *Store) delete(source string, k Key) bool {
	copies := s.owners[k]
	if _, ok := copies[source]; !ok {
		return false
	}
	wasWinner := winner(copies) == source
	delete(copies, source)
	delete(s.bySource[source], k)
	if len(s.bySource[source]) == 0 {
		delete(s.bySource, source)
	}
	if len(copies) == 0 {
		delete(s.owners, k)
		s.write(k, nil)
		return true
	}
	if !wasWinner {
		return false
	}
	s.write(k, copies[winner(copies)])
	return true
}

func winner(copies map[string]Object) string {
	first := ""
	for src := range copies {
		if first == "" || src < first {
			first = src
		}
	}
	return first
}

// write sets (o != nil) or deletes the object of key k in the snapshot,
// copying what a published snapshot shares first.
func (s *Store) write(k Key, o Object) {
	if s.published {
		s.cur = s.cur.shallowCopy()
		clear(s.fresh)
		s.published = false
	}
	switch k.Kind {
	case KindService:
		setOrDelete(mapFor(s, KindService, &s.cur.Services), ServiceRef{k.Namespace, k.Name}, o, func(o Object) *Service { return o.(*Service) })
	case KindEndpoints:
		setOrDelete(mapFor(s, KindEndpoints, &s.cur.Endpoints), ServiceRef{k.Namespace, k.Name}, o, func(o Object) []Endpoint { return o.(*EndpointSet).Endpoints })
	case KindWorkload:
		setOrDelete(mapFor(s, KindWorkload, &s.cur.Workloads), ObjectRef{k.Namespace, k.Name}, o, func(o Object) *Workload { return o.(*Workload) })
	case KindHTTPRoute, KindGRPCRoute:
		rk := RouteHTTP
		if k.Kind == KindGRPCRoute {
			rk = RouteGRPC
		}
		setOrDelete(mapFor(s, KindHTTPRoute, &s.cur.Routes), RouteRef{rk, k.Namespace, k.Name}, o, func(o Object) *Route { return o.(*Route) })
	case KindRetryBudget:
		setOrDelete(mapFor(s, KindRetryBudget, &s.cur.RetryBudgets), ObjectRef{k.Namespace, k.Name}, o, func(o Object) *RetryBudgetPolicy { return o.(*RetryBudgetPolicy) })
	case KindCircuitBreaker:
		setOrDelete(mapFor(s, KindCircuitBreaker, &s.cur.CircuitBreakers), ObjectRef{k.Namespace, k.Name}, o, func(o Object) *CircuitBreakerPolicy { return o.(*CircuitBreakerPolicy) })
	case KindLoadBalancer:
		setOrDelete(mapFor(s, KindLoadBalancer, &s.cur.LoadBalancers), ObjectRef{k.Namespace, k.Name}, o, func(o Object) *LoadBalancerPolicy { return o.(*LoadBalancerPolicy) })
	case KindNamespace:
		setOrDelete(mapFor(s, KindNamespace, &s.cur.Namespaces), k.Name, o, func(o Object) *Namespace { return o.(*Namespace) })
	case KindAuthorization:
		setOrDelete(mapFor(s, KindAuthorization, &s.cur.AuthorizationPolicies), ObjectRef{k.Namespace, k.Name}, o, func(o Object) *AuthorizationPolicy { return o.(*AuthorizationPolicy) })
	case KindMutualTLS:
		setOrDelete(mapFor(s, KindMutualTLS, &s.cur.MutualTLSPolicies), ObjectRef{k.Namespace, k.Name}, o, func(o Object) *MutualTLSPolicy { return o.(*MutualTLSPolicy) })
	case KindRateLimit:
		setOrDelete(mapFor(s, KindRateLimit, &s.cur.RateLimits), ObjectRef{k.Namespace, k.Name}, o, func(o Object) *RateLimitPolicy { return o.(*RateLimitPolicy) })
	case KindFault:
		setOrDelete(mapFor(s, KindFault, &s.cur.FaultInjections), ObjectRef{k.Namespace, k.Name}, o, func(o Object) *FaultInjectionPolicy { return o.(*FaultInjectionPolicy) })
	}
}

// mapFor returns the current snapshot's map of a kind, copied first unless
// it already was since the last publication.
func mapFor[K comparable, V any](s *Store, kind Kind, m *map[K]V) map[K]V {
	if !s.fresh[kind] {
		*m = maps.Clone(*m)
		if *m == nil {
			*m = map[K]V{}
		}
		s.fresh[kind] = true
	}
	return *m
}

func setOrDelete[K comparable, V any](m map[K]V, k K, o Object, value func(Object) V) {
	if o == nil {
		delete(m, k)
		return
	}
	m[k] = value(o)
}

func validateKey(k Key) error {
	switch k.Kind {
	case KindNamespace:
		if k.Namespace != "" || k.Name == "" {
			return fmt.Errorf("%w: %s: a namespace has a name and no namespace", ErrInvalid, k)
		}
		return nil
	case KindService, KindEndpoints, KindWorkload, KindHTTPRoute, KindGRPCRoute, KindRetryBudget, KindCircuitBreaker,
		KindLoadBalancer, KindAuthorization, KindMutualTLS, KindRateLimit, KindFault:
	case "":
		return fmt.Errorf("%w: neither Upsert nor Delete is set", ErrInvalid)
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrInvalid, k.Kind)
	}
	if k.Namespace == "" || k.Name == "" {
		return fmt.Errorf("%w: %s: namespace and name must both be set", ErrInvalid, k)
	}
	return nil
}

func validate(o Object) error {
	if reflect.ValueOf(o).IsNil() {
		return fmt.Errorf("%w: nil %T", ErrInvalid, o)
	}
	switch v := o.(type) {
	case *Route:
		if v.Kind != RouteHTTP && v.Kind != RouteGRPC {
			return fmt.Errorf("%w: route %s/%s: unknown kind %q; use %q or %q", ErrInvalid, v.Namespace, v.Name, v.Kind, RouteHTTP, RouteGRPC)
		}
	case *Service:
		seen := map[uint16]bool{}
		for _, p := range v.Ports {
			if p.Port == 0 || seen[p.Port] {
				return fmt.Errorf("%w: service %s/%s: port %d is zero or listed twice", ErrInvalid, v.Namespace, v.Name, p.Port)
			}
			seen[p.Port] = true
		}
	}
	return validateKey(o.Key())
}

// StaticSource is a Source of a fixed set of objects: tests, demos, a
// bootstrap. Run replaces the source's state with Objects, then waits for
// ctx to end.
type StaticSource struct {
	SourceName string
	Objects    []Object
}

// Name implements Source.
func (st StaticSource) Name() string { return st.SourceName }

// Run implements Source.
func (st StaticSource) Run(ctx context.Context, s *Store) error {
	if err := s.Replace(st.SourceName, st.Objects); err != nil {
		return fmt.Errorf("static source %s: %w", st.SourceName, err)
	}
	<-ctx.Done()
	return nil
}
