package authz_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/proxy/authz"
)

var compileSeeds = []string{
	"{}",
	"default_policy: allow-same-namespace",
	`policies: [{name: ns/p, action: Allow, ports: [8080], rules: [{name: r, from: {identities: ["spiffe://td/ns/a/sa/b"], namespaces: [a], trust_domains: [td], authentication: authenticated}, to: {methods: [GET], paths: [{type: Exact, value: /a}, {value: /b/}, {type: RegularExpression, value: "/c.*"}], headers: [{name: x, value: y}, {name: z, type: RegularExpression, value: ".*"}], grpc: [{service: a.B, method: C}, {type: RegularExpression, method: "D.*"}]}}]}]`,
	`policies: [{name: ns/d, action: Deny, dry_run: true, rules: [{to: {paths: [{value: /admin}]}}]}]`,
	`policies: [{name: "", action: Allow, ports: [0], rules: [{name: a}, {name: a, to: {paths: [{type: Exact, value: "a//b"}]}}]}]`,
	`default_policy: x
policies: [{name: default, action: x, rules: [{from: {authentication: unauthenticated, identities: [x]}, to: {methods: [get], headers: [{name: "", value: ""}], grpc: [{type: Regex}]}}]}]`,
}

// fuzzRequests are evaluated against every policy set FuzzCompile compiles.
func fuzzRequests() []*authz.Request {
	id := authz.NewIdentity(spiffeid.RequireFromString("spiffe://td/ns/a/sa/b"))
	return []*authz.Request{
		{Port: 8080, Source: id, Self: id, HTTP: httpReq("GET", "/a")},
		{Port: 8080, Source: id, Self: id, HTTP: grpcReq("a.B", "C")},
		{Port: 1, HTTP: httpReq("POST", "/b/../c//d", "X", "y", "Z", "1", "Z", "2")},
		{Port: 8080, Source: id},
		{Port: 0},
		{Port: 8080, HTTP: &http.Request{}}, // no URL, no headers
	}
}

// FuzzCompile: compiling any Authorization never panics; one that compiles
// evaluates any request without panicking, describes itself, and compiles
// again from the same message.
func FuzzCompile(f *testing.F) {
	for _, s := range compileSeeds {
		f.Add([]byte(s))
	}
	reqs := fuzzRequests()
	f.Fuzz(func(t *testing.T, data []byte) {
		js, err := yaml.YAMLToJSON(data)
		if err != nil {
			return
		}
		a := &weftv1.Authorization{}
		if protojson.Unmarshal(js, a) != nil {
			return
		}
		az, err := authz.Compile(a)
		if err != nil {
			if !strings.Contains(err.Error(), ": ") {
				t.Fatalf("error without a field path: %v", err)
			}
			return
		}
		for _, r := range reqs {
			d := az.Evaluate(r)
			if d.By.String() == "" && d.By.Policy == "" {
				t.Fatalf("decision without a decider: %+v", d)
			}
			if d.WouldDeny && !d.Allowed {
				t.Fatalf("a denied request is reported as would-deny: %+v", d)
			}
		}
		if _, err := az.MarshalJSON(); err != nil {
			t.Fatalf("describing: %v", err)
		}
		if _, err := authz.Compile(a); err != nil {
			t.Fatalf("compiling the same message again failed: %v", err)
		}
	})
}

// FuzzEvaluate: evaluating any request against a fixed policy set never
// panics, and a path under /admin (however it is written) never gets past
// the Deny on /admin, nor an allow on /public stretch to other paths.
func FuzzEvaluate(f *testing.F) {
	az, err := authz.Compile(parse(f, `
default_policy: deny-all
policies:
- name: ns/deny-admin
  action: Deny
  rules: [{name: admin, to: {paths: [{value: /admin}]}}]
- name: ns/allow
  action: Allow
  rules:
  - {name: public, to: {paths: [{value: /public}]}}
  - {name: grpc, from: {namespaces: [a]}, to: {grpc: [{type: RegularExpression, service: "pkg\\..*", method: "Get.*"}], headers: [{name: x-env, type: RegularExpression, value: "p.*"}]}}
  - {name: tcp, from: {trust_domains: [td]}}
- name: ns/trial
  action: Deny
  dry_run: true
  rules: [{name: post, to: {methods: [POST]}}]
`))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []struct {
		method, path, header, id string
		port                     uint16
		http                     bool
	}{
		{"GET", "/public/x", "prod", "spiffe://td/ns/a/sa/b", 80, true},
		{"GET", "/public/../admin", "", "", 80, true},
		{"POST", "//admin", "", "", 80, true},
		{"GET", "/public/%2e%2e/admin", "", "", 80, true},
		{"POST", "/pkg.Svc/GetX", "p,q", "spiffe://td/ns/a/sa/b", 80, true},
		{"", "", "", "spiffe://td/ns/a/sa/b", 5432, false},
		{"GET", "*", "", "", 0, true},
	} {
		f.Add(s.method, s.path, s.header, s.id, s.port, s.http)
	}
	f.Fuzz(func(t *testing.T, method, path, header, id string, port uint16, isHTTP bool) {
		r := &authz.Request{Port: port}
		if sid, err := spiffeid.FromString(id); err == nil {
			r.Source = authz.NewIdentity(sid)
			r.Self = r.Source
		}
		var u *url.URL
		if isHTTP {
			u = &url.URL{Path: path}
			r.HTTP = &http.Request{Method: method, URL: u, Header: http.Header{"X-Env": {header, header}}, Host: header, ProtoMajor: 2}
		}
		d := az.Evaluate(r)
		if d.WouldDeny && !d.Allowed {
			t.Fatalf("a denied request is reported as would-deny: %+v", d)
		}
		if !isHTTP {
			return
		}
		if u.Path != path {
			t.Fatalf("Evaluate changed the request path from %q to %q", path, u.Path)
		}
		clean := canonical(path)
		if (clean == "/admin" || strings.HasPrefix(clean, "/admin/")) && d.Allowed {
			t.Fatalf("%s %q (%q) was allowed by %v despite the deny on /admin", method, path, clean, d.By)
		}
		if d.Allowed && d.By.String() == "ns/allow:public" && clean != "/public" && !strings.HasPrefix(clean, "/public/") {
			t.Fatalf("%q (%q) was allowed as under /public", path, clean)
		}
	})
}

// canonical is an independent, slow reading of the path normalisation:
// resolve dot segments and empty segments with a stack.
func canonical(p string) string {
	var stack []string
	parts := strings.Split(p, "/")
	for _, s := range parts {
		switch s {
		case "", ".":
		case "..":
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		default:
			stack = append(stack, s)
		}
	}
	return "/" + strings.Join(stack, "/")
}
