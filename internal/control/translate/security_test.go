package translate

import (
	"cmp"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
)

// The security fixture, namespace shop: Service web (http 80->8080, admin
// 9000) backed by web-0 (both ports) and web-1 (http only); other-0 backs
// nothing. Namespace ops has tool-0; the root namespace weft-system has
// root-0. securitySnapshot applies extra objects after it, replacing
// fixture objects of the same key.
func securityObjects() []model.Object {
	web := model.ServiceRef{Namespace: "shop", Name: "web"}
	wl := func(ns, name, addr string, ports ...uint16) *model.Workload {
		w := &model.Workload{Namespace: ns, Name: name, ServiceAccount: name, Address: netip.MustParseAddr(addr), Meshed: true}
		for _, p := range ports {
			w.Ports = append(w.Ports, model.WorkloadPort{Name: fmt.Sprint("p", p), Port: p})
		}
		return w
	}
	named := func(addr, workload string) model.Endpoint {
		return ep(addr, id("shop", workload), func(e *model.Endpoint) { e.Workload = workload })
	}
	return []model.Object{
		&model.Service{Namespace: "shop", Name: "web", Ports: []model.ServicePort{{Name: "http", Port: 80, TargetPort: 8080}, {Name: "admin", Port: 9000}}},
		&model.EndpointSet{Service: web, Endpoints: []model.Endpoint{
			named("10.1.0.1:8080", "web-0"), named("10.1.0.1:9000", "web-0"), named("10.1.0.2:8080", "web-1"),
		}},
		wl("shop", "web-0", "10.1.0.1", 8080, 9000),
		wl("shop", "web-1", "10.1.0.2", 8080),
		wl("shop", "other-0", "10.1.0.3", 8080),
		wl("ops", "tool-0", "10.2.0.1", 8080),
		wl("weft-system", "root-0", "10.9.0.1", 8080),
	}
}

func securitySnapshot(t *testing.T, extra ...model.Object) *model.Snapshot {
	t.Helper()
	s := model.NewStore()
	if err := s.Replace("t", securityObjects()); err != nil {
		t.Fatal(err)
	}
	for _, o := range extra { // may replace a fixture object
		if err := s.Apply("t", model.Change{Upsert: o}); err != nil {
			t.Fatal(err)
		}
	}
	return s.Snapshot()
}

// summary renders an inbound listener's authorization and mTLS modes on
// one line: "default=D; ns/name Action [dry-run] ports=[..] rules=[..]; ...
// | mtls=M port:mode ...".
func summary(in *weftv1.Inbound) string {
	var parts []string
	if a := in.GetAuthorization(); a == nil {
		parts = append(parts, "no authorization")
	} else {
		parts = append(parts, "default="+a.GetDefaultPolicy())
		for _, p := range a.GetPolicies() {
			var rules []string
			for _, r := range p.GetRules() {
				rules = append(rules, r.GetName())
			}
			s := p.GetName() + " " + p.GetAction()
			if p.GetDryRun() {
				s += " dry-run"
			}
			parts = append(parts, fmt.Sprintf("%s ports=%v rules=%v", s, p.GetPorts(), rules))
		}
	}
	mtls := "permissive"
	if in.GetRequireMtls() {
		mtls = "strict"
	}
	for _, p := range in.GetPorts() {
		if p.GetMtls() != "" {
			mtls += fmt.Sprintf(" %d:%s", p.GetPort(), p.GetMtls())
		}
	}
	return strings.Join(parts, "; ") + " | mtls=" + mtls
}

func proxyOf(snap *model.Snapshot, ns, name string, mesh Mesh) Proxy {
	return Proxy{Identity: id(ns, name), Workload: snap.Workloads[model.ObjectRef{Namespace: ns, Name: name}], TLS: testTLS(), Mesh: mesh}
}

func authz(ns, name string, age int, action model.AuthorizationAction, targets []model.PolicyTargetRef, rules ...model.AuthorizationRule) *model.AuthorizationPolicy {
	return &model.AuthorizationPolicy{Namespace: ns, Name: name, Created: t0.Add(-time.Duration(age) * time.Hour), Action: action, TargetRefs: targets, Rules: rules}
}

func svcTarget(name, section string) model.PolicyTargetRef {
	return model.PolicyTargetRef{Kind: model.TargetService, Name: name, SectionName: section}
}

func wlTarget(name string) model.PolicyTargetRef {
	return model.PolicyTargetRef{Kind: model.TargetWorkload, Name: name}
}

func rule(name string, ports ...uint16) model.AuthorizationRule {
	return model.AuthorizationRule{Name: name, Ports: ports, From: &weftv1.AuthorizationSource{Namespaces: []string{"shop"}}}
}

// TestAuthorization checks which policies reach which workload, on which
// ports, and the default policy.
func TestAuthorization(t *testing.T) {
	dryRun := authz("shop", "dry", 1, model.AuthorizationDeny, nil, rule("r"))
	dryRun.DryRun = true
	badRegex := model.AuthorizationRule{To: &weftv1.AuthorizationTarget{Paths: []*weftv1.PathMatch{{Type: "RegularExpression", Value: "(["}}}}
	badDry := authz("shop", "bad-dry", 1, model.AuthorizationAllow, nil, badRegex)
	badDry.DryRun = true
	withAnnotation := func(w *model.Workload, v string) *model.Workload {
		c := *w
		c.DefaultInboundPolicy = v
		return &c
	}
	base := securityObjects()
	web0 := base[2].(*model.Workload)
	tests := []struct {
		name     string
		objs     []model.Object
		mesh     Mesh
		workload string // namespace/name; default shop/web-0
		want     string
		problems []string // prefixes of Problem.String()
	}{
		{name: "nothing: the proxy's default", want: "no authorization | mtls=permissive"},
		{name: "namespace-wide", objs: []model.Object{authz("shop", "a", 1, model.AuthorizationAllow, nil, rule("r"))},
			want: "default=allow-all; shop/a Allow ports=[] rules=[r] | mtls=permissive"},
		{name: "namespace-wide reaches a workload that backs nothing", workload: "shop/other-0",
			objs: []model.Object{authz("shop", "a", 1, model.AuthorizationAllow, nil, rule("r"))},
			want: "default=allow-all; shop/a Allow ports=[] rules=[r] | mtls=permissive"},
		{name: "another namespace's policy does not apply", workload: "ops/tool-0",
			objs: []model.Object{authz("shop", "a", 1, model.AuthorizationAllow, nil, rule("r"))},
			want: "no authorization | mtls=permissive"},
		{name: "mesh-wide from the root namespace", workload: "ops/tool-0",
			objs: []model.Object{authz("weft-system", "m", 1, model.AuthorizationDeny, nil, rule("r"))},
			want: "default=allow-all; weft-system/m Deny ports=[] rules=[r] | mtls=permissive"},
		{name: "mesh-wide applies in the root namespace too, once", workload: "weft-system/root-0",
			objs: []model.Object{authz("weft-system", "m", 1, model.AuthorizationDeny, nil, rule("r"))},
			want: "default=allow-all; weft-system/m Deny ports=[] rules=[r] | mtls=permissive"},
		{name: "another root namespace", workload: "ops/tool-0", mesh: Mesh{RootNamespace: "ops"},
			objs: []model.Object{authz("weft-system", "m", 1, model.AuthorizationDeny, nil, rule("r"))},
			want: "no authorization | mtls=permissive"},
		{name: "a targeted policy in the root namespace is not mesh-wide", workload: "ops/tool-0",
			objs: []model.Object{authz("weft-system", "m", 1, model.AuthorizationDeny, []model.PolicyTargetRef{wlTarget("root-0")})},
			want: "no authorization | mtls=permissive"},
		{name: "service target: its workloads", objs: []model.Object{authz("shop", "a", 1, model.AuthorizationAllow, []model.PolicyTargetRef{svcTarget("web", "")})},
			want: "default=allow-all; shop/a Allow ports=[] rules=[] | mtls=permissive"},
		{name: "service target: not the others", workload: "shop/other-0",
			objs: []model.Object{authz("shop", "a", 1, model.AuthorizationAllow, []model.PolicyTargetRef{svcTarget("web", "")})},
			want: "no authorization | mtls=permissive"},
		{name: "sectionName by name: the workload port behind it",
			objs: []model.Object{authz("shop", "a", 1, model.AuthorizationAllow, []model.PolicyTargetRef{svcTarget("web", "http")}, rule("r"))},
			want: "default=allow-all; shop/a Allow ports=[8080] rules=[r] | mtls=permissive"},
		{name: "sectionName by number, two targets",
			objs: []model.Object{authz("shop", "a", 1, model.AuthorizationAllow, []model.PolicyTargetRef{svcTarget("web", "9000"), svcTarget("web", "80")}, rule("r"))},
			want: "default=allow-all; shop/a Allow ports=[8080 9000] rules=[r] | mtls=permissive"},
		{name: "sectionName of a port the workload does not back", workload: "shop/web-1",
			objs: []model.Object{authz("shop", "a", 1, model.AuthorizationAllow, []model.PolicyTargetRef{svcTarget("web", "admin")})},
			want: "no authorization | mtls=permissive"},
		{name: "workload target", objs: []model.Object{authz("shop", "a", 1, model.AuthorizationDeny, []model.PolicyTargetRef{wlTarget("web-0")}, rule("r"))},
			want: "default=allow-all; shop/a Deny ports=[] rules=[r] | mtls=permissive"},
		{name: "workload target: not another", workload: "shop/web-1",
			objs: []model.Object{authz("shop", "a", 1, model.AuthorizationDeny, []model.PolicyTargetRef{wlTarget("web-0")}, rule("r"))},
			want: "no authorization | mtls=permissive"},
		{name: "rules split by their ports, names kept, unnamed ones numbered",
			objs: []model.Object{authz("shop", "a", 1, model.AuthorizationAllow, nil,
				rule("a", 8080), rule("", 9000, 7), rule("c"), rule("d", 8080))},
			want: "default=allow-all; shop/a Allow ports=[8080] rules=[a d]; shop/a Allow ports=[7 9000] rules=[rule-1]; shop/a Allow ports=[] rules=[c] | mtls=permissive"},
		{name: "rule ports narrow a sectionName, or miss it",
			objs: []model.Object{authz("shop", "a", 1, model.AuthorizationAllow, []model.PolicyTargetRef{svcTarget("web", "admin")},
				rule("both", 8080, 9000), rule("miss", 8080))},
			want:     "default=allow-all; shop/a Allow ports=[9000] rules=[both] | mtls=permissive",
			problems: []string{"AuthorizationPolicy shop/a: rules[1].to.ports: none of ports [8080] is among the ports the policy targets on workload shop/web-0 ([9000])"}},
		{name: "dry run", objs: []model.Object{dryRun},
			want: "default=allow-all; shop/dry Deny dry-run ports=[] rules=[r] | mtls=permissive"},
		{name: "policies by namespace and name", objs: []model.Object{
			authz("shop", "b", 2, model.AuthorizationDeny, nil), authz("weft-system", "m", 1, model.AuthorizationAllow, nil), authz("shop", "a", 1, model.AuthorizationAllow, nil)},
			want: "default=allow-all; shop/a Allow ports=[] rules=[]; shop/b Deny ports=[] rules=[]; weft-system/m Allow ports=[] rules=[] | mtls=permissive"},
		{name: "an invalid enforced policy fails closed",
			objs: []model.Object{authz("shop", "bad", 1, model.AuthorizationAllow, []model.PolicyTargetRef{svcTarget("web", "http")}, badRegex)},
			want: "default=allow-all; shop/bad Deny ports=[8080] rules=[] | mtls=permissive",
			problems: []string{`AuthorizationPolicy shop/bad: rules[0].to.paths[0].value: "([" is not a regular expression (RE2 syntax): missing closing ]: ` +
				"`[`; the policy denies every request on the ports it applies to until it is fixed"}},
		{name: "an invalid dry-run policy is left out", objs: []model.Object{badDry},
			want:     "no authorization | mtls=permissive",
			problems: []string{"AuthorizationPolicy shop/bad-dry: rules[0].to.paths[0].value: "}},
		{name: "mesh default", mesh: Mesh{DefaultInboundPolicy: model.DefaultInboundDenyAll},
			want: "default=deny-all | mtls=permissive"},
		{name: "namespace annotation beats the mesh", mesh: Mesh{DefaultInboundPolicy: model.DefaultInboundDenyAll},
			objs: []model.Object{&model.Namespace{Name: "shop", DefaultInboundPolicy: model.DefaultInboundAllowSameNamespace}},
			want: "default=allow-same-namespace | mtls=permissive"},
		{name: "workload annotation beats the namespace", mesh: Mesh{DefaultInboundPolicy: model.DefaultInboundDenyAll},
			objs: []model.Object{&model.Namespace{Name: "shop", DefaultInboundPolicy: model.DefaultInboundAllowSameNamespace},
				withAnnotation(web0, model.DefaultInboundAllowAuthenticated)},
			want: "default=allow-authenticated | mtls=permissive"},
		{name: "allow-all annotation: the proxy's default again", mesh: Mesh{DefaultInboundPolicy: model.DefaultInboundDenyAll},
			objs: []model.Object{withAnnotation(web0, model.DefaultInboundAllowAll)},
			want: "no authorization | mtls=permissive"},
		{name: "bad annotations: the level above", mesh: Mesh{DefaultInboundPolicy: model.DefaultInboundDenyAll},
			objs: []model.Object{&model.Namespace{Name: "shop", DefaultInboundPolicy: "deny"}, withAnnotation(web0, "allow")},
			want: "default=deny-all | mtls=permissive",
			problems: []string{
				`Namespace shop: metadata.annotations["weft.dev/default-inbound-policy"]: "deny" is not a default inbound policy; ` +
					"use allow-all, deny-all, allow-same-namespace or allow-authenticated; the mesh's default, deny-all, applies",
				`Workload shop/web-0: metadata.annotations["weft.dev/default-inbound-policy"]: "allow" is not a default inbound policy; ` +
					"use allow-all, deny-all, allow-same-namespace or allow-authenticated; the namespace's default, deny-all, applies"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := securitySnapshot(t, tt.objs...)
			ns, name, _ := strings.Cut(cmp.Or(tt.workload, "shop/web-0"), "/")
			res := mustConfig(t, snap, proxyOf(snap, ns, name, tt.mesh))
			if got := summary(res.Config.GetInbound()); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			checkProblems(t, res.Problems, tt.problems)
		})
	}
}

// TestMutualTLS checks the precedence of mTLS policies and per-port modes.
func TestMutualTLS(t *testing.T) {
	mtls := func(ns, name string, age int, mode model.MTLSMode, targets []model.PolicyTargetRef, ports ...model.PortMTLS) *model.MutualTLSPolicy {
		return &model.MutualTLSPolicy{Namespace: ns, Name: name, Created: t0.Add(-time.Duration(age) * time.Hour), Mode: mode, TargetRefs: targets, Ports: ports}
	}
	strict, permissive := model.MTLSStrict, model.MTLSPermissive
	port := func(p uint16, m model.MTLSMode) model.PortMTLS { return model.PortMTLS{Port: p, Mode: m} }
	tests := []struct {
		name     string
		objs     []model.Object
		mesh     Mesh
		workload string
		want     string
		problems []string
	}{
		{name: "default: permissive", want: "no authorization | mtls=permissive"},
		{name: "mesh", objs: []model.Object{mtls("weft-system", "m", 1, strict, nil)}, want: "no authorization | mtls=strict"},
		{name: "mesh, in another root namespace", mesh: Mesh{RootNamespace: "shop"},
			objs: []model.Object{mtls("weft-system", "m", 1, strict, nil)}, want: "no authorization | mtls=permissive"},
		{name: "namespace beats mesh", objs: []model.Object{mtls("weft-system", "m", 2, strict, nil), mtls("shop", "n", 1, permissive, nil)},
			want: "no authorization | mtls=permissive"},
		{name: "another namespace's does not apply", workload: "ops/tool-0",
			objs: []model.Object{mtls("weft-system", "m", 2, strict, nil), mtls("shop", "n", 1, permissive, nil)},
			want: "no authorization | mtls=strict"},
		{name: "workload beats namespace", objs: []model.Object{mtls("shop", "n", 2, permissive, nil), mtls("shop", "w", 1, strict, []model.PolicyTargetRef{wlTarget("web-0")})},
			want: "no authorization | mtls=strict"},
		{name: "a service port beats the namespace on that port only",
			objs: []model.Object{mtls("shop", "n", 2, strict, nil), mtls("shop", "s", 1, permissive, []model.PolicyTargetRef{svcTarget("web", "admin")})},
			want: "no authorization | mtls=strict 9000:permissive"},
		{name: "per-port, on a port the workload does not list",
			objs: []model.Object{mtls("shop", "n", 1, strict, nil, port(9102, permissive), port(8080, strict))},
			want: "no authorization | mtls=strict 9102:permissive"},
		{name: "the mesh's port override does not beat a namespace policy",
			objs: []model.Object{mtls("weft-system", "m", 2, permissive, nil, port(9000, permissive)), mtls("shop", "n", 1, strict, nil)},
			want: "no authorization | mtls=strict"},
		{name: "the mesh's port override beneath a policy of one port",
			objs: []model.Object{mtls("weft-system", "m", 2, strict, nil, port(9000, permissive)), mtls("shop", "s", 1, strict, []model.PolicyTargetRef{svcTarget("web", "http")})},
			want: "no authorization | mtls=strict 9000:permissive"},
		{name: "same level: the oldest wins", objs: []model.Object{mtls("shop", "new", 1, strict, nil), mtls("shop", "old", 2, permissive, nil)},
			want:     "no authorization | mtls=permissive",
			problems: []string{"MutualTLSPolicy shop/new: targetRefs: conflicts with the older MutualTLSPolicy shop/old, which applies to workload shop/web-0; the older one wins"}},
		{name: "same level, same age: by name",
			objs:     []model.Object{mtls("shop", "b", 1, strict, []model.PolicyTargetRef{wlTarget("web-0")}), mtls("shop", "a", 1, permissive, []model.PolicyTargetRef{svcTarget("web", "")})},
			want:     "no authorization | mtls=permissive",
			problems: []string{"MutualTLSPolicy shop/b: targetRefs: conflicts with the older MutualTLSPolicy shop/a"}},
		{name: "same level, different ports: no conflict",
			objs: []model.Object{mtls("shop", "a", 1, strict, []model.PolicyTargetRef{svcTarget("web", "http")}), mtls("shop", "b", 2, permissive, []model.PolicyTargetRef{svcTarget("web", "admin")})},
			want: "no authorization | mtls=permissive 8080:strict"},
		{name: "root namespace workload: the mesh level", workload: "weft-system/root-0",
			objs: []model.Object{mtls("weft-system", "m", 1, strict, nil)}, want: "no authorization | mtls=strict"},
		{name: "an invalid policy is ignored", objs: []model.Object{mtls("shop", "bad", 2, "strict", nil), mtls("weft-system", "m", 1, strict, nil, port(8080, "Off"))},
			want: "no authorization | mtls=permissive",
			problems: []string{`MutualTLSPolicy shop/bad: mode: unknown mode "strict"; use Strict or Permissive; the policy is ignored`,
				`MutualTLSPolicy weft-system/m: ports[0].mode: unknown mode "Off"; use Strict or Permissive; the policy is ignored`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := securitySnapshot(t, tt.objs...)
			ns, name, _ := strings.Cut(cmp.Or(tt.workload, "shop/web-0"), "/")
			res := mustConfig(t, snap, proxyOf(snap, ns, name, tt.mesh))
			if got := summary(res.Config.GetInbound()); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			checkProblems(t, res.Problems, tt.problems)
		})
	}
}

// TestCheckSecurity lists the problems of security objects whichever
// workload they reach, or if they reach none.
func TestCheckSecurity(t *testing.T) {
	snap := securitySnapshot(t,
		authz("shop", "ghosts", 1, model.AuthorizationDeny, []model.PolicyTargetRef{svcTarget("nope", ""), svcTarget("web", "grpc"), wlTarget("nope-0"), {Kind: "Pod", Name: "p"}}),
		authz("ops", "bad", 1, "Block", nil),
		&model.MutualTLSPolicy{Namespace: "shop", Name: "a", Created: t0, Mode: model.MTLSStrict},
		&model.MutualTLSPolicy{Namespace: "shop", Name: "b", Created: t0.Add(time.Hour), Mode: model.MTLSStrict},
		&model.Namespace{Name: "empty", DefaultInboundPolicy: "open"},
	)
	var got []string
	for _, p := range Check(snap) {
		got = append(got, p.String())
	}
	want := []string{
		`AuthorizationPolicy ops/bad: action: unknown action "Block"; use Allow or Deny; the policy denies every request on the ports it applies to until it is fixed`,
		`AuthorizationPolicy shop/ghosts: targetRefs[0]: service shop/nope does not exist; this targetRef selects nothing`,
		`AuthorizationPolicy shop/ghosts: targetRefs[1].sectionName: service shop/web has no port named or numbered "grpc"; this targetRef selects nothing`,
		`AuthorizationPolicy shop/ghosts: targetRefs[2]: workload shop/nope-0 does not exist; this targetRef selects nothing`,
		`AuthorizationPolicy shop/ghosts: targetRefs[3].kind: unknown kind "Pod"; use Service or Workload; the policy denies every request on the ports it applies to until it is fixed`,
		`MutualTLSPolicy shop/b: targetRefs: conflicts with the older MutualTLSPolicy shop/a, which applies to workload shop/other-0; the older one wins`,
		`MutualTLSPolicy shop/b: targetRefs: conflicts with the older MutualTLSPolicy shop/a, which applies to workload shop/web-0; the older one wins`,
		`MutualTLSPolicy shop/b: targetRefs: conflicts with the older MutualTLSPolicy shop/a, which applies to workload shop/web-1; the older one wins`,
		`Namespace empty: metadata.annotations["weft.dev/default-inbound-policy"]: "open" is not a default inbound policy; use allow-all, deny-all, allow-same-namespace or allow-authenticated; the mesh's default, allow-all, applies`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Check:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestMeshSettings(t *testing.T) {
	tests := []struct {
		mesh Mesh
		want string // "" valid
	}{
		{Mesh{}, ""},
		{Mesh{RootNamespace: "mesh-root", DefaultInboundPolicy: model.DefaultInboundAllowAuthenticated}, ""},
		{Mesh{RootNamespace: "Mesh"}, `mesh root namespace "Mesh" is not a namespace name`},
		{Mesh{RootNamespace: strings.Repeat("a", 64)}, "is not a namespace name"},
		{Mesh{DefaultInboundPolicy: "deny"}, `mesh default inbound policy "deny" is unknown; use allow-all, deny-all, allow-same-namespace or allow-authenticated`},
	}
	snap := securitySnapshot(t)
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.mesh), func(t *testing.T) {
			err := tt.mesh.Validate()
			if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
			_, err = Config(snap, proxyOf(snap, "shop", "web-0", tt.mesh))
			if (err == nil) != (tt.want == "") {
				t.Errorf("Config = %v, want an error: %v", err, tt.want != "")
			}
		})
	}
}

func checkProblems(t *testing.T, got []Problem, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("problems:\n%v\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	for i, p := range got {
		if !strings.HasPrefix(p.String(), want[i]) {
			t.Errorf("problem:\n %s\nwant it to start with\n %s", p, want[i])
		}
	}
}
