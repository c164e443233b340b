package convert

import (
	"cmp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
	policyapi "github.com/weft-mesh/weft/pkg/apis/policy/v1alpha1"
)

// target checks a policy's targetRef and returns the service it names.
func (c *conv) target(ns string, t policyapi.ServiceTargetReference) model.ServiceRef {
	if t.Group != "" || t.Kind != "Service" {
		c.fail("spec.targetRef", "a policy targets a Service (group: \"\", kind: Service), not %s", groupKind(t.Group, cmp.Or(t.Kind, "(no kind)")))
	}
	if t.Name == "" {
		c.fail("spec.targetRef.name", "the service's name is required")
	}
	ref := model.ServiceRef{Namespace: ns, Name: t.Name}
	c.ref("spec.targetRef", RolePolicy, model.ServicePortRef{ServiceRef: ref})
	return ref
}

func (c *conv) retryBudget(p *policyapi.RetryBudget) *model.RetryBudgetPolicy {
	ns, name := c.meta(&p.ObjectMeta, validation.IsDNS1123Subdomain)
	s := p.Spec
	if s.RetryRatio < 0 {
		c.fail("spec.retryRatio", "%v is negative", s.RetryRatio)
	}
	return &model.RetryBudgetPolicy{Namespace: ns, Name: name, Created: c.createdAt(&p.ObjectMeta), TargetRef: c.target(ns, s.TargetRef),
		Budget: &weftv1.RetryBudget{RetryRatio: s.RetryRatio, MinRetriesPerSecond: s.MinRetriesPerSecond, Ttl: c.duration("spec.ttl", string(s.TTL))}}
}

func (c *conv) circuitBreaker(p *policyapi.CircuitBreaker) *model.CircuitBreakerPolicy {
	ns, name := c.meta(&p.ObjectMeta, validation.IsDNS1123Subdomain)
	s := p.Spec
	b := &weftv1.CircuitBreaker{MaxRequests: s.MaxRequests, MaxPending: s.MaxPending, PendingTimeout: c.duration("spec.pendingTimeout", string(s.PendingTimeout))}
	if o := s.OutlierDetection; o != nil {
		if o.SuccessRateStdevFactor < 0 {
			c.fail("spec.outlierDetection.successRateStdevFactor", "%v is negative", o.SuccessRateStdevFactor)
		}
		b.OutlierDetection = &weftv1.OutlierDetection{
			ConsecutiveFailures: o.ConsecutiveFailures, SuccessRateMinRequests: o.SuccessRateMinRequests,
			SuccessRateStdevFactor: o.SuccessRateStdevFactor, Interval: c.duration("spec.outlierDetection.interval", string(o.Interval)),
			BaseEjectionTime:   c.duration("spec.outlierDetection.baseEjectionTime", string(o.BaseEjectionTime)),
			MaxEjectionPercent: o.MaxEjectionPercent, Disabled: o.Disabled,
		}
	}
	if a := s.AdaptiveConcurrency; a != nil {
		b.AdaptiveConcurrency = &weftv1.AdaptiveConcurrency{Enabled: a.Enabled, InitialLimit: a.InitialLimit, MinLimit: a.MinLimit, MaxLimit: a.MaxLimit}
	}
	return &model.CircuitBreakerPolicy{Namespace: ns, Name: name, Created: c.createdAt(&p.ObjectMeta), TargetRef: c.target(ns, s.TargetRef), Breaker: b}
}

// balancingPolicies maps a LoadBalancer's policy to the proxy's name.
var balancingPolicies = map[policyapi.BalancingPolicy]string{
	"":                              "",
	policyapi.BalancingP2CEWMA:      "p2c-ewma",
	policyapi.BalancingRoundRobin:   "round-robin",
	policyapi.BalancingLeastRequest: "least-request",
	policyapi.BalancingRingHash:     "ring-hash",
}

func (c *conv) loadBalancer(p *policyapi.LoadBalancer) *model.LoadBalancerPolicy {
	ns, name := c.meta(&p.ObjectMeta, validation.IsDNS1123Subdomain)
	s := p.Spec
	lb := &weftv1.LoadBalancer{}
	policy, ok := balancingPolicies[s.Policy]
	if !ok {
		c.fail("spec.policy", "unknown policy %q; use %s, %s, %s or %s", s.Policy,
			policyapi.BalancingP2CEWMA, policyapi.BalancingRoundRobin, policyapi.BalancingLeastRequest, policyapi.BalancingRingHash)
	}
	lb.Policy = policy
	switch h := s.HashOn; {
	case h == nil && s.Policy == policyapi.BalancingRingHash:
		c.fail("spec.policy", "policy RingHash needs hashOn: a header, a cookie or sourceAddress")
	case h == nil:
	case s.Policy != policyapi.BalancingRingHash:
		c.fail("spec.hashOn", "hashOn is only used by policy RingHash; set policy: RingHash or remove hashOn")
	default:
		set := 0
		lb.HashOn = &weftv1.HashOn{SourceIp: h.SourceAddress}
		if h.SourceAddress {
			set++
		}
		if h.Header != nil {
			set++
			lb.HashOn.Header = c.hashName("spec.hashOn.header.name", h.Header.Name)
		}
		if h.Cookie != nil {
			set++
			lb.HashOn.Cookie = c.hashName("spec.hashOn.cookie.name", h.Cookie.Name)
		}
		if set != 1 {
			c.fail("spec.hashOn", "set exactly one of header, cookie or sourceAddress: true")
		}
	}
	return &model.LoadBalancerPolicy{Namespace: ns, Name: name, Created: c.createdAt(&p.ObjectMeta), TargetRef: c.target(ns, s.TargetRef), Balancer: lb}
}

// hashName checks the name of a header or cookie that RingHash hashes.
func (c *conv) hashName(field, name string) string {
	switch {
	case name == "":
		c.fail(field, "the name is required")
	case len(name) > 256:
		c.fail(field, "%d characters: at most 256", len(name))
	case strings.IndexFunc(name, func(r rune) bool { return !isTokenChar(r) }) >= 0:
		c.fail(field, "%q is not an HTTP token (letters, digits and !#$%%&'*+-.^_`|~)", name)
	}
	return name
}

func isTokenChar(r rune) bool {
	return r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r))
}
