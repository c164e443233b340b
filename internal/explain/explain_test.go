package explain

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/durationpb"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/translate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

// mesh builds a model of namespace shop: client-1 calls Service web
// (port 80 -> 8080, appProtocol given) backed by web-1, and Service
// shadow backed by shadow-1; extra objects are added.
func mesh(t *testing.T, appProtocol string, extra ...model.Object) *Model {
	t.Helper()
	td := spiffeid.RequireTrustDomainFromString("weft.test")
	wl := func(name, addr, sa string) *model.Workload {
		return &model.Workload{Namespace: "shop", Name: name, ServiceAccount: sa, Address: netip.MustParseAddr(addr), Meshed: true,
			Ports: []model.WorkloadPort{{Name: "http", Port: 8080}}}
	}
	svc := func(name, vip string) *model.Service {
		return &model.Service{Namespace: "shop", Name: name, VIPs: []netip.Addr{netip.MustParseAddr(vip)},
			Ports: []model.ServicePort{{Name: "http", Port: 80, TargetPort: 8080, AppProtocol: appProtocol}}}
	}
	eps := func(name, addr, workload string) *model.EndpointSet {
		return &model.EndpointSet{Service: model.ServiceRef{Namespace: "shop", Name: name}, Endpoints: []model.Endpoint{{
			Address: netip.MustParseAddrPort(addr), Identity: "spiffe://weft.test/ns/shop/sa/" + name, Ready: true, Workload: workload}}}
	}
	objs := []model.Object{
		svc("web", "10.96.0.1"), svc("shadow", "10.96.0.2"),
		eps("web", "10.0.0.1:8080", "web-1"), eps("shadow", "10.0.0.2:8080", "shadow-1"),
		wl("client-1", "10.0.0.9", "client"), wl("web-1", "10.0.0.1", "web"), wl("shadow-1", "10.0.0.2", "shadow"),
	}
	st := model.NewStore()
	if err := st.Replace("test", append(objs, extra...)); err != nil {
		t.Fatal(err)
	}
	return &Model{Snapshot: st.Snapshot(), TrustDomain: td}
}

func webRoute(rules ...model.RouteRule) *model.Route {
	return &model.Route{Namespace: "shop", Name: "web-route", Kind: model.RouteHTTP, Created: t0,
		Parents: []model.ServicePortRef{{ServiceRef: model.ServiceRef{Namespace: "shop", Name: "web"}}}, Rules: rules}
}

func explainText(t *testing.T, e *Explanation) string {
	t.Helper()
	var b bytes.Buffer
	if err := e.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestRulePolicies: the rule's rate limit, fault, mirror and retry policy
// reach the explanation as the proxy compiled them, and the retry policy
// is read for the request's method.
func TestRulePolicies(t *testing.T) {
	m := mesh(t, "http", webRoute(model.RouteRule{
		Matches:   []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Type: "PathPrefix", Value: "/api"}}},
		RateLimit: &weftv1.RateLimit{RequestsPerSecond: 100, Burst: 20},
		Fault:     &weftv1.Fault{DelayPercent: 5, Delay: durationpb.New(2 * time.Second), AbortPercent: 1, AbortHttpStatus: 503},
		Retry:     &weftv1.RetryPolicy{MaxRetries: 2, Statuses: []string{"503"}, OnReset: true},
		Mirrors:   []model.MirrorRef{{ServicePortRef: model.ServicePortRef{ServiceRef: model.ServiceRef{Namespace: "shop", Name: "shadow"}}, Percent: 5}},
	}))
	tests := []struct {
		method string
		retry  string
	}{
		{"GET", "up to 2 retries of this GET on connect failures (on another endpoint), status 503, resets before the response; backoff 25ms to 250ms"},
		{"POST", "up to 2 retries of this POST on connect failures (on another endpoint); not on status 503 or resets: POST is not idempotent and retry_non_idempotent is off"},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			e, err := Explain(t.Context(), m, translate.Mesh{}, Input{From: "shop/client-1", To: "web.shop", Method: tt.method, Path: "/api/x"})
			if err != nil {
				t.Fatal(err)
			}
			r := e.Routing
			if r.Matched == nil || r.Matched.Route != "shop/web-route" || r.Matched.Match != "path PathPrefix /api" {
				t.Fatalf("matched = %+v", r.Matched)
			}
			if r.RateLimit == nil || *r.RateLimit != (RateLimit{RequestsPerSecond: 100, Burst: 20}) {
				t.Errorf("rate limit = %+v", r.RateLimit)
			}
			if r.Fault == nil || *r.Fault != (Fault{DelayPercent: 5, Delay: "2s", AbortPercent: 1, AbortHTTPStatus: 503}) {
				t.Errorf("fault = %+v", r.Fault)
			}
			if !slices.Equal(r.Mirrors, []Mirror{{Service: "shadow.shop:80", Percent: 5}}) {
				t.Errorf("mirrors = %+v", r.Mirrors)
			}
			if r.Retry == nil || r.Retry.MaxRetries != 2 || !slices.Equal(r.Retry.Statuses, []string{"503"}) || !strings.HasPrefix(r.Retry.ThisRequest, tt.retry) {
				t.Errorf("retry = %+v\nwant this request: %s", r.Retry, tt.retry)
			}
			text := explainText(t, e)
			for _, want := range []string{
				"rate limit: 100 requests/s, burst 20; beyond it the proxy answers 429",
				"fault injection: delays 5% of requests by 2s; aborts 1% with 503",
				"mirror: 5% of the requests are copied to shadow.shop:80",
			} {
				if !strings.Contains(text, want) {
					t.Errorf("text lacks %q:\n%s", want, text)
				}
			}
		})
	}
}

// TestRedirect: the proxy answers a redirecting rule itself; nothing is
// forwarded, so no destination is explained.
func TestRedirect(t *testing.T) {
	m := mesh(t, "http", webRoute(model.RouteRule{
		Matches: []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Type: "PathPrefix", Value: "/old"}}},
		Filters: &weftv1.RouteFilters{Redirect: &weftv1.Redirect{Scheme: "https", Path: &weftv1.PathModifier{Type: "ReplacePrefixMatch", Value: "/new"}, StatusCode: 301}},
	}))
	e, err := Explain(t.Context(), m, translate.Mesh{}, Input{From: "shop/client-1", To: "shop/web:80", Path: "/old/page?x=1"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Routing.Outcome != "redirect" || e.Routing.Redirect == nil || *e.Routing.Redirect != (Redirect{Status: 301, Location: "https://web.shop/new/page?x=1"}) {
		t.Fatalf("routing = %+v, redirect %+v", e.Routing, e.Routing.Redirect)
	}
	if len(e.Destinations) != 0 || !strings.HasPrefix(e.Verdict, "redirected: the caller's proxy answers 301") {
		t.Errorf("destinations %+v, verdict %q", e.Destinations, e.Verdict)
	}
}

// TestNoBackend: a rule whose only backend resolves to nothing keeps its
// place with weight 0; the caller's proxy answers 500, nothing reaches a
// destination, and the problem is reported.
func TestNoBackend(t *testing.T) {
	m := mesh(t, "http", webRoute(model.RouteRule{
		Backends: []model.BackendRef{{ServicePortRef: model.ServicePortRef{ServiceRef: model.ServiceRef{Namespace: "shop", Name: "gone"}, Port: 80}, Weight: 1}},
	}))
	e, err := Explain(t.Context(), m, translate.Mesh{}, Input{From: "shop/client-1", To: "web.shop"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Routing.Outcome != "no-backend" || e.Routing.Matched == nil || len(e.Backends) != 1 || e.Backends[0].Share != 0 ||
		!strings.Contains(e.Backends[0].Note, "the backendRef shop/gone:80 resolves to no service port") {
		t.Errorf("routing %+v, backends %+v", e.Routing, e.Backends)
	}
	if len(e.Destinations) != 0 || !strings.HasPrefix(e.Verdict, "not forwarded: every backendRef of shop/web-route rule 0 weighs 0, so the caller's proxy answers 500") {
		t.Errorf("destinations %+v, verdict %q", e.Destinations, e.Verdict)
	}
	var where []string
	for _, p := range e.Problems {
		if p.Source != SourceControlPlane {
			t.Errorf("problem from %s: %+v", p.Source, p)
		}
		where = append(where, p.Where+" "+p.Field+": "+p.Message)
	}
	if !slices.ContainsFunc(where, func(s string) bool {
		return strings.HasPrefix(s, "HTTPRoute shop/web-route rules[0].backendRefs[0]: service shop/gone does not exist")
	}) {
		t.Errorf("problems = %v, want the missing backend", where)
	}
	if text := explainText(t, e); !strings.Contains(text, "every weight is 0: the proxy answers 500") {
		t.Errorf("text:\n%s", text)
	}
}

// TestOpaque: an opaque TCP service is not routed, and a Deny rule with HTTP
// conditions closes its connections (the evaluator fails closed).
func TestOpaque(t *testing.T) {
	deny := &model.AuthorizationPolicy{Namespace: "shop", Name: "no-admin", Created: t0, Action: model.AuthorizationDeny,
		TargetRefs: []model.PolicyTargetRef{{Kind: model.TargetService, Name: "web"}},
		Rules: []model.AuthorizationRule{{Name: "admin", From: &weftv1.AuthorizationSource{Namespaces: []string{"shop"}},
			To: &weftv1.AuthorizationTarget{Paths: []*weftv1.PathMatch{{Type: "PathPrefix", Value: "/admin"}}}}}}
	m := mesh(t, "tcp", deny)
	e, err := Explain(t.Context(), m, translate.Mesh{}, Input{From: "shop/client-1", To: "web.shop"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Routing.Outcome != "opaque" || e.Request.Protocol != "opaque" {
		t.Errorf("routing %+v, protocol %s", e.Routing, e.Request.Protocol)
	}
	if len(e.Destinations) != 1 || e.Destinations[0].Allowed || e.Destinations[0].Authorization.By != "shop/no-admin:admin" {
		t.Fatalf("destinations = %+v", e.Destinations)
	}
	if !strings.HasSuffix(e.Verdict, "refused at shop/web-1 (denied by shop/no-admin:admin): the connection is closed (the application is never dialled)") {
		t.Errorf("verdict = %q", e.Verdict)
	}
}

// TestMeshSettings: the root namespace and the mesh's default inbound
// policy change the decision as they change the rendered configs.
func TestMeshSettings(t *testing.T) {
	strict := &model.MutualTLSPolicy{Namespace: "ops", Name: "strict", Created: t0, Mode: model.MTLSStrict}
	m := mesh(t, "http", strict)
	e, err := Explain(t.Context(), m, translate.Mesh{DefaultInboundPolicy: "deny-all"}, Input{From: "shop/client-1", To: "web.shop"})
	if err != nil {
		t.Fatal(err)
	}
	d := e.Destinations[0]
	if d.Allowed || d.Authorization.By != "default:deny-all" || d.Authorization.DefaultSetBy != translate.SetByMesh || d.MTLS.Mode != "permissive" {
		t.Errorf("with deny-all: %+v %+v %+v", d, d.Authorization, d.MTLS)
	}
	e, err = Explain(t.Context(), m, translate.Mesh{RootNamespace: "ops"}, Input{From: "shop/client-1", To: "web.shop"})
	if err != nil {
		t.Fatal(err)
	}
	if d := e.Destinations[0]; !d.Allowed || d.MTLS.Mode != "strict" || d.MTLS.Policy != "ops/strict" || !d.MTLS.Accepted {
		t.Errorf("with root namespace ops: %+v %+v", d, d.MTLS)
	}
}

// TestParse checks the flag values the command takes, and what a bad one
// says.
func TestParse(t *testing.T) {
	ok := []struct {
		in         Input
		to         model.ServiceRef
		port, path string
		method     string
		host       string
	}{
		{Input{From: "a/b", To: "web.shop:80"}, model.ServiceRef{Namespace: "shop", Name: "web"}, "80", "/", "GET", ""},
		{Input{From: "a/b", To: "shop/web:http"}, model.ServiceRef{Namespace: "shop", Name: "web"}, "http", "/", "GET", ""},
		{Input{From: "a/b", To: "web.shop.svc.cluster.local"}, model.ServiceRef{Namespace: "shop", Name: "web"}, "", "/", "GET", ""},
		{Input{From: "a/b", To: "web.shop", GRPC: "pkg.Svc/Get"}, model.ServiceRef{Namespace: "shop", Name: "web"}, "", "/pkg.Svc/Get", "POST", ""},
		{Input{From: "a/b", To: "web.shop", Path: "/x?y=1", Method: "PUT", Headers: []string{"Host=api.example", "x-a=b=c"}},
			model.ServiceRef{Namespace: "shop", Name: "web"}, "", "/x?y=1", "PUT", "api.example"},
	}
	for _, tt := range ok {
		p, err := parse(tt.in)
		if err != nil {
			t.Errorf("parse(%+v): %v", tt.in, err)
			continue
		}
		if p.to != tt.to || p.port != tt.port || p.path != tt.path || p.method != tt.method || p.host != tt.host {
			t.Errorf("parse(%+v) = %+v", tt.in, p)
		}
	}
	if p, _ := parse(Input{From: "a/b", To: "w.s", Headers: []string{"x-a=b=c"}}); !slices.Equal(p.headers, [][2]string{{"x-a", "b=c"}}) {
		t.Errorf("headers = %v, want the value after the first =", p.headers)
	}
	bad := map[string]Input{
		`--method "DELETE2"`:                {From: "a/b", To: "w.s", Method: "DELETE2"},
		`--method GET: a gRPC call`:         {From: "a/b", To: "w.s", Method: "GET", GRPC: "p.S/M"},
		`--grpc "/p.S/M"`:                   {From: "a/b", To: "w.s", GRPC: "/p.S/M"},
		`--header "bad name=1"`:             {From: "a/b", To: "w.s", Headers: []string{"bad name=1"}},
		`--to "w": want`:                    {From: "a/b", To: "w"},
		`--to "a/b/c": want`:                {From: "a/b", To: "a/b/c"},
		`--from "a/b/c": want`:              {From: "a/b/c", To: "w.s"},
		`--path "/%zz": not a request path`: {From: "a/b", To: "w.s", Path: "/%zz"},
	}
	for want, in := range bad {
		if _, err := parse(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parse(%+v) = %v, want an error containing %q", in, err, want)
		}
	}
}

// TestNotFound: unknown names suggest the close ones and are ErrNotFound.
func TestNotFound(t *testing.T) {
	m := mesh(t, "http")
	_, err := Explain(t.Context(), m, translate.Mesh{}, Input{From: "shop/clinet-1", To: "web.shop"})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "did you mean shop/client-1?") {
		t.Errorf("unknown workload: %v", err)
	}
	_, err = Explain(t.Context(), m, translate.Mesh{}, Input{From: "shop/client-1", To: "web.default"})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "did you mean web.shop?") {
		t.Errorf("service in another namespace: %v", err)
	}
	if got := closest("shop/web", []string{"shop/web-1", "ops/web", "shop/db", "other/thing"}, afterSlash); !slices.Equal(got, []string{"ops/web", "shop/web-1", "shop/db"}) {
		t.Errorf("closest = %v", got)
	}
}
