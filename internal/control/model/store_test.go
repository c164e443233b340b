package model

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
)

func svc(ns, name string, port uint16) *Service {
	return &Service{Namespace: ns, Name: name, Ports: []ServicePort{{Name: "http", Port: port}}, VIPs: []netip.Addr{netip.MustParseAddr("10.96.0.1")}}
}

func eps(ns, name string, addrs ...string) *EndpointSet {
	set := &EndpointSet{Service: ServiceRef{ns, name}}
	for _, a := range addrs {
		set.Endpoints = append(set.Endpoints, Endpoint{Address: netip.MustParseAddrPort(a), Ready: true})
	}
	return set
}

// view summarizes a snapshot for comparisons.
func view(s *Snapshot) string {
	var out []string
	for r, v := range s.Services {
		out = append(out, fmt.Sprintf("svc %s ports=%v", r, v.Ports))
	}
	for r, v := range s.Endpoints {
		var as []string
		for _, e := range v {
			as = append(as, e.Address.String())
		}
		out = append(out, fmt.Sprintf("eps %s %v", r, as))
	}
	for r := range s.Workloads {
		out = append(out, "wl "+r.String())
	}
	for r := range s.Routes {
		out = append(out, fmt.Sprintf("route %s %s/%s", r.Kind, r.Namespace, r.Name))
	}
	for r := range s.RetryBudgets {
		out = append(out, "rb "+r.String())
	}
	for r := range s.CircuitBreakers {
		out = append(out, "cb "+r.String())
	}
	for r := range s.LoadBalancers {
		out = append(out, "lb "+r.String())
	}
	for n := range s.Namespaces {
		out = append(out, "ns "+n)
	}
	for r := range s.AuthorizationPolicies {
		out = append(out, "authz "+r.String())
	}
	for r := range s.MutualTLSPolicies {
		out = append(out, "mtls "+r.String())
	}
	slices.Sort(out)
	return fmt.Sprint(out)
}

type step struct {
	source  string
	changes []Change
	replace []Object // when set, Replace instead of Apply
}

func TestApply(t *testing.T) {
	tests := []struct {
		name     string
		steps    []step
		want     string
		revision uint64
	}{
		{
			name: "upsert every kind",
			steps: []step{{source: "a", changes: []Change{
				{Upsert: svc("ns", "web", 80)},
				{Upsert: eps("ns", "web", "10.0.0.1:80")},
				{Upsert: &Workload{Namespace: "ns", Name: "web-0"}},
				{Upsert: &Route{Namespace: "ns", Name: "r", Kind: RouteHTTP}},
				{Upsert: &Route{Namespace: "ns", Name: "r", Kind: RouteGRPC}},
				{Upsert: &RetryBudgetPolicy{Namespace: "ns", Name: "rb"}},
				{Upsert: &CircuitBreakerPolicy{Namespace: "ns", Name: "cb"}},
				{Upsert: &LoadBalancerPolicy{Namespace: "ns", Name: "lb"}},
				{Upsert: &Namespace{Name: "ns"}},
				{Upsert: &AuthorizationPolicy{Namespace: "ns", Name: "az"}},
				{Upsert: &MutualTLSPolicy{Namespace: "ns", Name: "mt"}},
			}}},
			want: "[authz ns/az cb ns/cb eps ns/web [10.0.0.1:80] lb ns/lb mtls ns/mt ns ns rb ns/rb route grpc ns/r route http ns/r " +
				"svc ns/web ports=[{http 80 0 }] wl ns/web-0]",
			revision: 1,
		},
		{
			name: "upsert replaces, delete removes",
			steps: []step{
				{source: "a", changes: []Change{{Upsert: svc("ns", "web", 80)}, {Upsert: svc("ns", "api", 90)}}},
				{source: "a", changes: []Change{{Upsert: svc("ns", "web", 8080)}}},
				{source: "a", changes: []Change{{Delete: Key{KindService, "ns", "api"}}}},
			},
			want:     "[svc ns/web ports=[{http 8080 0 }]]",
			revision: 3,
		},
		{
			name: "deleting what is not there changes nothing",
			steps: []step{
				{source: "a", changes: []Change{{Upsert: svc("ns", "web", 80)}}},
				{source: "a", changes: []Change{{Delete: Key{KindService, "ns", "nope"}}}},
				{source: "b", changes: []Change{{Delete: Key{KindService, "ns", "web"}}}},
			},
			want:     "[svc ns/web ports=[{http 80 0 }]]",
			revision: 1,
		},
		{
			name: "the source whose name sorts first wins, whatever the order",
			steps: []step{
				{source: "kubernetes", changes: []Change{{Upsert: svc("ns", "web", 80)}}},
				{source: "file", changes: []Change{{Upsert: svc("ns", "web", 81)}}},
				{source: "kubernetes", changes: []Change{{Upsert: svc("ns", "web", 82)}}},
			},
			want:     "[svc ns/web ports=[{http 81 0 }]]",
			revision: 2,
		},
		{
			name: "deleting the winner reveals the other copy",
			steps: []step{
				{source: "kubernetes", changes: []Change{{Upsert: svc("ns", "web", 80)}}},
				{source: "file", changes: []Change{{Upsert: svc("ns", "web", 81)}}},
				{source: "file", changes: []Change{{Delete: Key{KindService, "ns", "web"}}}},
			},
			want:     "[svc ns/web ports=[{http 80 0 }]]",
			revision: 3,
		},
		{
			name: "deleting a shadowed copy changes nothing",
			steps: []step{
				{source: "kubernetes", changes: []Change{{Upsert: svc("ns", "web", 80)}}},
				{source: "file", changes: []Change{{Upsert: svc("ns", "web", 81)}}},
				{source: "kubernetes", changes: []Change{{Delete: Key{KindService, "ns", "web"}}}},
			},
			want:     "[svc ns/web ports=[{http 81 0 }]]",
			revision: 2,
		},
		{
			name: "replace deletes what the source no longer has, and only its own",
			steps: []step{
				{source: "a", changes: []Change{{Upsert: svc("ns", "web", 80)}, {Upsert: svc("ns", "api", 90)}}},
				{source: "b", changes: []Change{{Upsert: svc("ns", "db", 5432)}}},
				{source: "a", replace: []Object{svc("ns", "web", 80), eps("ns", "web", "10.0.0.1:80")}},
			},
			want:     "[eps ns/web [10.0.0.1:80] svc ns/db ports=[{http 5432 0 }] svc ns/web ports=[{http 80 0 }]]",
			revision: 3,
		},
		{
			name: "replace with nothing empties the source",
			steps: []step{
				{source: "a", changes: []Change{{Upsert: svc("ns", "web", 80)}}},
				{source: "a", replace: []Object{}},
			},
			want:     "[]",
			revision: 2,
		},
		{
			name: "namespaces and security policies are deleted by key",
			steps: []step{
				{source: "a", changes: []Change{{Upsert: &Namespace{Name: "shop"}}, {Upsert: &Namespace{Name: "ops"}},
					{Upsert: &AuthorizationPolicy{Namespace: "shop", Name: "az"}}, {Upsert: &MutualTLSPolicy{Namespace: "shop", Name: "mt"}}}},
				{source: "a", changes: []Change{{Delete: Key{Kind: KindNamespace, Name: "ops"}}, {Delete: Key{KindAuthorization, "shop", "az"}},
					{Delete: Key{KindMutualTLS, "shop", "mt"}}}},
			},
			want:     "[ns shop]",
			revision: 2,
		},
		{
			name: "one batch is one revision",
			steps: []step{
				{source: "a", changes: []Change{{Upsert: svc("ns", "a", 80)}, {Upsert: svc("ns", "b", 80)}, {Delete: Key{KindService, "ns", "a"}}}},
			},
			want:     "[svc ns/b ports=[{http 80 0 }]]",
			revision: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStore()
			for i, st := range tt.steps {
				var err error
				if st.replace != nil {
					err = s.Replace(st.source, st.replace)
				} else {
					err = s.Apply(st.source, st.changes...)
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				s.Snapshot() // publish, so every step exercises copy-on-write
			}
			snap := s.Snapshot()
			if got := view(snap); got != tt.want {
				t.Errorf("snapshot:\n got %s\nwant %s", got, tt.want)
			}
			if snap.Revision != tt.revision {
				t.Errorf("revision = %d, want %d", snap.Revision, tt.revision)
			}
		})
	}
}

func TestApplyRejectsInvalidChanges(t *testing.T) {
	tests := []struct {
		name    string
		source  string
		changes []Change
	}{
		{"empty source", "", []Change{{Upsert: svc("ns", "web", 80)}}},
		{"empty change", "a", []Change{{}}},
		{"both set", "a", []Change{{Upsert: svc("ns", "web", 80), Delete: Key{KindService, "ns", "web"}}}},
		{"no namespace", "a", []Change{{Upsert: svc("", "web", 80)}}},
		{"no name", "a", []Change{{Delete: Key{KindWorkload, "ns", ""}}}},
		{"unknown kind", "a", []Change{{Delete: Key{"Gateway", "ns", "gw"}}}},
		{"route kind", "a", []Change{{Upsert: &Route{Namespace: "ns", Name: "r", Kind: "tcp"}}}},
		{"nil object", "a", []Change{{Upsert: (*Service)(nil)}}},
		{"service port zero", "a", []Change{{Upsert: svc("ns", "web", 0)}}},
		{"namespace in a namespace", "a", []Change{{Upsert: &Namespace{Name: "shop"}}, {Delete: Key{KindNamespace, "ns", "shop"}}}},
		{"namespace without a name", "a", []Change{{Upsert: &Namespace{}}}},
		{"authorization policy without a namespace", "a", []Change{{Upsert: &AuthorizationPolicy{Name: "az"}}}},
		{"mTLS policy without a name", "a", []Change{{Delete: Key{KindMutualTLS, "ns", ""}}}},
		{"service port twice", "a", []Change{{Upsert: &Service{Namespace: "ns", Name: "web", Ports: []ServicePort{{Port: 80}, {Name: "b", Port: 80}}}}}},
		{"one bad change stops the batch", "a", []Change{{Upsert: svc("ns", "ok", 80)}, {Upsert: svc("ns", "", 80)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStore()
			err := s.Apply(tt.source, tt.changes...)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Apply = %v, want an ErrInvalid", err)
			}
			if snap := s.Snapshot(); snap.Revision != 0 || len(snap.Services) != 0 {
				t.Errorf("a refused batch changed the store: revision %d, %s", snap.Revision, view(snap))
			}
		})
	}
	if err := NewStore().Replace("a", []Object{svc("ns", "web", 80), svc("ns", "web", 81)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Replace with a duplicate = %v, want an ErrInvalid", err)
	}
}

func TestCopyOnWrite(t *testing.T) {
	s := NewStore()
	web := svc("ns", "web", 80)
	rule := RouteRule{Matches: []*weftv1.RouteMatch{{Method: "GET"}}}
	route := &Route{Namespace: "ns", Name: "r", Kind: RouteHTTP, Rules: []RouteRule{rule}}
	set := eps("ns", "web", "10.0.0.1:80")
	if err := s.Apply("a", Change{Upsert: web}, Change{Upsert: route}, Change{Upsert: set}); err != nil {
		t.Fatal(err)
	}
	old := s.Snapshot()
	before := view(old)

	// The caller's objects are copied: changing them changes nothing.
	web.Ports[0].Port = 1
	rule.Matches[0].Method = "POST"
	set.Endpoints[0].Ready = false
	if got := old.Services[ServiceRef{"ns", "web"}].Ports[0].Port; got != 80 {
		t.Errorf("service port changed through the caller's object: %d", got)
	}
	if got := old.Routes[RouteRef{RouteHTTP, "ns", "r"}].Rules[0].Matches[0].GetMethod(); got != "GET" {
		t.Errorf("route match changed through the caller's object: %s", got)
	}
	if !old.Endpoints[ServiceRef{"ns", "web"}][0].Ready {
		t.Error("endpoint changed through the caller's object")
	}

	if err := s.Apply("a",
		Change{Upsert: svc("ns", "api", 90)},
		Change{Delete: Key{KindHTTPRoute, "ns", "r"}},
		Change{Upsert: eps("ns", "web", "10.0.0.2:80")},
	); err != nil {
		t.Fatal(err)
	}
	cur := s.Snapshot()
	if got := view(old); got != before {
		t.Errorf("old snapshot changed by Apply:\n got %s\nwant %s", got, before)
	}
	if old.Revision != 1 || cur.Revision != 2 {
		t.Errorf("revisions old %d, current %d; want 1, 2", old.Revision, cur.Revision)
	}
	want := "[eps ns/web [10.0.0.2:80] svc ns/api ports=[{http 90 0 }] svc ns/web ports=[{http 80 0 }]]"
	if got := view(cur); got != want {
		t.Errorf("current snapshot:\n got %s\nwant %s", got, want)
	}
	// Untouched maps are shared, touched ones copied.
	if fmt.Sprintf("%p", old.Workloads) != fmt.Sprintf("%p", cur.Workloads) {
		t.Error("an untouched map was copied")
	}
	if fmt.Sprintf("%p", old.Services) == fmt.Sprintf("%p", cur.Services) {
		t.Error("a touched map is shared with the old snapshot")
	}
	// Objects are shared, not copied, between snapshots.
	if old.Services[ServiceRef{"ns", "web"}] != cur.Services[ServiceRef{"ns", "web"}] {
		t.Error("an unchanged object was copied")
	}
}

func TestUnpublishedChangesAreInPlace(t *testing.T) {
	s := NewStore()
	for i := range 100 {
		if err := s.Apply("a", Change{Upsert: svc("ns", fmt.Sprint("s", i), 80)}); err != nil {
			t.Fatal(err)
		}
	}
	first := s.Snapshot()
	if len(first.Services) != 100 || first.Revision != 100 {
		t.Fatalf("got %d services at revision %d", len(first.Services), first.Revision)
	}
	if s.Snapshot() != first {
		t.Error("two Snapshot calls with no change in between returned different snapshots")
	}
}

func TestIndex(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	web := ServiceRef{"ns", "web"}
	s := NewStore()
	if err := s.Apply("a",
		Change{Upsert: &Route{Namespace: "ns", Name: "b", Kind: RouteHTTP, Parents: []ServicePortRef{{web, 80}, {web, 81}}}},
		Change{Upsert: &Route{Namespace: "ns", Name: "a", Kind: RouteGRPC, Parents: []ServicePortRef{{ServiceRef: web}}}},
		Change{Upsert: &Route{Namespace: "ns", Name: "a", Kind: RouteHTTP, Parents: []ServicePortRef{{ServiceRef: web}, {ServiceRef: ServiceRef{"ns", "api"}}}}},
		Change{Upsert: &Route{Namespace: "ns", Name: "c", Kind: RouteHTTP, Parents: []ServicePortRef{{ServiceRef: ServiceRef{"ns", "api"}}}}},
		Change{Upsert: &RetryBudgetPolicy{Namespace: "ns", Name: "z", Created: t0, TargetRef: web}},
		Change{Upsert: &RetryBudgetPolicy{Namespace: "ns", Name: "y", Created: t0.Add(time.Hour), TargetRef: web}},
		Change{Upsert: &RetryBudgetPolicy{Namespace: "ns", Name: "x", Created: t0, TargetRef: web}},
		Change{Upsert: &CircuitBreakerPolicy{Namespace: "ns", Name: "cb", TargetRef: web}},
		Change{Upsert: &LoadBalancerPolicy{Namespace: "ns", Name: "lb-new", Created: t0.Add(time.Hour), TargetRef: web}},
		Change{Upsert: &LoadBalancerPolicy{Namespace: "ns", Name: "lb-old", Created: t0, TargetRef: web}},
	); err != nil {
		t.Fatal(err)
	}
	snap := s.Snapshot()
	var routes []string
	for _, r := range snap.RoutesFor(web) {
		routes = append(routes, fmt.Sprintf("%s/%s/%s", r.Namespace, r.Name, r.Kind))
	}
	if want := []string{"ns/a/grpc", "ns/a/http", "ns/b/http"}; !slices.Equal(routes, want) {
		t.Errorf("RoutesFor(web) = %v, want %v", routes, want)
	}
	var budgets []string
	for _, p := range snap.RetryBudgetsFor(web) {
		budgets = append(budgets, p.Name)
	}
	if want := []string{"x", "z", "y"}; !slices.Equal(budgets, want) {
		t.Errorf("RetryBudgetsFor(web) = %v, want %v (oldest first, then by name)", budgets, want)
	}
	if n := len(snap.CircuitBreakersFor(web)); n != 1 {
		t.Errorf("CircuitBreakersFor(web) has %d policies, want 1", n)
	}
	var lbs []string
	for _, p := range snap.LoadBalancersFor(web) {
		lbs = append(lbs, p.Name)
	}
	if want := []string{"lb-old", "lb-new"}; !slices.Equal(lbs, want) {
		t.Errorf("LoadBalancersFor(web) = %v, want %v (oldest first)", lbs, want)
	}
	if n := len(snap.RoutesFor(ServiceRef{"ns", "nope"})); n != 0 {
		t.Errorf("RoutesFor(unknown) has %d routes", n)
	}
}

// TestSubscribeCoalesces runs writers, readers and subscribers at once (go
// test -race): every subscriber sees increasing revisions ending with the
// last one, and writers never wait for subscribers, even ones that never
// read.
func TestSubscribeCoalesces(t *testing.T) {
	s := NewStore()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	idle := s.Subscribe(ctx) // never read: must not block Apply

	const writers, perWriter = 4, 200
	const total = writers * perWriter
	sub := s.Subscribe(ctx)
	got := make(chan []uint64)
	go func() {
		var seen []uint64
		for rev := range sub {
			seen = append(seen, rev)
			if rev == total {
				break
			}
			time.Sleep(time.Millisecond) // a slow reader
		}
		got <- seen
	}()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if err := s.Apply(fmt.Sprint("src", w), Change{Upsert: svc("ns", fmt.Sprintf("s%d-%d", w, i), 80)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() { // concurrent readers
		for range 200 {
			snap := s.Snapshot()
			_ = snap.RoutesFor(ServiceRef{"ns", "web"})
			_ = len(snap.Services)
		}
	})
	wg.Wait()
	if t.Failed() {
		cancel() // ends the reader
	}

	seen := <-got
	if len(seen) == 0 {
		t.Fatal("no revision received")
	}
	if seen[len(seen)-1] != total {
		t.Fatalf("last revision seen = %d, want %d", seen[len(seen)-1], total)
	}
	if !slices.IsSorted(seen) || len(slices.Compact(slices.Clone(seen))) != len(seen) {
		t.Errorf("revisions not strictly increasing: %v", seen)
	}
	if len(seen) >= total {
		t.Logf("no coalescing happened (%d notifications); the reader kept up", len(seen))
	}
	if rev := <-idle; rev != total {
		t.Errorf("idle subscriber holds revision %d, want the latest %d", rev, total)
	}
	if n := len(s.Snapshot().Services); n != total {
		t.Errorf("%d services, want %d", n, total)
	}
}

func TestSubscribeStartsWithCurrentAndClosesOnCancel(t *testing.T) {
	s := NewStore()
	if err := s.Apply("a", Change{Upsert: svc("ns", "web", 80)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := s.Subscribe(ctx)
	if rev := <-ch; rev != 1 {
		t.Errorf("first revision = %d, want 1", rev)
	}
	cancel()
	select {
	case _, open := <-ch:
		if open {
			t.Error("received a revision after cancel with no change")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
	// Changes after the subscription ended reach nobody and block nothing.
	if err := s.Apply("a", Change{Delete: Key{KindService, "ns", "web"}}); err != nil {
		t.Fatal(err)
	}
}

func TestStaticSource(t *testing.T) {
	s := NewStore()
	var src Source = StaticSource{SourceName: "fixture", Objects: []Object{svc("ns", "web", 80)}}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	updates := s.Subscribe(ctx)
	<-updates
	go func() { errc <- src.Run(ctx, s) }()
	if rev := <-updates; rev != 1 {
		t.Errorf("revision %d after the source ran, want 1", rev)
	}
	if _, ok := s.Snapshot().Services[ServiceRef{"ns", "web"}]; !ok {
		t.Error("the source's service is not in the store")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
	if err := (StaticSource{SourceName: "bad", Objects: []Object{svc("", "x", 1)}}).Run(context.Background(), s); !errors.Is(err, ErrInvalid) {
		t.Errorf("Run with an invalid object = %v, want ErrInvalid", err)
	}
}

// TestFilterPolicies: RateLimits and FaultInjections are stored by key,
// copied on the way in, and deleted.
func TestFilterPolicies(t *testing.T) {
	s := NewStore()
	rl := &RateLimitPolicy{Namespace: "shop", Name: "rl", Limit: &weftv1.RateLimit{RequestsPerSecond: 1, Burst: 1}}
	fi := &FaultInjectionPolicy{Namespace: "shop", Name: "fi", Fault: &weftv1.Fault{AbortPercent: 100, AbortHttpStatus: 503}}
	if err := s.Apply("src", Change{Upsert: rl}, Change{Upsert: fi}); err != nil {
		t.Fatal(err)
	}
	rl.Limit.Burst = 9 // the store holds a copy
	snap := s.Snapshot()
	if got := snap.RateLimits[ObjectRef{"shop", "rl"}]; got == nil || got.Limit.GetBurst() != 1 {
		t.Errorf("RateLimits = %v, want shop/rl with burst 1", snap.RateLimits)
	}
	if got := snap.FaultInjections[ObjectRef{"shop", "fi"}]; got == nil || got.Fault.GetAbortHttpStatus() != 503 {
		t.Errorf("FaultInjections = %v, want shop/fi", snap.FaultInjections)
	}
	if err := s.Apply("src", Change{Delete: rl.Key()}, Change{Delete: fi.Key()}); err != nil {
		t.Fatal(err)
	}
	if snap2 := s.Snapshot(); len(snap2.RateLimits) != 0 || len(snap2.FaultInjections) != 0 || len(snap.RateLimits) != 1 {
		t.Errorf("after deleting: %v %v; the earlier snapshot changed: %v", snap2.RateLimits, snap2.FaultInjections, snap.RateLimits)
	}
}
