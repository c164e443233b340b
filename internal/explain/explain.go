package explain

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/translate"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/route"
)

// Explain explains what the mesh m, under the control plane's mesh-wide
// settings mesh, does with the request in. The error is for a request
// that cannot be explained: a bad flag value (it says the values allowed),
// a workload, service or port that does not exist (wrapping ErrNotFound,
// with the names close to it), or a config the proxies would refuse.
func Explain(ctx context.Context, m *Model, mesh translate.Mesh, in Input) (*Explanation, error) {
	p, err := parse(in)
	if err != nil {
		return nil, err
	}
	if err := mesh.Validate(); err != nil {
		return nil, fmt.Errorf("control plane settings: %w", err)
	}
	x := &explainer{ctx: ctx, m: m, snap: m.Snapshot, mesh: mesh, in: p, out: &Explanation{},
		configs: map[model.ObjectRef]*proxyConfig{}, involved: map[string]bool{}, problems: map[string]Problem{}}
	if err := x.resolve(); err != nil {
		return nil, err
	}
	steps := []func() error{x.callerStep, x.routingStep, x.backendsStep, x.destinationsStep}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := step(); err != nil {
			return nil, err
		}
	}
	x.problemsStep()
	x.verdict()
	return x.out, nil
}

// explainer holds one explanation as it is built.
type explainer struct {
	ctx  context.Context
	m    *Model
	snap *model.Snapshot
	mesh translate.Mesh
	in   parsed
	out  *Explanation

	caller   *model.Workload
	callerID spiffeid.ID // zero when the caller is not meshed
	svc      *model.Service
	port     model.ServicePort
	name     string // the proxies' name of the service port
	// byName maps the proxies' service names to service ports.
	byName map[string]model.ServicePortRef

	callerCfg *proxyConfig
	req       *http.Request // as the application sends it
	filtered  *http.Request // after the matched rule's filters
	chosen    []chosen      // where the request may go
	rule      *route.Rule   // the matched rule, nil for none

	configs  map[model.ObjectRef]*proxyConfig // destination proxies
	involved map[string]bool                  // model keys of the objects involved
	problems map[string]Problem
}

// chosen is a backend service the request may go to.
type chosen struct {
	name    string
	backend *route.Backend // nil: the service itself, not a backendRef
	weight  uint32
	share   float64
	ref     string        // the backendRef as written, namespace/name[:port]
	req     *http.Request // the request it gets (backend filters applied)
}

// proxyConfig is one proxy's config as the control plane renders it, and
// as the proxy compiles it.
type proxyConfig struct {
	rendered *weftv1.ProxyConfig
	compiled *config.Compiled
}

// resolve finds the caller, the service and its port in the model.
func (x *explainer) resolve() error {
	x.caller = x.snap.Workloads[x.in.from]
	if x.caller == nil {
		var all []string
		for ref := range x.snap.Workloads {
			all = append(all, ref.String())
		}
		return x.withFileProblems(notFound("--from", "workload", x.in.from.String(), all, afterSlash))
	}
	x.svc = x.snap.Services[x.in.to]
	if x.svc == nil {
		var all []string
		for ref := range x.snap.Services {
			all = append(all, ref.Name+"."+ref.Namespace)
		}
		return x.withFileProblems(notFound("--to", "service", x.in.to.Name+"."+x.in.to.Namespace, all, beforeDot))
	}
	var err error
	if x.port, err = servicePort(x.svc, x.in.port); err != nil {
		return err
	}
	x.name = translate.ServiceName(x.svc.Ref(), x.port.Port)
	x.byName = map[string]model.ServicePortRef{}
	for ref, svc := range x.snap.Services {
		for _, sp := range svc.Ports {
			x.byName[translate.ServiceName(ref, sp.Port)] = model.ServicePortRef{ServiceRef: ref, Port: sp.Port}
		}
	}
	if x.caller.Meshed {
		id, err := spiffeid.FromSegments(x.m.TrustDomain, "ns", x.caller.Namespace, "sa", x.caller.ServiceAccount)
		if err != nil {
			return fmt.Errorf("workload %s: service account %q gives no SPIFFE ID: %w", x.caller.Ref(), x.caller.ServiceAccount, err)
		}
		x.callerID = id
	}
	return nil
}

// withFileProblems adds to a not-found error that documents of the
// directory were ignored: one of them may be what is missing.
func (x *explainer) withFileProblems(err error) error {
	if len(x.m.Problems) == 0 {
		return err
	}
	var lines []string
	for _, p := range x.m.Problems[:min(5, len(x.m.Problems))] {
		lines = append(lines, "  "+p.String())
	}
	if n := len(x.m.Problems) - 5; n > 0 {
		lines = append(lines, fmt.Sprintf("  and %d more", n))
	}
	return &notFoundError{fmt.Sprintf("%v\n%d problems in the directory; an ignored document may be what is missing:\n%s",
		err, len(x.m.Problems), strings.Join(lines, "\n"))}
}

func afterSlash(s string) string { _, after, _ := strings.Cut(s, "/"); return after }

func beforeDot(s string) string { before, _, _ := strings.Cut(s, "."); return before }

// proxyFor renders and compiles the config of the proxy of workload w
// (identity id, zero for no proxy), watching the services given, as the
// control plane's server renders it for a proxy whose node names w.
func (x *explainer) proxyFor(w *model.Workload, id spiffeid.ID, watched ...model.ServicePortRef) (*proxyConfig, error) {
	p := translate.Proxy{Workload: w, Watched: watched, TLS: &weftv1.TLS{Issued: true}, Mesh: x.mesh, Mode: translate.ModeTransparent}
	if !id.IsZero() {
		p.Identity = id.String()
	}
	if w != nil && w.ProxyInbound != 0 {
		p.Mode = translate.ModeExplicit
	}
	whose := "a proxy of no workload"
	if w != nil {
		whose = w.Ref().String() + "'s proxy"
	}
	res, err := translate.Config(x.snap, p)
	if err != nil {
		return nil, fmt.Errorf("rendering the config of %s: %w", whose, err)
	}
	for _, pr := range res.Problems {
		x.addControlPlaneProblem(pr)
	}
	c, err := config.Compile(res.Config)
	if err != nil {
		return nil, fmt.Errorf("%s would refuse the config the control plane renders for it (the control plane does not serve it): %w", whose, err)
	}
	return &proxyConfig{rendered: res.Config, compiled: c}, nil
}

// callerStep: the caller, its identity, and how its proxy learns the
// service.
func (x *explainer) callerStep() error {
	w := x.caller
	ref := model.ServicePortRef{ServiceRef: x.svc.Ref(), Port: x.port.Port}
	x.involve(w.Key())
	x.involve(model.Key{Kind: model.KindNamespace, Name: w.Namespace})
	x.involveService(x.svc.Ref())

	var err error
	if w.Meshed {
		x.callerCfg, err = x.proxyFor(w, x.callerID, ref)
	} else {
		// No proxy: a stand-in proxy of no workload gives the service's
		// endpoints, which the caller reaches directly.
		x.callerCfg, err = x.proxyFor(nil, spiffeid.ID{}, ref)
		if err != nil {
			err = fmt.Errorf("workload %s: %w", w.Ref(), err)
		}
	}
	if err != nil {
		return err
	}
	cs := x.callerCfg.compiled.Services[x.name]
	if cs == nil {
		return fmt.Errorf("the config rendered for %s's proxy lacks %s", w.Ref(), x.name)
	}

	x.out.Request = Request{
		From: w.Ref().String(), Service: x.svc.Ref().String(), Port: x.port.Port, To: x.name,
		Protocol: cmp.Or(string(cs.Protocol), "detect"), Method: x.in.method, Path: x.in.path, GRPC: x.in.grpc,
		Host: cmp.Or(x.in.host, defaultHost(x.svc, x.port.Port)),
	}
	for _, h := range x.in.headers {
		x.out.Request.Headers = append(x.out.Request.Headers, h[0]+": "+h[1])
	}
	if x.req, err = x.buildRequest(); err != nil {
		return err
	}

	c := &x.out.Caller
	c.Workload = w.Ref().String()
	c.Meshed = w.Meshed
	if !w.Meshed {
		c.Discovery = "not meshed (spec.meshed: false): it runs no proxy, so nothing in the mesh routes its requests; it connects to the service's endpoints itself, in plaintext, with no identity"
		return nil
	}
	c.Identity = x.callerID.String()
	c.Mode = translate.ModeTransparent
	if w.ProxyInbound != 0 {
		c.Mode = translate.ModeExplicit
	}
	for name := range x.callerCfg.compiled.Services {
		c.Services = append(c.Services, name)
	}
	slices.Sort(c.Services)
	others := slices.DeleteFunc(slices.Clone(c.Services), func(s string) bool { return s == x.name })
	learn := fmt.Sprintf("its proxy gets %s once it asks for it (on-demand discovery: weft-proxy --watch %s, or a watch through the Discovery API)", x.name, x.svc.Ref())
	with := "; the control plane then sends the service with its routes and policies"
	if len(others) > 0 {
		with += ", and the services they send or mirror to: " + strings.Join(others, ", ")
	}
	if c.Mode == translate.ModeExplicit {
		for _, l := range x.callerCfg.compiled.Outbound.Explicit {
			if l.Service.Name == x.name {
				c.Addresses = append(c.Addresses, l.Address)
			}
		}
		c.Discovery = learn + with + fmt.Sprintf("; the application calls it at %s (explicit mode: the first free local port from %d, if it is the only service the proxy watches)",
			strings.Join(c.Addresses, ", "), translate.DefaultExplicitBase)
		return nil
	}
	for _, a := range cs.Addresses {
		c.Addresses = append(c.Addresses, a.String())
	}
	if len(c.Addresses) == 0 {
		c.Discovery = learn + with + fmt.Sprintf("; but %s has no virtual address (no clusterIP), so in transparent mode the application cannot address it through the proxy: give the Service a clusterIP, or run the proxy in explicit mode (proxy.inboundPort)", x.name)
		return nil
	}
	c.Discovery = learn + with + fmt.Sprintf("; until then, the application's connections to %s pass through the proxy unrouted", strings.Join(c.Addresses, ", "))
	return nil
}

// defaultHost is the Host a client of the service sends: its name, with
// the port unless it is 80.
func defaultHost(svc *model.Service, port uint16) string {
	h := svc.Name + "." + svc.Namespace
	if port != 80 {
		h += ":" + strconv.Itoa(int(port))
	}
	return h
}

// buildRequest is the request as the application sends it: HTTP/1.1, or
// an HTTP/2 gRPC call.
func (x *explainer) buildRequest() (*http.Request, error) {
	host := x.out.Request.Host
	r, err := http.NewRequestWithContext(x.ctx, x.in.method, "http://"+host+x.in.path, nil)
	if err != nil {
		return nil, fmt.Errorf("building the request %s %s to %s: %w", x.in.method, x.in.path, host, err)
	}
	r.Host = host
	for _, h := range x.in.headers {
		r.Header.Add(h[0], h[1])
	}
	if x.in.grpc != "" {
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
		r.Header.Set("Content-Type", "application/grpc")
		r.Header.Set("Te", "trailers")
	}
	return r, nil
}

// involve records a model object as involved: its problems are reported.
func (x *explainer) involve(k model.Key) { x.involved[k.String()] = true }

// involveService records a service and what attaches to it.
func (x *explainer) involveService(ref model.ServiceRef) {
	x.involve(model.Key{Kind: model.KindService, Namespace: ref.Namespace, Name: ref.Name})
	x.involve(model.Key{Kind: model.KindEndpoints, Namespace: ref.Namespace, Name: ref.Name})
	for _, r := range x.snap.RoutesFor(ref) {
		x.involve(r.Key())
	}
	for _, p := range x.snap.RetryBudgetsFor(ref) {
		x.involve(p.Key())
	}
	for _, p := range x.snap.CircuitBreakersFor(ref) {
		x.involve(p.Key())
	}
}

// routingStep: what the caller's proxy does with the request, in the
// order of its outbound path.
func (x *explainer) routingStep() error {
	r := &x.out.Routing
	cs := x.callerCfg.compiled.Services[x.name]
	x.filtered = x.req
	self := []chosen{{name: x.name, share: 1, req: x.req}}
	switch {
	case !x.caller.Meshed:
		r.Outcome = "no-proxy"
		r.Decision = "the caller has no proxy: no route, rate limit, fault, retry or timeout applies, and the request goes to one of the service's endpoints as it is"
		x.chosen = self
		return nil
	case cs.Protocol == config.Opaque:
		r.Outcome = "opaque"
		r.Decision = fmt.Sprintf("%s is opaque TCP (appProtocol %q): HTTP routes and their policies do not apply; each connection goes to one endpoint of the service, chosen by its load balancer", x.name, x.port.AppProtocol)
		x.chosen = self
		return nil
	}
	for _, rule := range cs.Rules {
		r.Rules = append(r.Rules, ruleName(&rule)+" ("+describeMatches(&rule)+")")
	}
	sel, ok := cs.Routes.Match(x.req)
	if !ok {
		r.Outcome = "forward"
		r.Decision = fmt.Sprintf("no route is attached to %s: the request goes to the service's own endpoints", x.name)
		if len(cs.Rules) > 0 {
			r.Decision = "no route matched (" + rulesCount(len(cs.Rules), "none of the %d rules attached matches") + " " + x.in.method + " " + x.in.path +
				"): the request goes to the service's own endpoints, with no rule's timeouts or retries"
		}
		x.chosen = self
		return nil
	}
	x.rule = sel.Rule
	r.Matched = &MatchedRule{Route: sel.Rule.Route, Kind: kindName(sel.Rule.Kind), Rule: sel.Rule.Index, MatchIndex: sel.MatchIndex, Match: describeMatch(sel)}
	r.Decision = x.matchDecision(cs, sel)

	// Redirect, then the filters: ApplyRequestFilters does one or the
	// other, as the proxy does.
	filtered := x.req.Clone(x.ctx)
	if loc, code := sel.ApplyRequestFilters(filtered); loc != "" {
		r.Outcome = "redirect"
		r.Redirect = &Redirect{Status: code, Location: loc}
		return nil
	}
	x.filtered = filtered
	r.RequestChanges = requestChanges(x.req, filtered)
	r.ResponseHeaders = describeModifier(sel.Rule.Filters.ResponseHeaders)

	if pol := cs.Policies[config.RuleKey{Route: sel.Rule.Route, Index: sel.Rule.Index}]; pol != nil {
		x.rulePolicy(pol)
	}

	if len(sel.Rule.Backends) == 0 {
		r.Outcome = "forward"
		r.Decision += "; the rule names no backendRefs: the request goes to the service itself"
		x.chosen = self
		x.chosen[0].req = filtered
		return nil
	}
	shares := sel.Rule.BackendShares()
	r.Outcome = "forward"
	if !slices.ContainsFunc(shares, func(s float64) bool { return s > 0 }) {
		r.Outcome = "no-backend"
	}
	refs := x.modelBackends(sel.Rule)
	for i := range sel.Rule.Backends {
		be := &sel.Rule.Backends[i]
		req := filtered.Clone(x.ctx)
		be.ApplyRequestHeaders(req)
		c := chosen{name: be.Service, backend: be, weight: be.Weight, share: shares[i], req: req}
		if i < len(refs) {
			c.ref = refs[i]
		}
		x.chosen = append(x.chosen, c)
	}
	return nil
}

// modelBackends returns the backendRefs of a rule as the route resource
// wrote them (the translation keeps their order), "namespace/name:port".
func (x *explainer) modelBackends(r *route.Rule) []string {
	ns, name, _ := strings.Cut(r.Route, "/")
	kind := model.RouteHTTP
	if r.Kind == route.GRPC {
		kind = model.RouteGRPC
	}
	mr := x.snap.Routes[model.RouteRef{Kind: kind, Namespace: ns, Name: name}]
	if mr == nil || r.Index >= len(mr.Rules) {
		return nil
	}
	var out []string
	for _, b := range mr.Rules[r.Index].Backends {
		s := b.ServiceRef.String()
		if b.Port != 0 {
			s += ":" + strconv.Itoa(int(b.Port))
		}
		out = append(out, s)
	}
	return out
}

// matchDecision says which rule won and why: the other rules that match
// the request too, each alone in a table of its own (the proxy's matcher),
// rank below it.
func (x *explainer) matchDecision(cs *config.Service, sel *route.Selected) string {
	var also []string
	for _, rule := range cs.Routes.Rules() {
		if rule.Kind == sel.Rule.Kind && rule.Route == sel.Rule.Route && rule.Index == sel.Rule.Index {
			continue
		}
		t, err := route.NewTable([]route.Rule{rule})
		if err != nil {
			continue // not reached: the rule is in a valid table
		}
		if s, ok := t.Match(x.req); ok {
			also = append(also, fmt.Sprintf("%s (%s)", ruleName(&rule), describeMatch(s)))
		}
	}
	d := fmt.Sprintf("%s %s rule %d matched: it has no matches, so it takes every request", kindName(sel.Rule.Kind), sel.Rule.Route, sel.Rule.Index)
	if sel.MatchIndex >= 0 {
		d = fmt.Sprintf("%s %s rule %d matched by its match %d (%s)", kindName(sel.Rule.Kind), sel.Rule.Route, sel.Rule.Index, sel.MatchIndex, describeMatch(sel))
	}
	if len(also) == 0 {
		return d + "; " + rulesCount(len(cs.Rules), "it is the only one of the %d rules attached that matches")
	}
	precedence := "an exact path, then the longer prefix, a method, more headers, more query parameters, then the older route, its name, the rule index"
	if sel.Rule.Kind == route.GRPC {
		precedence = "GRPCRoute rules first for a gRPC call, then the longer service, the longer method, more headers, then the older route, its name, the rule index"
	}
	return d + "; it ranks above the other rules that match this request (Gateway API precedence: " + precedence + "): " + strings.Join(also, ", ")
}

// rulesCount words a count of rules: "the only rule attached" for one,
// else format with n.
func rulesCount(n int, format string) string {
	if n == 1 {
		if strings.HasPrefix(format, "none") {
			return "the only rule attached does not match"
		}
		return "it is the only rule attached"
	}
	return fmt.Sprintf(format, n)
}

func ruleName(r *route.Rule) string {
	return fmt.Sprintf("%s %s#%d", kindName(r.Kind), r.Route, r.Index)
}

func kindName(k route.Kind) string {
	if k == route.GRPC {
		return "GRPCRoute"
	}
	return "HTTPRoute"
}

// involveName records the service port the proxies call name.
func (x *explainer) involveName(name string) {
	if ref, ok := x.byName[name]; ok {
		x.involveService(ref.ServiceRef)
	}
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
