package file

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/translate"
)

var (
	refWeb     = model.ServiceRef{Namespace: "shop", Name: "web"}
	refCanary  = model.ServiceRef{Namespace: "shop", Name: "web-canary"}
	refCatalog = model.ServiceRef{Namespace: "shop", Name: "catalog"}
	created    = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
)

func webID() string { return "spiffe://weft.local/ns/shop/sa/web" }

func portRef(svc model.ServiceRef, port uint16) model.ServicePortRef {
	return model.ServicePortRef{ServiceRef: svc, Port: port}
}

// fixtureWant is the model of testdata/mesh, in Load's order (kind,
// namespace, name).
func fixtureWant() []model.Object {
	return []model.Object{
		&model.AuthorizationPolicy{Namespace: "shop", Name: "no-plaintext-metrics", Created: t0,
			TargetRefs: []model.PolicyTargetRef{{Kind: model.TargetWorkload, Name: "web-2"}}, Action: model.AuthorizationDeny, DryRun: true,
			Rules: []model.AuthorizationRule{{From: &weftv1.AuthorizationSource{Authentication: "unauthenticated"}, Ports: []uint16{9102}}}},
		&model.AuthorizationPolicy{Namespace: "shop", Name: "web-readers", Created: t0,
			TargetRefs: []model.PolicyTargetRef{{Kind: model.TargetService, Name: "web", SectionName: "http"}}, Action: model.AuthorizationAllow,
			Rules: []model.AuthorizationRule{
				{Name: "frontend", From: &weftv1.AuthorizationSource{Identities: []string{"spiffe://weft.local/ns/shop/sa/frontend"}},
					To: &weftv1.AuthorizationTarget{Methods: []string{"GET", "HEAD"}, Paths: []*weftv1.PathMatch{{Type: "PathPrefix", Value: "/api"}}}},
				{From: &weftv1.AuthorizationSource{Namespaces: []string{"ops"}, Authentication: "authenticated"}, Ports: []uint16{8080, 8081},
					To: &weftv1.AuthorizationTarget{
						Headers: []*weftv1.ValueMatch{{Type: "Exact", Name: "x-debug", Value: "1"}},
						Grpc:    []*weftv1.GRPCMethodMatch{{Type: "RegularExpression", Service: `shop\.Catalog`, Method: "Get.*"}},
					}},
			}},
		&model.CircuitBreakerPolicy{Namespace: "shop", Name: "catalog-breaker", Created: t0, TargetRef: refCatalog,
			Breaker: &weftv1.CircuitBreaker{MaxRequests: 100, MaxPending: 10, PendingTimeout: durationpb.New(time.Second),
				OutlierDetection: &weftv1.OutlierDetection{ConsecutiveFailures: 3, BaseEjectionTime: durationpb.New(30 * time.Second)}}},
		&model.EndpointSet{Service: refCatalog, Endpoints: []model.Endpoint{
			{Service: refCatalog, Address: netip.MustParseAddrPort("10.2.0.1:9090"), PortName: "grpc", Ready: true, Workload: "catalog-1"},
		}},
		&model.EndpointSet{Service: refWeb, Endpoints: []model.Endpoint{
			{Service: refWeb, Address: netip.MustParseAddrPort("10.1.0.1:8080"), PortName: "http", Identity: webID(), Ready: true, Workload: "web-1"},
			{Service: refWeb, Address: netip.MustParseAddrPort("10.1.0.2:8081"), PortName: "http", Identity: webID(), Ready: true, Workload: "web-2",
				ProxyAddress: netip.MustParseAddrPort("10.1.0.2:4143")},
		}},
		&model.EndpointSet{Service: refCanary, Endpoints: []model.Endpoint{
			{Service: refCanary, Address: netip.MustParseAddrPort("10.1.0.2:8081"), PortName: "http", Identity: webID(), Ready: true, Workload: "web-2",
				ProxyAddress: netip.MustParseAddrPort("10.1.0.2:4143")},
		}},
		&model.Route{Namespace: "shop", Name: "catalog", Kind: model.RouteGRPC, Created: t0,
			Parents: []model.ServicePortRef{portRef(refCatalog, 0)},
			Rules: []model.RouteRule{{
				Matches:  []*weftv1.RouteMatch{{Grpc: &weftv1.GRPCMethodMatch{Type: "Exact", Service: "shop.Catalog", Method: "Get"}}},
				Backends: []model.BackendRef{{ServicePortRef: portRef(refCatalog, 9090), Weight: 1}},
			}}},
		&model.Route{Namespace: "shop", Name: "web-canary", Kind: model.RouteHTTP, Created: created,
			Parents: []model.ServicePortRef{portRef(refWeb, 80)},
			Rules: []model.RouteRule{
				{
					Matches: []*weftv1.RouteMatch{{
						Path:    &weftv1.PathMatch{Type: "PathPrefix", Value: "/api"},
						Headers: []*weftv1.ValueMatch{{Type: "Exact", Name: "x-beta", Value: "1"}},
					}},
					Filters:  &weftv1.RouteFilters{Rewrite: &weftv1.Rewrite{Path: &weftv1.PathModifier{Type: "ReplacePrefixMatch", Value: "/"}}},
					Mirrors:  []model.MirrorRef{{ServicePortRef: portRef(refCanary, 80), Percent: 5}},
					Backends: []model.BackendRef{{ServicePortRef: portRef(refCanary, 80), Weight: 1}},
					Timeouts: &weftv1.RouteTimeouts{Request: durationpb.New(3 * time.Second), BackendRequest: durationpb.New(500 * time.Millisecond)},
				},
				{
					Filters: &weftv1.RouteFilters{ResponseHeaders: &weftv1.HeaderModifier{Remove: []string{"server"}}},
					Backends: []model.BackendRef{
						{ServicePortRef: portRef(refWeb, 80), Weight: 90},
						{ServicePortRef: portRef(refCanary, 80), Weight: 10,
							RequestHeaders: &weftv1.HeaderModifier{Set: []*weftv1.Header{{Name: "x-canary", Value: "true"}}}},
					},
				},
			}},
		&model.MutualTLSPolicy{Namespace: "weft-system", Name: "strict", Created: created, Mode: model.MTLSStrict,
			Ports: []model.PortMTLS{{Port: 9102, Mode: model.MTLSPermissive}}},
		&model.Namespace{Name: "shop", DefaultInboundPolicy: model.DefaultInboundAllowSameNamespace},
		&model.RetryBudgetPolicy{Namespace: "shop", Name: "web-budget", Created: created, TargetRef: refWeb,
			Budget: &weftv1.RetryBudget{RetryRatio: 0.1, MinRetriesPerSecond: 5, Ttl: durationpb.New(5 * time.Second)}},
		&model.Service{Namespace: "shop", Name: "catalog", Selector: map[string]string{"app": "catalog"},
			Ports: []model.ServicePort{{Name: "grpc", Port: 9090, AppProtocol: "grpc"}}},
		&model.Service{Namespace: "shop", Name: "web", Labels: map[string]string{"app": "web"}, Selector: map[string]string{"app": "web"},
			Ports: []model.ServicePort{{Name: "http", Port: 80, AppProtocol: "http"}},
			VIPs:  []netip.Addr{netip.MustParseAddr("10.96.0.10")}},
		&model.Service{Namespace: "shop", Name: "web-canary", Selector: map[string]string{"app": "web", "track": "canary"},
			Ports: []model.ServicePort{{Name: "http", Port: 80, TargetPort: 8081, AppProtocol: "http"}}},
		&model.Workload{Namespace: "shop", Name: "catalog-1", ServiceAccount: "default", Labels: map[string]string{"app": "catalog"},
			Address: netip.MustParseAddr("10.2.0.1"), Ports: []model.WorkloadPort{{Name: "grpc", Port: 9090, Protocol: "grpc"}}},
		&model.Workload{Namespace: "shop", Name: "web-1", ServiceAccount: "web", Labels: map[string]string{"app": "web"},
			DefaultInboundPolicy: model.DefaultInboundAllowAuthenticated, Address: netip.MustParseAddr("10.1.0.1"), Meshed: true, Ports: []model.WorkloadPort{{Name: "http", Port: 8080, Protocol: "http1"}}},
		&model.Workload{Namespace: "shop", Name: "web-2", ServiceAccount: "web", Labels: map[string]string{"app": "web", "track": "canary"},
			Address: netip.MustParseAddr("10.1.0.2"), Meshed: true, ProxyInbound: 4143,
			Ports: []model.WorkloadPort{{Name: "http", Port: 8081}, {Name: "metrics", Port: 9102, Protocol: "opaque", Opaque: true}}},
	}
}

func TestLoadFixture(t *testing.T) {
	dir := copyTree(t, "mesh")
	// What the directory may also hold, and must be skipped.
	writeFile(t, filepath.Join(dir, ".services.yaml.swp"), "this: is: not yaml: [\n")
	writeFile(t, filepath.Join(dir, "services.yaml~"), "apiVersion: v1\nkind: Service\nmetadata: {name: backup, namespace: shop}\n")
	writeFile(t, filepath.Join(dir, "README.txt"), "notes\n")
	writeFile(t, filepath.Join(dir, ".git", "config.yaml"), "kind: nonsense\n")

	objs, problems, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("problem: %s", p)
	}
	if want, got := dump(t, fixtureWant()), dump(t, objs); want != got {
		t.Errorf("objects differ: %s", diff(want, got))
	}

	// The model is whole: the store takes it, and the translation finds
	// nothing to report.
	st := model.NewStore()
	if err := st.Replace("file:test", objs); err != nil {
		t.Fatal(err)
	}
	for _, p := range translate.Check(st.Snapshot()) {
		t.Errorf("translate: %s", p)
	}
}

func TestLoadMissingDirectory(t *testing.T) {
	if _, _, err := Load(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("Load of a missing directory: no error")
	}
	f := filepath.Join(t.TempDir(), "file.yaml")
	writeFile(t, f, "")
	if _, _, err := Load(f); err == nil {
		t.Fatal("Load of a file: no error")
	}
}

// TestLoadProblems adds one file to the fixture mesh per case and checks
// the problem it causes and whether its object is served.
func TestLoadProblems(t *testing.T) {
	const svcHeader = "apiVersion: v1\nkind: Service\nmetadata:\n  name: extra\n  namespace: shop\n"
	const routeHeader = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: extra\n  namespace: shop\nspec:\n"
	cases := []struct {
		name    string
		file    string // relative to the mesh
		content string
		want    Problem // File relative; Message: a substring
		// served: the key of an object the file describes, and whether
		// it must be served despite the problem.
		key    model.Key
		served bool
	}{
		{
			name:    "unknown kind",
			file:    "zz/deploy.yaml",
			content: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
			want:    Problem{File: "zz/deploy.yaml", Line: 2, Field: "kind", Message: "kind Deployment (apps/v1) is not one weft reads"},
		},
		{
			name:    "known kind, wrong apiVersion",
			file:    "route.yaml",
			content: "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: HTTPRoute\nmetadata:\n  name: extra\n",
			want:    Problem{File: "route.yaml", Line: 1, Field: "apiVersion", Message: "use apiVersion: gateway.networking.k8s.io/v1"},
		},
		{
			name:    "unknown field, with a suggestion",
			file:    "extra.yaml",
			content: svcHeader + "spec:\n  ports:\n    - name: http\n      portt: 80\n",
			want:    Problem{File: "extra.yaml", Line: 9, Field: "spec.ports[0].portt", Message: `unknown field "portt" (did you mean "port"?); the document is ignored`},
			key:     model.Key{Kind: model.KindService, Namespace: "shop", Name: "extra"},
		},
		{
			name:    "unknown top-level field",
			file:    "extra.yaml",
			content: svcHeader + "specs: {}\n",
			want:    Problem{File: "extra.yaml", Line: 6, Field: "specs", Message: `unknown field "specs" (did you mean "spec"?)`},
			key:     model.Key{Kind: model.KindService, Namespace: "shop", Name: "extra"},
		},
		{
			name:    "bad port type",
			file:    "extra.yaml",
			content: svcHeader + "spec:\n  ports:\n    - name: http\n      port: http\n",
			want:    Problem{File: "extra.yaml", Line: 9, Field: "spec.ports[0].port", Message: `want an integer, got the string "http"`},
			key:     model.Key{Kind: model.KindService, Namespace: "shop", Name: "extra"},
		},
		{
			name:    "port out of range",
			file:    "extra.yaml",
			content: svcHeader + "spec:\n  ports:\n    - name: http\n      port: 70000\n",
			want:    Problem{File: "extra.yaml", Line: 9, Field: "spec.ports[0].port", Message: "70000 is not a TCP port"},
			key:     model.Key{Kind: model.KindService, Namespace: "shop", Name: "extra"},
		},
		{
			name:    "label value of the wrong type",
			file:    "extra.yaml",
			content: svcHeader + "  labels:\n    version: 2\n",
			want:    Problem{File: "extra.yaml", Line: 7, Field: "metadata.labels.version", Message: `want a string, got the number 2; quote it ("2")`},
			key:     model.Key{Kind: model.KindService, Namespace: "shop", Name: "extra"},
		},
		{
			name:    "invalid YAML",
			file:    "extra.yaml",
			content: svcHeader + "spec:\n  ports: [\n",
			want:    Problem{File: "extra.yaml", Line: 7, Message: "invalid YAML"},
		},
		{
			name:    "workload address",
			file:    "w.yaml",
			content: "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: w, namespace: shop}\nspec:\n  address: 10.0.0.300\n",
			want:    Problem{File: "w.yaml", Line: 5, Field: "spec.address", Message: `"10.0.0.300" is not an IP address`},
			key:     model.Key{Kind: model.KindWorkload, Namespace: "shop", Name: "w"},
		},
		{
			name:    "workload protocol",
			file:    "w.yaml",
			content: "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: w, namespace: shop}\nspec:\n  address: 10.0.0.3\n  ports:\n  - {port: 80, protocol: http3}\n",
			want:    Problem{File: "w.yaml", Line: 7, Field: "spec.ports[0].protocol", Message: `unknown protocol "http3"`},
			key:     model.Key{Kind: model.KindWorkload, Namespace: "shop", Name: "w"},
		},
		{
			name:    "parentRef to an unknown service",
			file:    "route.yaml",
			content: routeHeader + "  parentRefs:\n  - {group: \"\", kind: Service, name: nope}\n",
			want:    Problem{File: "route.yaml", Line: 8, Field: "spec.parentRefs[0]", Message: "service shop/nope does not exist; the route does not attach there"},
			key:     model.Key{Kind: model.KindHTTPRoute, Namespace: "shop", Name: "extra"},
			served:  true,
		},
		{
			name: "backendRef to an unknown service",
			file: "route.yaml",
			content: routeHeader + "  parentRefs:\n  - {group: \"\", kind: Service, name: web}\n  rules:\n  - backendRefs:\n" +
				"    - {name: web, port: 80}\n    - name: nope\n      port: 80\n",
			want:   Problem{File: "route.yaml", Line: 12, Field: "spec.rules[0].backendRefs[1]", Message: "service shop/nope does not exist; the backend gets weight 0"},
			key:    model.Key{Kind: model.KindHTTPRoute, Namespace: "shop", Name: "extra"},
			served: true,
		},
		{
			name:    "backendRef to a missing port",
			file:    "route.yaml",
			content: routeHeader + "  rules:\n  - backendRefs:\n    - {name: web, port: 81}\n",
			want:    Problem{File: "route.yaml", Line: 9, Field: "spec.rules[0].backendRefs[0]", Message: "service shop/web has no port 81 (it has 80)"},
			key:     model.Key{Kind: model.KindHTTPRoute, Namespace: "shop", Name: "extra"},
			served:  true,
		},
		{
			name:    "parent of another kind",
			file:    "route.yaml",
			content: routeHeader + "  parentRefs:\n  - name: my-gateway\n",
			want:    Problem{File: "route.yaml", Line: 8, Field: "spec.parentRefs[0]", Message: "not to Gateway of group gateway.networking.k8s.io; this parent is ignored"},
			key:     model.Key{Kind: model.KindHTTPRoute, Namespace: "shop", Name: "extra"},
			served:  true,
		},
		{
			name:    "unsupported filter",
			file:    "route.yaml",
			content: routeHeader + "  rules:\n  - filters:\n    - type: CORS\n      cors: {maxAge: 5}\n",
			want:    Problem{File: "route.yaml", Line: 9, Field: "spec.rules[0].filters[0].type", Message: `filter type "CORS" is not supported by weft`},
			key:     model.Key{Kind: model.KindHTTPRoute, Namespace: "shop", Name: "extra"},
		},
		{
			name:    "filter without its field",
			file:    "route.yaml",
			content: routeHeader + "  rules:\n  - filters:\n    - type: RequestHeaderModifier\n",
			want:    Problem{File: "route.yaml", Line: 9, Field: "spec.rules[0].filters[0].requestHeaderModifier", Message: "needs requestHeaderModifier"},
			key:     model.Key{Kind: model.KindHTTPRoute, Namespace: "shop", Name: "extra"},
		},
		{
			name:    "bad duration",
			file:    "route.yaml",
			content: routeHeader + "  rules:\n  - timeouts:\n      request: 3 seconds\n",
			want:    Problem{File: "route.yaml", Line: 9, Field: "spec.rules[0].timeouts.request", Message: `"3 seconds" is not a duration`},
			key:     model.Key{Kind: model.KindHTTPRoute, Namespace: "shop", Name: "extra"},
		},
		{
			name:    "policy targeting an unknown service",
			file:    "p.yaml",
			content: "apiVersion: policy.weft.dev/v1alpha1\nkind: RetryBudget\nmetadata: {name: p, namespace: shop}\nspec:\n  targetRef: {group: \"\", kind: Service, name: nope}\n",
			want:    Problem{File: "p.yaml", Line: 5, Field: "spec.targetRef", Message: "service shop/nope does not exist; the policy applies to nothing"},
			key:     model.Key{Kind: model.KindRetryBudget, Namespace: "shop", Name: "p"},
			served:  true,
		},
		{
			name:    "policy field of the wrong type",
			file:    "p.yaml",
			content: "apiVersion: policy.weft.dev/v1alpha1\nkind: CircuitBreaker\nmetadata: {name: p, namespace: shop}\nspec:\n  targetRef: {group: \"\", kind: Service, name: web}\n  maxRequests: -1\n",
			want:    Problem{File: "p.yaml", Line: 6, Field: "spec.maxRequests", Message: "-1 is out of range"},
			key:     model.Key{Kind: model.KindCircuitBreaker, Namespace: "shop", Name: "p"},
		},
		{
			name:    "named target port a workload lacks",
			file:    "w.yaml",
			content: "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: web-3, namespace: shop, labels: {app: web}}\nspec:\n  address: 10.1.0.3\n",
			want:    Problem{File: "services.yaml", Line: 16, Field: "spec.ports[0].targetPort", Message: `workload shop/web-3 has no port named "http"; it is not an endpoint of port 80`},
			key:     model.Key{Kind: model.KindWorkload, Namespace: "shop", Name: "web-3"},
			served:  true,
		},
		{
			name:    "duplicate: the first path wins",
			file:    "zz.yaml",
			content: "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec:\n  ports: [{name: http, port: 8080}]\n",
			want:    Problem{File: "zz.yaml", Line: 1, Field: "metadata.name", Message: "Service shop/web is also defined at "},
		},
		{
			name:    "a bad document leaves the others of its file",
			file:    "multi.yaml",
			content: "apiVersion: v1\nkind: Service\nmetadata: {name: good, namespace: shop}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: shop}\nspec: {type: ExternalName}\n",
			want:    Problem{File: "multi.yaml", Line: 8, Field: "spec.type", Message: "ExternalName services are not supported"},
			key:     model.Key{Kind: model.KindService, Namespace: "shop", Name: "good"},
			served:  true,
		},
		{
			name:    "a document that is not a mapping",
			file:    "list.yaml",
			content: "- a\n- b\n",
			want:    Problem{File: "list.yaml", Line: 1, Message: "a resource must be a mapping"},
		},
		{
			name:    "duplicate field",
			file:    "extra.yaml",
			content: svcHeader + "  name: again\n",
			want:    Problem{File: "extra.yaml", Line: 6, Field: "metadata.name", Message: `field "name" is set twice`},
			key:     model.Key{Kind: model.KindService, Namespace: "shop", Name: "extra"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyTree(t, "mesh")
			writeFile(t, filepath.Join(dir, tc.file), tc.content)
			objs, problems, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range relProblems(dir, problems) {
				if p.File == tc.want.File && p.Line == tc.want.Line && p.Field == tc.want.Field && strings.Contains(p.Message, tc.want.Message) {
					found = true
				}
			}
			if !found {
				t.Errorf("want a problem like %s; got:", tc.want)
				for _, p := range relProblems(dir, problems) {
					t.Errorf("  %s", p)
				}
			}
			if tc.key != (model.Key{}) {
				served := false
				for _, o := range objs {
					served = served || o.Key() == tc.key
				}
				if served != tc.served {
					t.Errorf("%s served: %v, want %v", tc.key, served, tc.served)
				}
			}
			// Whatever the problem, the rest of the mesh is served and
			// the store takes it.
			if err := model.NewStore().Replace("file:test", objs); err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				if o.Key() == (model.Key{Kind: model.KindService, Namespace: "shop", Name: "web"}) {
					return
				}
			}
			t.Error("service shop/web is not served")
		})
	}
}

func TestBackendToUnknownServiceKeepsItsWeight(t *testing.T) {
	dir := copyTree(t, "mesh")
	writeFile(t, filepath.Join(dir, "route.yaml"), "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: shop}\n"+
		"spec:\n  parentRefs: [{group: \"\", kind: Service, name: web}]\n  rules:\n  - backendRefs: [{name: web, port: 80, weight: 3}, {name: nope, port: 80, weight: 7}]\n")
	objs, _, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := model.NewStore()
	if err := st.Replace("file:test", objs); err != nil {
		t.Fatal(err)
	}
	r := st.Snapshot().Routes[model.RouteRef{Kind: model.RouteHTTP, Namespace: "shop", Name: "r"}]
	if r == nil || len(r.Rules) != 1 || len(r.Rules[0].Backends) != 2 || r.Rules[0].Backends[1].Weight != 7 {
		t.Fatalf("route: %+v", r)
	}
	// The translation sends the unknown backend nothing.
	res, err := translate.Config(st.Snapshot(), translate.Proxy{Watched: []model.ServicePortRef{portRef(refWeb, 80)}, TLS: &weftv1.TLS{CertFile: "c", KeyFile: "k", TrustBundleFile: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Config.GetServices() {
		for _, rr := range s.GetRoutes() {
			if rr.GetRoute() == "shop/r" && rr.GetBackends()[1].GetWeight() != 0 {
				t.Errorf("unknown backend has weight %d in the proxy config", rr.GetBackends()[1].GetWeight())
			}
		}
	}
}

func TestCreatedFromModificationTime(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.yaml")
	writeFile(t, path, "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: r}\nspec: {}\n")
	later := t0.Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	objs, problems, err := Load(dir)
	if err != nil || len(problems) != 0 || len(objs) != 1 {
		t.Fatalf("Load: %v, %v, %v", objs, problems, err)
	}
	r := objs[0].(*model.Route)
	if !r.Created.Equal(later) || r.Namespace != "default" {
		t.Errorf("route %s/%s created %v, want namespace default, created %v", r.Namespace, r.Name, r.Created, later)
	}
}

func TestUnnamedPortNamedTarget(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), `apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports: [{port: 80, targetPort: web}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: api-1, labels: {app: api}}
spec: {address: "fd00::1", ports: [{name: web, port: 8080}]}
`)
	objs, problems, err := Load(dir)
	if err != nil || len(problems) != 0 {
		t.Fatalf("Load: %v, %v", problems, err)
	}
	st := model.NewStore()
	if err := st.Replace("file:test", objs); err != nil {
		t.Fatal(err)
	}
	snap := st.Snapshot()
	ref := model.ServiceRef{Namespace: "default", Name: "api"}
	if got := snap.Services[ref].Ports[0].Target(); got != 8080 {
		t.Errorf("target port %d, want 8080", got)
	}
	eps := snap.Endpoints[ref]
	if len(eps) != 1 || eps[0].Address != netip.MustParseAddrPort("[fd00::1]:8080") || eps[0].Identity != "spiffe://weft.local/ns/default/sa/default" {
		t.Errorf("endpoints %+v", eps)
	}
}
