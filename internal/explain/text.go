package explain

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/weft-mesh/weft/internal/control/translate"
	"github.com/weft-mesh/weft/internal/proxy/authz"
)

// WriteJSON writes e as indented JSON.
func (e *Explanation) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(e); err != nil {
		return fmt.Errorf("writing the explanation as JSON: %w", err)
	}
	return nil
}

// printer writes lines, keeping the first error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(indent int, format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, strings.Repeat("  ", indent)+format+"\n", args...)
	}
}

// WriteText writes e for people: one numbered section per step the request
// meets, each line saying what decided.
func (e *Explanation) WriteText(w io.Writer) error {
	p := &printer{w: w}
	r := &e.Request
	what := r.Method + " " + r.Path
	if r.GRPC != "" {
		what = "gRPC " + r.GRPC
	}
	opaque := r.Protocol == "opaque"
	if opaque {
		what = "a TCP connection"
	}
	p.f(0, "weft explain: %s from %s to %s (%s)", what, r.From, r.To, r.Protocol)
	if !opaque {
		hdr := "host " + r.Host
		if len(r.Headers) > 0 {
			hdr += "; headers " + strings.Join(r.Headers, ", ")
		}
		p.f(1, "%s", hdr)
	}

	p.f(0, "")
	p.f(0, "1. caller %s", e.Caller.Workload)
	if e.Caller.Meshed {
		p.f(1, "identity: %s (its proxy, %s mode)", e.Caller.Identity, e.Caller.Mode)
	}
	p.f(1, "discovery: %s", e.Caller.Discovery)

	p.f(0, "")
	e.writeRouting(p)
	p.f(0, "")
	e.writeEndpoints(p)
	p.f(0, "")
	e.writeDestinations(p)
	p.f(0, "")
	p.f(0, "5. problems")
	if len(e.Problems) == 0 {
		p.f(1, "none")
	}
	for _, pr := range e.Problems {
		field := ""
		if pr.Field != "" {
			field = pr.Field + ": "
		}
		p.f(1, "%s: %s: %s%s", pr.Source, pr.Where, field, pr.Message)
	}
	p.f(0, "")
	p.f(0, "verdict: %s", e.Verdict)
	return p.err
}

func (e *Explanation) writeRouting(p *printer) {
	rt := &e.Routing
	if rt.Outcome == "no-proxy" {
		p.f(0, "2. routing: %s has no proxy", e.Caller.Workload)
	} else {
		p.f(0, "2. routing in %s's proxy", e.Caller.Workload)
	}
	if rt.Outcome == "no-proxy" || rt.Outcome == "opaque" {
		p.f(1, "%s", rt.Decision)
		return
	}
	p.f(1, "route: %s", rt.Decision)
	if len(rt.Rules) > 0 {
		p.f(1, "rules attached: %s", strings.Join(rt.Rules, ", "))
	}
	if rd := rt.Redirect; rd != nil {
		p.f(1, "redirect: the proxy answers %d, Location %s; nothing is forwarded", rd.Status, rd.Location)
		return
	}
	if len(rt.RequestChanges) > 0 {
		p.f(1, "request filters: %s", strings.Join(rt.RequestChanges, "; "))
	}
	if len(rt.ResponseHeaders) > 0 {
		p.f(1, "response filters: %s", strings.Join(rt.ResponseHeaders, "; "))
	}
	if rl := rt.RateLimit; rl != nil {
		s := fmt.Sprintf("rate limit: %v requests/s, burst %d", rl.RequestsPerSecond, rl.Burst)
		if rl.PerIdentityRequestsPerSecond > 0 {
			s += fmt.Sprintf("; per caller identity %v requests/s, burst %d", rl.PerIdentityRequestsPerSecond, rl.PerIdentityBurst)
		}
		p.f(1, "%s; beyond it the proxy answers 429 with Retry-After (gRPC RESOURCE_EXHAUSTED)", s)
	}
	if f := rt.Fault; f != nil {
		var parts []string
		if f.DelayPercent > 0 {
			parts = append(parts, fmt.Sprintf("delays %v%% of requests by %s", f.DelayPercent, f.Delay))
		}
		if f.AbortPercent > 0 {
			s := fmt.Sprintf("aborts %v%% with %d", f.AbortPercent, f.AbortHTTPStatus)
			if f.AbortGRPCStatus > 0 {
				s += fmt.Sprintf(" (gRPC status %d)", f.AbortGRPCStatus)
			}
			parts = append(parts, s)
		}
		if len(parts) == 0 {
			parts = append(parts, "injects nothing (0%)")
		}
		p.f(1, "fault injection: %s", strings.Join(parts, "; "))
	}
	var bs []string
	for _, b := range e.Backends {
		s := b.Service
		if rt.Matched != nil && b.Weight > 0 || b.Share == 0 {
			s += fmt.Sprintf(" weight %d", b.Weight)
		}
		s += " (" + percent(b.Share) + ")"
		bs = append(bs, s)
	}
	p.f(1, "backends: %s", strings.Join(bs, ", "))
	if rt.Outcome == "no-backend" {
		p.f(2, "every weight is 0: the proxy answers 500 (gRPC UNAVAILABLE), \"route %s has no backend to send to\"", rt.Matched.Route)
	}
	for _, b := range e.Backends {
		if b.Share == 0 && b.Note != "" {
			p.f(2, "%s: %s", b.Service, b.Note)
		}
		if len(b.RequestChanges) > 0 {
			p.f(2, "%s's backendRef filters: %s", b.Service, strings.Join(b.RequestChanges, "; "))
		}
		if len(b.ResponseHeaders) > 0 {
			p.f(2, "%s's backendRef response filters: %s", b.Service, strings.Join(b.ResponseHeaders, "; "))
		}
	}
	for _, m := range rt.Mirrors {
		p.f(1, "mirror: %v%% of the requests are copied to %s, fire-and-forget (its answers never reach the caller)", m.Percent, m.Service)
	}
	switch t := rt.Timeouts; {
	case rt.Matched == nil:
		p.f(1, "timeouts: none (no rule matched)")
	case t.Request == "" && t.Backend == "":
		p.f(1, "timeouts: none set by the rule")
	default:
		var parts []string
		if t.Request != "" {
			parts = append(parts, "request "+t.Request+" including retries (then 504, gRPC DEADLINE_EXCEEDED)")
		}
		if t.Backend != "" {
			parts = append(parts, "each try "+t.Backend)
		}
		p.f(1, "timeouts: %s", strings.Join(parts, ", "))
	}
	if rt.Retry != nil {
		p.f(1, "retry: %s", rt.Retry.ThisRequest)
	} else {
		p.f(1, "retry: none (%s): each request is tried once", map[bool]string{true: "the rule has no retry policy", false: "no rule matched"}[rt.Matched != nil])
	}
	for _, b := range e.Backends {
		if b.Share > 0 {
			p.f(1, "%s: load balancer %s; %s; %s", b.Service, b.LoadBalancer, budgetText(b.RetryBudget), breakerText(b.CircuitBreaker))
		}
	}
}

func budgetText(b RetryBudget) string {
	s := fmt.Sprintf("retry budget %v%% of requests + %d/s over %s", b.RetryRatio*100, b.MinRetriesPerSecond, b.TTL)
	if b.SetBy == "" {
		return s + " (the default)"
	}
	return s + " (" + b.SetBy + ")"
}

func breakerText(c CircuitBreaker) string {
	var parts []string
	if c.MaxRequests > 0 {
		s := fmt.Sprintf("at most %d requests in flight", c.MaxRequests)
		if c.MaxPending > 0 {
			s += fmt.Sprintf(", %d more wait up to %s", c.MaxPending, orDefault(c.PendingTimeout, "0s"))
		}
		parts = append(parts, s+", then 503 at once")
	} else {
		parts = append(parts, "no request limit")
	}
	if o := c.Outlier; o != nil {
		parts = append(parts, fmt.Sprintf("outlier detection ejects an endpoint after %d consecutive failures or a success rate %v standard deviations below its peers' (%d requests per %s), for %s times its ejections, at most %d%% of endpoints",
			o.ConsecutiveFailures, o.SuccessRateStdevFactor, o.SuccessRateMinRequests, o.Interval, o.BaseEjectionTime, o.MaxEjectionPercent))
	} else {
		parts = append(parts, "outlier detection disabled")
	}
	if a := c.Adaptive; a != nil {
		parts = append(parts, fmt.Sprintf("adaptive concurrency from %d (%d-%d)", a.InitialLimit, a.MinLimit, a.MaxLimit))
	}
	s := "circuit breaker: " + strings.Join(parts, "; ")
	if c.SetBy == "" {
		return s + " (the default)"
	}
	return s + " (" + c.SetBy + ")"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (e *Explanation) writeEndpoints(p *printer) {
	p.f(0, "3. endpoints")
	if len(e.Backends) == 0 {
		p.f(1, "none: the request is not forwarded")
		return
	}
	for _, b := range e.Backends {
		if b.Share == 0 {
			p.f(1, "%s: never picked (weight 0)", b.Service)
			continue
		}
		p.f(1, "%s (%s of the requests)", b.Service, percent(b.Share))
		if b.Note != "" {
			p.f(2, "%s", b.Note)
		}
		for _, ep := range b.Endpoints {
			who := orDefault(ep.Workload, "(no Workload)")
			zone := ""
			if ep.Zone != "" {
				zone = " zone " + ep.Zone
			}
			hop := "plaintext: not meshed"
			switch {
			case ep.Hop == "mtls" && ep.ProxyAddress != "":
				hop = fmt.Sprintf("mTLS to its proxy at %s, which must present %s", ep.ProxyAddress, ep.Identity)
			case ep.Hop == "mtls":
				hop = "mTLS, the peer must present " + ep.Identity
			case ep.Identity != "":
				hop = "plaintext: the caller has no proxy (the endpoint is meshed as " + ep.Identity + ")"
			}
			p.f(2, "%s %s weight %d%s: %s", ep.Address, who, ep.Weight, zone, hop)
		}
	}
}

func (e *Explanation) writeDestinations(p *printer) {
	p.f(0, "4. at the destinations")
	if len(e.Destinations) == 0 {
		p.f(1, "none: the request reaches no workload")
		return
	}
	for _, d := range e.Destinations {
		p.f(1, "%s port %d (%s, via %s)", orDefault(d.Workload, d.Address), d.Port, d.Address, d.Backend)
		if d.Note != "" {
			p.f(2, "%s", d.Note)
		}
		if m := d.MTLS; m != nil {
			by := "no MutualTLSPolicy applies: the control plane's default"
			if m.Policy != "" {
				by = "set by MutualTLSPolicy " + m.Policy
				if m.PortEntry {
					by += " (its ports entry for this port)"
				}
			}
			hop := "the hop is mTLS from the caller's proxy: accepted"
			switch {
			case m.Hop == "plaintext" && m.Accepted:
				hop = "the caller connects in plaintext: accepted (permissive)"
			case m.Hop == "plaintext":
				hop = "the caller connects in plaintext: REFUSED, the port requires mTLS"
			}
			p.f(2, "mTLS: %s, %s; %s", m.Mode, by, hop)
		}
		a := d.Authorization
		if a == nil {
			continue
		}
		if !a.Evaluated {
			p.f(2, "authorization: not reached (the request was refused before)")
			continue
		}
		verdict := "DENIED"
		if a.Allowed {
			verdict = "ALLOWED"
		}
		p.f(2, "authorization: %s %s", verdict, decider(a.Policy, a.Rule, a.Allowed, a, d.Port))
		if e.Routing.Outcome == "opaque" && len(a.Policies) > 0 {
			p.f(3, "an opaque TCP connection has no method, path or headers: an Allow rule with such conditions never matches it, a Deny rule with them always does (fail closed); it is checked once, when it opens")
		}
		if len(a.Policies) > 0 {
			p.f(3, "policies on port %d: %s; default policy %s (%s)", d.Port, strings.Join(a.Policies, ", "), a.DefaultPolicy, setByText(a.DefaultSetBy))
		}
		if a.WouldDeny {
			by := fmt.Sprintf("rule %s of AuthorizationPolicy %s", a.DryRunRule, a.DryRunPolicy)
			switch a.DryRunRule {
			case authz.NoAllowMatch:
				by = fmt.Sprintf("AuthorizationPolicy %s, an allow list none of whose rules matches", a.DryRunPolicy)
			case "":
				by = fmt.Sprintf("AuthorizationPolicy %s, which has no rules", a.DryRunPolicy)
			}
			p.f(2, "dry run: would be DENIED by %s, were the dry-run policies enforced; they only log it and count it as would_deny", by)
		}
	}
}

// decider puts an authz.Decider into words.
func decider(policy, rule string, allowed bool, a *Authorization, port uint16) string {
	switch {
	case policy == authz.DefaultPolicyName && len(a.Policies) == 0:
		return fmt.Sprintf("by the default policy %s (%s): no authorization policy applies to port %d", rule, setByText(a.DefaultSetBy), port)
	case policy == authz.DefaultPolicyName:
		return fmt.Sprintf("by the default policy %s (%s): no Deny rule matches and no Allow policy applies to port %d", rule, setByText(a.DefaultSetBy), port)
	case rule == authz.NoAllowMatch:
		return fmt.Sprintf("by AuthorizationPolicy %s: it allows some requests on port %d and none of its rules (nor any other Allow rule) matches this one; an allow list is exhaustive", policy, port)
	case rule == "":
		return fmt.Sprintf("by AuthorizationPolicy %s, which has no rules: it matches every request on its ports", policy)
	}
	if allowed {
		return fmt.Sprintf("by rule %s of AuthorizationPolicy %s (Allow; no Deny rule matches)", rule, policy)
	}
	return fmt.Sprintf("by rule %s of AuthorizationPolicy %s (Deny: a matching Deny rule decides before any Allow rule)", rule, policy)
}

func setByText(setBy string) string {
	switch setBy {
	case translate.SetByWorkload:
		return "set by the workload's weft.dev/default-inbound-policy annotation"
	case translate.SetByNamespace:
		return "set by its Namespace's weft.dev/default-inbound-policy annotation"
	}
	return "the mesh's default, --default-inbound-policy"
}
