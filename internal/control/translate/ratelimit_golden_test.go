package translate

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
)

// rateLimitGoldenCases translate the proxy of workload shop/web-0 (see
// securityGoldenCases) under RateLimits with targetRefs, and a client of
// web whose route rule references a RateLimit without a total.
func rateLimitGoldenCases() []goldenCase {
	web0 := func(snap *model.Snapshot) Proxy {
		return Proxy{Identity: id("shop", "web"), Workload: workload(snap, "web-0"), TLS: testTLS()}
	}
	client := func(*model.Snapshot) Proxy {
		return Proxy{Identity: id("shop", "frontend"), Watched: watch(refWeb), TLS: testTLS()}
	}
	with := func(objs ...model.Object) func(t *testing.T) *model.Snapshot {
		return func(t *testing.T) *model.Snapshot {
			return fixture(t, func(fx []model.Object) []model.Object {
				for _, o := range fx {
					if r, ok := o.(*model.Route); ok && r.Namespace == "shop" && r.Name == "web-canary" {
						r.Rules[0].RateLimitRef = &model.FilterRef{Name: "per-client", Filter: 0}
					}
				}
				return append(fx, objs...)
			})
		}
	}
	limit := func(name string, hoursOld int, total *weftv1.RateLimit, perClient *model.ClientRate, targets ...model.PolicyTargetRef) *model.RateLimitPolicy {
		return &model.RateLimitPolicy{Namespace: "shop", Name: name, Created: t0.Add(-time.Duration(hoursOld) * time.Hour),
			TargetRefs: targets, Limit: total, PerClient: perClient}
	}
	webSvc := model.PolicyTargetRef{Kind: model.TargetService, Name: "web"}
	webHTTP := model.PolicyTargetRef{Kind: model.TargetService, Name: "web", SectionName: "http"}
	web0Ref := model.PolicyTargetRef{Kind: model.TargetWorkload, Name: "web-0"}
	perClient := limit("per-client", 2, nil, &model.ClientRate{RequestsPerSecond: 5, Burst: 2}, webHTTP)
	wantLimits := func(want string) func(t *testing.T, res Result) {
		return func(t *testing.T, res Result) {
			if got := inboundLimits(res.Config.GetInbound()); got != want {
				t.Errorf("inbound rate limits\ngot  %s\nwant %s", got, want)
			}
		}
	}
	return []goldenCase{
		{name: "ratelimit-inbound-service", proxy: web0,
			snap:  with(limit("web-limit", 1, &weftv1.RateLimit{RequestsPerSecond: 100, Burst: 20}, &model.ClientRate{RequestsPerSecond: 0.5, Burst: 1}, webSvc)),
			check: wantLimits("7000:100/20+0.5/1 8080:100/20+0.5/1 9102:100/20+0.5/1")},
		{name: "ratelimit-inbound-oldest-wins", proxy: web0,
			snap: with(perClient, limit("web-0-total", 1, &weftv1.RateLimit{RequestsPerSecond: 10, Burst: 10}, nil, web0Ref)),
			check: func(t *testing.T, res Result) {
				wantLimits("7000:10/10 8080:0/0+5/2 9102:10/10")(t, res)
				if !slices.ContainsFunc(res.Problems, func(p Problem) bool {
					return p.Object == "RateLimit shop/web-0-total" && strings.Contains(p.Message, "older RateLimit shop/per-client on port 8080")
				}) {
					t.Errorf("the newer RateLimit on port 8080 is not reported: %v", res.Problems)
				}
			}},
		{name: "ratelimit-filter-without-total", proxy: client, snap: with(perClient),
			check: func(t *testing.T, res Result) {
				for _, r := range service(res.Config, "web.shop:80").GetRoutes() {
					if r.GetRateLimit() != nil {
						t.Errorf("rule %s/%d: rate limit %v, want none", r.GetRoute(), r.GetIndex(), r.GetRateLimit())
					}
				}
				if !slices.ContainsFunc(res.Problems, func(p Problem) bool {
					return p.Object == "HTTPRoute shop/web-canary" && strings.Contains(p.Message, "sets no requestsPerSecond")
				}) {
					t.Errorf("the filter to a RateLimit without a total is not reported: %v", res.Problems)
				}
			}},
	}
}

// inboundLimits renders the rate limits of an inbound listener's ports:
// port:total rps/burst, +per-client rps/burst when set.
func inboundLimits(in *weftv1.Inbound) string {
	var parts []string
	for _, p := range in.GetPorts() {
		rl := p.GetRateLimit()
		if rl == nil {
			continue
		}
		s := fmt.Sprintf("%d:%g/%d", p.GetPort(), rl.GetRequestsPerSecond(), rl.GetBurst())
		if rl.GetPerIdentityRequestsPerSecond() != 0 {
			s += fmt.Sprintf("+%g/%d", rl.GetPerIdentityRequestsPerSecond(), rl.GetPerIdentityBurst())
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}
