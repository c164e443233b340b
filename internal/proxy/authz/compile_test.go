package authz_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/authz"
)

// TestCompileErrorsNameTheField: every bad input is refused with its field
// path and a hint of the fix, and every problem of an input is reported.
func TestCompileErrorsNameTheField(t *testing.T) {
	const p = "policies: [{name: ns/p, action: Allow, rules: [%s]}]"
	rule := func(r string) string { return strings.Replace(p, "%s", r, 1) }
	cases := []struct {
		name, yaml string
		want       []string // field path first, then hints
	}{
		{"unknown default", "default_policy: deny", []string{"default_policy", `"deny"`, "allow-all", "deny-all", "allow-same-namespace", "allow-authenticated"}},
		{"nameless policy", "policies: [{action: Allow}]", []string{"policies[0].name", "namespace/name"}},
		{"reserved policy name", "policies: [{name: default, action: Allow}]", []string{"policies[0].name", "default policy"}},
		{"no action", "policies: [{name: ns/p}]", []string{"policies[0].action", "Allow or Deny"}},
		{"unknown action", "policies: [{name: ns/p, action: Audit}]", []string{"policies[0].action", `"Audit"`, "Allow or Deny"}},
		{"bad port", "policies: [{name: ns/p, action: Deny, ports: [80, 0, 70000]}]", []string{"policies[0].ports[1]", "policies[0].ports[2]", "1-65535"}},
		{"duplicate rule names", rule("{name: a}, {name: a}"), []string{"policies[0].rules[1].name", `"a"`, "rules[0]"}},
		{"control character in a rule name", rule(`{name: "a\nb"}`), []string{"policies[0].rules[0].name", "control characters"}},
		{"bad identity", rule("{from: {identities: [frontend]}}"), []string{"policies[0].rules[0].from.identities[0]", "SPIFFE ID"}},
		{"bad namespace", rule(`{from: {namespaces: ["a/b"]}}`), []string{"policies[0].rules[0].from.namespaces[0]", "letters, digits"}},
		{"bad trust domain", rule(`{from: {trust_domains: ["spiffe://td"]}}`), []string{"policies[0].rules[0].from.trust_domains[0]", "without spiffe://"}},
		{"unknown authentication", rule("{from: {authentication: mtls}}"), []string{"policies[0].rules[0].from.authentication", "authenticated, unauthenticated"}},
		{"unauthenticated with an identity", rule(`{from: {authentication: unauthenticated, namespaces: [a]}}`), []string{"policies[0].rules[0].from.authentication", "never matches"}},
		{"lower-case method", rule("{to: {methods: [get]}}"), []string{"policies[0].rules[0].to.methods[0]", "upper case"}},
		{"unknown path type", rule("{to: {paths: [{type: Prefix, value: /a}]}}"), []string{"policies[0].rules[0].to.paths[0].type", "Exact, PathPrefix"}},
		{"relative path", rule("{to: {paths: [{value: /ok}, {type: Exact, value: api}]}}"), []string{"policies[0].rules[0].to.paths[1].value", `"/api"`}},
		{"dot segment in a path", rule("{to: {paths: [{value: /a/../b}]}}"), []string{"policies[0].rules[0].to.paths[0].value", `".."`}},
		{"bad path regex", rule(`{to: {paths: [{type: RegularExpression, value: "/a("}]}}`), []string{"policies[0].rules[0].to.paths[0].value", "does not compile", "RE2"}},
		{"bad header name", rule(`{to: {paths: [{value: /a}, {value: /b}], headers: [{name: "x y", value: v}]}}`), []string{"policies[0].rules[0].to.headers[0].name", "header name"}},
		{"empty header value", rule(`{to: {headers: [{name: x, value: ""}]}}`), []string{"policies[0].rules[0].to.headers[0].value", `".*"`}},
		{"header twice", rule(`{to: {headers: [{name: x-a, value: "1"}, {name: X-A, value: "2"}]}}`), []string{"policies[0].rules[0].to.headers[1].name", "headers[0]"}},
		{"unknown header type", rule(`{to: {headers: [{name: x, type: Prefix, value: v}]}}`), []string{"policies[0].rules[0].to.headers[0].type", "Exact (the default) or RegularExpression"}},
		{"bad header regex", rule(`{to: {headers: [{name: x, type: RegularExpression, value: "[" }]}}`), []string{"policies[0].rules[0].to.headers[0].value", "does not compile"}},
		{"empty grpc match", rule(`{to: {grpc: [{type: Exact}]}}`), []string{"policies[0].rules[0].to.grpc[0]", "neither service nor method"}},
		{"bad grpc service", rule(`{to: {grpc: [{service: "pkg/Svc"}]}}`), []string{"policies[0].rules[0].to.grpc[0].service", "package.Service"}},
		{"bad grpc method regex", rule(`{to: {grpc: [{}, {type: RegularExpression, method: "Get("}]}}`), []string{"policies[0].rules[0].to.grpc[1].method", "does not compile", "policies[0].rules[0].to.grpc[0]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			az, err := authz.Compile(parse(t, tc.yaml))
			if err == nil {
				t.Fatalf("accepted; compiled to %+v", az.Describe())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			var ce *authz.CompileError
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("error is not a *CompileError with problems: %#v", err)
			}
			for _, p := range ce.Problems {
				if p.Field == "" || p.Problem == "" || strings.HasPrefix(p.Field, "matches") {
					t.Errorf("problem without a field path of this package: %+v", p)
				}
			}
		})
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	_, err := authz.Compile(parse(t, `
default_policy: nope
policies:
- {name: "", action: Allow}
- {name: ns/p, action: Allow, rules: [{to: {methods: [get], paths: [{value: x}]}}]}
`))
	var ce *authz.CompileError
	if !errors.As(err, &ce) || len(ce.Problems) != 4 {
		t.Fatalf("want 4 problems, got %v", err)
	}
}

func TestValidPoliciesCompile(t *testing.T) {
	for _, y := range []string{
		"{}",
		"default_policy: deny-all",
		"policies: [{name: ns/p, action: Allow}]",
		"policies: [{name: ns/p, action: deny, ports: [1, 65535], rules: [{}, {from: {}, to: {}}]}]",
		`policies: [{name: ns/p, action: Allow, rules: [{to: {paths: [{type: RegularExpression, value: ".*"}], headers: [{name: Host, value: a.example}], grpc: [{type: RegularExpression, service: ".*", method: ".*"}]}}]}]`,
		// The same name twice: a control plane may split one resource.
		"policies: [{name: ns/p, action: Allow, ports: [80]}, {name: ns/p, action: Allow, ports: [81]}]",
	} {
		if _, err := authz.Compile(parse(t, y)); err != nil {
			t.Errorf("%s: %v", y, err)
		}
	}
}
