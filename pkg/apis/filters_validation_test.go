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
		{name: "rate limit: no rate", doc: rlHead + "  burst: 5\n", want: []string{"spec.requestsPerSecond: Required value"}},
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
