package translate

import (
	"slices"
	"testing"
	"time"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
)

// securityGoldenCases translate the proxy of workload shop/web-0 (ports
// 8080 http behind Service web port 80 "http", 9102, 4191 (the proxy's
// admin port, left out), 7000 opaque) under authorization and mTLS
// policies added to the fixture.
func securityGoldenCases() []goldenCase {
	web0 := func(mesh Mesh) func(*model.Snapshot) Proxy {
		return func(snap *model.Snapshot) Proxy {
			return Proxy{Identity: id("shop", "web"), Workload: workload(snap, "web-0"), TLS: testTLS(), Mesh: mesh}
		}
	}
	with := func(objs ...model.Object) func(t *testing.T) *model.Snapshot {
		return func(t *testing.T) *model.Snapshot {
			return fixture(t, func(fx []model.Object) []model.Object {
				for _, o := range objs { // an object of a fixture key replaces it
					i := slices.IndexFunc(fx, func(f model.Object) bool { return f.Key() == o.Key() })
					if i >= 0 {
						fx[i] = o
					} else {
						fx = append(fx, o)
					}
				}
				return fx
			})
		}
	}
	annotated := func(v string) *model.Workload {
		w := fixtureWeb0()
		w.DefaultInboundPolicy = v
		return w
	}
	policy := func(ns, name string, action model.AuthorizationAction, targets []model.PolicyTargetRef, rules ...model.AuthorizationRule) *model.AuthorizationPolicy {
		return &model.AuthorizationPolicy{Namespace: ns, Name: name, Created: t0, Action: action, TargetRefs: targets, Rules: rules}
	}
	mtls := func(ns, name string, hoursOld int, mode model.MTLSMode, targets []model.PolicyTargetRef, ports ...model.PortMTLS) *model.MutualTLSPolicy {
		return &model.MutualTLSPolicy{Namespace: ns, Name: name, Created: t0.Add(-time.Duration(hoursOld) * time.Hour), Mode: mode, TargetRefs: targets, Ports: ports}
	}
	from := func(s *weftv1.AuthorizationSource) model.AuthorizationRule { return model.AuthorizationRule{From: s} }
	dryRun := policy("shop", "would-deny-beta", model.AuthorizationDeny, nil,
		model.AuthorizationRule{Name: "beta", To: &weftv1.AuthorizationTarget{Paths: []*weftv1.PathMatch{{Type: "PathPrefix", Value: "/beta"}}}})
	dryRun.DryRun = true
	authz := func(t *testing.T, res Result) *weftv1.Authorization {
		t.Helper()
		return res.Config.GetInbound().GetAuthorization()
	}
	wantDefault := func(want string) func(t *testing.T, res Result) {
		return func(t *testing.T, res Result) {
			if got := authz(t, res).GetDefaultPolicy(); got != want || len(authz(t, res).GetPolicies()) != 0 {
				t.Errorf("authorization %v, want default %s and no policy", authz(t, res), want)
			}
		}
	}
	wantSummary := func(want string) func(t *testing.T, res Result) {
		return func(t *testing.T, res Result) {
			if got := summary(res.Config.GetInbound()); got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		}
	}
	return []goldenCase{
		{name: "authz-default-deny-all", proxy: web0(Mesh{DefaultInboundPolicy: model.DefaultInboundDenyAll}),
			check: wantDefault(model.DefaultInboundDenyAll)},
		{name: "authz-default-allow-same-namespace", proxy: web0(Mesh{}),
			snap:  with(&model.Namespace{Name: "shop", DefaultInboundPolicy: model.DefaultInboundAllowSameNamespace}),
			check: wantDefault(model.DefaultInboundAllowSameNamespace)},
		{name: "authz-default-allow-authenticated", proxy: web0(Mesh{}),
			snap:  with(&model.Namespace{Name: "shop", DefaultInboundPolicy: model.DefaultInboundDenyAll}, annotated(model.DefaultInboundAllowAuthenticated)),
			check: wantDefault(model.DefaultInboundAllowAuthenticated)},
		{name: "authz-default-bad-annotation", proxy: web0(Mesh{DefaultInboundPolicy: model.DefaultInboundDenyAll}),
			snap: with(&model.Namespace{Name: "shop", DefaultInboundPolicy: model.DefaultInboundAllowSameNamespace}, annotated("allow-none")),
			check: func(t *testing.T, res Result) {
				wantDefault(model.DefaultInboundAllowSameNamespace)(t, res)
				if len(res.Problems) != 2 || res.Problems[1].Object != "Workload shop/web-0" {
					t.Errorf("problems %v, want the admin port's and the annotation's", res.Problems)
				}
			}},
		{name: "authz-namespace-wide", proxy: web0(Mesh{}),
			snap: with(policy("shop", "allow-shop", model.AuthorizationAllow, nil, model.AuthorizationRule{
				From: &weftv1.AuthorizationSource{Namespaces: []string{"shop"}}, To: &weftv1.AuthorizationTarget{Methods: []string{"GET", "HEAD"}}})),
			check: wantSummary("default=allow-all; shop/allow-shop Allow ports=[] rules=[rule-0] | mtls=permissive")},
		{name: "authz-service-section", proxy: web0(Mesh{}),
			snap: with(policy("shop", "no-admin", model.AuthorizationDeny, []model.PolicyTargetRef{{Kind: model.TargetService, Name: "web", SectionName: "http"}},
				model.AuthorizationRule{Name: "admin-paths", From: &weftv1.AuthorizationSource{Identities: []string{id("shop", "frontend")}},
					To: &weftv1.AuthorizationTarget{Paths: []*weftv1.PathMatch{{Type: "PathPrefix", Value: "/admin"}, {Type: "RegularExpression", Value: "/debug/.*"}}}})),
			check: wantSummary("default=allow-all; shop/no-admin Deny ports=[8080] rules=[admin-paths] | mtls=permissive")},
		{name: "authz-workload", proxy: web0(Mesh{}),
			snap: with(policy("shop", "web-0-callers", model.AuthorizationAllow, []model.PolicyTargetRef{{Kind: model.TargetWorkload, Name: "web-0"}},
				model.AuthorizationRule{Name: "catalog", To: &weftv1.AuthorizationTarget{Grpc: []*weftv1.GRPCMethodMatch{{Type: "Exact", Service: "shop.Catalog", Method: "Get"}}}},
				model.AuthorizationRule{Name: "tagged", To: &weftv1.AuthorizationTarget{Headers: []*weftv1.ValueMatch{{Type: "RegularExpression", Name: "x-tenant", Value: "t-[0-9]+"}}}})),
			check: wantSummary("default=allow-all; shop/web-0-callers Allow ports=[] rules=[catalog tagged] | mtls=permissive")},
		{name: "authz-mesh-wide", proxy: web0(Mesh{}),
			snap: with(policy(DefaultRootNamespace, "no-plaintext", model.AuthorizationDeny, nil, from(&weftv1.AuthorizationSource{Authentication: "unauthenticated"})),
				policy("ops", "not-here", model.AuthorizationDeny, nil)),
			check: wantSummary("default=allow-all; weft-system/no-plaintext Deny ports=[] rules=[rule-0] | mtls=permissive")},
		{name: "authz-dry-run", proxy: web0(Mesh{}), snap: with(dryRun),
			check: wantSummary("default=allow-all; shop/would-deny-beta Deny dry-run ports=[] rules=[beta] | mtls=permissive")},
		{name: "authz-rule-ports", proxy: web0(Mesh{}),
			snap: with(policy("shop", "by-port", model.AuthorizationAllow, nil,
				model.AuthorizationRule{Name: "scrape", Ports: []uint16{9102}, From: &weftv1.AuthorizationSource{Namespaces: []string{"monitoring"}}},
				model.AuthorizationRule{Name: "shop", Ports: []uint16{8080, 7000}, From: &weftv1.AuthorizationSource{Namespaces: []string{"shop"}}},
				model.AuthorizationRule{Name: "partners", Ports: []uint16{7000, 8080}, From: &weftv1.AuthorizationSource{TrustDomains: []string{"partner.example"}}},
				model.AuthorizationRule{Name: "health", To: &weftv1.AuthorizationTarget{Paths: []*weftv1.PathMatch{{Type: "Exact", Value: "/healthz"}}}})),
			check: wantSummary("default=allow-all; shop/by-port Allow ports=[9102] rules=[scrape]; shop/by-port Allow ports=[7000 8080] rules=[shop partners]; " +
				"shop/by-port Allow ports=[] rules=[health] | mtls=permissive")},
		{name: "mtls-mesh", proxy: web0(Mesh{}), snap: with(mtls(DefaultRootNamespace, "strict", 1, model.MTLSStrict, nil)),
			check: wantSummary("no authorization | mtls=strict")},
		{name: "mtls-namespace-over-mesh", proxy: web0(Mesh{}),
			snap:  with(mtls(DefaultRootNamespace, "strict", 2, model.MTLSStrict, nil), mtls("shop", "migrating", 1, model.MTLSPermissive, nil)),
			check: wantSummary("no authorization | mtls=permissive")},
		{name: "mtls-workload-over-namespace", proxy: web0(Mesh{}),
			snap: with(mtls("shop", "shop-strict", 3, model.MTLSStrict, nil),
				mtls("shop", "web-permissive", 2, model.MTLSPermissive, []model.PolicyTargetRef{{Kind: model.TargetService, Name: "web"}}),
				mtls("shop", "web-0-strict", 1, model.MTLSStrict, []model.PolicyTargetRef{{Kind: model.TargetWorkload, Name: "web-0"}})),
			check: func(t *testing.T, res Result) {
				wantSummary("no authorization | mtls=permissive")(t, res)
				if !slices.ContainsFunc(res.Problems, func(p Problem) bool { return p.Object == "MutualTLSPolicy shop/web-0-strict" }) {
					t.Errorf("the newer workload-level policy is not reported: %v", res.Problems)
				}
			}},
		{name: "mtls-per-port", proxy: web0(Mesh{}),
			snap: with(mtls(DefaultRootNamespace, "strict-but-scraping", 2, model.MTLSStrict, nil,
				model.PortMTLS{Port: 9102, Mode: model.MTLSPermissive}, model.PortMTLS{Port: 15090, Mode: model.MTLSPermissive}),
				mtls("shop", "web-http-permissive", 1, model.MTLSPermissive, []model.PolicyTargetRef{{Kind: model.TargetService, Name: "web", SectionName: "http"}})),
			check: wantSummary("no authorization | mtls=strict 8080:permissive 9102:permissive 15090:permissive")},
	}
}

// fixtureWeb0 is a copy of the fixture's workload shop/web-0.
func fixtureWeb0() *model.Workload {
	for _, o := range fixtureObjects() {
		if w, ok := o.(*model.Workload); ok && w.Name == "web-0" {
			return w
		}
	}
	panic("the fixture has no web-0")
}
