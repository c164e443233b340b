package metrics_test

import (
	"fmt"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/metrics"
)

func TestAuthzDecisions(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.AuthzDecision(metrics.AuthzAllow, "default/api-allow", "frontend")
	m.AuthzDecision(metrics.AuthzAllow, "default/api-allow", "frontend")
	m.AuthzDecision(metrics.AuthzDeny, "default", "deny-all")
	m.AuthzDecision(metrics.AuthzDeny, "default/api-allow", "no-allow-match")
	m.AuthzDecision(metrics.AuthzWouldDeny, "default/trial", "rule-0")

	want := `# HELP weft_authz_decisions_total Inbound authorization decisions on requests and opaque TCP connections, by the policy and rule that decided; would_deny counts allowed requests a dry-run policy would have denied.
# TYPE weft_authz_decisions_total counter
weft_authz_decisions_total{decision="allow",policy="default/api-allow",rule="frontend"} 2
weft_authz_decisions_total{decision="deny",policy="default",rule="deny-all"} 1
weft_authz_decisions_total{decision="deny",policy="default/api-allow",rule="no-allow-match"} 1
weft_authz_decisions_total{decision="would_deny",policy="default/trial",rule="rule-0"} 1
`
	if got := gatherText(t, m.Registry, "weft_authz_decisions_total"); got != want {
		t.Errorf("gathered:\n%s\nwant:\n%s", got, want)
	}
}

func TestAuthzDecisionLabelsBounded(t *testing.T) {
	m := metrics.New(metrics.Options{MaxLabelValues: 4})
	for i := range 10 {
		m.AuthzDecision(metrics.AuthzDeny, fmt.Sprintf("ns/p%d", i), "r\xff")
	}
	if got := seriesCount(t, m.Registry, "weft_authz_decisions_total"); got != 5 {
		t.Errorf("series = %d, want 4 + overflow", got)
	}
	if got := value(t, m.Registry, "weft_authz_decisions_total", map[string]string{"decision": "deny", "policy": metrics.Overflow, "rule": "r\uFFFD"}); got != 6 {
		t.Errorf("overflowed decisions = %g, want 6", got)
	}
	if got := value(t, m.Registry, "weft_proxy_label_overflow_total", map[string]string{"label": "policy"}); got != 6 {
		t.Errorf("policy overflow = %g, want 6", got)
	}
}

func TestAuthzDecisionDoesNotAllocate(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.AuthzDecision(metrics.AuthzAllow, "default/api-allow", "frontend")
	allocs := testing.AllocsPerRun(1000, func() {
		m.AuthzDecision(metrics.AuthzAllow, "default/api-allow", "frontend")
	})
	if allocs != 0 {
		t.Errorf("AuthzDecision allocates %g times per call, want 0", allocs)
	}
}
