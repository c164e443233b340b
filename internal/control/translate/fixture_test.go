package translate

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
)

// The fixture mesh, namespace shop (trust domain weft.test):
//
//	web        http 80->8080, dual-stack VIPs; 2 ready endpoints, 1 ready
//	           but terminating, 1 not ready
//	web-v1/v2  canary backends of web; web-shadow its mirror target
//	api        grpc 9090, one endpoint on an explicit-mode VM
//	db         tcp 5432, not meshed
//	cache      headless, 6379, no appProtocol (detected), not meshed
//
// Routes: HTTPRoute shop/web-canary (web -> web-v1/web-v2 90/10, mirror to
// web-shadow; a second rule names the unknown service "missing"), GRPCRoute
// shop/api-retry (retry policy), HTTPRoute ops/web-debug (a consumer route
// of namespace ops), HTTPRoute shop/bad-regex (on web-v1, rejected by the
// proxy), HTTPRoute shop/orphan (parent does not exist). Policies: a circuit
// breaker on api, two retry budgets on web (the newer conflicts), a circuit
// breaker in ops targeting shop/web (another namespace).
var (
	t0 = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

	refWeb       = model.ServiceRef{Namespace: "shop", Name: "web"}
	refWebV1     = model.ServiceRef{Namespace: "shop", Name: "web-v1"}
	refWebV2     = model.ServiceRef{Namespace: "shop", Name: "web-v2"}
	refWebShadow = model.ServiceRef{Namespace: "shop", Name: "web-shadow"}
	refAPI       = model.ServiceRef{Namespace: "shop", Name: "api"}
	refDB        = model.ServiceRef{Namespace: "shop", Name: "db"}
	refCache     = model.ServiceRef{Namespace: "shop", Name: "cache"}
	refGone      = model.ServiceRef{Namespace: "shop", Name: "gone"}
)

func id(ns, sa string) string { return "spiffe://weft.test/ns/" + ns + "/sa/" + sa }

func testTLS() *weftv1.TLS {
	return &weftv1.TLS{CertFile: "/var/run/weft/tls/cert.pem", KeyFile: "/var/run/weft/tls/key.pem", TrustBundleFile: "/var/run/weft/tls/bundle.pem"}
}

func ep(addr, identity string, mod ...func(*model.Endpoint)) model.Endpoint {
	e := model.Endpoint{Address: netip.MustParseAddrPort(addr), Identity: identity, Ready: true}
	for _, m := range mod {
		m(&e)
	}
	return e
}

func httpService(ref model.ServiceRef, vips ...string) *model.Service {
	s := &model.Service{Namespace: ref.Namespace, Name: ref.Name, Ports: []model.ServicePort{{Name: "http", Port: 80, TargetPort: 8080, AppProtocol: "http"}}}
	for _, v := range vips {
		s.VIPs = append(s.VIPs, netip.MustParseAddr(v))
	}
	return s
}

func backend(ref model.ServiceRef, port uint16, weight uint32) model.BackendRef {
	return model.BackendRef{ServicePortRef: model.ServicePortRef{ServiceRef: ref, Port: port}, Weight: weight}
}

// fixtureObjects returns the fixture mesh's objects in a fixed order.
func fixtureObjects() []model.Object {
	webV2 := backend(refWebV2, 80, 10)
	webV2.RequestHeaders = &weftv1.HeaderModifier{Set: []*weftv1.Header{{Name: "x-canary", Value: "true"}}}
	return []model.Object{
		httpService(refWeb, "10.96.0.10", "fd00::10"),
		httpService(refWebV1, "10.96.0.11"),
		httpService(refWebV2, "10.96.0.12"),
		httpService(refWebShadow, "10.96.0.13"),
		&model.Service{Namespace: "shop", Name: "api", Ports: []model.ServicePort{{Name: "grpc", Port: 9090, AppProtocol: "grpc"}},
			VIPs: []netip.Addr{netip.MustParseAddr("10.96.0.20")}},
		&model.Service{Namespace: "shop", Name: "db", Ports: []model.ServicePort{{Name: "postgres", Port: 5432, AppProtocol: "tcp"}},
			VIPs: []netip.Addr{netip.MustParseAddr("10.96.0.30")}},
		&model.Service{Namespace: "shop", Name: "cache", Ports: []model.ServicePort{{Name: "redis", Port: 6379}}},

		&model.EndpointSet{Service: refWeb, Endpoints: []model.Endpoint{
			ep("10.1.0.2:8080", id("shop", "web"), func(e *model.Endpoint) { e.Zone, e.Weight, e.Workload = "zone-b", 2, "web-1" }),
			ep("10.1.0.1:8080", id("shop", "web"), func(e *model.Endpoint) { e.Zone, e.Workload = "zone-a", "web-0" }),
			ep("10.1.0.3:8080", id("shop", "web"), func(e *model.Endpoint) { e.Zone, e.Terminating = "zone-a", true }),
			ep("10.1.0.4:8080", id("shop", "web"), func(e *model.Endpoint) { e.Ready = false }),
		}},
		&model.EndpointSet{Service: refWebV1, Endpoints: []model.Endpoint{ep("10.1.1.1:8080", id("shop", "web"))}},
		&model.EndpointSet{Service: refWebV2, Endpoints: []model.Endpoint{ep("10.1.2.1:8080", id("shop", "web"))}},
		&model.EndpointSet{Service: refWebShadow, Endpoints: []model.Endpoint{ep("10.1.3.1:8080", id("shop", "web-shadow"))}},
		&model.EndpointSet{Service: refAPI, Endpoints: []model.Endpoint{
			ep("10.2.0.1:9090", id("shop", "api"), func(e *model.Endpoint) { e.ProxyAddress = netip.MustParseAddrPort("10.2.0.1:15001") }),
		}},
		&model.EndpointSet{Service: refDB, Endpoints: []model.Endpoint{ep("10.3.0.1:5432", "")}},
		&model.EndpointSet{Service: refCache, Endpoints: []model.Endpoint{ep("10.4.0.1:6379", "")}},

		&model.Workload{Namespace: "shop", Name: "web-0", ServiceAccount: "web", Address: netip.MustParseAddr("10.1.0.1"), Meshed: true,
			Labels: map[string]string{"app": "web"},
			Ports: []model.WorkloadPort{
				{Name: "http", Port: 8080, Protocol: "http"},
				{Name: "metrics", Port: 9102},
				{Name: "debug", Port: 4191},
				{Name: "raw", Port: 7000, Protocol: "http", Opaque: true},
			}},
		&model.Workload{Namespace: "shop", Name: "vm-1", ServiceAccount: "billing", Address: netip.MustParseAddr("10.5.0.1"), Meshed: true,
			ProxyInbound: 15001, Ports: []model.WorkloadPort{{Name: "http", Port: 8080, Protocol: "http2"}}},

		&model.Route{Namespace: "shop", Name: "web-canary", Kind: model.RouteHTTP, Created: t0,
			Parents: []model.ServicePortRef{{ServiceRef: refWeb}},
			Rules: []model.RouteRule{
				{
					Matches:  []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Type: "PathPrefix", Value: "/"}}},
					Backends: []model.BackendRef{backend(refWebV1, 80, 90), webV2},
					Timeouts: &weftv1.RouteTimeouts{Request: durationpb.New(3 * time.Second)},
					Mirrors:  []model.MirrorRef{{ServicePortRef: model.ServicePortRef{ServiceRef: refWebShadow, Port: 80}, Percent: 5}},
				},
				{
					Matches: []*weftv1.RouteMatch{{
						Path:    &weftv1.PathMatch{Type: "Exact", Value: "/beta"},
						Headers: []*weftv1.ValueMatch{{Name: "x-beta", Value: "1"}},
					}},
					Backends: []model.BackendRef{backend(refWebV2, 0, 50), backend(model.ServiceRef{Namespace: "shop", Name: "missing"}, 80, 50)},
				},
			}},
		&model.Route{Namespace: "shop", Name: "api-retry", Kind: model.RouteGRPC, Created: t0.Add(time.Hour),
			Parents: []model.ServicePortRef{{ServiceRef: refAPI, Port: 9090}},
			Rules: []model.RouteRule{{
				Matches:  []*weftv1.RouteMatch{{Grpc: &weftv1.GRPCMethodMatch{Service: "shop.Catalog"}}},
				Timeouts: &weftv1.RouteTimeouts{Request: durationpb.New(2 * time.Second), BackendRequest: durationpb.New(500 * time.Millisecond)},
				Retry:    &weftv1.RetryPolicy{MaxRetries: 3, GrpcCodes: []uint32{14}},
			}}},
		&model.Route{Namespace: "ops", Name: "web-debug", Kind: model.RouteHTTP, Created: t0,
			Parents: []model.ServicePortRef{{ServiceRef: refWeb, Port: 80}},
			Rules: []model.RouteRule{{
				Filters: &weftv1.RouteFilters{RequestHeaders: &weftv1.HeaderModifier{Add: []*weftv1.Header{{Name: "x-debug", Value: "ops"}}}},
			}}},
		&model.Route{Namespace: "shop", Name: "bad-regex", Kind: model.RouteHTTP, Created: t0,
			Parents: []model.ServicePortRef{{ServiceRef: refWebV1}},
			Rules: []model.RouteRule{{
				Matches: []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Type: "RegularExpression", Value: "/(["}}},
			}}},
		&model.Route{Namespace: "shop", Name: "orphan", Kind: model.RouteHTTP, Created: t0,
			Parents: []model.ServicePortRef{{ServiceRef: refGone}},
			Rules:   []model.RouteRule{{}}},

		&model.CircuitBreakerPolicy{Namespace: "shop", Name: "api-breaker", Created: t0, TargetRef: refAPI,
			Breaker: &weftv1.CircuitBreaker{MaxRequests: 100, MaxPending: 10, PendingTimeout: durationpb.New(time.Second),
				OutlierDetection: &weftv1.OutlierDetection{ConsecutiveFailures: 3}}},
		&model.RetryBudgetPolicy{Namespace: "shop", Name: "web-budget", Created: t0, TargetRef: refWeb,
			Budget: &weftv1.RetryBudget{RetryRatio: 0.1, MinRetriesPerSecond: 5, Ttl: durationpb.New(5 * time.Second)}},
		&model.RetryBudgetPolicy{Namespace: "shop", Name: "web-budget-2", Created: t0.Add(time.Hour), TargetRef: refWeb,
			Budget: &weftv1.RetryBudget{RetryRatio: 0.5}},
		&model.CircuitBreakerPolicy{Namespace: "ops", Name: "steal", Created: t0, TargetRef: refWeb,
			Breaker: &weftv1.CircuitBreaker{MaxRequests: 1}},
	}
}

// fixture builds the fixture's snapshot the way the control plane does:
// through a Store.
func fixture(t *testing.T, mutate ...func(objs []model.Object) []model.Object) *model.Snapshot {
	t.Helper()
	objs := fixtureObjects()
	for _, m := range mutate {
		objs = m(objs)
	}
	s := model.NewStore()
	if err := s.Replace("fixture", objs); err != nil {
		t.Fatal(err)
	}
	return s.Snapshot()
}

// reversed applies the objects one by one, last first: the snapshot must
// translate the same.
func reversed(t *testing.T) *model.Snapshot {
	t.Helper()
	s := model.NewStore()
	objs := fixtureObjects()
	for _, o := range slices.Backward(objs) {
		if err := s.Apply("fixture", model.Change{Upsert: o}); err != nil {
			t.Fatal(err)
		}
		s.Snapshot()
	}
	return s.Snapshot()
}

// onlyTerminating replaces web's endpoints with terminating ones.
func onlyTerminating(objs []model.Object) []model.Object {
	for i, o := range objs {
		if set, ok := o.(*model.EndpointSet); ok && set.Service == refWeb {
			objs[i] = &model.EndpointSet{Service: refWeb, Endpoints: []model.Endpoint{
				ep("10.1.0.3:8080", id("shop", "web"), func(e *model.Endpoint) { e.Terminating = true }),
				ep("10.1.0.5:8080", id("shop", "web"), func(e *model.Endpoint) { e.Terminating = true }),
				ep("10.1.0.6:8080", id("shop", "web"), func(e *model.Endpoint) { e.Terminating, e.Ready = true, false }),
			}}
		}
	}
	return objs
}

func workload(snap *model.Snapshot, name string) *model.Workload {
	return snap.Workloads[model.ObjectRef{Namespace: "shop", Name: name}]
}

func watch(refs ...model.ServiceRef) []model.ServicePortRef {
	var out []model.ServicePortRef
	for _, r := range refs {
		out = append(out, model.ServicePortRef{ServiceRef: r})
	}
	return out
}
