package translate

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
)

// loadBalancerGoldenCases translate a client of web under two
// LoadBalancers of web: the older (ring hash on header x-user) applies,
// the newer conflicts.
func loadBalancerGoldenCases() []goldenCase {
	lb := func(name string, hoursOld int, b *weftv1.LoadBalancer) *model.LoadBalancerPolicy {
		return &model.LoadBalancerPolicy{Namespace: "shop", Name: name, Created: t0.Add(-time.Duration(hoursOld) * time.Hour), TargetRef: refWeb, Balancer: b}
	}
	return []goldenCase{
		{name: "loadbalancer-ring-hash-oldest-wins",
			proxy: func(*model.Snapshot) Proxy {
				return Proxy{Identity: id("shop", "frontend"), Watched: watch(refWeb), TLS: testTLS()}
			},
			snap: func(t *testing.T) *model.Snapshot {
				return fixture(t, func(fx []model.Object) []model.Object {
					return append(fx,
						lb("sticky", 2, &weftv1.LoadBalancer{Policy: "ring-hash", HashOn: &weftv1.HashOn{Header: "x-user"}}),
						lb("round-robin", 1, &weftv1.LoadBalancer{Policy: "round-robin"}))
				})
			},
			check: func(t *testing.T, res Result) {
				got := service(res.Config, "web.shop:80").GetLoadBalancer()
				if got.GetPolicy() != "ring-hash" || got.GetHashOn().GetHeader() != "x-user" {
					t.Errorf("web's load balancer %v, want the older ring-hash on x-user", got)
				}
				if lb := service(res.Config, "web-v1.shop:80").GetLoadBalancer(); lb != nil {
					t.Errorf("web-v1 has load balancer %v, want none", lb)
				}
				if !slices.ContainsFunc(res.Problems, func(p Problem) bool {
					return p.Object == "LoadBalancerPolicy shop/round-robin" && strings.Contains(p.Message, "LoadBalancerPolicy shop/sticky")
				}) {
					t.Errorf("the newer LoadBalancer is not reported: %v", res.Problems)
				}
			}},
	}
}

func TestLoadBalancerPolicies(t *testing.T) {
	svc := &model.Service{Namespace: "ns", Name: "s", Ports: []model.ServicePort{{Port: 80}}}
	lb := func(ns, name string, hoursOld int, b *weftv1.LoadBalancer) *model.LoadBalancerPolicy {
		return &model.LoadBalancerPolicy{Namespace: ns, Name: name, Created: t0.Add(-time.Duration(hoursOld) * time.Hour), TargetRef: svc.Ref(), Balancer: b}
	}
	ringHash := &weftv1.LoadBalancer{Policy: "ring-hash", HashOn: &weftv1.HashOn{Cookie: "session"}}
	tests := []struct {
		name     string
		policies []model.Object
		want     string // the load balancer applied; "": none
		problems []string
	}{
		{"none", nil, "", nil},
		{"one", []model.Object{lb("ns", "a", 1, ringHash)}, `policy:"ring-hash" hash_on:{cookie:"session"}`, nil},
		{"oldest wins", []model.Object{lb("ns", "new", 1, ringHash), lb("ns", "old", 2, &weftv1.LoadBalancer{Policy: "least-request"})},
			`policy:"least-request"`, []string{"LoadBalancerPolicy ns/new: targetRef"}},
		{"other namespace ignored", []model.Object{lb("other", "a", 2, ringHash)}, "", []string{"LoadBalancerPolicy other/a: targetRef"}},
		{"an invalid one gives way", []model.Object{
			lb("ns", "bad", 3, &weftv1.LoadBalancer{Policy: "ring-hash"}), // nothing to hash
			lb("ns", "good", 1, ringHash)}, `policy:"ring-hash" hash_on:{cookie:"session"}`,
			[]string{"LoadBalancerPolicy ns/bad: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := model.NewStore()
			if err := s.Replace("t", append([]model.Object{svc}, tt.policies...)); err != nil {
				t.Fatal(err)
			}
			res := mustConfig(t, s.Snapshot(), Proxy{Watched: watch(svc.Ref())})
			got := service(res.Config, "s.ns:80").GetLoadBalancer()
			norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
			if got == nil && tt.want != "" || got != nil && norm(prototext.MarshalOptions{}.Format(got)) != tt.want {
				t.Errorf("load balancer %v, want %q", got, tt.want)
			}
			if len(res.Problems) != len(tt.problems) {
				t.Fatalf("problems %v, want %v", res.Problems, tt.problems)
			}
			for i, p := range res.Problems {
				if !strings.HasPrefix(p.String(), tt.problems[i]) {
					t.Errorf("problem %s, want it to start with %q", p, tt.problems[i])
				}
			}
		})
	}
}
