package convert_test

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/source/convert"
	policyapi "github.com/weft-mesh/weft/pkg/apis/policy/v1alpha1"
)

// renderFilters is render, plus what the object holds of rate limits and
// faults: each rule's references, and a policy's proxy message.
func renderFilters(r convert.Result) string {
	lines := []string{render(r)}
	ref := func(r *model.FilterRef) string {
		if r == nil {
			return "-"
		}
		return fmt.Sprintf("%s@%d", r.Name, r.Filter)
	}
	switch o := r.Object.(type) {
	case *model.Route:
		for i, rule := range o.Rules {
			lines = append(lines, fmt.Sprintf("rule %d rateLimit %s fault %s filters %v", i, ref(rule.RateLimitRef), ref(rule.FaultRef), rule.Filters != nil))
		}
	case *model.RateLimitPolicy:
		lines = append(lines, "limit "+prototext.MarshalOptions{}.Format(o.Limit))
		if o.PerClient != nil || len(o.TargetRefs) > 0 {
			lines = append(lines, fmt.Sprintf("perClient %v targets %v", o.PerClient, o.TargetRefs))
		}
	case *model.FaultInjectionPolicy:
		lines = append(lines, "fault "+prototext.MarshalOptions{}.Format(o.Fault))
	}
	return strings.Join(lines, "\n")
}

func extRef(group, kind, name string) gwv1.HTTPRouteFilter {
	return gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterExtensionRef,
		ExtensionRef: &gwv1.LocalObjectReference{Group: gwv1.Group(group), Kind: gwv1.Kind(kind), Name: gwv1.ObjectName(name)}}
}

func TestExtensionRefFilters(t *testing.T) {
	parents := gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Group: ptr.To(gwv1.Group("")), Kind: ptr.To(gwv1.Kind("Service")), Name: "web"}}}
	httpRoute := func(fs ...gwv1.HTTPRouteFilter) *gwv1.HTTPRoute {
		return &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "shop"},
			Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: parents, Rules: []gwv1.HTTPRouteRule{{Filters: fs}, {}}}}
	}
	grpcRoute := func(fs ...gwv1.GRPCRouteFilter) *gwv1.GRPCRoute {
		return &gwv1.GRPCRoute{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "shop"},
			Spec: gwv1.GRPCRouteSpec{CommonRouteSpec: parents, Rules: []gwv1.GRPCRouteRule{{Filters: fs}}}}
	}
	const pol = "policy.weft.dev"
	for _, tc := range []struct {
		name string
		obj  any
		want string
	}{
		{"rate limit and fault on an HTTPRoute rule", httpRoute(extRef(pol, "RateLimit", "rl"), extRef(pol, "FaultInjection", "chaos")), `object HTTPRoute shop/r
ref 0 spec.parentRefs[0] -> shop/web:0 
rule 0 rateLimit rl@0 fault chaos@1 filters false
rule 1 rateLimit - fault - filters false`},
		{"beside a header modifier", httpRoute(gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gwv1.HTTPHeaderFilter{Remove: []string{"x"}}},
			extRef(pol, "RateLimit", "rl")), `object HTTPRoute shop/r
ref 0 spec.parentRefs[0] -> shop/web:0 
rule 0 rateLimit rl@1 fault - filters true
rule 1 rateLimit - fault - filters false`},
		{"on a GRPCRoute rule", grpcRoute(gwv1.GRPCRouteFilter{Type: gwv1.GRPCRouteFilterExtensionRef,
			ExtensionRef: &gwv1.LocalObjectReference{Group: pol, Kind: "FaultInjection", Name: "chaos"}}), `object GRPCRoute shop/g
ref 0 spec.parentRefs[0] -> shop/web:0 
rule 0 rateLimit - fault chaos@0 filters false`},
		{"unknown kind", httpRoute(extRef(pol, "Quota", "q")), `invalid
problem spec.rules[0].filters[0].extensionRef: Unsupported value: weft's ExtensionRef filters name a RateLimit or a FaultInjection (group: policy.weft.dev), not Quota of group policy.weft.dev [invalid] [InvalidKind]
ref 0 spec.parentRefs[0] -> shop/web:0 `},
		{"another group's kind", httpRoute(extRef("example.com", "RateLimit", "rl")), `invalid
problem spec.rules[0].filters[0].extensionRef: Unsupported value: weft's ExtensionRef filters name a RateLimit or a FaultInjection (group: policy.weft.dev), not RateLimit of group example.com [invalid] [InvalidKind]
ref 0 spec.parentRefs[0] -> shop/web:0 `},
		{"no name", httpRoute(extRef(pol, "RateLimit", "")), `invalid
problem spec.rules[0].filters[0].extensionRef.name: the RateLimit's name is required [invalid]
ref 0 spec.parentRefs[0] -> shop/web:0 `},
		{"two rate limits in a rule", httpRoute(extRef(pol, "RateLimit", "a"), extRef(pol, "RateLimit", "b")), `invalid
problem spec.rules[0].filters[1].extensionRef: a rule may reference one RateLimit; this is the second (filter 0 is the first) [invalid]
ref 0 spec.parentRefs[0] -> shop/web:0 `},
		{"type ExtensionRef without extensionRef", httpRoute(gwv1.HTTPRouteFilter{Type: gwv1.HTTPRouteFilterExtensionRef}), `invalid
problem spec.rules[0].filters[0].extensionRef: a filter of type ExtensionRef needs extensionRef [invalid]
ref 0 spec.parentRefs[0] -> shop/web:0 `},

		{"rate limit: burst defaults to the rate rounded up", &policyapi.RateLimit{ObjectMeta: metav1.ObjectMeta{Name: "rl", Namespace: "shop"},
			Spec: policyapi.RateLimitSpec{RequestsPerSecond: 2.5}}, `object RateLimit shop/rl
limit requests_per_second:2.5 burst:3`},
		{"rate limit: explicit burst", &policyapi.RateLimit{ObjectMeta: metav1.ObjectMeta{Name: "rl"},
			Spec: policyapi.RateLimitSpec{RequestsPerSecond: 1, Burst: 1}}, `object RateLimit default/rl
limit requests_per_second:1 burst:1`},
		{"rate limit: no rate", &policyapi.RateLimit{ObjectMeta: metav1.ObjectMeta{Name: "rl"}}, `invalid
problem spec.requestsPerSecond: 0 is not a rate: set it above 0 and at most 1000000000 [invalid]`},
		{"rate limit: bad values", &policyapi.RateLimit{ObjectMeta: metav1.ObjectMeta{Name: "rl"},
			Spec: policyapi.RateLimitSpec{RequestsPerSecond: 2e9, Burst: -1}}, `invalid
problem spec.requestsPerSecond: 2e+09 is not a rate: set it above 0 and at most 1000000000 [invalid]
problem spec.burst: -1 is not a burst: set it from 1 to 1073741824, or remove it for requestsPerSecond rounded up [invalid]`},

		{"rate limit: targets and per client", &policyapi.RateLimit{ObjectMeta: metav1.ObjectMeta{Name: "rl", Namespace: "shop"},
			Spec: policyapi.RateLimitSpec{RequestsPerSecond: 100, TargetRefs: []policyapi.TargetReference{{Kind: "Service", Name: "web", SectionName: ptr.To(intstr.FromString("http"))}, {Group: "weft.dev", Kind: "Workload", Name: "web-0"}},
				PerClient: &policyapi.RateLimitPerClient{RequestsPerSecond: 0.5}}}, `object RateLimit shop/rl
ref 4 spec.targetRefs[0] -> shop/web:0 Service
ref 4 spec.targetRefs[1] -> shop/web-0:0 Workload
limit requests_per_second:100 burst:100
perClient &{0.5 1} targets [{Service web http} {Workload web-0 }]`},
		{"rate limit: per client only", &policyapi.RateLimit{ObjectMeta: metav1.ObjectMeta{Name: "rl", Namespace: "shop"},
			Spec: policyapi.RateLimitSpec{TargetRefs: []policyapi.TargetReference{{Kind: "Service", Name: "web"}},
				PerClient: &policyapi.RateLimitPerClient{RequestsPerSecond: 5, Burst: 2}}}, `object RateLimit shop/rl
ref 4 spec.targetRefs[0] -> shop/web:0 Service
limit <nil>
perClient &{5 2} targets [{Service web }]`},
		{"rate limit: per client without targets", &policyapi.RateLimit{ObjectMeta: metav1.ObjectMeta{Name: "rl"},
			Spec: policyapi.RateLimitSpec{RequestsPerSecond: 1, PerClient: &policyapi.RateLimitPerClient{RequestsPerSecond: 1}}}, `object RateLimit default/rl
problem spec.perClient: applies only at the inbound of the workloads targetRefs select, and there are none: only route rules' filters apply this RateLimit, without perClient
limit requests_per_second:1 burst:1
perClient &{1 1} targets []`},
		{"rate limit: bad per client, burst without a total, bad target", &policyapi.RateLimit{ObjectMeta: metav1.ObjectMeta{Name: "rl"},
			Spec: policyapi.RateLimitSpec{Burst: 3, TargetRefs: []policyapi.TargetReference{{Kind: "Pod", Name: "x"}},
				PerClient: &policyapi.RateLimitPerClient{RequestsPerSecond: -1, Burst: -2}}}, `invalid
problem spec.targetRefs[0].kind: a policy targets a Service (group: "", kind: Service) or a Workload (group: weft.dev, kind: Workload), not Pod [invalid]
problem spec.burst: burst is the total's: set requestsPerSecond too, or remove burst (perClient.burst is each client's) [invalid]
problem spec.perClient.requestsPerSecond: -1 is not a rate: set it above 0 and at most 1000000000 [invalid]
problem spec.perClient.burst: -2 is not a burst: set it from 1 to 1073741824, or remove it for requestsPerSecond rounded up [invalid]`},

		{"fault: delay and HTTP abort", &policyapi.FaultInjection{ObjectMeta: metav1.ObjectMeta{Name: "f", Namespace: "shop"},
			Spec: policyapi.FaultInjectionSpec{Delay: &policyapi.FaultDelay{Percent: 10, FixedDelay: "1.5s"}, Abort: &policyapi.FaultAbort{Percent: 100, HTTPStatus: ptr.To[int32](503)}}}, `object FaultInjection shop/f
fault delay_percent:10 delay:{seconds:1 nanos:500000000} abort_percent:100 abort_http_status:503`},
		{"fault: gRPC abort answers other requests 500", &policyapi.FaultInjection{ObjectMeta: metav1.ObjectMeta{Name: "f"},
			Spec: policyapi.FaultInjectionSpec{Abort: &policyapi.FaultAbort{Percent: 50, GRPCStatus: ptr.To[int32](14)}}}, `object FaultInjection default/f
fault abort_percent:50 abort_http_status:500 abort_grpc_status:14`},
		{"fault: nothing to inject", &policyapi.FaultInjection{ObjectMeta: metav1.ObjectMeta{Name: "f"}}, `invalid
problem spec: set delay, abort or both: a FaultInjection without either injects nothing [invalid]`},
		{"fault: both statuses", &policyapi.FaultInjection{ObjectMeta: metav1.ObjectMeta{Name: "f"},
			Spec: policyapi.FaultInjectionSpec{Abort: &policyapi.FaultAbort{Percent: 1, HTTPStatus: ptr.To[int32](503), GRPCStatus: ptr.To[int32](14)}}}, `invalid
problem spec.abort: set exactly one of httpStatus (HTTP requests) and grpcStatus (gRPC requests) [invalid]`},
		{"fault: neither status", &policyapi.FaultInjection{ObjectMeta: metav1.ObjectMeta{Name: "f"},
			Spec: policyapi.FaultInjectionSpec{Abort: &policyapi.FaultAbort{Percent: 1}}}, `invalid
problem spec.abort: set exactly one of httpStatus (HTTP requests) and grpcStatus (gRPC requests) [invalid]`},
		{"fault: values out of range", &policyapi.FaultInjection{ObjectMeta: metav1.ObjectMeta{Name: "f"},
			Spec: policyapi.FaultInjectionSpec{Delay: &policyapi.FaultDelay{Percent: 101, FixedDelay: "0s"}, Abort: &policyapi.FaultAbort{Percent: -1, HTTPStatus: ptr.To[int32](600)}}}, `invalid
problem spec.delay.percent: 101 is not a percentage: set it from 0 to 100 [invalid]
problem spec.delay.fixedDelay: must be positive; to delay nothing, set percent to 0 or remove delay [invalid]
problem spec.abort.percent: -1 is not a percentage: set it from 0 to 100 [invalid]
problem spec.abort.httpStatus: 600 is not an HTTP status: set it from 200 to 599 (e.g. 503) [invalid]`},
		{"fault: gRPC status out of range, delay not a duration", &policyapi.FaultInjection{ObjectMeta: metav1.ObjectMeta{Name: "f"},
			Spec: policyapi.FaultInjectionSpec{Delay: &policyapi.FaultDelay{Percent: 1, FixedDelay: "2 seconds"}, Abort: &policyapi.FaultAbort{Percent: 1, GRPCStatus: ptr.To[int32](17)}}}, `invalid
problem spec.delay.fixedDelay: "2 seconds" is not a duration; write e.g. 500ms, 10s or 1m [invalid]
problem spec.abort.grpcStatus: 17 is not a gRPC status code: set it from 1 to 16 (e.g. 14, UNAVAILABLE) [invalid]`},
		{"fault: delay without fixedDelay", &policyapi.FaultInjection{ObjectMeta: metav1.ObjectMeta{Name: "f"},
			Spec: policyapi.FaultInjectionSpec{Delay: &policyapi.FaultDelay{Percent: 1}}}, `invalid
problem spec.delay.fixedDelay: the delay is required, e.g. 500ms or 2s [invalid]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := convert.Object(tc.obj, convert.Options{})
			if r.Object != nil {
				// What a source does with it: the store takes it.
				if err := model.NewStore().Apply("test", model.Change{Upsert: r.Object}); err != nil {
					t.Errorf("the store refuses the object: %v", err)
				}
			}
			// prototext's spacing is not stable: normalize it.
			got := strings.Join(strings.Fields(strings.ReplaceAll(renderFilters(r), "\n", " \x00 ")), " ")
			want := strings.Join(strings.Fields(strings.ReplaceAll(tc.want, "\n", " \x00 ")), " ")
			if got != want {
				t.Errorf("got:\n%s\nwant:\n%s", renderFilters(r), tc.want)
			}
		})
	}
}
