package file

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/translate"
)

// TestSecurityProblems adds one file, p.yaml, to the fixture mesh per case
// and checks every problem it causes, exactly, and whether its object is
// served.
func TestSecurityProblems(t *testing.T) {
	const (
		authz   = "apiVersion: policy.weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: shop}\nspec:\n"
		mtls    = "apiVersion: policy.weft.dev/v1alpha1\nkind: MutualTLSPolicy\nmetadata: {name: p, namespace: shop}\nspec:\n"
		ignored = "; the document is ignored until it is fixed"
	)
	authzKey := model.Key{Kind: model.KindAuthorization, Namespace: "shop", Name: "p"}
	mtlsKey := model.Key{Kind: model.KindMutualTLS, Namespace: "shop", Name: "p"}
	cases := []struct {
		name    string
		content string
		want    []string // every problem of p.yaml in Load's order (line, field), as Problem.String() with the path relative
		key     model.Key
		served  bool
	}{
		{
			name:    "valid, with defaults",
			content: authz + "  action: Deny\n",
			key:     authzKey, served: true,
		},
		{
			name:    "unknown field",
			content: authz + "  acton: Allow\n",
			want:    []string{`p.yaml:5: spec.acton: unknown field "acton" (did you mean "action"?)` + ignored},
			key:     authzKey,
		},
		{
			name:    "no action",
			content: authz + "  mode: DryRun\n",
			want:    []string{"p.yaml:4: spec.action: an action is required; use Allow or Deny" + ignored},
			key:     authzKey,
		},
		{
			name:    "bad action and mode",
			content: authz + "  action: allow\n  mode: Audit\n",
			want: []string{
				`p.yaml:5: spec.action: unknown action "allow"; use Allow or Deny` + ignored,
				`p.yaml:6: spec.mode: unknown mode "Audit"; use Enforce (the default) or DryRun` + ignored,
			},
			key: authzKey,
		},
		{
			name:    "targetRef of another kind",
			content: authz + "  action: Deny\n  targetRefs:\n  - {group: apps, kind: Deployment, name: web}\n  - {group: \"\", kind: Workload, name: web-1}\n",
			want: []string{
				`p.yaml:7: spec.targetRefs[0].kind: a policy targets a Service (group: "", kind: Service) or a Workload (group: weft.dev, kind: Workload), not Deployment of group apps` + ignored,
				`p.yaml:8: spec.targetRefs[1].group: a policy targets a Service (group: "", kind: Service) or a Workload (group: weft.dev, kind: Workload), not Workload` + ignored,
			},
			key: authzKey,
		},
		{
			name:    "targetRef without a name, twice",
			content: authz + "  action: Deny\n  targetRefs:\n  - {group: \"\", kind: Service}\n  - {group: \"\", kind: Service}\n",
			want: []string{
				"p.yaml:7: spec.targetRefs[0].name: a name is required" + ignored,
				"p.yaml:8: spec.targetRefs[1]: the same target as targetRefs[0]" + ignored,
				"p.yaml:8: spec.targetRefs[1].name: a name is required" + ignored,
			},
			key: authzKey,
		},
		{
			name:    "sectionName on a Workload, or not a port",
			content: authz + "  action: Deny\n  targetRefs:\n  - {group: weft.dev, kind: Workload, name: web-1, sectionName: http}\n  - {group: \"\", kind: Service, name: web, sectionName: \"http port\"}\n  - {group: \"\", kind: Service, name: web, sectionName: 0}\n",
			want: []string{
				"p.yaml:7: spec.targetRefs[0].sectionName: sectionName applies to a Service target only; to limit a policy to some of a Workload's ports, " +
					"use rules[].to.ports (AuthorizationPolicy) or spec.ports (MutualTLSPolicy)" + ignored,
				`p.yaml:8: spec.targetRefs[1].sectionName: "http port" is neither a port number nor a valid port name: ` +
					"must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)" + ignored,
				"p.yaml:9: spec.targetRefs[2].sectionName: 0 is not a TCP port (1-65535)" + ignored,
			},
			key: authzKey,
		},
		{
			name: "sources that do not parse",
			content: authz + "  action: Allow\n  rules:\n  - from:\n      identities: [\"spiffe://weft.local/ns/shop/sa/web/\", web]\n" +
				"      namespaces: [Shop]\n      trustDomains: [\"weft local\"]\n      authentication: mTLS\n",
			want: []string{
				`p.yaml:8: spec.rules[0].from.identities[0]: "spiffe://weft.local/ns/shop/sa/web/" is not a SPIFFE ID (spiffe://<trust-domain>/<path>): path cannot have a trailing slash` + ignored,
				`p.yaml:8: spec.rules[0].from.identities[1]: "web" is not a SPIFFE ID (spiffe://<trust-domain>/<path>): scheme is missing or invalid` + ignored,
				`p.yaml:9: spec.rules[0].from.namespaces[0]: "Shop" is not a namespace name (lowercase letters, digits and '-', at most 63)` + ignored,
				`p.yaml:10: spec.rules[0].from.trustDomains[0]: "weft local" is not a trust domain (e.g. weft.local)` + ignored,
				`p.yaml:11: spec.rules[0].from.authentication: unknown authentication "mTLS"; use Authenticated or Unauthenticated, or leave it out to match any client` + ignored,
			},
			key: authzKey,
		},
		{
			name:    "unauthenticated with an identity",
			content: authz + "  action: Deny\n  rules:\n  - from: {namespaces: [ops], authentication: Unauthenticated}\n",
			want: []string{"p.yaml:7: spec.rules[0].from.authentication: an unauthenticated client has no identity, " +
				"so with identities, namespaces or trustDomains the rule never matches; drop one or the other" + ignored},
			key: authzKey,
		},
		{
			name: "targets that do not parse",
			content: authz + "  action: Allow\n  rules:\n  - to:\n      ports: [0, 8080]\n      methods: [\"GET POST\"]\n" +
				"      paths: [{type: Prefix, value: /a}, {value: api}, {type: RegularExpression, value: \"/([\"}]\n" +
				"      headers: [{name: \"x tenant\", value: a}, {type: RegularExpression, name: x, value: \"a(\"}]\n" +
				"      grpc: [{type: Exact}, {type: RegularExpression, method: \"*\"}]\n",
			want: []string{
				"p.yaml:8: spec.rules[0].to.ports[0]: 0 is not a TCP port (1-65535)" + ignored,
				`p.yaml:9: spec.rules[0].to.methods[0]: "GET POST" is not an HTTP method: methods are case-sensitive tokens, in upper case (e.g. GET)` + ignored,
				`p.yaml:10: spec.rules[0].to.paths[0].type: unknown type "Prefix"; use Exact, PathPrefix or RegularExpression` + ignored,
				`p.yaml:10: spec.rules[0].to.paths[1].value: "api" must start with /` + ignored,
				`p.yaml:10: spec.rules[0].to.paths[2].value: "/([" is not a regular expression (RE2 syntax): missing closing ]: ` + "`[`" + ignored,
				`p.yaml:11: spec.rules[0].to.headers[0].name: "x tenant" is not a header name` + ignored,
				`p.yaml:11: spec.rules[0].to.headers[1].value: "a(" is not a regular expression (RE2 syntax): missing closing ): ` + "`a(`" + ignored,
				"p.yaml:12: spec.rules[0].to.grpc[0]: set service, method or both" + ignored,
				"p.yaml:12: spec.rules[0].to.grpc[1].method: \"*\" is not a regular expression (RE2 syntax): missing argument to repetition operator: `*`" + ignored,
			},
			key: authzKey,
		},
		{
			name: "the proxy's own rules",
			content: authz + "  action: Allow\n  rules:\n  - to:\n      paths: [{value: /a//b}]\n      headers: [{name: x-a, value: \"\"}]\n" +
				"      grpc: [{service: shop/Catalog}]\n",
			want: []string{
				// The proxy's messages (internal/proxy/authz and route).
				`p.yaml:8: spec.rules[0].to.paths[0].value: PathPrefix "/a//b" contains "//"; collapse the repeated slashes` + ignored,
				`p.yaml:9: spec.rules[0].to.headers[0].value: is empty; give the value to match (to match any value use RegularExpression ".*")` + ignored,
				`p.yaml:10: spec.rules[0].to.grpc[0].service: "shop/Catalog" is not a gRPC service name; write it as package.Service (letters, digits, _ and dots), without slashes` + ignored,
			},
			key: authzKey,
		},
		{
			name:    "rule names",
			content: authz + "  action: Allow\n  rules:\n  - {name: rule-1}\n  - {}\n  - {name: Read_All}\n",
			want: []string{
				`p.yaml:8: spec.rules[1].name: rule name "rule-1" is also the name of rules[0]; rule names must be unique within a policy` + ignored,
				`p.yaml:9: spec.rules[2].name: "Read_All" is not a rule name: use lowercase letters, digits and '-' (at most 63)` + ignored,
			},
			key: authzKey,
		},
		{
			name:    "targets that resolve to nothing are served",
			content: authz + "  action: Deny\n  targetRefs:\n  - {group: \"\", kind: Service, name: nope}\n  - {group: \"\", kind: Service, name: web, sectionName: 8080}\n  - {group: weft.dev, kind: Workload, name: web-9}\n",
			want: []string{
				"p.yaml:7: spec.targetRefs[0]: service shop/nope does not exist; this targetRef selects nothing until it exists",
				`p.yaml:8: spec.targetRefs[1]: service shop/web has no port named or numbered "8080" (it has http 80); this targetRef selects nothing until it exists`,
				"p.yaml:9: spec.targetRefs[2]: workload shop/web-9 does not exist; this targetRef selects nothing until it exists",
			},
			key: authzKey, served: true,
		},
		{
			name:    "mTLS: valid",
			content: mtls + "  mode: Permissive\n  targetRefs: [{group: \"\", kind: Service, name: web, sectionName: 80}]\n  ports: [{port: 8080, mode: Strict}]\n",
			key:     mtlsKey, served: true,
		},
		{
			name:    "mTLS: no mode",
			content: mtls + "  ports: [{port: 8080, mode: Strict}]\n",
			want:    []string{"p.yaml:4: spec.mode: a mode is required; use Strict or Permissive" + ignored},
			key:     mtlsKey,
		},
		{
			name:    "mTLS: bad modes and ports",
			content: mtls + "  mode: strict\n  ports:\n  - {port: 70000, mode: Strict}\n  - {port: 8080, mode: Off}\n  - {port: 8080}\n",
			want: []string{
				`p.yaml:5: spec.mode: unknown mode "strict"; use Strict or Permissive` + ignored,
				"p.yaml:7: spec.ports[0].port: 70000 is not a TCP port (1-65535)" + ignored,
				`p.yaml:8: spec.ports[1].mode: unknown mode "Off"; use Strict or Permissive` + ignored,
				"p.yaml:9: spec.ports[2].mode: a mode is required; use Strict or Permissive" + ignored,
				"p.yaml:9: spec.ports[2].port: port 8080 is also listed at ports[1]" + ignored,
			},
			key: mtlsKey,
		},
		{
			name:    "namespace: a bad default is reported, the namespace served",
			content: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ops\n  namespace: default\n  annotations: {weft.dev/default-inbound-policy: deny}\n",
			want: []string{
				"p.yaml:5: metadata.namespace: a Namespace is in no namespace; this is ignored",
				`p.yaml:6: metadata.annotations["weft.dev/default-inbound-policy"]: "deny" is not a default inbound policy; ` +
					"use allow-all, deny-all, allow-same-namespace or allow-authenticated; the mesh's default applies",
			},
			key: model.Key{Kind: model.KindNamespace, Name: "ops"}, served: true,
		},
		{
			name:    "namespace: a bad name",
			content: "apiVersion: v1\nkind: Namespace\nmetadata: {name: Ops}\nspec: {finalizers: [kubernetes]}\nstatus: {phase: Active}\n",
			want:    []string{`p.yaml:3: metadata.name: "Ops" is not a valid namespace name: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')` + ignored},
			key:     model.Key{Kind: model.KindNamespace, Name: "Ops"},
		},
		{
			name:    "workload: a bad default is reported, the workload served",
			content: "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: w\n  namespace: shop\n  annotations:\n    weft.dev/default-inbound-policy: Deny-All\nspec: {address: 10.9.0.1}\n",
			want: []string{`p.yaml:7: metadata.annotations["weft.dev/default-inbound-policy"]: "Deny-All" is not a default inbound policy; ` +
				"use allow-all, deny-all, allow-same-namespace or allow-authenticated; the namespace's default applies"},
			key: model.Key{Kind: model.KindWorkload, Namespace: "shop", Name: "w"}, served: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyTree(t, "mesh")
			writeFile(t, filepath.Join(dir, "p.yaml"), tc.content)
			objs, problems, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range relProblems(dir, problems) {
				if p.File == "p.yaml" {
					got = append(got, p.String())
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			var served model.Object
			for _, o := range objs {
				if o.Key() == tc.key {
					served = o
				}
			}
			if (served != nil) != tc.served {
				t.Fatalf("%s served: %v, want %v", tc.key, served != nil, tc.served)
			}
			// What is served, the model accepts as valid.
			var invalid []model.FieldError
			switch o := served.(type) {
			case *model.AuthorizationPolicy:
				invalid = translate.ValidateAuthorization(o)
			case *model.MutualTLSPolicy:
				invalid = o.Validate()
			case *model.Namespace:
				if o.DefaultInboundPolicy != "" {
					t.Errorf("a bad default is served: %q", o.DefaultInboundPolicy)
				}
			case *model.Workload:
				if o.DefaultInboundPolicy != "" {
					t.Errorf("a bad default is served: %q", o.DefaultInboundPolicy)
				}
			}
			if len(invalid) > 0 {
				t.Errorf("served an invalid policy: %v", invalid)
			}
		})
	}
}
