package apis_test

// lbHead is a LoadBalancer's head, in the fixture's namespace.
const lbHead = "apiVersion: policy.weft.dev/v1alpha1\nkind: LoadBalancer\nmetadata: {name: p, namespace: shop}\nspec:\n  targetRef: {group: \"\", kind: Service, name: web}\n"

func loadBalancerCases() []validationCase {
	return []validationCase{
		{name: "load balancer: minimal", doc: lbHead},
		{name: "load balancer: round robin", doc: lbHead + "  policy: RoundRobin\n"},
		{name: "load balancer: least request", doc: lbHead + "  policy: LeastRequest\n"},
		{name: "load balancer: P2CEWMA", doc: lbHead + "  policy: P2CEWMA\n"},
		{name: "load balancer: ring hash on a header", doc: lbHead + "  policy: RingHash\n  hashOn: {header: {name: x-user}}\n"},
		{name: "load balancer: ring hash on a cookie", doc: lbHead + "  policy: RingHash\n  hashOn: {cookie: {name: session_id}}\n"},
		{name: "load balancer: ring hash on the source address", doc: lbHead + "  policy: RingHash\n  hashOn: {sourceAddress: true}\n"},
		{name: "load balancer: unknown policy", doc: lbHead + "  policy: ring-hash\n", want: []string{`spec.policy: Unsupported value: "ring-hash"`}},
		{name: "load balancer: hashOn without RingHash", doc: lbHead + "  policy: RoundRobin\n  hashOn: {header: {name: x-user}}\n",
			want: []string{"spec.hashOn: Invalid value", "hashOn is only used by policy RingHash"}},
		{name: "load balancer: hashOn without a policy", doc: lbHead + "  hashOn: {sourceAddress: true}\n",
			want: []string{"spec.hashOn: Invalid value", "hashOn is only used by policy RingHash"}},
		{name: "load balancer: RingHash without hashOn", doc: lbHead + "  policy: RingHash\n",
			want: []string{"spec.policy: Invalid value", "policy RingHash needs hashOn"}},
		{name: "load balancer: two hashOn sources", doc: lbHead + "  policy: RingHash\n  hashOn: {header: {name: x-user}, sourceAddress: true}\n",
			want: []string{"spec.hashOn: Invalid value", "set exactly one of header, cookie or sourceAddress"}},
		{name: "load balancer: header and cookie", doc: lbHead + "  policy: RingHash\n  hashOn: {header: {name: x-user}, cookie: {name: s}}\n",
			want: []string{"spec.hashOn: Invalid value", "set exactly one of header, cookie or sourceAddress"}},
		{name: "load balancer: no hashOn source", doc: lbHead + "  policy: RingHash\n  hashOn: {sourceAddress: false}\n",
			want: []string{"spec.hashOn: Invalid value", "set exactly one of header, cookie or sourceAddress"}},
		{name: "load balancer: header without a name", doc: lbHead + "  policy: RingHash\n  hashOn: {header: {}}\n",
			want: []string{"spec.hashOn.header.name: Required value"}},
		{name: "load balancer: header name not a token", doc: lbHead + "  policy: RingHash\n  hashOn: {header: {name: \"x user\"}}\n",
			want: []string{"spec.hashOn.header.name: Invalid value"}},
		{name: "load balancer: unknown field", doc: lbHead + "  policy: RingHash\n  hashOn: {query: {name: u}}\n", want: []string{`unknown field "spec.hashOn.query"`}},
	}
}
