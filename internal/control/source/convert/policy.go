package convert

import (
	"cmp"

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
