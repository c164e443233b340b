package translate

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
)

// filterGoldenCases translate the fixture with ExtensionRef filters on the
// first rule of HTTPRoute shop/web-canary and on GRPCRoute shop/api-retry,
// for a client of web and api.
func filterGoldenCases() []goldenCase {
	client := func(*model.Snapshot) Proxy {
		return Proxy{Identity: id("shop", "frontend"), Watched: watch(refWeb, refAPI), TLS: testTLS()}
	}
	limit := &model.RateLimitPolicy{Namespace: "shop", Name: "web-limit", Limit: &weftv1.RateLimit{RequestsPerSecond: 1, Burst: 1}}
	chaos := &model.FaultInjectionPolicy{Namespace: "shop", Name: "chaos", Fault: &weftv1.Fault{
		DelayPercent: 10, Delay: durationpb.New(2 * time.Second), AbortPercent: 100, AbortHttpStatus: 503}}
	grpcChaos := &model.FaultInjectionPolicy{Namespace: "shop", Name: "grpc-chaos", Fault: &weftv1.Fault{
		AbortPercent: 50, AbortHttpStatus: 500, AbortGrpcStatus: 14}}
	// with references the filters from the routes, and adds objs.
	with := func(webRefs, apiRefs model.RouteRule, objs ...model.Object) func(t *testing.T) *model.Snapshot {
		return func(t *testing.T) *model.Snapshot {
			return fixture(t, func(fx []model.Object) []model.Object {
				for _, o := range fx {
					if r, ok := o.(*model.Route); ok && r.Namespace == "shop" {
						refs := map[string]model.RouteRule{"web-canary": webRefs, "api-retry": apiRefs}[r.Name]
						r.Rules[0].RateLimitRef, r.Rules[0].FaultRef = refs.RateLimitRef, refs.FaultRef
					}
				}
				return append(fx, objs...)
			})
		}
	}
	rule := func(cfg *weftv1.ProxyConfig, svc, route string) *weftv1.RouteRule {
		for _, r := range service(cfg, svc).GetRoutes() {
			if r.GetRoute() == route && r.GetIndex() == 0 {
				return r
			}
		}
		return nil
	}
	both := model.RouteRule{RateLimitRef: &model.FilterRef{Name: "web-limit", Filter: 0}, FaultRef: &model.FilterRef{Name: "chaos", Filter: 1}}
	grpc := model.RouteRule{FaultRef: &model.FilterRef{Name: "grpc-chaos", Filter: 0}}
	return []goldenCase{
		{
			name:  "filters-resolved",
			snap:  with(both, grpc, limit, chaos, grpcChaos),
			proxy: client,
			check: func(t *testing.T, res Result) {
				web := rule(res.Config, "web.shop:80", "shop/web-canary")
				if !proto.Equal(web.GetRateLimit(), limit.Limit) || !proto.Equal(web.GetFault(), chaos.Fault) {
					t.Errorf("web-canary rule 0: rate limit %v, fault %v; want %v and %v", web.GetRateLimit(), web.GetFault(), limit.Limit, chaos.Fault)
				}
				if api := rule(res.Config, "api.shop:9090", "shop/api-retry"); !proto.Equal(api.GetFault(), grpcChaos.Fault) || api.GetRateLimit() != nil {
					t.Errorf("api-retry rule 0: rate limit %v, fault %v; want none and %v", api.GetRateLimit(), api.GetFault(), grpcChaos.Fault)
				}
				for _, p := range res.Problems {
					if p.Object == "HTTPRoute shop/web-canary" && p.Field != "rules[1].backendRefs[1]" {
						t.Errorf("unexpected problem %v", p)
					}
				}
			},
		},
		{
			// The RateLimit exists, the FaultInjection does not: the rule
			// fails closed, with 500, and the problem names the filter.
			name:  "filters-unresolved",
			snap:  with(both, grpc, limit),
			proxy: client,
			check: func(t *testing.T, res Result) {
				want := &weftv1.Fault{AbortPercent: 100, AbortHttpStatus: 500}
				for _, r := range []*weftv1.RouteRule{rule(res.Config, "web.shop:80", "shop/web-canary"), rule(res.Config, "api.shop:9090", "shop/api-retry")} {
					if !proto.Equal(r.GetFault(), want) || r.GetRateLimit() != nil {
						t.Errorf("%s rule 0: rate limit %v, fault %v; want none and %v", r.GetRoute(), r.GetRateLimit(), r.GetFault(), want)
					}
				}
				found := map[Problem]bool{}
				for _, p := range res.Problems {
					found[p] = true
				}
				for _, p := range []Problem{
					{"HTTPRoute shop/web-canary", "rules[0].filters[1]", "FaultInjection shop/chaos does not exist; the rule answers every request with 500 until it does, or until the filter is removed"},
					{"GRPCRoute shop/api-retry", "rules[0].filters[0]", "FaultInjection shop/grpc-chaos does not exist; the rule answers every request with 500 until it does, or until the filter is removed"},
				} {
					if !found[p] {
						t.Errorf("problem %v not reported; got %v", p, res.Problems)
					}
				}
				// The route's other rule is served as it was.
				if r := service(res.Config, "web.shop:80").GetRoutes(); len(r) != 2 || r[1].GetFault() != nil {
					t.Errorf("web routes %v: want both rules, the second without a fault", r)
				}
			},
		},
	}
}
