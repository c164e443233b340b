package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Authorization decisions, the values of the decision label of
// weft_authz_decisions_total.
const (
	// AuthzAllow: the request or connection was allowed.
	AuthzAllow = "allow"
	// AuthzDeny: it was denied.
	AuthzDeny = "deny"
	// AuthzWouldDeny: it was allowed, but a dry-run policy would have
	// denied it. Counted besides its allow.
	AuthzWouldDeny = "would_deny"
)

// Modes of weft_proxy_tls_rejected_total{mode} for plaintext refused on an
// inbound port.
const (
	// ModeStrict: the port's own mtls setting is strict.
	ModeStrict = "strict"
	// ModeRequireMTLS: the port has no mtls setting and inbound.require_mtls
	// is on.
	ModeRequireMTLS = "require_mtls"
)

// authzMetrics is weft_authz_decisions_total{decision, policy, rule}. The
// policy and rule values come from the config (its policy and rule names),
// never from requests; they still pass through limiters, so a config with
// thousands of rules cannot explode the series either.
type authzMetrics struct {
	decisions    *prometheus.CounterVec
	policy, rule *limiter

	mu    sync.RWMutex
	cache map[authzKey]prometheus.Counter
}

type authzKey struct{ decision, policy, rule string }

func newAuthzMetrics(reg prometheus.Registerer, limit int, overflow *prometheus.CounterVec) *authzMetrics {
	a := &authzMetrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_authz_decisions_total",
			Help: "Inbound authorization decisions on requests and opaque TCP connections, by the policy and rule that decided; would_deny counts allowed requests a dry-run policy would have denied.",
		}, []string{"decision", "policy", "rule"}),
		policy: newLimiter(limit, overflow.WithLabelValues("policy")),
		rule:   newLimiter(limit, overflow.WithLabelValues("rule")),
		cache:  make(map[authzKey]prometheus.Counter),
	}
	reg.MustRegister(a.decisions)
	return a
}

// AuthzDecision counts one authorization decision: decision is AuthzAllow,
// AuthzDeny or AuthzWouldDeny, policy and rule name what decided (see
// package authz). It does not allocate once the combination has been seen.
func (m *Metrics) AuthzDecision(decision, policy, rule string) {
	a := m.authz
	k := authzKey{decision, policy, rule}
	a.mu.RLock()
	c, ok := a.cache[k]
	a.mu.RUnlock()
	if !ok {
		c = a.counter(k)
	}
	c.Inc()
}

// counter is AuthzDecision's slow path; as for requests, the cache is
// keyed by admitted values.
func (a *authzMetrics) counter(k authzKey) prometheus.Counter {
	k = authzKey{decision: sanitize(k.decision), policy: a.policy.admit(k.policy), rule: a.rule.admit(k.rule)}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.cache[k]; ok {
		return c
	}
	c := a.decisions.WithLabelValues(k.decision, k.policy, k.rule)
	a.cache[k] = c
	return c
}

// PlaintextRejected counts a plaintext connection (or request) refused by
// an inbound port that requires mTLS, as
// weft_proxy_tls_rejected_total{direction="inbound",reason="plaintext",mode}:
// mode is ModeStrict or ModeRequireMTLS.
func (m *Metrics) PlaintextRejected(mode string) {
	m.tlsRejected.WithLabelValues(m.direction.admit("inbound"), m.reason.admit("plaintext"), sanitize(mode)).Inc()
}
