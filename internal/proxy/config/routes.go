package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/proxy/fault"
	"github.com/weft-mesh/weft/internal/proxy/ratelimit"
	"github.com/weft-mesh/weft/internal/proxy/retry"
	"github.com/weft-mesh/weft/internal/proxy/route"
)

// RuleKey names a route rule: the route resource and the rule's index.
type RuleKey struct {
	Route string
	Index int
}

// MarshalText writes "namespace/name#index" (config dumps, golden files).
func (k RuleKey) MarshalText() ([]byte, error) {
	return []byte(k.Route + "#" + strconv.Itoa(k.Index)), nil
}

// RulePolicy is what applies to the requests a route rule selects, beside
// the matching and filters the route package evaluates.
type RulePolicy struct {
	// RequestTimeout bounds the whole request, retries included;
	// BackendTimeout each try. 0: none.
	RequestTimeout, BackendTimeout time.Duration
	Retry                          *retry.Policy
	RateLimit                      *ratelimit.Config
	Fault                          *fault.Config
	Mirrors                        []Mirror
}

// Mirror sends a copy of a share of the requests to another service.
type Mirror struct {
	Service string
	Percent float64
}

// compileRoutes turns a service's route rules into route.Rules and their
// policies. Backends and mirrors must name known services; that is checked
// by checkRouteRefs once every service is known.
func compileRoutes(errs *problems, field string, s *weftv1.Service, svc *Service) {
	svc.Policies = map[RuleKey]*RulePolicy{}
	for i, r := range s.GetRoutes() {
		f := fmt.Sprintf("%s.routes[%d]", field, i)
		rule := route.Rule{Route: r.GetRoute(), Index: int(r.GetIndex())}
		if rule.Route == "" {
			errs.add(f+".route", "is empty; name the route resource as namespace/name")
			continue
		}
		switch strings.ToLower(r.GetKind()) {
		case "", "http":
			rule.Kind = route.HTTP
		case "grpc":
			rule.Kind = route.GRPC
		default:
			errs.add(f+".kind", "unknown kind %q; use http or grpc", r.GetKind())
		}
		if c := r.GetCreated(); c != "" {
			t, err := time.Parse(time.RFC3339, c)
			if err != nil {
				errs.add(f+".created", "%q is not an RFC 3339 time (2026-01-02T15:04:05Z)", c)
			}
			rule.Created = t
		}
		for j, m := range r.GetMatches() {
			rule.Matches = append(rule.Matches, compileMatch(errs, fmt.Sprintf("%s.matches[%d]", f, j), m))
		}
		rule.Filters = compileFilters(errs, f+".filters", r.GetFilters())
		for j, b := range r.GetBackends() {
			bf := fmt.Sprintf("%s.backends[%d]", f, j)
			if b.GetPort() > 65535 {
				errs.add(bf+".port", "%d is not a TCP port", b.GetPort())
			}
			rule.Backends = append(rule.Backends, route.Backend{
				Service: b.GetService(),
				Port:    uint16(b.GetPort()),
				Weight:  b.GetWeight(),
				Filters: route.Filters{
					RequestHeaders:  headerModifier(b.GetRequestHeaders()),
					ResponseHeaders: headerModifier(b.GetResponseHeaders()),
				},
			})
		}
		key := RuleKey{Route: rule.Route, Index: rule.Index}
		if _, dup := svc.Policies[key]; dup {
			errs.add(f+".index", "rule %d of route %s is listed twice", rule.Index, rule.Route)
			continue
		}
		svc.Policies[key] = compilePolicy(errs, f, r)
		svc.Rules = append(svc.Rules, rule)
	}
	if len(svc.Rules) == 0 {
		return
	}
	table, err := route.NewTable(svc.Rules)
	if err != nil {
		errs.add(field+".routes", "%v", err)
		return
	}
	svc.Routes = table
}

func compileMatch(errs *problems, f string, m *weftv1.RouteMatch) route.Match {
	var out route.Match
	if p := m.GetPath(); p != nil {
		pm := &route.PathMatch{Value: p.GetValue()}
		switch p.GetType() {
		case "", "PathPrefix":
			pm.Type = route.PathPrefix
		case "Exact":
			pm.Type = route.PathExact
		case "RegularExpression":
			pm.Type = route.PathRegex
		default:
			errs.add(f+".path.type", "unknown type %q; use Exact, PathPrefix or RegularExpression", p.GetType())
		}
		out.Path = pm
	}
	out.Method = m.GetMethod()
	for i, h := range m.GetHeaders() {
		out.Headers = append(out.Headers, route.HeaderMatch{Type: valueType(errs, fmt.Sprintf("%s.headers[%d].type", f, i), h.GetType()), Name: h.GetName(), Value: h.GetValue()})
	}
	for i, q := range m.GetQueryParams() {
		out.Query = append(out.Query, route.QueryMatch{Type: valueType(errs, fmt.Sprintf("%s.query_params[%d].type", f, i), q.GetType()), Name: q.GetName(), Value: q.GetValue()})
	}
	if g := m.GetGrpc(); g != nil {
		out.GRPC = &route.GRPCMethodMatch{Type: valueType(errs, f+".grpc.type", g.GetType()), Service: g.GetService(), Method: g.GetMethod()}
	}
	return out
}

func valueType(errs *problems, f, t string) route.ValueType {
	switch t {
	case "", "Exact":
		return route.Exact
	case "RegularExpression":
		return route.RegularExpression
	default:
		errs.add(f, "unknown type %q; use Exact or RegularExpression", t)
		return route.Exact
	}
}

func compileFilters(errs *problems, f string, in *weftv1.RouteFilters) route.Filters {
	out := route.Filters{
		RequestHeaders:  headerModifier(in.GetRequestHeaders()),
		ResponseHeaders: headerModifier(in.GetResponseHeaders()),
	}
	if r := in.GetRedirect(); r != nil {
		rd := &route.Redirect{StatusCode: int(r.GetStatusCode()), Path: pathModifier(errs, f+".redirect.path", r.GetPath())}
		if v := r.GetScheme(); v != "" {
			rd.Scheme = &v
		}
		if v := r.GetHostname(); v != "" {
			rd.Hostname = &v
		}
		if p := r.GetPort(); p != 0 {
			if p > 65535 {
				errs.add(f+".redirect.port", "%d is not a TCP port", p)
			}
			port := uint16(p)
			rd.Port = &port
		}
		out.Redirect = rd
	}
	if r := in.GetRewrite(); r != nil {
		rw := &route.Rewrite{Path: pathModifier(errs, f+".rewrite.path", r.GetPath())}
		if v := r.GetHostname(); v != "" {
			rw.Hostname = &v
		}
		out.Rewrite = rw
	}
	return out
}

func headerModifier(m *weftv1.HeaderModifier) *route.HeaderModifier {
	if m == nil {
		return nil
	}
	out := &route.HeaderModifier{Remove: m.GetRemove()}
	for _, h := range m.GetSet() {
		out.Set = append(out.Set, route.Header{Name: h.GetName(), Value: h.GetValue()})
	}
	for _, h := range m.GetAdd() {
		out.Add = append(out.Add, route.Header{Name: h.GetName(), Value: h.GetValue()})
	}
	return out
}

func pathModifier(errs *problems, f string, p *weftv1.PathModifier) *route.PathModifier {
	if p == nil {
		return nil
	}
	v := p.GetValue()
	switch p.GetType() {
	case "ReplaceFullPath":
		return &route.PathModifier{ReplaceFullPath: &v}
	case "ReplacePrefixMatch":
		return &route.PathModifier{ReplacePrefixMatch: &v}
	default:
		errs.add(f+".type", "unknown type %q; use ReplaceFullPath or ReplacePrefixMatch", p.GetType())
		return nil
	}
}

func compilePolicy(errs *problems, f string, r *weftv1.RouteRule) *RulePolicy {
	p := &RulePolicy{}
	if t := r.GetTimeouts(); t != nil {
		if t.GetRequest() != nil {
			p.RequestTimeout = duration(errs, f+".timeouts.request", t.GetRequest(), 0)
		}
		if t.GetBackendRequest() != nil {
			p.BackendTimeout = duration(errs, f+".timeouts.backend_request", t.GetBackendRequest(), 0)
		}
		if p.RequestTimeout > 0 && p.BackendTimeout > p.RequestTimeout {
			errs.add(f+".timeouts.backend_request", "%s is longer than timeouts.request %s; a try cannot outlast the request", p.BackendTimeout, p.RequestTimeout)
		}
	}
	if rp := r.GetRetry(); rp != nil {
		pol := retry.DefaultPolicy()
		if rp.GetMaxRetries() != 0 {
			pol.MaxRetries = int(rp.GetMaxRetries())
		}
		for i, s := range rp.GetStatuses() {
			sr, err := statusRange(s)
			if err != nil {
				errs.add(fmt.Sprintf("%s.retry.statuses[%d]", f, i), "%v", err)
				continue
			}
			pol.Statuses = append(pol.Statuses, sr)
		}
		for _, c := range rp.GetGrpcCodes() {
			pol.GRPCCodes = append(pol.GRPCCodes, int(c))
		}
		pol.OnReset = rp.GetOnReset()
		pol.RetryNonIdempotent = rp.GetRetryNonIdempotent()
		pol.OnConnectFailure = !rp.GetNoRetryOnConnectFailure()
		if n := rp.GetMaxBodyBytes(); n != 0 {
			pol.MaxBodyBytes = int(n)
		}
		if rp.GetBackoffBase() != nil {
			pol.Backoff.Base = duration(errs, f+".retry.backoff_base", rp.GetBackoffBase(), pol.Backoff.Base)
		}
		if rp.GetBackoffMax() != nil {
			pol.Backoff.Max = duration(errs, f+".retry.backoff_max", rp.GetBackoffMax(), pol.Backoff.Max)
		}
		pol.PerTryTimeout = p.BackendTimeout
		if err := pol.Validate(); err != nil {
			errs.add(f+".retry", "%v", err)
		}
		p.Retry = &pol
	}
	if rl := r.GetRateLimit(); rl != nil {
		c := ratelimit.Config{
			RequestsPerSecond:            rl.GetRequestsPerSecond(),
			Burst:                        int(rl.GetBurst()),
			PerIdentityRequestsPerSecond: rl.GetPerIdentityRequestsPerSecond(),
			PerIdentityBurst:             int(rl.GetPerIdentityBurst()),
		}
		switch err := c.Validate(); {
		case err != nil:
			errs.add(f+".rate_limit", "%v", err)
		case c.RequestsPerSecond == 0:
			// Outbound, every request carries this proxy's own identity.
			errs.add(f+".rate_limit.requests_per_second", "is 0: a route rule's rate limit needs its total; per-identity limits apply at the destination, in its inbound.ports[].rate_limit")
		}
		p.RateLimit = &c
	}
	if fl := r.GetFault(); fl != nil {
		c := fault.Config{
			DelayPercent:    fl.GetDelayPercent(),
			AbortPercent:    fl.GetAbortPercent(),
			AbortHTTPStatus: int(fl.GetAbortHttpStatus()),
			AbortGRPCStatus: int(fl.GetAbortGrpcStatus()),
		}
		if fl.GetDelay() != nil {
			c.Delay = duration(errs, f+".fault.delay", fl.GetDelay(), 0)
		}
		if err := c.Validate(); err != nil {
			errs.add(f+".fault", "%v", err)
		}
		p.Fault = &c
	}
	for i, m := range r.GetMirrors() {
		pct := m.GetPercent()
		if pct == 0 {
			pct = 100
		}
		if pct < 0 || pct > 100 {
			errs.add(fmt.Sprintf("%s.mirrors[%d].percent", f, i), "%v is not a percentage (0-100)", m.GetPercent())
		}
		p.Mirrors = append(p.Mirrors, Mirror{Service: m.GetService(), Percent: pct})
	}
	return p
}

// statusRange parses "503" or "502-504".
func statusRange(s string) (retry.StatusRange, error) {
	from, to, isRange := strings.Cut(strings.TrimSpace(s), "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(from))
	b := a
	var err2 error
	if isRange {
		b, err2 = strconv.Atoi(strings.TrimSpace(to))
	}
	if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
		return retry.StatusRange{}, errors.New("\"" + s + "\" is not a status or range of statuses; write e.g. 503 or 502-504")
	}
	return retry.StatusRange{From: a, To: b}, nil
}

// checkRouteRefs reports route backends and mirrors that name no service.
func checkRouteRefs(errs *problems, c *Compiled) {
	for _, name := range sortedKeys(c.Services) {
		svc := c.Services[name]
		for _, r := range svc.Rules {
			for j, b := range r.Backends {
				if _, ok := c.Services[b.Service]; !ok {
					errs.add(fmt.Sprintf("services[%s].routes[%s rule %d].backends[%d].service", name, r.Route, r.Index, j),
						"service %q is not defined in services; known services: %s", b.Service, strings.Join(sortedKeys(c.Services), ", "))
				}
			}
		}
		for key, p := range svc.Policies {
			for j, m := range p.Mirrors {
				if _, ok := c.Services[m.Service]; !ok {
					errs.add(fmt.Sprintf("services[%s].routes[%s rule %d].mirrors[%d].service", name, key.Route, key.Index, j),
						"service %q is not defined in services", m.Service)
				}
			}
		}
	}
}

// MarshalJSON renders the policy for /config_dump and golden files (the
// policies' clock and random hooks are left out).
func (p *RulePolicy) MarshalJSON() ([]byte, error) {
	type retryView struct {
		MaxRetries                             int
		Statuses                               []retry.StatusRange
		GRPCCodes                              []int
		OnConnectFailure, OnReset              bool
		RetryNonIdempotent                     bool
		MaxBodyBytes                           int
		BackoffBase, BackoffMax, PerTryTimeout string
	}
	type rateView struct {
		RequestsPerSecond, PerIdentityRequestsPerSecond float64
		Burst, PerIdentityBurst                         int
	}
	v := struct {
		RequestTimeout, BackendTimeout string
		Retry                          *retryView    `json:",omitempty"`
		RateLimit                      *rateView     `json:",omitempty"`
		Fault                          *fault.Config `json:",omitempty"`
		Mirrors                        []Mirror      `json:",omitempty"`
	}{RequestTimeout: p.RequestTimeout.String(), BackendTimeout: p.BackendTimeout.String(), Fault: p.Fault, Mirrors: p.Mirrors}
	if r := p.Retry; r != nil {
		v.Retry = &retryView{r.MaxRetries, r.Statuses, r.GRPCCodes, r.OnConnectFailure, r.OnReset, r.RetryNonIdempotent, r.MaxBodyBytes,
			r.Backoff.Base.String(), r.Backoff.Max.String(), r.PerTryTimeout.String()}
	}
	if r := p.RateLimit; r != nil {
		v.RateLimit = &rateView{r.RequestsPerSecond, r.PerIdentityRequestsPerSecond, r.Burst, r.PerIdentityBurst}
	}
	return json.Marshal(v)
}
