package translate

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/proxy/config"
)

func mustConfig(t *testing.T, snap *model.Snapshot, p Proxy) Result {
	t.Helper()
	res, err := Config(snap, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Compile(res.Config); err != nil {
		t.Fatalf("the proxy rejects the config:\n%v", err)
	}
	return res
}

func encode(t *testing.T, cfg *weftv1.ProxyConfig) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDeterminism: translating twice, or a store filled in another order,
// gives byte-identical configs, versions and problems.
func TestDeterminism(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			snapA := fixture(t)
			snapB := reversed(t)
			if tc.snap != nil {
				snapA, snapB = tc.snap(t), tc.snap(t)
			}
			a := mustConfig(t, snapA, tc.proxy(snapA))
			again := mustConfig(t, snapA, tc.proxy(snapA))
			b := mustConfig(t, snapB, tc.proxy(snapB))
			for _, other := range []Result{again, b} {
				if string(encode(t, a.Config)) != string(encode(t, other.Config)) {
					t.Error("configs differ")
				}
				if a.Config.GetVersion() != other.Config.GetVersion() {
					t.Errorf("versions differ: %s, %s", a.Config.GetVersion(), other.Config.GetVersion())
				}
				if !slices.Equal(a.Problems, other.Problems) {
					t.Errorf("problems differ:\n%v\n%v", a.Problems, other.Problems)
				}
			}
		})
	}
}

// TestConcurrentUse translates one snapshot from many goroutines (go test
// -race): a snapshot is shared by every proxy's translation.
func TestConcurrentUse(t *testing.T) {
	snap := fixture(t)
	cases := goldenCases()
	want := make([]string, len(cases))
	for i, tc := range cases {
		if tc.snap == nil {
			want[i] = mustConfig(t, snap, tc.proxy(snap)).Config.GetVersion()
		}
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i, tc := range cases {
				if tc.snap != nil {
					continue
				}
				res, err := Config(snap, tc.proxy(snap))
				if err != nil {
					t.Error(err)
					return
				}
				if res.Config.GetVersion() != want[i] {
					t.Errorf("%s: version %s, want %s", tc.name, res.Config.GetVersion(), want[i])
				}
			}
		})
	}
	wg.Wait()
}

// TestVersion: the version follows what the proxy sees, and only that.
func TestVersion(t *testing.T) {
	client := Proxy{Identity: id("shop", "frontend"), Watched: watch(refWeb), TLS: testTLS()}
	base := mustConfig(t, fixture(t), client).Config.GetVersion()
	tests := []struct {
		name    string
		mutate  func([]model.Object) []model.Object
		changed bool
	}{
		{"nothing", func(o []model.Object) []model.Object { return o }, false},
		{"an unwatched service changes", func(o []model.Object) []model.Object {
			return append(o, &model.EndpointSet{Service: refDB, Endpoints: []model.Endpoint{ep("10.3.0.9:5432", "")}})
		}, false},
		{"an endpoint of a backend changes", func(o []model.Object) []model.Object {
			return append(o, &model.EndpointSet{Service: refWebV2, Endpoints: []model.Endpoint{ep("10.1.2.9:8080", id("shop", "web"))}})
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := tt.mutate(fixtureObjects())
			s := model.NewStore()
			for _, o := range objs { // later objects of a key replace earlier ones
				if err := s.Apply("fixture", model.Change{Upsert: o}); err != nil {
					t.Fatal(err)
				}
			}
			v := mustConfig(t, s.Snapshot(), client).Config.GetVersion()
			if (v != base) != tt.changed {
				t.Errorf("version %s, base %s; want changed=%v", v, base, tt.changed)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	snap := fixture(t)
	tests := []struct {
		name string
		snap *model.Snapshot
		p    Proxy
		want string
	}{
		{"no snapshot", nil, Proxy{}, "no snapshot"},
		{"unknown mode", snap, Proxy{Mode: "tproxy"}, `unknown mode "tproxy"`},
		{"malformed identity", snap, Proxy{Identity: "web"}, `proxy identity "web"`},
		{"inbound without certificate", snap, Proxy{Workload: workload(snap, "web-0")}, "inbound listener needs the proxy's certificate"},
		{"meshed endpoints without certificate", snap, Proxy{Watched: watch(refWeb)}, "meshed endpoints"},
		{"explicit with nothing to listen on", snap, Proxy{Mode: ModeExplicit, TLS: testTLS()}, "nothing to listen on"},
		{"inbound on the admin port", snap, Proxy{Workload: &model.Workload{Namespace: "ns", Name: "w", ProxyInbound: AdminPort}, TLS: testTLS()},
			"proxy inbound port 4191 is taken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Config(tt.snap, tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Config = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// Plaintext-only destinations need no certificate.
	mustConfig(t, snap, Proxy{Watched: watch(refDB)})
}

func TestProtocol(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http", "http1"}, {"HTTP", "http1"}, {"http2", "http2"}, {"kubernetes.io/h2c", "http2"},
		{"grpc", "grpc"}, {"tcp", "opaque"}, {"opaque", "opaque"},
		{"", ""}, {"https", ""}, {"kubernetes.io/ws", ""}, {"mysql", ""},
	}
	for _, tt := range tests {
		if got := protocol(tt.in); got != tt.want {
			t.Errorf("protocol(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestEndpoints covers endpoint selection for one service port.
func TestEndpoints(t *testing.T) {
	ready := func(e *model.Endpoint) {}
	terminating := func(e *model.Endpoint) { e.Terminating = true }
	notReady := func(e *model.Endpoint) { e.Ready = false }
	tests := []struct {
		name      string
		port      model.ServicePort
		endpoints []model.Endpoint
		want      []string
		problems  int
	}{
		{"ready only, sorted, deduplicated", model.ServicePort{Port: 80, TargetPort: 8080}, []model.Endpoint{
			ep("10.0.0.2:8080", "", ready), ep("10.0.0.1:8080", "", ready), ep("10.0.0.1:8080", "", ready), ep("10.0.0.3:8080", "", notReady), ep("10.0.0.4:8080", "", terminating),
		}, []string{"10.0.0.1:8080", "10.0.0.2:8080"}, 0},
		{"terminating ones when none is ready", model.ServicePort{Port: 80, TargetPort: 8080}, []model.Endpoint{
			ep("10.0.0.3:8080", "", notReady), ep("10.0.0.4:8080", "", terminating),
		}, []string{"10.0.0.4:8080"}, 0},
		{"none serving", model.ServicePort{Port: 80, TargetPort: 8080}, []model.Endpoint{
			ep("10.0.0.3:8080", "", notReady), ep("10.0.0.4:8080", "", terminating, notReady),
		}, nil, 0},
		{"by target port", model.ServicePort{Port: 80, TargetPort: 8080}, []model.Endpoint{
			ep("10.0.0.1:8080", ""), ep("10.0.0.1:9090", ""),
		}, []string{"10.0.0.1:8080"}, 0},
		{"target port defaults to port", model.ServicePort{Port: 80}, []model.Endpoint{
			ep("10.0.0.1:80", ""), ep("10.0.0.1:8080", ""),
		}, []string{"10.0.0.1:80"}, 0},
		{"by port name (named target ports)", model.ServicePort{Name: "http", Port: 80, TargetPort: 8080}, []model.Endpoint{
			ep("10.0.0.1:8081", "", func(e *model.Endpoint) { e.PortName = "http" }),
			ep("10.0.0.2:8080", "", func(e *model.Endpoint) { e.PortName = "admin" }),
		}, []string{"10.0.0.1:8081"}, 0},
		{"malformed identity left out", model.ServicePort{Port: 80}, []model.Endpoint{
			ep("10.0.0.1:80", "web"), ep("10.0.0.2:80", ""),
		}, []string{"10.0.0.2:80"}, 1},
		{"proxy address without identity dropped", model.ServicePort{Port: 80}, []model.Endpoint{
			ep("10.0.0.1:80", "", func(e *model.Endpoint) { e.ProxyAddress = netip.MustParseAddrPort("10.0.0.1:4143") }),
		}, []string{"10.0.0.1:80"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &model.Service{Namespace: "ns", Name: "s", Ports: []model.ServicePort{tt.port}}
			snap := &model.Snapshot{
				Services:  map[model.ServiceRef]*model.Service{svc.Ref(): svc},
				Endpoints: map[model.ServiceRef][]model.Endpoint{svc.Ref(): tt.endpoints},
			}
			res := mustConfig(t, snap, Proxy{Watched: watch(svc.Ref()), TLS: testTLS()})
			var got []string
			for _, e := range res.Config.GetServices()[0].GetEndpoints() {
				got = append(got, e.GetAddress())
				if e.GetProxyAddress() != "" && e.GetIdentity() == "" {
					t.Errorf("endpoint %s has a proxy address and no identity", e.GetAddress())
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("endpoints %v, want %v", got, tt.want)
			}
			if len(res.Problems) != tt.problems {
				t.Errorf("problems %v, want %d", res.Problems, tt.problems)
			}
		})
	}
}

// TestRouteScope covers which routes a client gets (GEP-1294).
func TestRouteScope(t *testing.T) {
	svc := &model.Service{Namespace: "prod", Name: "s", Ports: []model.ServicePort{{Port: 80}, {Port: 81}}}
	route := func(ns, name string, port uint16) *model.Route {
		return &model.Route{Namespace: ns, Name: name, Kind: model.RouteHTTP,
			Parents: []model.ServicePortRef{{ServiceRef: svc.Ref(), Port: port}}, Rules: []model.RouteRule{{}}}
	}
	s := model.NewStore()
	for _, o := range []model.Object{svc, route("prod", "producer", 0), route("team-a", "consumer-a", 80), route("team-b", "consumer-b", 0)} {
		if err := s.Apply("t", model.Change{Upsert: o}); err != nil {
			t.Fatal(err)
		}
	}
	snap := s.Snapshot()
	tests := []struct {
		name     string
		p        Proxy
		want80   []string
		want81   []string
		problems int
	}{
		{"producer namespace", Proxy{Identity: id("prod", "x")}, []string{"prod/producer"}, []string{"prod/producer"}, 0},
		{"unrelated namespace", Proxy{Identity: id("other", "x")}, []string{"prod/producer"}, []string{"prod/producer"}, 0},
		{"no namespace known", Proxy{}, []string{"prod/producer"}, []string{"prod/producer"}, 0},
		{"consumer routes replace the producer's, per port", Proxy{Identity: id("team-a", "x")}, []string{"team-a/consumer-a"}, []string{"prod/producer"}, 0},
		{"the workload's namespace wins", Proxy{Identity: id("other", "x"), Workload: &model.Workload{Namespace: "team-b", Name: "w"}},
			[]string{"team-b/consumer-b"}, []string{"team-b/consumer-b"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p
			p.Watched, p.TLS = watch(svc.Ref()), testTLS()
			res := mustConfig(t, snap, p)
			routes := func(name string) []string {
				var out []string
				for _, r := range service(res.Config, name).GetRoutes() {
					out = append(out, r.GetRoute())
				}
				return out
			}
			if got := routes("s.prod:80"); !slices.Equal(got, tt.want80) {
				t.Errorf("port 80 routes %v, want %v", got, tt.want80)
			}
			if got := routes("s.prod:81"); !slices.Equal(got, tt.want81) {
				t.Errorf("port 81 routes %v, want %v", got, tt.want81)
			}
		})
	}
}

// TestBackendRefs covers backends that resolve, and ones that do not.
func TestBackendRefs(t *testing.T) {
	one := &model.Service{Namespace: "ns", Name: "one", Ports: []model.ServicePort{{Port: 80}}}
	two := &model.Service{Namespace: "ns", Name: "two", Ports: []model.ServicePort{{Port: 80}, {Port: 81}}}
	parent := &model.Service{Namespace: "ns", Name: "parent", Ports: []model.ServicePort{{Port: 80}}}
	tests := []struct {
		name    string
		ref     model.ServicePortRef
		service string
		weight  uint32
		problem string
	}{
		{"port named", model.ServicePortRef{ServiceRef: two.Ref(), Port: 81}, "two.ns:81", 7, ""},
		{"only port implied", model.ServicePortRef{ServiceRef: one.Ref()}, "one.ns:80", 7, ""},
		{"port missing on a multi-port service", model.ServicePortRef{ServiceRef: two.Ref()}, "parent.ns:80", 0, "has 2 ports; name one"},
		{"unknown port", model.ServicePortRef{ServiceRef: one.Ref(), Port: 99}, "parent.ns:80", 0, "has no port 99"},
		{"unknown service", model.ServicePortRef{ServiceRef: model.ServiceRef{Namespace: "ns", Name: "nope"}, Port: 80}, "parent.ns:80", 0, "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &model.Route{Namespace: "ns", Name: "r", Kind: model.RouteHTTP,
				Parents: []model.ServicePortRef{{ServiceRef: parent.Ref()}},
				Rules: []model.RouteRule{{
					Backends: []model.BackendRef{{ServicePortRef: tt.ref, Weight: 7}},
					Mirrors:  []model.MirrorRef{{ServicePortRef: tt.ref}},
				}}}
			s := model.NewStore()
			if err := s.Replace("t", []model.Object{one, two, parent, r}); err != nil {
				t.Fatal(err)
			}
			res := mustConfig(t, s.Snapshot(), Proxy{Watched: watch(parent.Ref())})
			rule := service(res.Config, "parent.ns:80").GetRoutes()[0]
			be := rule.GetBackends()[0]
			if be.GetService() != tt.service || be.GetWeight() != tt.weight {
				t.Errorf("backend %s weight %d, want %s weight %d", be.GetService(), be.GetWeight(), tt.service, tt.weight)
			}
			if tt.problem == "" {
				if len(res.Problems) != 0 || len(rule.GetMirrors()) != 1 || service(res.Config, tt.service) == nil {
					t.Errorf("problems %v, mirrors %v, services %v", res.Problems, rule.GetMirrors(), serviceNames(res.Config))
				}
				return
			}
			if len(rule.GetMirrors()) != 0 {
				t.Errorf("a mirror to nothing was kept: %v", rule.GetMirrors())
			}
			var fields []string
			for _, p := range res.Problems {
				if !strings.Contains(p.Message, tt.problem) {
					t.Errorf("problem %s, want one saying %q", p, tt.problem)
				}
				fields = append(fields, p.Field)
			}
			if want := []string{"rules[0].backendRefs[0]", "rules[0].mirrors[0]"}; !slices.Equal(fields, want) {
				t.Errorf("problem fields %v, want %v", fields, want)
			}
		})
	}
}

// TestBadRouteStopsNothing: a route the proxy would reject is left out, the
// other routes of the same service stay.
func TestBadRouteStopsNothing(t *testing.T) {
	svc := &model.Service{Namespace: "ns", Name: "s", Ports: []model.ServicePort{{Port: 80}}}
	good := &model.Route{Namespace: "ns", Name: "good", Kind: model.RouteHTTP, Parents: []model.ServicePortRef{{ServiceRef: svc.Ref()}},
		Rules: []model.RouteRule{{Retry: &weftv1.RetryPolicy{Statuses: []string{"503"}}}}}
	bad := &model.Route{Namespace: "ns", Name: "bad", Kind: model.RouteHTTP, Parents: []model.ServicePortRef{{ServiceRef: svc.Ref()}},
		Rules: []model.RouteRule{{}, {Retry: &weftv1.RetryPolicy{Statuses: []string{"5xx"}}}}}
	s := model.NewStore()
	if err := s.Replace("t", []model.Object{svc, good, bad}); err != nil {
		t.Fatal(err)
	}
	res := mustConfig(t, s.Snapshot(), Proxy{Watched: watch(svc.Ref())})
	routes := service(res.Config, "s.ns:80").GetRoutes()
	if len(routes) != 1 || routes[0].GetRoute() != "ns/good" {
		t.Errorf("routes %v, want only ns/good", routes)
	}
	if len(res.Problems) != 1 || res.Problems[0].Object != "HTTPRoute ns/bad" || res.Problems[0].Field != "rules[1].retry.statuses[0]" {
		t.Errorf("problems %v, want one on HTTPRoute ns/bad rules[1].retry.statuses[0]", res.Problems)
	}
}

func TestPolicies(t *testing.T) {
	svc := &model.Service{Namespace: "ns", Name: "s", Ports: []model.ServicePort{{Port: 80}}}
	cb := func(ns, name string, hoursOld int, maxReq uint32) *model.CircuitBreakerPolicy {
		return &model.CircuitBreakerPolicy{Namespace: ns, Name: name, Created: t0.Add(-time.Duration(hoursOld) * time.Hour), TargetRef: svc.Ref(),
			Breaker: &weftv1.CircuitBreaker{MaxRequests: maxReq}}
	}
	tests := []struct {
		name     string
		policies []model.Object
		want     uint32 // max_requests applied; 0: no breaker
		problems []string
	}{
		{"none", nil, 0, nil},
		{"one", []model.Object{cb("ns", "a", 1, 10)}, 10, nil},
		{"oldest wins", []model.Object{cb("ns", "new", 1, 10), cb("ns", "old", 2, 20)}, 20,
			[]string{"CircuitBreakerPolicy ns/new: targetRef"}},
		{"same age: by name", []model.Object{cb("ns", "b", 1, 10), cb("ns", "a", 1, 20)}, 20,
			[]string{"CircuitBreakerPolicy ns/b: targetRef"}},
		{"other namespace ignored", []model.Object{cb("other", "a", 2, 10), cb("ns", "b", 1, 20)}, 20,
			[]string{"CircuitBreakerPolicy other/a: targetRef"}},
		{"an invalid one gives way", []model.Object{
			&model.CircuitBreakerPolicy{Namespace: "ns", Name: "bad", Created: t0.Add(-3 * time.Hour), TargetRef: svc.Ref(),
				Breaker: &weftv1.CircuitBreaker{MaxPending: 5}}, // pending without a limit
			cb("ns", "good", 1, 20)}, 20,
			[]string{"CircuitBreakerPolicy ns/bad: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := model.NewStore()
			if err := s.Replace("t", append([]model.Object{svc}, tt.policies...)); err != nil {
				t.Fatal(err)
			}
			res := mustConfig(t, s.Snapshot(), Proxy{Watched: watch(svc.Ref())})
			got := service(res.Config, "s.ns:80").GetCircuitBreaker()
			if (got == nil) != (tt.want == 0) || got.GetMaxRequests() != tt.want {
				t.Errorf("circuit breaker %v, want max_requests %d", got, tt.want)
			}
			if len(res.Problems) != len(tt.problems) {
				t.Fatalf("problems %v, want %v", res.Problems, tt.problems)
			}
			for i, p := range res.Problems {
				if !strings.HasPrefix(p.String(), tt.problems[i]) {
					t.Errorf("problem %s, want it to start with %q", p, tt.problems[i])
				}
			}
		})
	}
}

// TestSharedAddress: an address claimed by two services stays with the
// first, so the proxy still accepts the config.
func TestSharedAddress(t *testing.T) {
	vip := []netip.Addr{netip.MustParseAddr("10.96.0.1")}
	a := &model.Service{Namespace: "ns", Name: "a", Ports: []model.ServicePort{{Port: 80}}, VIPs: vip}
	b := &model.Service{Namespace: "ns", Name: "b", Ports: []model.ServicePort{{Port: 80}}, VIPs: vip}
	snap := &model.Snapshot{Services: map[model.ServiceRef]*model.Service{a.Ref(): a, b.Ref(): b}}
	res := mustConfig(t, snap, Proxy{Watched: watch(a.Ref(), b.Ref())})
	if got := service(res.Config, "a.ns:80").GetAddresses(); !slices.Equal(got, []string{"10.96.0.1:80"}) {
		t.Errorf("a's addresses %v", got)
	}
	if got := service(res.Config, "b.ns:80").GetAddresses(); len(got) != 0 {
		t.Errorf("b's addresses %v, want none", got)
	}
	if len(res.Problems) != 1 || res.Problems[0].Object != "Service ns/b" {
		t.Errorf("problems %v", res.Problems)
	}
}

// TestExplicitPorts covers the assignment of local ports.
func TestExplicitPorts(t *testing.T) {
	var svcs []model.Object
	var refs []model.ServiceRef
	for _, n := range []string{"a", "b", "c"} {
		s := &model.Service{Namespace: "ns", Name: n, Ports: []model.ServicePort{{Port: 80}}}
		svcs = append(svcs, s)
		refs = append(refs, s.Ref())
	}
	st := model.NewStore()
	if err := st.Replace("t", svcs); err != nil {
		t.Fatal(err)
	}
	snap := st.Snapshot()
	prev := func(pairs ...string) *weftv1.ProxyConfig {
		cfg := &weftv1.ProxyConfig{Outbound: &weftv1.Outbound{}}
		for i := 0; i < len(pairs); i += 2 {
			cfg.Outbound.Explicit = append(cfg.Outbound.Explicit, &weftv1.ExplicitListener{Service: pairs[i], Address: pairs[i+1]})
		}
		return cfg
	}
	tests := []struct {
		name     string
		p        Proxy
		want     string
		problems int
	}{
		{"sorted from the default base", Proxy{Watched: watch(refs...)},
			"map[a.ns:80:127.0.0.1:15000 b.ns:80:127.0.0.1:15001 c.ns:80:127.0.0.1:15002]", 0},
		{"from another base, skipping the admin port", Proxy{Watched: watch(refs...), ExplicitBase: 4190},
			"map[a.ns:80:127.0.0.1:4190 b.ns:80:127.0.0.1:4192 c.ns:80:127.0.0.1:4193]", 0},
		{"previous assignments kept, the new one takes the lowest free port", Proxy{Watched: watch(refs...),
			Previous: prev("c.ns:80", "127.0.0.1:15000", "a.ns:80", "127.0.0.1:15005", "gone.ns:80", "127.0.0.1:15001")},
			"map[a.ns:80:127.0.0.1:15005 b.ns:80:127.0.0.1:15001 c.ns:80:127.0.0.1:15000]", 0},
		{"a previous port now reserved is reassigned", Proxy{Watched: watch(refs[:1]...), Previous: prev("a.ns:80", "127.0.0.1:4191")},
			"map[a.ns:80:127.0.0.1:15000]", 0},
		{"out of ports", Proxy{Watched: watch(refs...), ExplicitBase: 65534},
			"map[a.ns:80:127.0.0.1:65534 b.ns:80:127.0.0.1:65535]", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p
			p.Mode = ModeExplicit
			res := mustConfig(t, snap, p)
			if got := fmt.Sprint(explicitMap(res.Config)); got != tt.want {
				t.Errorf("explicit %s, want %s", got, tt.want)
			}
			if len(res.Problems) != tt.problems {
				t.Errorf("problems %v, want %d", res.Problems, tt.problems)
			}
			ports := []int{}
			for _, l := range res.Config.GetOutbound().GetExplicit() {
				ap := netip.MustParseAddrPort(l.GetAddress())
				ports = append(ports, int(ap.Port()))
			}
			if !slices.IsSorted(ports) {
				t.Errorf("listeners not sorted by port: %v", ports)
			}
		})
	}
}

// TestCheck lists the problems of the whole fixture mesh.
func TestCheck(t *testing.T) {
	var got []string
	for _, p := range Check(fixture(t)) {
		got = append(got, p.Object+": "+p.Field)
	}
	want := []string{
		"CircuitBreakerPolicy ops/steal: targetRef",
		"HTTPRoute shop/bad-regex: rules[0].matches[0].path",
		"HTTPRoute shop/orphan: parentRefs[0]",
		"HTTPRoute shop/web-canary: rules[1].backendRefs[1]",
		"RetryBudgetPolicy shop/web-budget-2: targetRef",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Check:\n got %q\nwant %q", got, want)
	}
}

// TestDefaultsMatchTheProxy: the listener constants are the proxy's
// defaults.
func TestDefaultsMatchTheProxy(t *testing.T) {
	if !strings.HasSuffix(TransparentAddress, ":"+strconv.Itoa(int(transparentPort))) {
		t.Errorf("transparentPort %d is not TransparentAddress's %s", transparentPort, TransparentAddress)
	}
	for _, c := range []struct {
		ours   uint16
		theirs string
	}{{AdminPort, config.DefaultAdminAddress}, {DefaultInboundPort, config.DefaultInboundAddress}} {
		if !strings.HasSuffix(c.theirs, ":"+strconv.Itoa(int(c.ours))) {
			t.Errorf("port %d is not the proxy's default %s", c.ours, c.theirs)
		}
	}
}

func TestServiceName(t *testing.T) {
	if got := ServiceName(model.ServiceRef{Namespace: "shop", Name: "web"}, 80); got != "web.shop:80" {
		t.Errorf("ServiceName = %q", got)
	}
}
