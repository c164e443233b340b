package authz_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/authz"
)

// ruleCase is one kind of rule condition: requests it matches and requests
// it does not.
type ruleCase struct {
	name    string
	ports   string // the policy's ports, YAML
	rule    string // the rule, YAML flow mapping
	match   []req
	nomatch []req
}

var ruleCases = []ruleCase{
	{
		name:    "identity exact",
		rule:    `{name: r, from: {identities: ["spiffe://cluster.local/ns/default/sa/frontend"]}}`,
		match:   []req{{src: frontend, http: httpReq("GET", "/")}, {src: frontend}},
		nomatch: []req{{src: batch, http: httpReq("GET", "/")}, {src: foreign}, {src: plaintext, http: httpReq("GET", "/")}},
	},
	{
		name:    "namespace",
		rule:    `{name: r, from: {namespaces: [batch, jobs]}}`,
		match:   []req{{src: batch, http: httpReq("GET", "/")}, {src: batch}},
		nomatch: []req{{src: frontend, http: httpReq("GET", "/")}, {src: noNS}, {src: plaintext}},
	},
	{
		name:    "trust domain",
		rule:    `{name: r, from: {trust_domains: [other.example]}}`,
		match:   []req{{src: foreign, http: httpReq("GET", "/")}, {src: foreign}},
		nomatch: []req{{src: frontend, http: httpReq("GET", "/")}, {src: plaintext}},
	},
	{
		name:    "authenticated",
		rule:    `{name: r, from: {authentication: authenticated}}`,
		match:   []req{{src: frontend, http: httpReq("GET", "/")}, {src: foreign}, {src: noNS}},
		nomatch: []req{{src: plaintext, http: httpReq("GET", "/")}, {src: plaintext}},
	},
	{
		name:    "unauthenticated",
		rule:    `{name: r, from: {authentication: unauthenticated}}`,
		match:   []req{{src: plaintext, http: httpReq("GET", "/")}, {src: plaintext}},
		nomatch: []req{{src: frontend, http: httpReq("GET", "/")}, {src: frontend}},
	},
	{
		name:    "port",
		ports:   "[8080, 8443]",
		rule:    `{name: r}`,
		match:   []req{{port: 8080, src: frontend, http: httpReq("GET", "/")}, {port: 8443, src: plaintext}},
		nomatch: []req{{port: 9090, src: frontend, http: httpReq("GET", "/")}, {port: 9090}},
	},
	{
		name:    "method",
		rule:    `{name: r, to: {methods: [GET, HEAD]}}`,
		match:   []req{{src: frontend, http: httpReq("GET", "/x")}, {src: plaintext, http: httpReq("HEAD", "/")}},
		nomatch: []req{{src: frontend, http: httpReq("POST", "/x")}, {src: frontend, http: httpReq("PROPFIND", "/x")}},
	},
	{
		name: "path exact",
		rule: `{name: r, to: {paths: [{type: Exact, value: /healthz}, {type: Exact, value: "/caf%C3%A9"}]}}`,
		match: []req{
			{src: frontend, http: httpReq("GET", "/healthz")},
			{src: frontend, http: httpReq("GET", "/healthz?probe=1")},
			{src: frontend, http: httpReq("GET", "/caf%C3%A9")},
			{src: frontend, http: httpReq("GET", "/x/../healthz")},
		},
		nomatch: []req{
			{src: frontend, http: httpReq("GET", "/healthz/")},
			{src: frontend, http: httpReq("GET", "/healthzz")},
			{src: frontend, http: httpReq("GET", "/HEALTHZ")},
		},
	},
	{
		name: "path prefix on segment boundaries",
		rule: `{name: r, to: {paths: [{value: /api/}]}}`,
		match: []req{
			{src: frontend, http: httpReq("GET", "/api")},
			{src: frontend, http: httpReq("GET", "/api/")},
			{src: frontend, http: httpReq("GET", "/api/v1/items")},
			{src: frontend, http: httpReq("GET", "//api//v1")},
		},
		nomatch: []req{
			{src: frontend, http: httpReq("GET", "/apis")},
			{src: frontend, http: httpReq("GET", "/")},
			{src: frontend, http: httpReq("GET", "/api/../admin")},
			{src: frontend, http: httpReq("GET", "/api/%2e%2e/admin")},
		},
	},
	{
		name: "path regular expression",
		rule: `{name: r, to: {paths: [{type: RegularExpression, value: "/items/[0-9]+"}]}}`,
		match: []req{
			{src: frontend, http: httpReq("GET", "/items/42")},
		},
		nomatch: []req{
			{src: frontend, http: httpReq("GET", "/items/42/edit")}, // anchored at both ends
			{src: frontend, http: httpReq("GET", "/v1/items/42")},
			{src: frontend, http: httpReq("GET", "/items/x")},
		},
	},
	{
		name: "header",
		rule: `{name: r, to: {headers: [{name: x-env, value: prod}, {name: X-Team, type: RegularExpression, value: "pay.*"}]}}`,
		match: []req{
			{src: frontend, http: httpReq("GET", "/", "X-Env", "prod", "X-Team", "payments")},
		},
		nomatch: []req{
			{src: frontend, http: httpReq("GET", "/", "X-Env", "prod")}, // every header must match
			{src: frontend, http: httpReq("GET", "/", "X-Env", "staging", "X-Team", "payments")},
			{src: frontend, http: httpReq("GET", "/", "X-Env", "prod", "X-Env", "staging", "X-Team", "payments")}, // joined: "prod,staging"
		},
	},
	{
		name:    "header presence and host",
		rule:    `{name: r, to: {headers: [{name: authorization, type: RegularExpression, value: ".*"}, {name: host, value: api.example}]}}`,
		match:   []req{{src: frontend, http: httpReq("GET", "http://api.example/", "Authorization", "Bearer x")}},
		nomatch: []req{{src: frontend, http: httpReq("GET", "http://api.example/")}, {src: frontend, http: httpReq("GET", "http://web.example/", "Authorization", "Bearer x")}},
	},
	{
		name: "gRPC service and method",
		rule: `{name: r, to: {grpc: [{service: pkg.Catalog, method: Get}, {type: RegularExpression, service: "pkg\\.Admin.*"}]}}`,
		match: []req{
			{src: frontend, http: grpcReq("pkg.Catalog", "Get")},
			{src: frontend, http: grpcReq("pkg.AdminV2", "Anything")},
			{src: frontend, http: httpReq("POST", "/pkg.Catalog/Get")}, // same path in another protocol
		},
		nomatch: []req{
			{src: frontend, http: grpcReq("pkg.Catalog", "List")},
			{src: frontend, http: grpcReq("pkg.Other", "Get")},
			{src: frontend, http: httpReq("GET", "/pkg.Catalog")},
		},
	},
	{
		name:    "gRPC method of any service",
		rule:    `{name: r, to: {grpc: [{method: Watch}]}}`,
		match:   []req{{src: frontend, http: grpcReq("a.B", "Watch")}, {src: frontend, http: grpcReq("c.D", "Watch")}},
		nomatch: []req{{src: frontend, http: grpcReq("a.B", "Get")}},
	},
	{
		name: "every condition at once",
		rule: `{name: r, from: {namespaces: [default], authentication: authenticated}, to: {methods: [POST], paths: [{value: /orders}]}}`,
		match: []req{
			{src: frontend, http: httpReq("POST", "/orders/1")},
		},
		nomatch: []req{
			{src: batch, http: httpReq("POST", "/orders/1")},
			{src: frontend, http: httpReq("GET", "/orders/1")},
			{src: frontend, http: httpReq("POST", "/admin")},
		},
	},
}

// TestRuleKinds checks every kind of condition in an Allow policy (a match
// is allowed by the rule, anything else denied by the exhaustive allow
// list) and in a Deny policy (a match is denied by the rule, anything else
// allowed by the default).
func TestRuleKinds(t *testing.T) {
	for _, tc := range ruleCases {
		for _, action := range []string{"Allow", "Deny"} {
			t.Run(tc.name+"/"+action, func(t *testing.T) {
				ports := tc.ports
				if ports == "" {
					ports = "[]"
				}
				az := compile(t, fmt.Sprintf("policies: [{name: ns/p, action: %s, ports: %s, rules: [%s]}]", action, ports, tc.rule))
				for _, r := range tc.match {
					d := az.Evaluate(r.request())
					if d.Allowed != (action == "Allow") || d.By.String() != "ns/p:r" {
						t.Errorf("%v: allowed=%v by %q, want allowed=%v by ns/p:r", r, d.Allowed, d.By, action == "Allow")
					}
				}
				for _, r := range tc.nomatch {
					d := az.Evaluate(r.request())
					switch {
					case action == "Deny" && (!d.Allowed || d.By.String() != "default:allow-all"):
						t.Errorf("%v: allowed=%v by %q, want allowed by default:allow-all", r, d.Allowed, d.By)
					case action == "Allow" && r.port == 9090 && (!d.Allowed || d.By.String() != "default:allow-all"):
						t.Errorf("%v: allowed=%v by %q; the policy does not apply to the port, want default:allow-all", r, d.Allowed, d.By)
					case action == "Allow" && r.port != 9090 && (d.Allowed || d.By.String() != "no allow rule matched" || d.By.Policy != "ns/p" || d.By.Rule != authz.NoAllowMatch):
						t.Errorf("%v: allowed=%v by %+v, want denied: no allow rule matched of ns/p", r, d.Allowed, d.By)
					}
				}
			})
		}
	}
}

func TestDefaultPolicies(t *testing.T) {
	callers := []req{
		{src: frontend, http: httpReq("GET", "/")},  // same namespace and trust domain
		{src: batch, http: httpReq("GET", "/")},     // another namespace
		{src: foreign, http: httpReq("GET", "/")},   // namespace default of another trust domain
		{src: plaintext, http: httpReq("GET", "/")}, // no identity
		{src: frontend}, // opaque TCP
		{src: plaintext},
	}
	cases := []struct {
		policy string // "" is the default
		want   []bool // per caller
	}{
		{"", []bool{true, true, true, true, true, true}},
		{"allow-all", []bool{true, true, true, true, true, true}},
		{"deny-all", []bool{false, false, false, false, false, false}},
		{"allow-same-namespace", []bool{true, false, false, false, true, false}},
		{"allow-authenticated", []bool{true, true, true, false, true, false}},
	}
	for _, tc := range cases {
		t.Run("default "+tc.policy, func(t *testing.T) {
			az := compile(t, "default_policy: "+tc.policy)
			name := tc.policy
			if name == "" {
				name = "allow-all"
			}
			for i, c := range callers {
				d := az.Evaluate(c.request())
				if d.Allowed != tc.want[i] || d.By.String() != "default:"+name || d.By.Policy != authz.DefaultPolicyName || d.By.Rule != name {
					t.Errorf("%v: allowed=%v by %+v, want %v by default:%s", c, d.Allowed, d.By, tc.want[i], name)
				}
			}
		})
	}
	t.Run("no authorization at all", func(t *testing.T) {
		for _, az := range []*authz.Authorizer{nil, compile(t, "{}")} {
			if d := az.Evaluate(callers[3].request()); !d.Allowed || d.By.String() != "default:allow-all" {
				t.Errorf("got %+v, want allowed by default:allow-all", d)
			}
		}
	})
	t.Run("same namespace needs this workload's identity", func(t *testing.T) {
		az := compile(t, "default_policy: allow-same-namespace")
		r := callers[0].request()
		r.Self = authz.Identity{}
		if d := az.Evaluate(r); d.Allowed {
			t.Errorf("allowed a caller of namespace default while the workload has no identity")
		}
	})
}

// TestDecisionOrder: deny over allow, allow lists are exhaustive only on
// their ports, and policies on other ports leave the default in charge.
func TestDecisionOrder(t *testing.T) {
	az := compile(t, `
default_policy: deny-all
policies:
- name: ns/allow-frontend
  action: Allow
  ports: [8080]
  rules:
  - {name: frontend, from: {identities: ["spiffe://cluster.local/ns/default/sa/frontend"]}}
  - {name: health, to: {paths: [{type: Exact, value: /healthz}]}}
- name: ns/deny-admin
  action: Deny
  rules:
  - {name: admin, to: {paths: [{value: /admin}]}}
- name: ns/allow-metrics
  action: Allow
  ports: [9090]
- name: ns/deny-batch
  action: Deny
  rules: [{from: {namespaces: [batch]}}]
`)
	cases := []struct {
		r       req
		allowed bool
		by      string
	}{
		{req{src: frontend, http: httpReq("GET", "/api")}, true, "ns/allow-frontend:frontend"},
		{req{src: frontend, http: httpReq("GET", "/admin/users")}, false, "ns/deny-admin:admin"}, // deny over allow
		{req{src: plaintext, http: httpReq("GET", "/healthz")}, true, "ns/allow-frontend:health"},
		{req{src: batch, http: httpReq("GET", "/healthz")}, false, "ns/deny-batch:rule-0"}, // deny over allow again
		{req{src: foreign, http: httpReq("GET", "/api")}, false, "no allow rule matched"},
		{req{port: 9090, src: plaintext, http: httpReq("GET", "/metrics")}, true, "ns/allow-metrics"}, // a policy without rules matches all
		{req{port: 7000, src: frontend, http: httpReq("GET", "/")}, false, "default:deny-all"},
		// A Deny rule with only HTTP conditions denies every opaque TCP
		// connection (fail closed), before ns/deny-batch is looked at.
		{req{port: 9090, src: batch}, false, "ns/deny-admin:admin"},
	}
	for _, tc := range cases {
		d := az.Evaluate(tc.r.request())
		if d.Allowed != tc.allowed || d.By.String() != tc.by || d.WouldDeny {
			t.Errorf("%v on %d: allowed=%v by %q (would deny %v), want allowed=%v by %q", tc.r, tc.r.request().Port, d.Allowed, d.By, d.WouldDeny, tc.allowed, tc.by)
		}
	}
}

// TestOpaqueTCP: only port and caller are known. HTTP conditions never
// match in an Allow rule and always match in a Deny rule.
func TestOpaqueTCP(t *testing.T) {
	cases := []struct {
		name, yaml string
		r          req
		allowed    bool
		by         string
	}{
		{"allow rule with HTTP conditions does not match",
			`policies: [{name: ns/p, action: Allow, rules: [{name: get, from: {namespaces: [default]}, to: {methods: [GET]}}]}]`,
			req{src: frontend}, false, "no allow rule matched"},
		{"allow rule without HTTP conditions matches",
			`policies: [{name: ns/p, action: Allow, rules: [{name: get, to: {methods: [GET]}}, {name: ns, from: {namespaces: [default]}}]}]`,
			req{src: frontend}, true, "ns/p:ns"},
		{"deny rule with HTTP conditions denies when the caller matches",
			`policies: [{name: ns/p, action: Deny, rules: [{name: admin, from: {namespaces: [batch]}, to: {paths: [{value: /admin}]}}]}]`,
			req{src: batch}, false, "ns/p:admin"},
		{"deny rule with HTTP conditions spares other callers",
			`policies: [{name: ns/p, action: Deny, rules: [{name: admin, from: {namespaces: [batch]}, to: {paths: [{value: /admin}]}}]}]`,
			req{src: frontend}, true, "default:allow-all"},
		{"deny rule with only HTTP conditions denies every connection",
			`policies: [{name: ns/p, action: Deny, rules: [{name: grpc, to: {grpc: [{service: pkg.Admin}]}}]}]`,
			req{src: plaintext}, false, "ns/p:grpc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := compile(t, tc.yaml).Evaluate(tc.r.request())
			if d.Allowed != tc.allowed || d.By.String() != tc.by {
				t.Errorf("allowed=%v by %q, want allowed=%v by %q", d.Allowed, d.By, tc.allowed, tc.by)
			}
		})
	}
}

func TestDryRun(t *testing.T) {
	cases := []struct {
		name, yaml string
		r          req
		allowed    bool
		by         string
		wouldDeny  string // "" when not
	}{
		{"dry-run deny never denies",
			`policies: [{name: ns/trial, action: Deny, dry_run: true, rules: [{name: batch, from: {namespaces: [batch]}}]}]`,
			req{src: batch, http: httpReq("GET", "/")}, true, "default:allow-all", "ns/trial:batch"},
		{"dry-run deny that does not match",
			`policies: [{name: ns/trial, action: Deny, dry_run: true, rules: [{name: batch, from: {namespaces: [batch]}}]}]`,
			req{src: frontend, http: httpReq("GET", "/")}, true, "default:allow-all", ""},
		{"dry-run allow list that would exclude the caller",
			`policies: [{name: ns/trial, action: Allow, dry_run: true, rules: [{name: fe, from: {identities: ["spiffe://cluster.local/ns/default/sa/frontend"]}}]}]`,
			req{src: batch, http: httpReq("GET", "/")}, true, "default:allow-all", "no allow rule matched"},
		{"dry-run allow list that admits the caller",
			`policies: [{name: ns/trial, action: Allow, dry_run: true, rules: [{name: fe, from: {identities: ["spiffe://cluster.local/ns/default/sa/frontend"]}}]}]`,
			req{src: frontend, http: httpReq("GET", "/")}, true, "default:allow-all", ""},
		{"dry-run allow does not make an enforced allow list pass",
			`policies: [{name: ns/enforced, action: Allow, rules: [{name: fe, from: {namespaces: [default]}}]},
			            {name: ns/trial, action: Allow, dry_run: true, rules: [{name: all}]}]`,
			req{src: batch, http: httpReq("GET", "/")}, false, "no allow rule matched", ""},
		{"dry-run deny under an enforced allow",
			`policies: [{name: ns/enforced, action: Allow, rules: [{name: fe, from: {namespaces: [default]}}]},
			            {name: ns/trial, action: Deny, dry_run: true, rules: [{name: post, to: {methods: [POST]}}]}]`,
			req{src: frontend, http: httpReq("POST", "/")}, true, "ns/enforced:fe", "ns/trial:post"},
		{"denied requests are not would-deny",
			`default_policy: deny-all
policies: [{name: ns/trial, action: Deny, dry_run: true, rules: [{name: all}]}]`,
			req{src: frontend, http: httpReq("GET", "/")}, false, "default:deny-all", ""},
		{"dry-run on TCP",
			`policies: [{name: ns/trial, action: Deny, dry_run: true, rules: [{name: admin, to: {paths: [{value: /admin}]}}]}]`,
			req{src: frontend}, true, "default:allow-all", "ns/trial:admin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := compile(t, tc.yaml).Evaluate(tc.r.request())
			if d.Allowed != tc.allowed || d.By.String() != tc.by {
				t.Errorf("allowed=%v by %q, want allowed=%v by %q", d.Allowed, d.By, tc.allowed, tc.by)
			}
			if d.WouldDeny != (tc.wouldDeny != "") || d.DryRun.String() != tc.wouldDeny {
				t.Errorf("would deny %v by %q, want %q", d.WouldDeny, d.DryRun, tc.wouldDeny)
			}
		})
	}
}

// TestAllowPathDoesNotAllocate: an ordinary request costs no allocation.
func TestAllowPathDoesNotAllocate(t *testing.T) {
	az := compile(t, `
default_policy: deny-all
policies:
- name: ns/deny
  action: Deny
  rules: [{name: admin, from: {namespaces: [batch]}, to: {paths: [{value: /admin}], headers: [{name: x-debug, type: RegularExpression, value: "1|true"}]}}]
- name: ns/allow
  action: Allow
  ports: [8080]
  rules:
  - {name: grpc, from: {identities: ["spiffe://cluster.local/ns/default/sa/other"]}, to: {grpc: [{type: RegularExpression, service: "pkg\\..*"}]}}
  - {name: api, from: {namespaces: [default], authentication: authenticated}, to: {methods: [GET, POST], paths: [{type: RegularExpression, value: "/api/v[0-9]+/.*"}, {value: /static}], headers: [{name: x-env, value: prod}]}}
- name: ns/trial
  action: Deny
  dry_run: true
  rules: [{name: trial, from: {trust_domains: [other.example]}}]
`)
	hr := httpReq("GET", "/api/v1/items", "X-Env", "prod", "X-Debug", "0")
	var d authz.Decision
	// The Request is built per call, as the proxy does: it must not
	// escape either.
	allocs := testing.AllocsPerRun(100, func() {
		d = az.Evaluate(&authz.Request{Port: 8080, Source: frontend, Self: self, HTTP: hr})
	})
	if !d.Allowed || d.By.String() != "ns/allow:api" {
		t.Fatalf("the request was not allowed by ns/allow:api: %+v", d)
	}
	if allocs != 0 {
		t.Errorf("Evaluate allocates %v times per request on the allow path", allocs)
	}
}

func TestDescribe(t *testing.T) {
	az := compile(t, `
default_policy: allow-authenticated
policies:
- {name: ns/a, action: allow, ports: [80], rules: [{from: {namespaces: [x]}, to: {paths: [{value: /p}], grpc: [{method: M}]}}]}
- {name: ns/d, action: DENY, dry_run: true, rules: [{name: nn, to: {headers: [{name: h, value: v}]}}]}
`)
	b, err := az.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"default_policy":"allow-authenticated"`, `"decider":"ns/a:rule-0"`, `"paths":["PathPrefix /p"]`, `"grpc":["Exact */M"]`, `"tcp":"never matches"`, `"decider":"ns/d:nn"`, `"dry_run":true`, `"tcp":"matches"`, `"action":"Deny"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("description lacks %s:\n%s", want, b)
		}
	}
}
