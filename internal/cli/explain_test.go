package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/explain"
)

var update = flag.Bool("update", false, "rewrite the golden files of weft explain under testdata/explain")

// explainDir is the mesh directory of a scenario.
func explainDir(scenario string) string {
	return filepath.Join("testdata", "explain", scenario, "mesh")
}

// TestExplainGolden runs weft explain on the scenarios' mesh directories
// and compares the text output with testdata/explain/<scenario>/<golden>.golden
// (go test -run TestExplainGolden -update rewrites them). Each case also
// names lines the explanation must hold, so a golden file rewritten with a
// wrong explanation still fails.
func TestExplainGolden(t *testing.T) {
	tests := []struct {
		name     string
		scenario string
		golden   string
		args     []string
		wantErr  bool
		want     []string
	}{
		{
			name: "canary chosen by header", scenario: "canary", golden: "header",
			args: []string{"--from", "shop/frontend-1", "--to", "web.shop:80", "--path", "/api/items", "--header", "x-canary=true"},
			want: []string{
				"route: HTTPRoute shop/web-canary rule 0 matched by its match 0 (header x-canary Exact true)",
				"HTTPRoute shop/web-canary#1 (no matches: the rule takes every request)",
				"request filters: header X-Canary removed; header X-Routed: canary (added)",
				"backends: web-v2.shop:80 weight 1 (100%)",
				"10.1.2.1:8080 shop/web-v2-1 weight 1: mTLS, the peer must present spiffe://weft.local/ns/shop/sa/web",
				"verdict: allowed: 100% to web-v2.shop:80; it reaches shop/web-v2-1",
			},
		},
		{
			name: "canary split by weight", scenario: "canary", golden: "split",
			args: []string{"--from", "shop/frontend-1", "--to", "web.shop", "--path", "/api/items"},
			want: []string{
				"route: HTTPRoute shop/web-canary rule 1 matched: it has no matches, so it takes every request; it is the only one of the 2 rules attached that matches",
				"backends: web-v1.shop:80 weight 90 (90%), web-v2.shop:80 weight 10 (10%)",
				"web-v2.shop:80's backendRef filters: header X-Routed: canary-share (added)",
				"timeouts: request 3s including retries (then 504, gRPC DEADLINE_EXCEEDED), each try 1s",
				"shop/web-v1-1 port 8080", "shop/web-v1-2 port 8080", "shop/web-v2-1 port 8080",
			},
		},
		{
			name: "denied by a Deny rule", scenario: "deny", golden: "deny",
			args: []string{"--from", "batch/report-1", "--to", "shop/payments", "--path", "/admin/refunds"},
			want: []string{
				"authorization: DENIED by rule no-batch-admin of AuthorizationPolicy shop/payments-guard (Deny: a matching Deny rule decides before any Allow rule)",
				"policies on port 8080: shop/payments-clients Allow, shop/payments-guard Deny",
				"verdict: denied: 100% to payments.shop:8080; refused at shop/payments-1 (denied by shop/payments-guard:no-batch-admin): the caller gets 403",
			},
		},
		{
			name: "the same caller allowed elsewhere", scenario: "deny", golden: "allow",
			args: []string{"--from", "batch/report-1", "--to", "payments.shop:http", "--path", "/reports/2026-03"},
			want: []string{"authorization: ALLOWED by rule batch-reports of AuthorizationPolicy shop/payments-clients (Allow; no Deny rule matches)"},
		},
		{
			name: "allowed with a dry-run would-deny", scenario: "dry-run", golden: "dry-run",
			args: []string{"--from", "shop/legacy-1", "--to", "orders.shop", "--method", "POST", "--path", "/orders"},
			want: []string{
				"authorization: ALLOWED by rule shop-callers of AuthorizationPolicy shop/orders-clients",
				"policies on port 8080: shop/legacy-writes Deny (dry run), shop/orders-clients Allow; default policy deny-all (set by its Namespace's weft.dev/default-inbound-policy annotation)",
				"dry run: would be DENIED by rule legacy-post of AuthorizationPolicy shop/legacy-writes",
			},
		},
		{
			name: "strict mTLS port refuses a plaintext caller", scenario: "strict-mtls", golden: "plaintext",
			args: []string{"--from", "finance/batch-vm", "--to", "ledger.finance:443", "--path", "/v1/entries"},
			want: []string{
				"2. routing: finance/batch-vm has no proxy",
				"mTLS: strict, set by MutualTLSPolicy finance/ledger-strict; the caller connects in plaintext: REFUSED, the port requires mTLS",
				"authorization: not reached",
				"verdict: denied",
			},
		},
		{
			name: "strict mTLS port accepts a meshed caller", scenario: "strict-mtls", golden: "meshed",
			args: []string{"--from", "finance/billing-1", "--to", "ledger.finance:443", "--path", "/v1/entries"},
			want: []string{"mTLS: strict, set by MutualTLSPolicy finance/ledger-strict; the hop is mTLS from the caller's proxy: accepted"},
		},
		{
			name: "a port entry keeps metrics permissive", scenario: "strict-mtls", golden: "metrics",
			args: []string{"--from", "finance/batch-vm", "--to", "ledger.finance:metrics", "--path", "/metrics"},
			want: []string{"mTLS: permissive, set by MutualTLSPolicy finance/ledger-strict (its ports entry for this port); the caller connects in plaintext: accepted (permissive)"},
		},
		{
			name: "retry policy with its budget and breaker", scenario: "retry-budget", golden: "retry",
			args: []string{"--from", "shop/checkout-1", "--to", "inventory.shop", "--path", "/stock/42"},
			want: []string{
				"route: HTTPRoute shop/inventory-reads rule 0 matched by its match 0 (path PathPrefix /stock, method GET)",
				"retry: up to 3 retries of this GET on connect failures (on another endpoint), status 502, 503, 504; backoff 50ms to 250ms",
				"retry budget 10% of requests + 5/s over 5s (RetryBudget shop/inventory-budget)",
				"circuit breaker: at most 200 requests in flight, 50 more wait up to 100ms, then 503 at once; outlier detection ejects an endpoint after 3 consecutive failures",
				"(CircuitBreaker shop/inventory-breaker)",
				"10.1.5.2:8080 shop/inventory-2 weight 1: mTLS to its proxy at 10.1.5.2:4143",
				"the application calls it at 127.0.0.1:15000",
			},
		},
		{
			name: "a POST is not retried on statuses", scenario: "retry-budget", golden: "post",
			args: []string{"--from", "shop/checkout-1", "--to", "inventory.shop", "--method", "POST", "--path", "/stock/42"},
			want: []string{"route: no route matched (the only rule attached does not match POST /stock/42)", "retry: none (no rule matched)"},
		},
		{
			name: "no route matched", scenario: "no-route", golden: "no-route",
			args: []string{"--from", "shop/mobile-bff-1", "--to", "api.shop", "--method", "POST", "--path", "/v1/carts"},
			want: []string{
				"route: no route matched (the only rule attached does not match POST /v1/carts): the request goes to the service's own endpoints",
				"backends: api.shop:80 (100%)",
				"shop/api-1 port 8080",
			},
		},
		{
			name: "a rewrite to the new API", scenario: "no-route", golden: "rewrite",
			args: []string{"--from", "shop/mobile-bff-1", "--to", "api.shop", "--path", "/v2/carts?id=7"},
			want: []string{"request filters: path /v2/carts?id=7 -> /carts?id=7", "backends: api-v2.shop:80 weight 1 (100%)"},
		},
		{
			name: "gRPC method route and rule", scenario: "grpc", golden: "grpc",
			args: []string{"--from", "shop/frontend-1", "--to", "catalog.shop", "--grpc", "shop.Catalog/GetItem"},
			want: []string{
				"route: GRPCRoute shop/catalog-lookups rule 0 matched by its match 0 (grpc Exact shop.Catalog/GetItem)",
				"authorization: ALLOWED by rule shop-reads of AuthorizationPolicy shop/cache-readers",
			},
		},
		{
			name: "gRPC method the allow list leaves out", scenario: "grpc", golden: "grpc-denied",
			args: []string{"--from", "shop/frontend-1", "--to", "catalog-cache.shop:grpc", "--grpc", "shop.Catalog/UpdateItem"},
			want: []string{
				"route: no route is attached to catalog-cache.shop:9090",
				"authorization: DENIED by AuthorizationPolicy shop/cache-readers: it allows some requests on port 9090 and none of its rules (nor any other Allow rule) matches this one",
				"the caller gets gRPC PERMISSION_DENIED",
			},
		},
		{
			name: "invalid files are reported, the rest explained", scenario: "broken-file", golden: "broken",
			args: []string{"--from", "shop/frontend-1", "--to", "web.shop:80"},
			want: []string{
				`resources: testdata/explain/broken-file/mesh/web-v3.yaml:8: spec.ports[0].appProtocl: unknown field "appProtocl"`,
				"web.shop:80: the backendRef shop/web-v3:80 resolves to no service port, so the control plane gives it weight 0",
				"backends: web-v1.shop:80 weight 80 (88.89%), web-v2.shop:80 weight 10 (11.11%), web.shop:80 weight 0 (0%)",
			},
		},
		{
			name: "unknown service", scenario: "canary", golden: "unknown-service", wantErr: true,
			args: []string{"--from", "shop/frontend-1", "--to", "webb.shop:80"},
			want: []string{"--to webb.shop: there is no service webb.shop; did you mean web.shop"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"explain", "--dir", explainDir(tt.scenario)}, tt.args...)
			out, err := run(t, args...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("weft %s: error %v, want error: %v\n%s", strings.Join(args, " "), err, tt.wantErr, out)
			}
			if err != nil {
				out = "error: " + err.Error() + "\n"
			}
			golden := filepath.Join("testdata", "explain", tt.scenario, tt.golden+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if out != string(want) {
				t.Errorf("output differs from %s (rerun with -update if the change is right):\n%s", golden, lineDiff(string(want), out))
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("the explanation lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// lineDiff shows the first line where two texts differ.
func lineDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\nwant: " + w + "\n got: " + g
		}
	}
	return "(same lines)"
}

// explainJSON runs weft explain -o json and decodes its output.
func explainJSON(t *testing.T, scenario string, args ...string) explain.Explanation {
	t.Helper()
	out, err := run(t, append([]string{"explain", "-o", "json", "--dir", explainDir(scenario)}, args...)...)
	if err != nil {
		t.Fatalf("weft explain -o json: %v", err)
	}
	var e explain.Explanation
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("decoding the JSON output: %v\n%s", err, out)
	}
	return e
}

// TestExplainJSONCanary checks the JSON output of the weighted canary split
// field by field.
func TestExplainJSONCanary(t *testing.T) {
	e := explainJSON(t, "canary", "--from", "shop/frontend-1", "--to", "web.shop:80", "--path", "/api/items")
	if r := e.Request; r.From != "shop/frontend-1" || r.Service != "shop/web" || r.Port != 80 || r.To != "web.shop:80" ||
		r.Protocol != "http1" || r.Method != "GET" || r.Path != "/api/items" || r.Host != "web.shop" {
		t.Errorf("request = %+v", r)
	}
	if c := e.Caller; c.Workload != "shop/frontend-1" || c.Identity != "spiffe://weft.local/ns/shop/sa/frontend" || !c.Meshed ||
		c.Mode != "transparent" || strings.Join(c.Addresses, ",") != "10.96.0.10:80" ||
		strings.Join(c.Services, ",") != "web-v1.shop:80,web-v2.shop:80,web.shop:80" {
		t.Errorf("caller = %+v", c)
	}
	rt := e.Routing
	if rt.Outcome != "forward" || rt.Matched == nil {
		t.Fatalf("routing = %+v", rt)
	}
	if m := *rt.Matched; m.Route != "shop/web-canary" || m.Kind != "HTTPRoute" || m.Rule != 1 || m.MatchIndex != -1 {
		t.Errorf("matched = %+v, want shop/web-canary rule 1 (no matches)", m)
	}
	if rt.Timeouts != (explain.Timeouts{Request: "3s", Backend: "1s"}) || rt.Retry != nil || rt.Redirect != nil || len(rt.RequestChanges) != 0 {
		t.Errorf("routing policies = %+v", rt)
	}
	if len(e.Backends) != 2 {
		t.Fatalf("backends = %+v", e.Backends)
	}
	v1, v2 := e.Backends[0], e.Backends[1]
	if v1.Service != "web-v1.shop:80" || v1.Weight != 90 || v1.Share != 0.9 || len(v1.Endpoints) != 2 || len(v1.RequestChanges) != 0 {
		t.Errorf("backend 0 = %+v", v1)
	}
	if v2.Service != "web-v2.shop:80" || v2.Weight != 10 || v2.Share != 0.1 || len(v2.Endpoints) != 1 ||
		strings.Join(v2.RequestChanges, ";") != "header X-Routed: canary-share (added)" {
		t.Errorf("backend 1 = %+v", v2)
	}
	if b := v1.RetryBudget; b.RetryRatio != 0.2 || b.MinRetriesPerSecond != 10 || b.TTL != "10s" || b.SetBy != "" {
		t.Errorf("web-v1's retry budget = %+v, want the default", b)
	}
	if cb := v1.CircuitBreaker; cb.MaxRequests != 0 || cb.Outlier == nil || cb.Outlier.ConsecutiveFailures != 5 || cb.Adaptive != nil {
		t.Errorf("web-v1's circuit breaker = %+v, want the default", cb)
	}
	if ep := v2.Endpoints[0]; ep.Address != "10.1.2.1:8080" || ep.Workload != "shop/web-v2-1" || ep.Identity != "spiffe://weft.local/ns/shop/sa/web" ||
		ep.Weight != 1 || ep.Hop != "mtls" || ep.ProxyAddress != "" {
		t.Errorf("web-v2's endpoint = %+v", ep)
	}
	var got []string
	for _, d := range e.Destinations {
		got = append(got, d.Workload+"@"+d.Backend)
		if !d.Allowed || !d.Meshed || d.Port != 8080 || d.MTLS == nil || d.MTLS.Mode != "permissive" || d.MTLS.Policy != "" ||
			d.MTLS.Hop != "mtls" || !d.MTLS.Accepted {
			t.Errorf("destination %s: %+v, mtls %+v", d.Workload, d, d.MTLS)
		}
		if a := d.Authorization; a == nil || !a.Evaluated || !a.Allowed || a.Policy != "default" || a.Rule != "allow-all" ||
			a.By != "default:allow-all" || a.DefaultPolicy != "allow-all" || a.DefaultSetBy != "mesh" || a.WouldDeny || len(a.Policies) != 0 {
			t.Errorf("destination %s: authorization %+v", d.Workload, d.Authorization)
		}
	}
	if strings.Join(got, ",") != "shop/web-v1-1@web-v1.shop:80,shop/web-v1-2@web-v1.shop:80,shop/web-v2-1@web-v2.shop:80" {
		t.Errorf("destinations = %v", got)
	}
	if len(e.Problems) != 0 {
		t.Errorf("problems = %+v", e.Problems)
	}
	if e.Verdict != "allowed: 90% to web-v1.shop:80, 10% to web-v2.shop:80; it reaches shop/web-v1-1, shop/web-v1-2, shop/web-v2-1" {
		t.Errorf("verdict = %q", e.Verdict)
	}
}

// TestExplainJSONPolicies checks the authorization and mTLS fields of the
// JSON output: the deciding rule, the dry-run policy that would deny, the
// default policy's origin, the mTLS policy of a port.
func TestExplainJSONPolicies(t *testing.T) {
	e := explainJSON(t, "dry-run", "--from", "shop/legacy-1", "--to", "orders.shop", "--method", "POST", "--path", "/orders")
	if len(e.Destinations) != 1 || e.Destinations[0].Authorization == nil {
		t.Fatalf("destinations = %+v", e.Destinations)
	}
	d := e.Destinations[0]
	a := d.Authorization
	if !d.Allowed || !a.Allowed || a.Policy != "shop/orders-clients" || a.Rule != "shop-callers" || a.By != "shop/orders-clients:shop-callers" {
		t.Errorf("decision = %+v, want allowed by shop/orders-clients:shop-callers", a)
	}
	if !a.WouldDeny || a.DryRunPolicy != "shop/legacy-writes" || a.DryRunRule != "legacy-post" {
		t.Errorf("dry run = %+v, want a would-deny by shop/legacy-writes:legacy-post", a)
	}
	if a.DefaultPolicy != "deny-all" || a.DefaultSetBy != "namespace" {
		t.Errorf("default policy %s set by %s, want deny-all set by the namespace", a.DefaultPolicy, a.DefaultSetBy)
	}

	e = explainJSON(t, "deny", "--from", "batch/report-1", "--to", "payments.shop", "--path", "/admin/refunds")
	if a := e.Destinations[0].Authorization; e.Destinations[0].Allowed || a.Allowed || a.Policy != "shop/payments-guard" || a.Rule != "no-batch-admin" {
		t.Errorf("decision = %+v, want denied by shop/payments-guard:no-batch-admin", a)
	}

	e = explainJSON(t, "strict-mtls", "--from", "finance/batch-vm", "--to", "ledger.finance:443")
	if e.Caller.Meshed || e.Caller.Identity != "" || e.Routing.Outcome != "no-proxy" {
		t.Errorf("caller %+v, routing %+v: want no proxy", e.Caller, e.Routing)
	}
	d = e.Destinations[0]
	if m := d.MTLS; d.Allowed || m == nil || m.Mode != "strict" || m.Policy != "finance/ledger-strict" || m.PortEntry || m.Hop != "plaintext" || m.Accepted {
		t.Errorf("destination %+v, mtls %+v: want refused by the strict policy finance/ledger-strict", d, d.MTLS)
	}
	if a := d.Authorization; a == nil || a.Evaluated {
		t.Errorf("authorization %+v: want not evaluated", a)
	}

	e = explainJSON(t, "strict-mtls", "--from", "finance/batch-vm", "--to", "ledger.finance:9102")
	if m := e.Destinations[0].MTLS; m == nil || m.Mode != "permissive" || m.Policy != "finance/ledger-strict" || !m.PortEntry || !m.Accepted {
		t.Errorf("metrics port mtls = %+v, want permissive by the ports entry of finance/ledger-strict", m)
	}
}

// TestExplainFlagErrors: bad flag values and unknown names say what is
// allowed or what is close.
func TestExplainFlagErrors(t *testing.T) {
	dir := explainDir("canary")
	tests := []struct {
		name     string
		args     []string
		want     string
		notFound bool
	}{
		{"output", []string{"--from", "shop/frontend-1", "--to", "web.shop", "-o", "yaml"}, `-o "yaml": use text or json`, false},
		{"missing --from", []string{"--to", "web.shop"}, "--from and --to are required", false},
		{"method", []string{"--from", "shop/frontend-1", "--to", "web.shop", "--method", "get"}, `--method "get": use one of GET, HEAD, POST`, false},
		{"header", []string{"--from", "shop/frontend-1", "--to", "web.shop", "--header", "x-canary"}, `--header "x-canary": want name=value`, false},
		{"grpc", []string{"--from", "shop/frontend-1", "--to", "web.shop", "--grpc", "GetItem"}, `--grpc "GetItem": want package.Service/Method`, false},
		{"grpc and path", []string{"--from", "shop/frontend-1", "--to", "web.shop", "--grpc", "a.B/C", "--path", "/x"}, "--grpc sets the path (/a.B/C); drop --path /x", false},
		{"path", []string{"--from", "shop/frontend-1", "--to", "web.shop", "--path", "api"}, `--path "api": want an absolute path`, false},
		{"from", []string{"--from", "frontend-1", "--to", "web.shop"}, `--from "frontend-1": want namespace/workload`, false},
		{"to", []string{"--from", "shop/frontend-1", "--to", "web"}, `--to "web": want service.namespace[:port] or namespace/service[:port]`, false},
		{"default inbound policy", []string{"--from", "shop/frontend-1", "--to", "web.shop", "--default-inbound-policy", "open"},
			`mesh default inbound policy "open" is unknown; use allow-all, deny-all, allow-same-namespace or allow-authenticated`, false},
		{"root namespace", []string{"--from", "shop/frontend-1", "--to", "web.shop", "--root-namespace", "Weft"}, `mesh root namespace "Weft" is not a namespace name`, false},
		{"trust domain", []string{"--from", "shop/frontend-1", "--to", "web.shop", "--trust-domain", "weft local"}, `--trust-domain "weft local": not a SPIFFE trust domain`, false},
		{"directory", []string{"--dir", filepath.Join(dir, "nope"), "--from", "shop/frontend-1", "--to", "web.shop"}, "--dir: file source:", false},
		{"unknown workload", []string{"--from", "shop/fronted-1", "--to", "web.shop"},
			"--from shop/fronted-1: there is no workload shop/fronted-1; did you mean shop/frontend-1? (workloads: shop/frontend-1, shop/web-v1-1, shop/web-v1-2, shop/web-v2-1)", true},
		{"workload in another namespace", []string{"--from", "default/frontend-1", "--to", "web.shop"}, "did you mean shop/frontend-1?", true},
		{"unknown port", []string{"--from", "shop/frontend-1", "--to", "web.shop:8080"}, "--to web.shop:8080: the service has no port 8080; its ports: 80 (http)", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"explain", "--dir", dir}, tt.args...)
			_, err := run(t, args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("weft %s: error %v, want one containing %q", strings.Join(args, " "), err, tt.want)
			}
			if errors.Is(err, explain.ErrNotFound) != tt.notFound {
				t.Errorf("errors.Is(err, ErrNotFound) = %v, want %v", !tt.notFound, tt.notFound)
			}
		})
	}
}
