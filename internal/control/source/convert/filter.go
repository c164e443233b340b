package convert

import (
	"math"

	"k8s.io/apimachinery/pkg/util/validation"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
	policyapi "github.com/weft-mesh/weft/pkg/apis/policy/v1alpha1"
)

// Bounds of a RateLimit, the proxy's (internal/proxy/ratelimit) and the
// CRD's.
const (
	maxRequestsPerSecond = 1e9
	maxBurst             = 1 << 30
)

// extensionRef converts a rule's ExtensionRef filter (the index-th) at
// field f: a reference to a RateLimit or a FaultInjection of the route's
// namespace, which the translation resolves.
func (c *conv) extensionRef(f string, index int, ref gwv1.LocalObjectReference, rule *model.RouteRule) {
	var slot **model.FilterRef
	switch {
	case string(ref.Group) == policyapi.GroupName && ref.Kind == "RateLimit":
		slot = &rule.RateLimitRef
	case string(ref.Group) == policyapi.GroupName && ref.Kind == "FaultInjection":
		slot = &rule.FaultRef
	default:
		c.failReason(ReasonInvalidKind, f, "Unsupported value: weft's ExtensionRef filters name a RateLimit or a FaultInjection (group: %s), not %s",
			policyapi.GroupName, groupKind(string(ref.Group), string(ref.Kind)))
		return
	}
	if ref.Name == "" {
		c.fail(f+".name", "the %s's name is required", ref.Kind)
		return
	}
	if *slot != nil {
		c.fail(f, "a rule may reference one %s; this is the second (filter %d is the first)", ref.Kind, (*slot).Filter)
		return
	}
	*slot = &model.FilterRef{Name: string(ref.Name), Filter: index}
}

func (c *conv) rateLimit(p *policyapi.RateLimit) *model.RateLimitPolicy {
	ns, name := c.meta(&p.ObjectMeta, validation.IsDNS1123Subdomain)
	s := p.Spec
	out := &model.RateLimitPolicy{Namespace: ns, Name: name, Created: c.createdAt(&p.ObjectMeta),
		TargetRefs: c.securityTargets(ns, s.TargetRefs)}
	switch {
	case s.RequestsPerSecond == 0 && s.PerClient != nil:
		// No total: per client only.
		if s.Burst != 0 {
			c.fail("spec.burst", "burst is the total's: set requestsPerSecond too, or remove burst (perClient.burst is each client's)")
		}
	default:
		rps, burst := c.bucket("spec.", s.RequestsPerSecond, s.Burst)
		out.Limit = &weftv1.RateLimit{RequestsPerSecond: rps, Burst: burst}
	}
	if pc := s.PerClient; pc != nil {
		rps, burst := c.bucket("spec.perClient.", pc.RequestsPerSecond, pc.Burst)
		out.PerClient = &model.ClientRate{RequestsPerSecond: rps, Burst: burst}
		if len(s.TargetRefs) == 0 {
			c.warn("spec.perClient", "applies only at the inbound of the workloads targetRefs select, and there are none: only route rules' filters apply this RateLimit, without perClient")
		}
	}
	c.modelErrors(out.Validate())
	return out
}

// bucket checks a token bucket's rate and burst (fields f+"requestsPerSecond"
// and f+"burst"); an unset burst is the rate rounded up.
func (c *conv) bucket(f string, rps float64, burst int32) (float64, uint32) {
	if math.IsNaN(rps) || rps <= 0 || rps > maxRequestsPerSecond {
		c.fail(f+"requestsPerSecond", "%v is not a rate: set it above 0 and at most %d", rps, int64(maxRequestsPerSecond))
	}
	switch {
	case burst < 0 || burst > maxBurst:
		c.fail(f+"burst", "%d is not a burst: set it from 1 to %d, or remove it for requestsPerSecond rounded up", burst, maxBurst)
	case burst == 0 && rps > 0 && rps <= maxRequestsPerSecond:
		burst = int32(min(math.Ceil(rps), maxBurst))
	}
	return rps, uint32(max(burst, 0))
}

func (c *conv) faultInjection(p *policyapi.FaultInjection) *model.FaultInjectionPolicy {
	ns, name := c.meta(&p.ObjectMeta, validation.IsDNS1123Subdomain)
	s := p.Spec
	out := &weftv1.Fault{}
	if s.Delay == nil && s.Abort == nil {
		c.fail("spec", "set delay, abort or both: a FaultInjection without either injects nothing")
	}
	if d := s.Delay; d != nil {
		c.percent("spec.delay.percent", d.Percent)
		out.DelayPercent = d.Percent
		if d.FixedDelay == "" {
			c.fail("spec.delay.fixedDelay", "the delay is required, e.g. 500ms or 2s")
		} else if dur := c.duration("spec.delay.fixedDelay", string(d.FixedDelay)); dur != nil {
			if dur.AsDuration() <= 0 {
				c.fail("spec.delay.fixedDelay", "must be positive; to delay nothing, set percent to 0 or remove delay")
			}
			out.Delay = dur
		}
	}
	if a := s.Abort; a != nil {
		c.percent("spec.abort.percent", a.Percent)
		out.AbortPercent = a.Percent
		switch {
		case (a.HTTPStatus == nil) == (a.GRPCStatus == nil):
			c.fail("spec.abort", "set exactly one of httpStatus (HTTP requests) and grpcStatus (gRPC requests)")
		case a.HTTPStatus != nil:
			if *a.HTTPStatus < 200 || *a.HTTPStatus > 599 {
				c.fail("spec.abort.httpStatus", "%d is not an HTTP status: set it from 200 to 599 (e.g. 503)", *a.HTTPStatus)
			}
			out.AbortHttpStatus = uint32(max(*a.HTTPStatus, 0))
		default:
			if *a.GRPCStatus < 1 || *a.GRPCStatus > 16 {
				c.fail("spec.abort.grpcStatus", "%d is not a gRPC status code: set it from 1 to 16 (e.g. 14, UNAVAILABLE)", *a.GRPCStatus)
			}
			// The proxy answers a request that is not gRPC with the HTTP
			// status: 500, as the API documents.
			out.AbortGrpcStatus = uint32(max(*a.GRPCStatus, 0))
			out.AbortHttpStatus = 500
		}
	}
	return &model.FaultInjectionPolicy{Namespace: ns, Name: name, Fault: out}
}

func (c *conv) percent(field string, v float64) {
	if math.IsNaN(v) || v < 0 || v > 100 {
		c.fail(field, "%v is not a percentage: set it from 0 to 100", v)
	}
}
