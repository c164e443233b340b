package explain

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/retry"
	"github.com/weft-mesh/weft/internal/proxy/route"
)

// describeMatch puts the match that selected a rule into words.
func describeMatch(sel *route.Selected) string { return describeRuleMatch(sel.Rule, sel.MatchIndex) }

// describeMatches puts every match of a rule into words.
func describeMatches(r *route.Rule) string {
	if len(r.Matches) == 0 {
		return describeRuleMatch(r, -1)
	}
	var out []string
	for i := range r.Matches {
		out = append(out, describeRuleMatch(r, i))
	}
	return strings.Join(out, " | ")
}

// describeRuleMatch puts match i of rule r into words (-1: none).
func describeRuleMatch(r *route.Rule, i int) string {
	if i < 0 || i >= len(r.Matches) {
		if r.Kind == route.GRPC {
			return "no matches: the rule takes every gRPC call"
		}
		return "no matches: the rule takes every request"
	}
	m := &r.Matches[i]
	var parts []string
	if g := m.GRPC; g != nil {
		parts = append(parts, fmt.Sprintf("grpc %s %s/%s", g.Type, orAny(g.Service), orAny(g.Method)))
	}
	if p := m.Path; p != nil {
		parts = append(parts, fmt.Sprintf("path %s %s", p.Type, p.Value))
	}
	if m.Method != "" {
		parts = append(parts, "method "+m.Method)
	}
	for _, h := range m.Headers {
		parts = append(parts, fmt.Sprintf("header %s %s %s", h.Name, h.Type, h.Value))
	}
	for _, q := range m.Query {
		parts = append(parts, fmt.Sprintf("query %s %s %s", q.Name, q.Type, q.Value))
	}
	if len(parts) == 0 {
		return "path PathPrefix / (the default: every request)"
	}
	return strings.Join(parts, ", ")
}

func orAny(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

// describeModifier lists a header modifier's changes.
func describeModifier(m *route.HeaderModifier) []string {
	if m == nil {
		return nil
	}
	var out []string
	for _, h := range m.Set {
		out = append(out, "set "+h.Name+": "+h.Value)
	}
	for _, h := range m.Add {
		out = append(out, "add "+h.Name+": "+h.Value)
	}
	for _, n := range m.Remove {
		out = append(out, "remove "+n)
	}
	return out
}

// requestChanges lists what turned before into after: its Host, path and
// headers, as the proxy's filters changed them.
func requestChanges(before, after *http.Request) []string {
	var out []string
	if before.Host != after.Host {
		out = append(out, fmt.Sprintf("host %s -> %s", before.Host, after.Host))
	}
	if b, a := before.URL.RequestURI(), after.URL.RequestURI(); b != a {
		out = append(out, fmt.Sprintf("path %s -> %s", b, a))
	}
	names := map[string]bool{}
	for n := range before.Header {
		names[n] = true
	}
	for n := range after.Header {
		names[n] = true
	}
	for _, n := range sortedKeys(names) {
		b, a := before.Header[n], after.Header[n]
		switch {
		case slices.Equal(a, b):
		case len(a) == 0:
			out = append(out, "header "+n+" removed")
		case len(b) == 0:
			out = append(out, fmt.Sprintf("header %s: %s (added)", n, strings.Join(a, ", ")))
		default:
			out = append(out, fmt.Sprintf("header %s: %s (was %s)", n, strings.Join(a, ", "), strings.Join(b, ", ")))
		}
	}
	return out
}

// rulePolicy records the matched rule's policies: rate limit, fault,
// mirrors, timeouts and retry.
func (x *explainer) rulePolicy(pol *config.RulePolicy) {
	r := &x.out.Routing
	if rl := pol.RateLimit; rl != nil {
		r.RateLimit = &RateLimit{RequestsPerSecond: rl.RequestsPerSecond, Burst: rl.Burst,
			PerIdentityRequestsPerSecond: rl.PerIdentityRequestsPerSecond, PerIdentityBurst: rl.PerIdentityBurst}
	}
	if f := pol.Fault; f != nil {
		r.Fault = &Fault{DelayPercent: f.DelayPercent, Delay: dur(f.Delay), AbortPercent: f.AbortPercent,
			AbortHTTPStatus: f.AbortHTTPStatus, AbortGRPCStatus: f.AbortGRPCStatus}
	}
	for _, m := range pol.Mirrors {
		r.Mirrors = append(r.Mirrors, Mirror{Service: m.Service, Percent: m.Percent})
		x.involveName(m.Service)
	}
	r.Timeouts = Timeouts{Request: dur(pol.RequestTimeout), Backend: dur(pol.BackendTimeout)}
	if p := pol.Retry; p != nil {
		rt := &Retry{MaxRetries: p.MaxRetries, GRPCCodes: p.GRPCCodes, OnConnectFailure: p.OnConnectFailure, OnReset: p.OnReset,
			NonIdempotent: p.RetryNonIdempotent, MaxBodyBytes: p.MaxBodyBytes, BackoffBase: dur(p.Backoff.Base), BackoffMax: dur(p.Backoff.Max),
			PerTryTimeout: dur(p.PerTryTimeout)}
		for _, s := range p.Statuses {
			rt.Statuses = append(rt.Statuses, statusRange(s))
		}
		rt.ThisRequest = retryThisRequest(p, x.in.method, x.in.grpc != "")
		r.Retry = rt
	}
}

func statusRange(s retry.StatusRange) string {
	if s.From == s.To {
		return strconv.Itoa(s.From)
	}
	return fmt.Sprintf("%d-%d", s.From, s.To)
}

// retryThisRequest says which failed tries of this request the policy
// retries, by the fields' documented meaning (package retry).
func retryThisRequest(p *retry.Policy, method string, grpc bool) string {
	if p.MaxRetries == 0 {
		return "never retried: max retries is 0"
	}
	var on []string
	if p.OnConnectFailure {
		on = append(on, "connect failures (on another endpoint)")
	}
	if grpc && len(p.GRPCCodes) > 0 {
		var codes []string
		for _, c := range p.GRPCCodes {
			codes = append(codes, strconv.Itoa(c))
		}
		on = append(on, "gRPC status "+strings.Join(codes, ", "))
	}
	retriable := retry.IsIdempotent(method) || p.RetryNonIdempotent
	var statuses []string
	for _, s := range p.Statuses {
		statuses = append(statuses, statusRange(s))
	}
	var not []string
	if len(statuses) > 0 {
		if retriable {
			on = append(on, "status "+strings.Join(statuses, ", "))
		} else {
			not = append(not, "status "+strings.Join(statuses, ", "))
		}
	}
	if p.OnReset {
		if retriable {
			on = append(on, "resets before the response")
		} else {
			not = append(not, "resets")
		}
	}
	s := fmt.Sprintf("up to %d retries of this %s", p.MaxRetries, method)
	if len(on) == 0 {
		s = "no failure of this " + method + " is retried"
	} else {
		s += " on " + strings.Join(on, ", ")
	}
	if len(not) > 0 {
		s += fmt.Sprintf("; not on %s: %s is not idempotent and retry_non_idempotent is off (an Idempotency-Key header would make it retriable)", strings.Join(not, " or "), method)
	}
	if len(on) > 0 {
		s += fmt.Sprintf("; backoff %s to %s; bodies over %d bytes are sent once; each retry draws from the retry budget of the backend it goes to, and none is made once it is spent",
			dur(p.Backoff.Base), dur(p.Backoff.Max), p.MaxBodyBytes)
	}
	return s
}

// dur writes a duration, "" for none.
func dur(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// percent writes a share as a percentage with at most two decimals.
func percent(share float64) string {
	return strconv.FormatFloat(math.Round(share*10000)/100, 'f', -1, 64) + "%"
}
