package apis_test

// Document heads of the route filters, in the fixture's namespace.
const (
	rlHead = "apiVersion: policy.weft.dev/v1alpha1\nkind: RateLimit\nmetadata: {name: p, namespace: shop}\nspec:\n"
	fiHead = "apiVersion: policy.weft.dev/v1alpha1\nkind: FaultInjection\nmetadata: {name: p, namespace: shop}\nspec:\n"
)

func filterCases() []validationCase {
	return []validationCase{
		{name: "rate limit: minimal", doc: rlHead + "  requestsPerSecond: 10\n"},
		{name: "rate limit: a fraction, at the bounds", doc: rlHead + "  requestsPerSecond: 0.5\n  burst: 1\n"},
		{name: "rate limit: at the upper bounds", doc: rlHead + "  requestsPerSecond: 1000000000\n  burst: 1073741824\n"},
		{name: "rate limit: no rate", doc: rlHead + "  burst: 5\n", want: []string{"spec: Invalid value", "set requestsPerSecond (the total), perClient, or both"}},
		{name: "rate limit: nothing", doc: rlHead + "  {}\n", want: []string{"spec: Invalid value", "set requestsPerSecond (the total), perClient, or both"}},
		{name: "rate limit: per client at a Service", doc: rlHead + "  targetRefs: [{kind: Service, name: web}]\n  perClient: {requestsPerSecond: 0.05, burst: 1}\n"},
		{name: "rate limit: total and per client at a port and a Workload", doc: rlHead +
			"  targetRefs: [{kind: Service, name: web, sectionName: http}, {group: weft.dev, kind: Workload, name: web-0}]\n  requestsPerSecond: 100\n  burst: 20\n  perClient: {requestsPerSecond: 5}\n"},
		{name: "rate limit: per client without targets", doc: rlHead + "  requestsPerSecond: 10\n  perClient: {requestsPerSecond: 1}\n"},
		{name: "rate limit: total burst without a total", doc: rlHead + "  burst: 5\n  perClient: {requestsPerSecond: 1}\n", want: []string{"spec.burst: Invalid value", "burst is the total's"}},
		{name: "rate limit: per client without a rate", doc: rlHead + "  requestsPerSecond: 1\n  perClient: {burst: 2}\n", want: []string{"spec.perClient.requestsPerSecond: Required value"}},
		{name: "rate limit: per client rate of zero", doc: rlHead + "  perClient: {requestsPerSecond: 0}\n", want: []string{"spec.perClient.requestsPerSecond: Invalid value: 0", "greater than 0"}},
		{name: "rate limit: per client burst of zero", doc: rlHead + "  perClient: {requestsPerSecond: 1, burst: 0}\n", want: []string{"spec.perClient.burst: Invalid value: 0"},
			diverges: "universal mode reads burst: 0 as unset (the default, the rate rounded up)"},
		{name: "rate limit: the same target twice", doc: rlHead + "  targetRefs: [{kind: Service, name: web, sectionName: 80}, {kind: Service, name: web, sectionName: \"80\"}]\n  requestsPerSecond: 1\n",
			want: []string{"spec.targetRefs: Invalid value", "targetRefs must be unique"}},
		{name: "rate limit: sectionName on a Workload", doc: rlHead + "  targetRefs: [{group: weft.dev, kind: Workload, name: web-0, sectionName: http}]\n  requestsPerSecond: 1\n",
			want: []string{"spec.targetRefs[0].sectionName: Invalid value", "sectionName applies to a Service target only"}},
		{name: "rate limit: a Pod target", doc: rlHead + "  targetRefs: [{kind: Pod, name: web-0}]\n  requestsPerSecond: 1\n",
			want: []string{"spec.targetRefs[0].kind: Unsupported value: \"Pod\""}},
		{name: "rate limit: rate of zero", doc: rlHead + "  requestsPerSecond: 0\n", want: []string{"spec.requestsPerSecond: Invalid value: 0", "greater than 0"}},
		{name: "rate limit: negative rate", doc: rlHead + "  requestsPerSecond: -1\n", want: []string{"spec.requestsPerSecond: Invalid value: -1"}},
		{name: "rate limit: rate above the proxy's bound", doc: rlHead + "  requestsPerSecond: 1000000001\n", want: []string{"spec.requestsPerSecond: Invalid value", "less than or equal to 1000000000"}},
		{name: "rate limit: negative burst", doc: rlHead + "  requestsPerSecond: 1\n  burst: -1\n", want: []string{"spec.burst: Invalid value: -1", "greater than or equal to 1"}},
		{name: "rate limit: burst above the proxy's bound", doc: rlHead + "  requestsPerSecond: 1\n  burst: 1073741825\n", want: []string{"spec.burst: Invalid value: 1073741825"}},
		{name: "rate limit: burst of zero", doc: rlHead + "  requestsPerSecond: 1\n  burst: 0\n", want: []string{"spec.burst: Invalid value: 0", "greater than or equal to 1"},
			diverges: "universal mode reads burst: 0 as unset (the default, the rate rounded up)"},
		{name: "rate limit: wrong type", doc: rlHead + "  requestsPerSecond: \"10\"\n", want: []string{"spec.requestsPerSecond: Invalid value: \"string\"", "must be of type number"}},
		{name: "rate limit: unknown field", doc: rlHead + "  requestsPerSecond: 1\n  perIdentity: 1\n", want: []string{`unknown field "spec.perIdentity"`}},

		{name: "fault: delay and HTTP abort", doc: fiHead + "  delay: {percent: 12.5, fixedDelay: 1.5s}\n  abort: {percent: 100, httpStatus: 503}\n"},
		{name: "fault: gRPC abort at the bounds", doc: fiHead + "  abort: {percent: 0, grpcStatus: 16}\n"},
		{name: "fault: delay only", doc: fiHead + "  delay: {percent: 100, fixedDelay: 250ms}\n"},
		{name: "fault: nothing to inject", doc: fiHead + "  {}\n", want: []string{"spec: Invalid value", "set delay, abort or both"}},
		{name: "fault: both statuses", doc: fiHead + "  abort: {percent: 1, httpStatus: 503, grpcStatus: 14}\n", want: []string{"spec.abort: Invalid value", "set exactly one of httpStatus"}},
		{name: "fault: no status", doc: fiHead + "  abort: {percent: 1}\n", want: []string{"spec.abort: Invalid value", "set exactly one of httpStatus"}},
		{name: "fault: abort without percent", doc: fiHead + "  abort: {httpStatus: 503}\n", want: []string{"spec.abort.percent: Required value"},
			diverges: "universal mode reads a missing percent as 0 (Go's zero value): the abort injects nothing"},
		{name: "fault: percent above 100", doc: fiHead + "  abort: {percent: 100.5, httpStatus: 503}\n", want: []string{"spec.abort.percent: Invalid value: 100.5"}},
		{name: "fault: negative percent", doc: fiHead + "  delay: {percent: -1, fixedDelay: 1s}\n", want: []string{"spec.delay.percent: Invalid value: -1"}},
		{name: "fault: HTTP status out of range", doc: fiHead + "  abort: {percent: 1, httpStatus: 600}\n", want: []string{"spec.abort.httpStatus: Invalid value: 600"}},
		{name: "fault: HTTP status below 200", doc: fiHead + "  abort: {percent: 1, httpStatus: 199}\n", want: []string{"spec.abort.httpStatus: Invalid value: 199"}},
		{name: "fault: gRPC status OK", doc: fiHead + "  abort: {percent: 1, grpcStatus: 0}\n", want: []string{"spec.abort.grpcStatus: Invalid value: 0"}},
		{name: "fault: gRPC status out of range", doc: fiHead + "  abort: {percent: 1, grpcStatus: 17}\n", want: []string{"spec.abort.grpcStatus: Invalid value: 17"}},
		{name: "fault: delay of zero", doc: fiHead + "  delay: {percent: 1, fixedDelay: 0s}\n", want: []string{"spec.delay.fixedDelay: Invalid value", "must be positive"}},
		{name: "fault: delay without fixedDelay", doc: fiHead + "  delay: {percent: 1}\n", want: []string{"spec.delay.fixedDelay: Required value"}},
		{name: "fault: delay not a duration", doc: fiHead + "  delay: {percent: 1, fixedDelay: 2 seconds}\n", want: []string{"spec.delay.fixedDelay: Invalid value", "must be a duration"}},
		{name: "fault: negative delay", doc: fiHead + "  delay: {percent: 1, fixedDelay: -1s}\n", want: []string{"spec.delay.fixedDelay: Invalid value", "not negative"}},
	}
}
