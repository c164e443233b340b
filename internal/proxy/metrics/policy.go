package metrics

import "github.com/prometheus/client_golang/prometheus"

// Policy decisions: every retry, refusal and injected fault shows up in one
// counter, so a user sees what the mesh did to their traffic.
//
// weft_policy_decisions_total{direction, service, route, policy, decision}
//
//	policy   decision
//	retry    retried | budget_exhausted
//	ratelimit limited_route | limited_identity (outbound, service is the service)
//	ratelimit limited_port | limited_identity (inbound, service is the port)
//	fault    delayed | aborted
//	mirror   mirrored
//	breaker  rejected | ejected
//
// Decision values are fixed by the proxy; service and route go through the
// same cardinality limits as the golden metrics.
type policyMetrics struct {
	decisions *prometheus.CounterVec
}

func newPolicyMetrics(reg prometheus.Registerer) *policyMetrics {
	p := &policyMetrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_policy_decisions_total",
			Help: "Traffic policy decisions taken by the proxy: retries, retry budget exhaustion, rate limiting, injected faults, mirroring, circuit breaking.",
		}, []string{lDirection, lService, lRoute, "policy", "decision"}),
	}
	reg.MustRegister(p.decisions)
	return p
}

// PolicyDecision counts one decision of a traffic policy.
func (m *Metrics) PolicyDecision(l Labels, policy, decision string) {
	m.policy.decisions.WithLabelValues(m.direction.admit(l.Direction), m.service.admit(l.Service), m.route.admit(l.Route), policy, decision).Inc()
}
