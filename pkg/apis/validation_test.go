package apis_test

import (
	"fmt"
	"strings"
	"testing"
)

// Document heads, in the fixture's namespace.
const (
	authzHead = "apiVersion: policy.weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: shop}\nspec:\n"
	mtlsHead  = "apiVersion: policy.weft.dev/v1alpha1\nkind: MutualTLSPolicy\nmetadata: {name: p, namespace: shop}\nspec:\n"
	wlHead    = "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: w, namespace: shop}\nspec:\n"
	rbHead    = "apiVersion: policy.weft.dev/v1alpha1\nkind: RetryBudget\nmetadata: {name: p, namespace: shop}\nspec:\n  targetRef: {group: \"\", kind: Service, name: web}\n"
	cbHead    = "apiVersion: policy.weft.dev/v1alpha1\nkind: CircuitBreaker\nmetadata: {name: p, namespace: shop}\nspec:\n  targetRef: {group: \"\", kind: Service, name: web}\n"
)

// validationCase is one document, what the apiserver says of it and whether
// universal mode agrees.
type validationCase struct {
	name string
	doc  string
	// want are substrings of the apiserver's refusal, each naming the
	// field; none: the apiserver accepts the document.
	want []string
	// diverges, when set, says why universal mode decides the other way
	// (a bound the CRD adds); the test checks that it does.
	diverges string
}

// TestValidation sends each document to the real apiserver (a dry-run
// create with strict field validation, as kubectl apply does) and checks
// its verdict, then reads the same document as universal mode does (the
// file source, and the translation's check of what the proxy accepts) and
// checks that it decides the same.
func TestValidation(t *testing.T) {
	c := newClient(t, "shop")
	cases := [][]validationCase{workloadCases(), trafficCases(), loadBalancerCases(), filterCases(), authorizationCases(), mutualTLSCases()}
	for _, group := range cases {
		for _, tc := range group {
			t.Run(tc.name, func(t *testing.T) {
				err := apiserverVerdict(t, c, tc.doc)
				t.Logf("apiserver: %v", err)
				switch {
				case len(tc.want) == 0 && err != nil:
					t.Errorf("the apiserver refuses the document: %v", err)
				case len(tc.want) > 0 && err == nil:
					t.Errorf("the apiserver accepts the document; want a refusal with %q", tc.want)
				case err != nil:
					for _, w := range tc.want {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("the apiserver's refusal does not say %q:\n%v", w, err)
						}
					}
				}
				refused := universalVerdict(t, tc.doc)
				t.Logf("universal mode: %q", refused)
				universalAccepts := len(refused) == 0
				apiserverAccepts := len(tc.want) == 0
				switch {
				case tc.diverges == "" && universalAccepts != apiserverAccepts:
					t.Errorf("universal mode disagrees: it accepts the document: %v; its problems: %q", universalAccepts, refused)
				case tc.diverges != "" && universalAccepts == apiserverAccepts:
					t.Errorf("universal mode agrees (accepts: %v), but the case says it diverges (%s); problems: %q", universalAccepts, tc.diverges, refused)
				}
			})
		}
	}
}

func workloadCases() []validationCase {
	return []validationCase{
		{name: "workload: minimal", doc: wlHead + "  address: 10.9.0.1\n"},
		{name: "workload: every field", doc: wlHead + "  address: 10.9.0.1\n  serviceAccount: web.v2\n  meshed: false\n  proxy: {inboundPort: 4143}\n" +
			"  ports:\n  - {name: http, port: 8080, protocol: http1}\n  - {name: h2, port: 8081, protocol: http2}\n  - {port: 9090, protocol: grpc}\n  - {name: db, port: 5432, protocol: opaque}\n"},
		{name: "workload: empty strings mean unset", doc: wlHead + "  address: 10.9.0.1\n  serviceAccount: \"\"\n  proxy: {inboundPort: 0}\n  ports: [{name: \"\", port: 80, protocol: \"\"}]\n"},
		{name: "workload: IPv6", doc: wlHead + "  address: fd00::1\n"},
		{name: "workload: IPv4-mapped IPv6", doc: wlHead + "  address: \"::ffff:10.9.0.1\"\n"},
		{name: "workload: IPv4-mapped IPv6 in hex, upper case", doc: wlHead + "  address: \"0:0:0:0:0:FFFF:a09:1\"\n"},
		{name: "workload: IPv4-mapped 0.0.0.0 is not unspecified", doc: wlHead + "  address: \"::ffff:0.0.0.0\"\n"},
		{name: "workload: 0.0.0.0", doc: wlHead + "  address: 0.0.0.0\n", want: []string{"spec.address: Invalid value", "not 0.0.0.0 or ::"}},
		{name: "workload: a status is refused", doc: wlHead + "  address: 10.9.0.1\nstatus: {ready: true}\n", want: []string{`unknown field "status"`}},
		{name: "workload: no address", doc: wlHead + "  serviceAccount: web\n", want: []string{"spec.address: Required value"}},
		{name: "workload: not an IP", doc: wlHead + "  address: 10.0.0.300\n", want: []string{"spec.address: Invalid value", "must be the IP address of a host"}},
		{name: "workload: unspecified", doc: wlHead + "  address: \"::\"\n", want: []string{"spec.address: Invalid value", "not 0.0.0.0 or ::"}},
		{name: "workload: zone", doc: wlHead + "  address: \"fe80::1%eth0\"\n", want: []string{"spec.address: Invalid value", "without a zone"}},
		{name: "workload: bad service account", doc: wlHead + "  address: 10.9.0.1\n  serviceAccount: Web_1\n", want: []string{"spec.serviceAccount: Invalid value", "must be a service account name"}},
		{name: "workload: port 0", doc: wlHead + "  address: 10.9.0.1\n  ports: [{port: 0}]\n", want: []string{"spec.ports[0].port: Invalid value: 0", "greater than or equal to 1"}},
		{name: "workload: port 65536", doc: wlHead + "  address: 10.9.0.1\n  ports: [{port: 65536}]\n", want: []string{"spec.ports[0].port: Invalid value: 65536", "less than or equal to 65535"}},
		{name: "workload: port without a number", doc: wlHead + "  address: 10.9.0.1\n  ports: [{name: http}]\n", want: []string{"spec.ports[0].port: Required value"}},
		{name: "workload: port listed twice", doc: wlHead + "  address: 10.9.0.1\n  ports: [{name: a, port: 80}, {name: b, port: 80}]\n", want: []string{"spec.ports[1]: Duplicate value"}},
		{name: "workload: port name used twice", doc: wlHead + "  address: 10.9.0.1\n  ports: [{name: http, port: 80}, {name: http, port: 81}]\n", want: []string{"spec.ports: Invalid value", "port names must be unique"}},
		{name: "workload: port name without a letter", doc: wlHead + "  address: 10.9.0.1\n  ports: [{name: \"8080\", port: 80}]\n", want: []string{"spec.ports[0].name: Invalid value", "must be a port name"}},
		{name: "workload: port name with --", doc: wlHead + "  address: 10.9.0.1\n  ports: [{name: a--b, port: 80}]\n", want: []string{"spec.ports[0].name: Invalid value", "without '--'"}},
		{name: "workload: port name too long", doc: wlHead + "  address: 10.9.0.1\n  ports: [{name: abcdefghijklmnop, port: 80}]\n", want: []string{"spec.ports[0].name: Too long"}},
		{name: "workload: unknown protocol", doc: wlHead + "  address: 10.9.0.1\n  ports: [{port: 80, protocol: http3}]\n", want: []string{`spec.ports[0].protocol: Unsupported value: "http3"`}},
		{name: "workload: inbound port out of range", doc: wlHead + "  address: 10.9.0.1\n  proxy: {inboundPort: 70000}\n", want: []string{"spec.proxy.inboundPort: Invalid value: 70000"}},
		{name: "workload: unknown field", doc: wlHead + "  address: 10.9.0.1\n  adress: 10.9.0.2\n", want: []string{`unknown field "spec.adress"`}},
		{name: "workload: no spec", doc: "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: w, namespace: shop}\n", want: []string{"spec: Required value"}},
	}
}

func trafficCases() []validationCase {
	return []validationCase{
		{name: "retry budget: minimal", doc: rbHead},
		{name: "retry budget: every field, at the bounds", doc: rbHead + "  retryRatio: 1000\n  minRetriesPerSecond: 1000000\n  ttl: 60s\n"},
		{name: "retry budget: group left out, ttl of 1s", doc: strings.Replace(rbHead, `group: "", `, "", 1) + "  retryRatio: 0.25\n  ttl: 1000ms\n"},
		{name: "retry budget: targetRef of another kind", doc: strings.Replace(rbHead, "kind: Service", "kind: Deployment", 1), want: []string{`spec.targetRef.kind: Unsupported value: "Deployment"`}},
		{name: "retry budget: targetRef of another group", doc: strings.Replace(rbHead, `group: ""`, "group: apps", 1), want: []string{"spec.targetRef.group: Invalid value", "a policy targets a Service"}},
		{name: "retry budget: targetRef without a name", doc: strings.Replace(rbHead, ", name: web", "", 1), want: []string{"spec.targetRef.name: Required value"}},
		{name: "retry budget: no targetRef", doc: "apiVersion: policy.weft.dev/v1alpha1\nkind: RetryBudget\nmetadata: {name: p, namespace: shop}\nspec: {ttl: 5s}\n", want: []string{"spec.targetRef: Required value"}},
		{name: "retry budget: negative ratio", doc: rbHead + "  retryRatio: -0.1\n", want: []string{"spec.retryRatio: Invalid value: -0.1", "greater than or equal to 0"}},
		{name: "retry budget: ratio above the proxy's bound", doc: rbHead + "  retryRatio: 1000.5\n", want: []string{"spec.retryRatio: Invalid value: 1000.5", "less than or equal to 1000"}},
		{name: "retry budget: negative minimum", doc: rbHead + "  minRetriesPerSecond: -1\n", want: []string{"spec.minRetriesPerSecond: Invalid value: -1"}},
		{name: "retry budget: minimum above the proxy's bound", doc: rbHead + "  minRetriesPerSecond: 1000001\n", want: []string{"spec.minRetriesPerSecond: Invalid value: 1000001"}},
		{name: "retry budget: not a duration", doc: rbHead + "  ttl: 3 seconds\n", want: []string{"spec.ttl: Invalid value", "must be a duration such as 500ms"}},
		{name: "retry budget: days are not a unit", doc: rbHead + "  ttl: 1d\n", want: []string{"spec.ttl: Invalid value", "must be a duration"}},
		{name: "retry budget: negative ttl", doc: rbHead + "  ttl: -1s\n", want: []string{`spec.ttl: Invalid value: "-1s": must be a duration such as 500ms, 10s or 1m30s (decimal numbers with the units ns, us, ms, s, m, h), not negative`}},
		{name: "retry budget: ttl below the proxy's bound", doc: rbHead + "  ttl: 500ms\n", want: []string{"spec.ttl: Invalid value", "must be from 1s to 60s"}},
		{name: "retry budget: ttl above the proxy's bound", doc: rbHead + "  ttl: 1m0.5s\n", want: []string{"spec.ttl: Invalid value", "must be from 1s to 60s"}},
		{name: "retry budget: ttl of zero", doc: rbHead + "  ttl: \"-0\"\n", want: []string{"spec.ttl: Invalid value", "must be from 1s to 60s"}},
		{name: "retry budget: ttl that overflows", doc: rbHead + "  ttl: 9999999999h\n", want: []string{"spec.ttl: Invalid value", "must be a duration"}},
		{name: "retry budget: wrong type", doc: rbHead + "  retryRatio: \"0.1\"\n", want: []string{"spec.retryRatio: Invalid value: \"string\"", "must be of type number"}},

		{name: "circuit breaker: minimal", doc: cbHead},
		{name: "circuit breaker: every field", doc: cbHead + "  maxRequests: 100\n  maxPending: 10\n  pendingTimeout: 1.5s\n" +
			"  outlierDetection: {consecutiveFailures: 3, successRateMinRequests: 20, successRateStdevFactor: 1.9, interval: 1m30s, baseEjectionTime: 5m, maxEjectionPercent: 100}\n" +
			"  adaptiveConcurrency: {enabled: true, initialLimit: 20, minLimit: 5, maxLimit: 500}\n"},
		{name: "circuit breaker: Go's duration syntax", doc: cbHead + "  outlierDetection: {interval: .5s, baseEjectionTime: 5.s}\n  maxRequests: 1\n  maxPending: 1\n  pendingTimeout: 250000µs\n"},
		{name: "circuit breaker: disabled detection is not checked further", doc: cbHead + "  outlierDetection: {disabled: true, maxEjectionPercent: 150, interval: 0s, consecutiveFailures: 4294967295}\n"},
		{name: "circuit breaker: negative limit", doc: cbHead + "  maxRequests: -1\n", want: []string{"spec.maxRequests: Invalid value: -1", "greater than or equal to 0"}},
		{name: "circuit breaker: limit out of range", doc: cbHead + "  maxRequests: 4294967296\n", want: []string{"spec.maxRequests: Invalid value: 4294967296", "less than or equal to 4294967295"}},
		{name: "circuit breaker: pending without a limit", doc: cbHead + "  maxPending: 10\n", want: []string{"spec.maxPending: Invalid value", "maxPending has no effect without maxRequests"}},
		{name: "circuit breaker: pending timeout without pending", doc: cbHead + "  maxRequests: 10\n  pendingTimeout: 1s\n", want: []string{"spec.pendingTimeout: Invalid value", "pendingTimeout has no effect without maxPending"}},
		{name: "circuit breaker: pending timeout of zero", doc: cbHead + "  maxRequests: 10\n  maxPending: 10\n  pendingTimeout: 0s\n", want: []string{"spec.pendingTimeout: Invalid value", "must be positive"}},
		{name: "circuit breaker: negative stdev factor", doc: cbHead + "  outlierDetection: {successRateStdevFactor: -1}\n", want: []string{"spec.outlierDetection.successRateStdevFactor: Invalid value: -1"}},
		{name: "circuit breaker: ejection above 100%", doc: cbHead + "  outlierDetection: {maxEjectionPercent: 101}\n", want: []string{"spec.outlierDetection.maxEjectionPercent: Invalid value", "must be a percentage, at most 100"}},
		{name: "circuit breaker: consecutive failures above the proxy's bound", doc: cbHead + "  outlierDetection: {consecutiveFailures: 2147483648}\n", want: []string{"spec.outlierDetection.consecutiveFailures: Invalid value", "at most 2147483647"}},
		{name: "circuit breaker: interval of zero", doc: cbHead + "  outlierDetection: {interval: 0s}\n", want: []string{"spec.outlierDetection.interval: Invalid value", "must be positive"}},
		{name: "circuit breaker: ejection longer than the longest", doc: cbHead + "  outlierDetection: {baseEjectionTime: 5m1s}\n", want: []string{"spec.outlierDetection.baseEjectionTime: Invalid value", "at most 5m"}},
		{name: "circuit breaker: bad duration", doc: cbHead + "  outlierDetection: {baseEjectionTime: 30}\n", want: []string{"spec.outlierDetection.baseEjectionTime: Invalid value", "must be of type string"}},
		{name: "circuit breaker: unknown field", doc: cbHead + "  outlierDetection: {consecutiveFailure: 3}\n", want: []string{`unknown field "spec.outlierDetection.consecutiveFailure"`}},
	}
}

func authorizationCases() []validationCase {
	return []validationCase{
		{name: "authz: minimal", doc: authzHead + "  action: Deny\n"},
		{name: "authz: every field", doc: authzHead + "  targetRefs: [{group: \"\", kind: Service, name: web, sectionName: 80}, {group: weft.dev, kind: Workload, name: w}]\n" +
			"  action: Allow\n  mode: DryRun\n  rules:\n  - name: a\n" +
			"    from: {identities: [\"spiffe://weft.local/ns/shop/sa/a\"], namespaces: [ops], trustDomains: [weft.local], authentication: Authenticated}\n" +
			"    to:\n      ports: [8080, 9090]\n      methods: [GET, PURGE]\n" +
			"      paths: [{type: RegularExpression, value: \"/v[0-9]+/.*\"}, {type: Exact, value: /}, {value: \"/a%20b/~c@d\"}]\n" +
			"      headers: [{type: RegularExpression, name: x-a, value: \"b.*\"}, {name: X-Tenant, value: acme}]\n" +
			"      grpc: [{service: shop.Catalog, method: Get}, {type: RegularExpression, method: \"List.*\"}, {service: .shop.v1.Catalog}]\n"},
		{name: "authz: empty strings mean unset", doc: authzHead + "  action: Allow\n  mode: \"\"\n  rules:\n  - name: \"\"\n    from: {authentication: \"\"}\n    to: {paths: [{type: \"\", value: /}]}\n"},
		{name: "authz: targets by port name and by number as text", doc: authzHead + "  action: Deny\n  targetRefs:\n  - {kind: Service, name: web, sectionName: http}\n  - {group: \"\", kind: Service, name: web, sectionName: \"8080\"}\n"},
		{name: "authz: a regular expression may match any header value", doc: authzHead + "  action: Deny\n  rules: [{to: {headers: [{type: RegularExpression, name: x-a}]}}]\n"},
		{name: "authz: names other than the default", doc: authzHead + "  action: Allow\n  rules: [{name: rule-1}, {name: rule-0}]\n"},
		{name: "authz: a status is accepted", doc: authzHead + "  action: Deny\nstatus:\n  conditions: [{type: Accepted, status: \"True\", reason: Accepted, message: \"\", lastTransitionTime: \"2026-01-02T15:04:05Z\"}]\n"},

		{name: "authz: unknown field", doc: authzHead + "  acton: Allow\n", want: []string{`unknown field "spec.acton"`}},
		{name: "authz: no action", doc: authzHead + "  mode: DryRun\n", want: []string{"spec.action: Required value"}},
		{name: "authz: bad action", doc: authzHead + "  action: allow\n", want: []string{`spec.action: Unsupported value: "allow": supported values: "Allow", "Deny"`}},
		{name: "authz: bad mode", doc: authzHead + "  action: Deny\n  mode: Audit\n", want: []string{`spec.mode: Unsupported value: "Audit"`}},
		{name: "authz: targetRef of another kind", doc: authzHead + "  action: Deny\n  targetRefs: [{group: apps, kind: Deployment, name: web}]\n", want: []string{`spec.targetRefs[0].kind: Unsupported value: "Deployment"`}},
		{name: "authz: Workload of the core group", doc: authzHead + "  action: Deny\n  targetRefs: [{group: \"\", kind: Workload, name: web-1}]\n",
			want: []string{"spec.targetRefs[0].group: Invalid value", "a policy targets a Service (group: \"\", kind: Service) or a Workload (group: weft.dev, kind: Workload)"}},
		{name: "authz: Service of group weft.dev", doc: authzHead + "  action: Deny\n  targetRefs: [{group: weft.dev, kind: Service, name: web}]\n",
			want: []string{"spec.targetRefs[0].group: Invalid value", "a policy targets a Service"}},
		{name: "authz: targetRef without a name", doc: authzHead + "  action: Deny\n  targetRefs: [{group: \"\", kind: Service}]\n", want: []string{"spec.targetRefs[0].name: Required value"}},
		{name: "authz: the same target twice", doc: authzHead + "  action: Deny\n  targetRefs:\n  - {group: \"\", kind: Service, name: web, sectionName: 80}\n  - {group: \"\", kind: Service, name: web, sectionName: \"+080\"}\n",
			want: []string{"spec.targetRefs: Invalid value", "targetRefs must be unique"}},
		{name: "authz: sectionName on a Workload", doc: authzHead + "  action: Deny\n  targetRefs: [{group: weft.dev, kind: Workload, name: web-1, sectionName: http}]\n",
			want: []string{"spec.targetRefs[0].sectionName: Invalid value", "sectionName applies to a Service target only"}},
		{name: "authz: sectionName that is not a port name", doc: authzHead + "  action: Deny\n  targetRefs: [{group: \"\", kind: Service, name: web, sectionName: \"http port\"}]\n",
			want: []string{"spec.targetRefs[0].sectionName: Invalid value", "must be a Service port"}},
		{name: "authz: sectionName 0", doc: authzHead + "  action: Deny\n  targetRefs: [{group: \"\", kind: Service, name: web, sectionName: 0}]\n",
			want: []string{"spec.targetRefs[0].sectionName: Invalid value", "a number from 1 to 65535"}},
		{name: "authz: sectionName 65536 as text", doc: authzHead + "  action: Deny\n  targetRefs: [{group: \"\", kind: Service, name: web, sectionName: \"65536\"}]\n",
			want: []string{"spec.targetRefs[0].sectionName: Invalid value", "a number from 1 to 65535"}},
		{name: "authz: SPIFFE ID with a trailing slash", doc: authzHead + "  action: Allow\n  rules: [{from: {identities: [\"spiffe://weft.local/ns/shop/sa/web/\"]}}]\n",
			want: []string{"spec.rules[0].from.identities[0]: Invalid value", "must be a SPIFFE ID"}},
		{name: "authz: SPIFFE ID without the scheme", doc: authzHead + "  action: Allow\n  rules: [{from: {identities: [web]}}]\n",
			want: []string{"spec.rules[0].from.identities[0]: Invalid value", "must be a SPIFFE ID"}},
		{name: "authz: SPIFFE ID with a dot segment", doc: authzHead + "  action: Allow\n  rules: [{from: {identities: [\"spiffe://weft.local/ns/../sa/web\"]}}]\n",
			want: []string{"spec.rules[0].from.identities[0]: Invalid value", "must be a SPIFFE ID"}},
		{name: "authz: SPIFFE IDs with odd but valid segments", doc: authzHead + "  action: Allow\n  rules: [{from: {identities: [\"spiffe://./...\", \"spiffe://a_b/.x/..y/Z-9\", \"spiffe://weft.local\"]}}]\n"},
		{name: "authz: SPIFFE ID with an upper-case trust domain", doc: authzHead + "  action: Allow\n  rules: [{from: {identities: [\"spiffe://Weft.local/ns/shop\"]}}]\n",
			want: []string{"spec.rules[0].from.identities[0]: Invalid value", "must be a SPIFFE ID"}},
		{name: "authz: bad namespace", doc: authzHead + "  action: Allow\n  rules: [{from: {namespaces: [Shop]}}]\n", want: []string{"spec.rules[0].from.namespaces[0]: Invalid value", "must be a namespace name"}},
		{name: "authz: bad trust domain", doc: authzHead + "  action: Allow\n  rules: [{from: {trustDomains: [\"weft local\"]}}]\n", want: []string{"spec.rules[0].from.trustDomains[0]: Invalid value", "must be a trust domain"}},
		{name: "authz: trust domain written as a SPIFFE ID", doc: authzHead + "  action: Allow\n  rules: [{from: {trustDomains: [\"spiffe://weft.local\"]}}]\n", want: []string{"spec.rules[0].from.trustDomains[0]: Invalid value", "must be a trust domain"}},
		{name: "authz: bad authentication", doc: authzHead + "  action: Allow\n  rules: [{from: {authentication: mTLS}}]\n", want: []string{`spec.rules[0].from.authentication: Unsupported value: "mTLS"`}},
		{name: "authz: unauthenticated with a namespace", doc: authzHead + "  action: Deny\n  rules: [{from: {namespaces: [ops], authentication: Unauthenticated}}]\n",
			want: []string{"spec.rules[0].from.authentication: Invalid value", "an unauthenticated client has no identity"}},
		{name: "authz: unauthenticated with empty lists", doc: authzHead + "  action: Deny\n  rules: [{from: {namespaces: [], authentication: Unauthenticated}}]\n"},
		{name: "authz: port 0", doc: authzHead + "  action: Allow\n  rules: [{to: {ports: [0, 8080]}}]\n", want: []string{"spec.rules[0].to.ports[0]: Invalid value: 0", "greater than or equal to 1"}},
		{name: "authz: method with a space", doc: authzHead + "  action: Allow\n  rules: [{to: {methods: [\"GET POST\"]}}]\n", want: []string{"spec.rules[0].to.methods[0]: Invalid value", "must be an HTTP method"}},
		{name: "authz: method in lower case", doc: authzHead + "  action: Allow\n  rules: [{to: {methods: [get]}}]\n", want: []string{"spec.rules[0].to.methods[0]: Invalid value", "in upper case"}},
		{name: "authz: unknown path type", doc: authzHead + "  action: Allow\n  rules: [{to: {paths: [{type: Prefix, value: /a}]}}]\n", want: []string{`spec.rules[0].to.paths[0].type: Unsupported value: "Prefix"`}},
		{name: "authz: relative path", doc: authzHead + "  action: Allow\n  rules: [{to: {paths: [{value: api}]}}]\n", want: []string{"spec.rules[0].to.paths[0].value: Invalid value", "must start with /"}},
		{name: "authz: path without a value", doc: authzHead + "  action: Allow\n  rules: [{to: {paths: [{type: Exact}]}}]\n", want: []string{"spec.rules[0].to.paths[0].value: Required value"}},
		{name: "authz: path with //", doc: authzHead + "  action: Allow\n  rules: [{to: {paths: [{value: /a//b}]}}]\n", want: []string{"spec.rules[0].to.paths[0].value: Invalid value", "may not contain '//'"}},
		{name: "authz: path with ..", doc: authzHead + "  action: Allow\n  rules: [{to: {paths: [{type: Exact, value: /a/..}]}}]\n", want: []string{"spec.rules[0].to.paths[0].value: Invalid value", "'.' or '..' segments"}},
		{name: "authz: path with an encoded slash", doc: authzHead + "  action: Allow\n  rules: [{to: {paths: [{value: /a%2fb}]}}]\n", want: []string{"spec.rules[0].to.paths[0].value: Invalid value", "an encoded '/' (%2F)"}},
		{name: "authz: path with a fragment", doc: authzHead + "  action: Allow\n  rules: [{to: {paths: [{value: \"/a#b\"}]}}]\n", want: []string{"spec.rules[0].to.paths[0].value: Invalid value", "percent-encoded"}},
		{name: "authz: path with a bad escape", doc: authzHead + "  action: Allow\n  rules: [{to: {paths: [{value: \"/a%zz\"}]}}]\n", want: []string{"spec.rules[0].to.paths[0].value: Invalid value", "percent-encoded"}},
		{name: "authz: path expression that does not compile", doc: authzHead + "  action: Allow\n  rules: [{to: {paths: [{type: RegularExpression, value: \"/([\"}]}}]\n",
			want: []string{"spec.rules[0].to.paths[0]: Invalid value", "missing closing ]", "value must be a regular expression (RE2 syntax)"}},
		{name: "authz: header name with a space", doc: authzHead + "  action: Allow\n  rules: [{to: {headers: [{name: \"x tenant\", value: a}]}}]\n", want: []string{"spec.rules[0].to.headers[0].name: Invalid value", "must be a header name"}},
		{name: "authz: header matched twice", doc: authzHead + "  action: Allow\n  rules: [{to: {headers: [{name: X-A, value: a}, {name: x-a, value: b}]}}]\n",
			want: []string{"spec.rules[0].to.headers: Invalid value", "each header may be matched once"}},
		{name: "authz: exact header without a value", doc: authzHead + "  action: Allow\n  rules: [{to: {headers: [{name: x-a, value: \"\"}]}}]\n", want: []string{"spec.rules[0].to.headers[0].value: Invalid value", "needs a value"}},
		{name: "authz: exact header with a control character", doc: authzHead + "  action: Allow\n  rules: [{to: {headers: [{name: x-a, value: \"a\\x01b\"}]}}]\n", want: []string{"spec.rules[0].to.headers[0].value: Invalid value", "control characters"}},
		{name: "authz: header expression that does not compile", doc: authzHead + "  action: Allow\n  rules: [{to: {headers: [{type: RegularExpression, name: x, value: \"a(\"}]}}]\n",
			want: []string{"spec.rules[0].to.headers[0]: Invalid value", "missing closing )", "value must be a regular expression"}},
		{name: "authz: gRPC match of nothing", doc: authzHead + "  action: Allow\n  rules: [{to: {grpc: [{type: Exact}]}}]\n", want: []string{"spec.rules[0].to.grpc[0]: Invalid value", "set service, method or both"}},
		{name: "authz: gRPC service with a slash", doc: authzHead + "  action: Allow\n  rules: [{to: {grpc: [{service: shop/Catalog}]}}]\n", want: []string{"spec.rules[0].to.grpc[0].service: Invalid value", "must be a gRPC service name"}},
		{name: "authz: gRPC method with a dot", doc: authzHead + "  action: Allow\n  rules: [{to: {grpc: [{method: Catalog.Get}]}}]\n", want: []string{"spec.rules[0].to.grpc[0].method: Invalid value", "must be a gRPC method name"}},
		{name: "authz: gRPC expression that does not compile", doc: authzHead + "  action: Allow\n  rules: [{to: {grpc: [{type: RegularExpression, method: \"*\"}]}}]\n",
			want: []string{"spec.rules[0].to.grpc[0]: Invalid value", "missing argument to repetition operator", "method must be a regular expression"}},
		{name: "authz: rule names used twice", doc: authzHead + "  action: Allow\n  rules: [{name: rule-1}, {}]\n", want: []string{"spec.rules: Invalid value", "rule names must be unique within a policy"}},
		{name: "authz: explicit rule names used twice", doc: authzHead + "  action: Allow\n  rules: [{name: a}, {name: b}, {name: a}]\n", want: []string{"spec.rules: Invalid value", "rule names must be unique within a policy"}},
		{name: "authz: a name taken from a later unnamed rule", doc: authzHead + "  action: Allow\n  rules: [{name: rule-2}, {name: x}, {}]\n", want: []string{"spec.rules: Invalid value", "a rule without a name is rule-<index>"}},
		{name: "authz: a default name beyond the rules", doc: authzHead + "  action: Allow\n  rules: [{name: rule-2}, {}]\n"},
		{name: "authz: a regular expression path is not checked as a path", doc: authzHead + "  action: Allow\n  rules: [{to: {paths: [{type: RegularExpression, value: \"/a/../b//c#.*\"}]}}]\n"},
		{name: "authz: bad rule name", doc: authzHead + "  action: Allow\n  rules: [{name: Read_All}]\n", want: []string{"spec.rules[0].name: Invalid value", "must be a rule name"}},
		{name: "authz: rule name too long", doc: authzHead + "  action: Allow\n  rules: [{name: " + strings.Repeat("a", 64) + "}]\n", want: []string{"spec.rules[0].name: Too long"}},
		{name: "authz: too many rules", doc: authzHead + "  action: Allow\n  rules:\n" + strings.Repeat("  - {to: {ports: [80]}}\n", 33),
			want: []string{"spec.rules: Too many: 33: must have at most 32 items"}, diverges: "the file source does not bound the number of rules"},
		{name: "authz: too many target refs", doc: authzHead + "  action: Allow\n  targetRefs:\n" + repeatf(17, "  - {group: \"\", kind: Service, name: web, sectionName: %d}\n", 80),
			want: []string{"spec.targetRefs: Too many: 17: must have at most 16 items"}, diverges: "the file source does not bound the number of targetRefs"},
		{name: "authz: SPIFFE ID too long", doc: authzHead + "  action: Allow\n  rules: [{from: {identities: [\"spiffe://weft.local/" + strings.Repeat("a", 1024) + "\"]}}]\n",
			want: []string{"spec.rules[0].from.identities[0]: Too long"}, diverges: "the file source does not bound SPIFFE IDs (the SPIFFE standard bounds them at 2048 bytes; the CRD at 1024 characters)"},
	}
}

func mutualTLSCases() []validationCase {
	return []validationCase{
		{name: "mTLS: mesh-wide", doc: mtlsHead + "  mode: Strict\n"},
		{name: "mTLS: every field", doc: mtlsHead + "  mode: Permissive\n  targetRefs: [{group: \"\", kind: Service, name: web, sectionName: 80}, {group: weft.dev, kind: Workload, name: web-1}]\n  ports: [{port: 8080, mode: Strict}, {port: 9102, mode: Permissive}]\n"},
		{name: "mTLS: no mode", doc: mtlsHead + "  ports: [{port: 8080, mode: Strict}]\n", want: []string{"spec.mode: Required value"}},
		{name: "mTLS: bad mode", doc: mtlsHead + "  mode: strict\n", want: []string{`spec.mode: Unsupported value: "strict": supported values: "Strict", "Permissive"`}},
		{name: "mTLS: port out of range", doc: mtlsHead + "  mode: Strict\n  ports: [{port: 70000, mode: Strict}]\n", want: []string{"spec.ports[0].port: Invalid value: 70000"}},
		{name: "mTLS: port without a mode", doc: mtlsHead + "  mode: Strict\n  ports: [{port: 8080}]\n", want: []string{"spec.ports[0].mode: Required value"}},
		{name: "mTLS: port with a bad mode", doc: mtlsHead + "  mode: Strict\n  ports: [{port: 8080, mode: Disabled}]\n", want: []string{`spec.ports[0].mode: Unsupported value: "Disabled"`}},
		{name: "mTLS: port listed twice", doc: mtlsHead + "  mode: Strict\n  ports: [{port: 8080, mode: Strict}, {port: 8080, mode: Permissive}]\n", want: []string{"spec.ports[1]: Duplicate value"}},
		{name: "mTLS: sectionName on a Workload", doc: mtlsHead + "  mode: Strict\n  targetRefs: [{group: weft.dev, kind: Workload, name: web-1, sectionName: 8080}]\n",
			want: []string{"spec.targetRefs[0].sectionName: Invalid value", "sectionName applies to a Service target only"}},
		{name: "mTLS: the same target twice", doc: mtlsHead + "  mode: Strict\n  targetRefs: [{kind: Service, name: web}, {group: \"\", kind: Service, name: web}]\n",
			want: []string{"spec.targetRefs: Invalid value", "targetRefs must be unique"}},
	}
}

// repeatf formats line n times with the numbers from first on.
func repeatf(n int, line string, first int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, line, first+i)
	}
	return b.String()
}
