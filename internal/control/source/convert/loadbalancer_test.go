package convert_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/source/convert"
	policyapi "github.com/weft-mesh/weft/pkg/apis/policy/v1alpha1"
)

func TestLoadBalancer(t *testing.T) {
	lb := func(policy policyapi.BalancingPolicy, h *policyapi.HashOn) *policyapi.LoadBalancer {
		return &policyapi.LoadBalancer{ObjectMeta: metav1.ObjectMeta{Name: "lb", Namespace: "shop"},
			Spec: policyapi.LoadBalancerSpec{TargetRef: policyapi.ServiceTargetReference{Kind: "Service", Name: "web"}, Policy: policy, HashOn: h}}
	}
	name := func(n string) *policyapi.HashOnName { return &policyapi.HashOnName{Name: n} }
	for _, tc := range []struct {
		name string
		obj  *policyapi.LoadBalancer
		want string
	}{
		{"default policy", lb("", nil), "object LoadBalancerPolicy shop/lb\nref 3 spec.targetRef -> shop/web:0\nbalancer "},
		{"round robin", lb(policyapi.BalancingRoundRobin, nil), "object LoadBalancerPolicy shop/lb\nref 3 spec.targetRef -> shop/web:0\nbalancer policy:\"round-robin\""},
		{"ring hash on a header", lb(policyapi.BalancingRingHash, &policyapi.HashOn{Header: name("x-user")}),
			"object LoadBalancerPolicy shop/lb\nref 3 spec.targetRef -> shop/web:0\nbalancer policy:\"ring-hash\" hash_on:{header:\"x-user\"}"},
		{"ring hash on a cookie", lb(policyapi.BalancingRingHash, &policyapi.HashOn{Cookie: name("session")}),
			"object LoadBalancerPolicy shop/lb\nref 3 spec.targetRef -> shop/web:0\nbalancer policy:\"ring-hash\" hash_on:{cookie:\"session\"}"},
		{"ring hash on the source address", lb(policyapi.BalancingRingHash, &policyapi.HashOn{SourceAddress: true}),
			"object LoadBalancerPolicy shop/lb\nref 3 spec.targetRef -> shop/web:0\nbalancer policy:\"ring-hash\" hash_on:{source_ip:true}"},
		{"hashOn without RingHash", lb(policyapi.BalancingLeastRequest, &policyapi.HashOn{Header: name("x-user")}), "invalid\n" +
			"problem spec.hashOn: hashOn is only used by policy RingHash; set policy: RingHash or remove hashOn [invalid]\nref 3 spec.targetRef -> shop/web:0"},
		{"RingHash without hashOn", lb(policyapi.BalancingRingHash, nil), "invalid\n" +
			"problem spec.policy: policy RingHash needs hashOn: a header, a cookie or sourceAddress [invalid]\nref 3 spec.targetRef -> shop/web:0"},
		{"two hashOn sources", lb(policyapi.BalancingRingHash, &policyapi.HashOn{Header: name("x-user"), SourceAddress: true}), "invalid\n" +
			"problem spec.hashOn: set exactly one of header, cookie or sourceAddress: true [invalid]\nref 3 spec.targetRef -> shop/web:0"},
		{"no hashOn source", lb(policyapi.BalancingRingHash, &policyapi.HashOn{}), "invalid\n" +
			"problem spec.hashOn: set exactly one of header, cookie or sourceAddress: true [invalid]\nref 3 spec.targetRef -> shop/web:0"},
		{"a header name that is no token", lb(policyapi.BalancingRingHash, &policyapi.HashOn{Header: name("x user")}), "invalid\n" +
			"problem spec.hashOn.header.name: \"x user\" is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~) [invalid]\nref 3 spec.targetRef -> shop/web:0"},
		{"unknown policy", lb("Random", nil), "invalid\n" +
			"problem spec.policy: unknown policy \"Random\"; use P2CEWMA, RoundRobin, LeastRequest or RingHash [invalid]\nref 3 spec.targetRef -> shop/web:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := convert.Object(tc.obj, convert.Options{})
			got := render(r)
			if p, ok := r.Object.(*model.LoadBalancerPolicy); ok {
				got += "\nbalancer " + prototext.MarshalOptions{}.Format(p.Balancer)
			}
			// prototext inserts random spaces: compare without them.
			norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
			if norm(got) != norm(tc.want) {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
