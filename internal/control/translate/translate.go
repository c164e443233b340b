package translate

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/protobuf/proto"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
)

// Modes of a proxy's outbound side.
const (
	// ModeTransparent: capture rules redirect the application's
	// connections to the proxy's transparent listener.
	ModeTransparent = "transparent"
	// ModeExplicit: the application calls local ports mapped to services
	// (VMs, laptops: hosts without traffic capture).
	ModeExplicit = "explicit"
)

// Ports and addresses of the proxy's listeners. They mirror the proxy's
// defaults (internal/proxy/config).
const (
	DefaultExplicitBase uint16 = 15000
	AdminPort           uint16 = 4191
	DefaultInboundPort  uint16 = 4143
	TransparentAddress         = "127.0.0.1:4140"
	transparentPort     uint16 = 4140
)

// Proxy is what the control plane knows of one proxy.
type Proxy struct {
	// Identity is the proxy's SPIFFE ID; empty when not known.
	Identity string
	// Workload is the workload the proxy runs beside; nil for a proxy of no
	// known workload (it gets no inbound listener).
	Workload *model.Workload
	// Watched are the service ports the proxy asked for (on-demand
	// discovery); Port 0 watches every port of the service.
	Watched []model.ServicePortRef
	// TLS names the proxy's certificate files.
	TLS *weftv1.TLS
	// Mode is ModeTransparent (the default when empty) or ModeExplicit.
	Mode string
	// ExplicitBase is the first local port explicit listeners take;
	// 0 means DefaultExplicitBase.
	ExplicitBase uint16
	// Previous is the config last sent to this proxy, if any: its explicit
	// listener assignments are kept.
	Previous *weftv1.ProxyConfig
	// Mesh holds the control plane's mesh-wide settings (root namespace,
	// default inbound policy); the zero value is the defaults.
	Mesh Mesh
}

// Problem is something wrong in the model that the translation worked
// around: the affected part is left out or neutralized, the rest is served.
type Problem struct {
	// Object is the kind and name of the object at fault, e.g.
	// "HTTPRoute shop/web-canary".
	Object string
	// Field is the path to the faulty field within it, e.g.
	// "rules[1].backendRefs[0]".
	Field   string
	Message string
}

func (p Problem) String() string { return p.Object + ": " + p.Field + ": " + p.Message }

// Result is a proxy's config and the problems met producing it.
type Result struct {
	Config   *weftv1.ProxyConfig
	Problems []Problem
}

// ErrNothingToServe is Config's error for an explicit-mode proxy of no known
// workload none of whose watched services exists (yet): it would have no
// listener at all. Nothing is wrong with the model; the proxy waits.
var ErrNothingToServe = errors.New("no workload of its own and none of the services it watches exists: nothing to listen on yet")

// ServiceName is the name of the proxy service for one port of a service:
// "<name>.<namespace>:<port>".
func ServiceName(svc model.ServiceRef, port uint16) string {
	return svc.Name + "." + svc.Namespace + ":" + strconv.Itoa(int(port))
}

// Config returns the configuration of proxy p from snapshot snap. The error
// is only for impossible inputs (see the package documentation); problems
// in the model are reported in Result.Problems.
func Config(snap *model.Snapshot, p Proxy) (Result, error) {
	if snap == nil {
		return Result{}, errors.New("translate: no snapshot")
	}
	mode := p.Mode
	switch mode {
	case "":
		mode = ModeTransparent
	case ModeTransparent, ModeExplicit:
	default:
		return Result{}, fmt.Errorf("translate: proxy %q: unknown mode %q; use %q or %q", p.Identity, p.Mode, ModeTransparent, ModeExplicit)
	}
	if err := p.Mesh.Validate(); err != nil {
		return Result{}, fmt.Errorf("translate: %w", err)
	}
	clientNS := ""
	if p.Identity != "" {
		id, err := spiffeid.FromString(p.Identity)
		if err != nil {
			return Result{}, fmt.Errorf("translate: proxy identity %q: %w", p.Identity, err)
		}
		clientNS = namespaceOf(id)
	}
	if p.Workload != nil {
		clientNS = p.Workload.Namespace
	}

	b := newBuilder(snap, clientNS, p.Mesh)
	proxyObj := "Proxy " + cmp.Or(p.Identity, "(no identity)")
	var watched []string
	for i, w := range p.Watched {
		field := fmt.Sprintf("watched[%d]", i)
		svc := snap.Services[w.ServiceRef]
		if svc == nil {
			b.problem(proxyObj, field, "service %s does not exist", w.ServiceRef)
			b.orphanRoutes(w.ServiceRef)
			continue
		}
		if w.Port == 0 {
			for _, sp := range svc.Ports {
				watched = append(watched, b.include(svc, sp))
			}
			continue
		}
		sp, ok := svc.PortByNumber(w.Port)
		if !ok {
			b.problem(proxyObj, field, "service %s has no port %d", w.ServiceRef, w.Port)
			continue
		}
		watched = append(watched, b.include(svc, sp))
	}
	services := b.build()

	cfg := &weftv1.ProxyConfig{Services: services}
	if p.TLS != nil {
		cfg.Tls = proto.Clone(p.TLS).(*weftv1.TLS)
	}
	// The proxy's own ports: no application port or explicit listener
	// may take them.
	reserved := map[uint16]bool{AdminPort: true}
	if mode == ModeTransparent {
		reserved[transparentPort] = true
	}
	if w := p.Workload; w != nil {
		if reserved[w.ProxyInbound] {
			return Result{}, fmt.Errorf("translate: workload %s: proxy inbound port %d is taken by another of the proxy's listeners", w.Ref(), w.ProxyInbound)
		}
		cfg.Inbound = b.inbound(w, reserved)
	}
	switch mode {
	case ModeTransparent:
		cfg.Outbound = &weftv1.Outbound{TransparentAddress: TransparentAddress}
	case ModeExplicit:
		base := cmp.Or(p.ExplicitBase, DefaultExplicitBase)
		cfg.Outbound = &weftv1.Outbound{Explicit: b.explicit(proxyObj, watched, base, reserved, p.Previous)}
		if cfg.Inbound == nil && len(cfg.Outbound.Explicit) == 0 {
			return Result{}, fmt.Errorf("translate: explicit-mode proxy %q: %w", p.Identity, ErrNothingToServe)
		}
	}
	if cfg.Tls == nil {
		if cfg.Inbound != nil {
			return Result{}, fmt.Errorf("translate: proxy %q: its inbound listener needs the proxy's certificate; set Proxy.TLS", p.Identity)
		}
		for _, s := range services {
			for _, e := range s.Endpoints {
				if e.Identity != "" {
					return Result{}, fmt.Errorf("translate: proxy %q: service %s has meshed endpoints, which need the proxy's certificate; set Proxy.TLS", p.Identity, s.Name)
				}
			}
		}
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(cfg)
	if err != nil {
		return Result{}, fmt.Errorf("translate: encoding the config to version it: %w", err)
	}
	sum := sha256.Sum256(data)
	cfg.Version = hex.EncodeToString(sum[:8])
	return Result{Config: cfg, Problems: b.sortedProblems()}, nil
}

// Check reports the problems of the whole model, whichever proxy they would
// reach: routes whose parents, backends or mirrors do not exist, routes the
// proxy would reject, policies that target nothing, conflict or are
// invalid, annotations with unknown values, addresses claimed twice. It is
// the feed for status conditions. It checks with the default Mesh settings;
// CheckMesh takes others.
func Check(snap *model.Snapshot) []Problem { return CheckMesh(snap, Mesh{}) }

// CheckMesh is Check under the mesh-wide settings mesh (which must be
// valid: the root namespace decides which policies are mesh-wide).
func CheckMesh(snap *model.Snapshot, mesh Mesh) []Problem {
	b := newBuilder(snap, "", mesh)
	for _, ref := range sortedKeys(snap.Routes, compareRouteRef) {
		r := snap.Routes[ref]
		for j, pr := range r.Parents {
			svc := snap.Services[pr.ServiceRef]
			switch {
			case svc == nil:
				b.problem(routeObj(r), fmt.Sprintf("parentRefs[%d]", j), "service %s does not exist", pr.ServiceRef)
			case pr.Port != 0:
				if _, ok := svc.PortByNumber(pr.Port); !ok {
					b.problem(routeObj(r), fmt.Sprintf("parentRefs[%d]", j), "service %s has no port %d", pr.ServiceRef, pr.Port)
				}
			}
		}
		b.routeRules(r, "(parent)", 0, false) // for its problems only
	}
	for _, ref := range sortedKeys(snap.Services, compareServiceRef) {
		svc := snap.Services[ref]
		b.retryBudget(svc)
		b.circuitBreaker(svc)
		b.loadBalancer(svc)
		for _, sp := range svc.Ports {
			b.include(svc, sp)
		}
	}
	for _, ref := range sortedKeys(snap.RetryBudgets, compareObjectRef) {
		if p := snap.RetryBudgets[ref]; snap.Services[p.TargetRef] == nil {
			b.problem(string(model.KindRetryBudget)+" "+ref.String(), "targetRef", "service %s does not exist", p.TargetRef)
		}
	}
	for _, ref := range sortedKeys(snap.CircuitBreakers, compareObjectRef) {
		if p := snap.CircuitBreakers[ref]; snap.Services[p.TargetRef] == nil {
			b.problem(string(model.KindCircuitBreaker)+" "+ref.String(), "targetRef", "service %s does not exist", p.TargetRef)
		}
	}
	for _, ref := range sortedKeys(snap.LoadBalancers, compareObjectRef) {
		if p := snap.LoadBalancers[ref]; snap.Services[p.TargetRef] == nil {
			b.problem(string(model.KindLoadBalancer)+" "+ref.String(), "targetRef", "service %s does not exist", p.TargetRef)
		}
	}
	// Endpoints, and addresses claimed twice, over every service port.
	var all []*weftv1.Service
	for _, e := range b.queue {
		b.endpoints(e)
		all = append(all, &weftv1.Service{Name: e.name, Addresses: addresses(e)})
	}
	slices.SortFunc(all, func(a, b *weftv1.Service) int { return cmp.Compare(a.Name, b.Name) })
	b.dedupAddresses(all)
	b.checkSecurity()
	b.checkRateLimits()
	return b.sortedProblems()
}

// entry is one service port in the config being built.
type entry struct {
	svc  *model.Service
	port model.ServicePort
	name string
}

type builder struct {
	snap     *model.Snapshot
	clientNS string
	mesh     Mesh
	problems map[Problem]struct{}
	included map[string]*entry
	queue    []*entry
	// checked caches the proxy's verdict on each route and policy.
	checked map[string]error
}

func newBuilder(snap *model.Snapshot, clientNS string, mesh Mesh) *builder {
	return &builder{
		snap:     snap,
		clientNS: clientNS,
		mesh:     mesh,
		problems: map[Problem]struct{}{},
		included: map[string]*entry{},
		checked:  map[string]error{},
	}
}

func (b *builder) problem(object, field, format string, args ...any) {
	b.problems[Problem{Object: object, Field: field, Message: fmt.Sprintf(format, args...)}] = struct{}{}
}

func (b *builder) sortedProblems() []Problem {
	out := slices.Collect(maps.Keys(b.problems))
	slices.SortFunc(out, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Object, b.Object), cmp.Compare(a.Field, b.Field), cmp.Compare(a.Message, b.Message))
	})
	return out
}

// include adds a service port to the config (once) and returns its name.
func (b *builder) include(svc *model.Service, sp model.ServicePort) string {
	name := ServiceName(svc.Ref(), sp.Port)
	if _, ok := b.included[name]; !ok {
		e := &entry{svc: svc, port: sp, name: name}
		b.included[name] = e
		b.queue = append(b.queue, e)
	}
	return name
}

// build translates every included service port, following route backends
// and mirrors (which include more), and returns them sorted by name.
func (b *builder) build() []*weftv1.Service {
	var out []*weftv1.Service
	for i := 0; i < len(b.queue); i++ {
		out = append(out, b.service(b.queue[i]))
	}
	slices.SortFunc(out, func(a, b *weftv1.Service) int { return cmp.Compare(a.Name, b.Name) })
	b.dedupAddresses(out)
	return out
}

func (b *builder) service(e *entry) *weftv1.Service {
	out := &weftv1.Service{Name: e.name, Protocol: protocol(e.port.AppProtocol)}
	out.Addresses = addresses(e)
	out.Endpoints = b.endpoints(e)
	out.Routes = b.routes(e)
	out.RetryBudget = b.retryBudget(e.svc)
	out.CircuitBreaker = b.circuitBreaker(e.svc)
	out.LoadBalancer = b.loadBalancer(e.svc)
	return out
}

// addresses returns the virtual addresses of a service port, sorted.
func addresses(e *entry) []string {
	vips := slices.Clone(e.svc.VIPs)
	slices.SortFunc(vips, func(a, b netip.Addr) int { return a.Compare(b) })
	var out []string
	for _, vip := range slices.Compact(vips) {
		if vip.IsValid() {
			out = append(out, netip.AddrPortFrom(vip, e.port.Port).String())
		}
	}
	return out
}

// dedupAddresses keeps each virtual address on the first service (by name)
// that claims it: the proxy refuses a config with an address twice.
func (b *builder) dedupAddresses(services []*weftv1.Service) {
	owner := map[string]string{}
	for _, s := range services {
		kept := s.Addresses[:0]
		for _, a := range s.Addresses {
			if other, dup := owner[a]; dup {
				e := b.included[s.Name]
				b.problem(string(model.KindService)+" "+e.svc.Ref().String(), "clusterIPs", "address %s is also claimed by %s; it is left to %s", a, other, other)
				continue
			}
			owner[a] = s.Name
			kept = append(kept, a)
		}
		s.Addresses = kept
	}
}

// endpoints returns the endpoints of a service port: the ready ones, or, if
// none is, the terminating ones still serving.
func (b *builder) endpoints(e *entry) []*weftv1.Endpoint {
	var ready, terminating []model.Endpoint
	for _, ep := range b.snap.Endpoints[e.svc.Ref()] {
		if !serves(ep, e.port) || !ep.Ready {
			continue
		}
		if ep.Terminating {
			terminating = append(terminating, ep)
		} else {
			ready = append(ready, ep)
		}
	}
	use := ready
	if len(use) == 0 {
		use = terminating
	}
	slices.SortStableFunc(use, func(a, b model.Endpoint) int { return a.Address.Compare(b.Address) })
	obj := string(model.KindEndpoints) + " " + e.svc.Ref().String()
	var out []*weftv1.Endpoint
	var last netip.AddrPort
	for _, ep := range use {
		field := fmt.Sprintf("endpoints[%s]", ep.Address)
		if !ep.Address.IsValid() || ep.Address.Port() == 0 {
			b.problem(obj, field, "address %q is not ip:port; the endpoint is left out", ep.Address)
			continue
		}
		if ep.Address == last {
			continue
		}
		last = ep.Address
		if ep.Identity != "" {
			if _, err := spiffeid.FromString(ep.Identity); err != nil {
				b.problem(obj, field+".identity", "%q is not a SPIFFE ID (%v); the endpoint is left out rather than called in plaintext", ep.Identity, err)
				continue
			}
		}
		out1 := &weftv1.Endpoint{Address: ep.Address.String(), Identity: ep.Identity, Zone: ep.Zone}
		if ep.Weight != 1 {
			out1.Weight = ep.Weight
		}
		if ep.ProxyAddress.IsValid() {
			if ep.Identity == "" {
				b.problem(obj, field+".proxyAddress", "is set but the endpoint has no identity; a peer proxy is only called over mTLS, so the endpoint is called at its own address")
			} else {
				out1.ProxyAddress = ep.ProxyAddress.String()
			}
		}
		out = append(out, out1)
	}
	return out
}

// serves reports whether endpoint ep serves service port sp.
func serves(ep model.Endpoint, sp model.ServicePort) bool {
	if ep.PortName != "" {
		return ep.PortName == sp.Name
	}
	return ep.Address.Port() == sp.Target()
}

// routes returns the route rules attached to a service port for this
// proxy's clients: the consumer routes of the client's namespace if there
// are any, else the producer routes.
func (b *builder) routes(e *entry) []*weftv1.RouteRule {
	var producer, consumer []*model.Route
	for _, r := range b.snap.RoutesFor(e.svc.Ref()) {
		attached := false
		for j, pr := range r.Parents {
			if pr.ServiceRef != e.svc.Ref() {
				continue
			}
			if pr.Port == 0 || pr.Port == e.port.Port {
				attached = true
			} else if _, ok := e.svc.PortByNumber(pr.Port); !ok {
				b.problem(routeObj(r), fmt.Sprintf("parentRefs[%d]", j), "service %s has no port %d", pr.ServiceRef, pr.Port)
			}
		}
		switch {
		case !attached:
		case r.Namespace == e.svc.Namespace:
			producer = append(producer, r)
		case r.Namespace == b.clientNS:
			consumer = append(consumer, r)
		}
	}
	chosen := producer
	if len(consumer) > 0 {
		chosen = consumer
	}
	var out []*weftv1.RouteRule
	for _, r := range chosen {
		out = append(out, b.routeRules(r, e.name, e.port.Port, true)...)
	}
	slices.SortFunc(out, func(a, b *weftv1.RouteRule) int {
		return cmp.Or(cmp.Compare(a.Route, b.Route), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Index, b.Index))
	})
	return out
}

type target struct {
	svc  *model.Service
	port model.ServicePort
}

// routeRules translates the rules of route r for a parent service port
// named parent. A backend that resolves to nothing gets weight 0 and the
// parent's name; a mirror that does, is dropped. If the proxy would reject
// the route, it is left out and nil returned. With include set, the
// services the rules refer to are added to the config.
func (b *builder) routeRules(r *model.Route, parent string, parentPort uint16, include bool) []*weftv1.RouteRule {
	obj := routeObj(r)
	name := r.Namespace + "/" + r.Name
	created := ""
	if !r.Created.IsZero() {
		created = r.Created.UTC().Format(time.RFC3339)
	}
	var out []*weftv1.RouteRule
	var targets []target
	for i, rule := range r.Rules {
		rr := &weftv1.RouteRule{
			Route:     name,
			Kind:      string(r.Kind),
			Created:   created,
			Index:     uint32(i),
			Filters:   cloneMsg(rule.Filters),
			Timeouts:  cloneMsg(rule.Timeouts),
			Retry:     cloneMsg(rule.Retry),
			RateLimit: cloneMsg(rule.RateLimit),
			Fault:     cloneMsg(rule.Fault),
		}
		for _, m := range rule.Matches {
			rr.Matches = append(rr.Matches, cloneMsg(m))
		}
		b.extensionFilters(obj, r.Namespace, i, rule, rr)
		for j, be := range rule.Backends {
			rb := &weftv1.RouteBackend{
				Weight:          be.Weight,
				RequestHeaders:  cloneMsg(be.RequestHeaders),
				ResponseHeaders: cloneMsg(be.ResponseHeaders),
			}
			if t, msg := b.resolve(be.ServicePortRef); msg != "" {
				b.problem(obj, fmt.Sprintf("rules[%d].backendRefs[%d]", i, j), "%s; the backend gets weight 0", msg)
				rb.Service, rb.Port, rb.Weight = parent, uint32(parentPort), 0
			} else {
				rb.Service, rb.Port = ServiceName(t.svc.Ref(), t.port.Port), uint32(t.port.Port)
				targets = append(targets, t)
			}
			rr.Backends = append(rr.Backends, rb)
		}
		for j, m := range rule.Mirrors {
			t, msg := b.resolve(m.ServicePortRef)
			if msg != "" {
				b.problem(obj, fmt.Sprintf("rules[%d].mirrors[%d]", i, j), "%s; the mirror is dropped", msg)
				continue
			}
			rr.Mirrors = append(rr.Mirrors, &weftv1.MirrorPolicy{Service: ServiceName(t.svc.Ref(), t.port.Port), Percent: m.Percent})
			targets = append(targets, t)
		}
		out = append(out, rr)
	}
	key := string(r.Key().Kind) + " " + name
	err, done := b.checked[key]
	if !done {
		err = validate(&weftv1.Service{Name: parent, Routes: out})
		b.checked[key] = err
		reportRejection(b, obj, err, "the route is left out")
	}
	if err != nil {
		return nil
	}
	if include {
		for _, t := range targets {
			b.include(t.svc, t.port)
		}
	}
	return out
}

// resolve finds the service port a reference names, or says why it cannot.
func (b *builder) resolve(ref model.ServicePortRef) (target, string) {
	svc := b.snap.Services[ref.ServiceRef]
	if svc == nil {
		return target{}, fmt.Sprintf("service %s does not exist", ref.ServiceRef)
	}
	if ref.Port == 0 {
		if len(svc.Ports) != 1 {
			return target{}, fmt.Sprintf("service %s has %d ports; name one", ref.ServiceRef, len(svc.Ports))
		}
		return target{svc, svc.Ports[0]}, ""
	}
	sp, ok := svc.PortByNumber(ref.Port)
	if !ok {
		return target{}, fmt.Sprintf("service %s has no port %d", ref.ServiceRef, ref.Port)
	}
	return target{svc, sp}, ""
}

// orphanRoutes reports the routes attached to a service that does not
// exist (watched by a proxy, so somebody is calling it).
func (b *builder) orphanRoutes(svc model.ServiceRef) {
	for _, r := range b.snap.RoutesFor(svc) {
		for j, pr := range r.Parents {
			if pr.ServiceRef == svc {
				b.problem(routeObj(r), fmt.Sprintf("parentRefs[%d]", j), "service %s does not exist", svc)
			}
		}
	}
}

// retryBudget returns the budget of the oldest valid policy of the
// service's namespace targeting it.
func (b *builder) retryBudget(svc *model.Service) *weftv1.RetryBudget {
	p, ok := servicePolicy(b, svc, model.KindRetryBudget, b.snap.RetryBudgetsFor(svc.Ref()),
		func(p *model.RetryBudgetPolicy) (string, *weftv1.Service) {
			return p.Namespace, &weftv1.Service{Name: "check", RetryBudget: cmp.Or(p.Budget, &weftv1.RetryBudget{})}
		})
	if !ok {
		return nil
	}
	return cmp.Or(cloneMsg(p.Budget), &weftv1.RetryBudget{})
}

// circuitBreaker is retryBudget for circuit breaker policies.
func (b *builder) circuitBreaker(svc *model.Service) *weftv1.CircuitBreaker {
	p, ok := servicePolicy(b, svc, model.KindCircuitBreaker, b.snap.CircuitBreakersFor(svc.Ref()),
		func(p *model.CircuitBreakerPolicy) (string, *weftv1.Service) {
			return p.Namespace, &weftv1.Service{Name: "check", CircuitBreaker: cmp.Or(p.Breaker, &weftv1.CircuitBreaker{})}
		})
	if !ok {
		return nil
	}
	return cmp.Or(cloneMsg(p.Breaker), &weftv1.CircuitBreaker{})
}

// loadBalancer is retryBudget for load balancer policies.
func (b *builder) loadBalancer(svc *model.Service) *weftv1.LoadBalancer {
	p, ok := servicePolicy(b, svc, model.KindLoadBalancer, b.snap.LoadBalancersFor(svc.Ref()),
		func(p *model.LoadBalancerPolicy) (string, *weftv1.Service) {
			return p.Namespace, &weftv1.Service{Name: "check", LoadBalancer: cmp.Or(p.Balancer, &weftv1.LoadBalancer{})}
		})
	if !ok {
		return nil
	}
	return cmp.Or(cloneMsg(p.Balancer), &weftv1.LoadBalancer{})
}

// servicePolicy picks the policy of a Service among ps (in precedence
// order): the first that policyOK accepts; the others are reported. check
// gives a policy's namespace and a Service carrying it, for the proxy's
// validation.
func servicePolicy[P interface{ Ref() model.ObjectRef }](b *builder, svc *model.Service, kind model.Kind, ps []P, check func(P) (string, *weftv1.Service)) (P, bool) {
	var chosen P
	found := false
	for _, p := range ps {
		obj := string(kind) + " " + p.Ref().String()
		name := ""
		if found {
			name = string(kind) + " " + chosen.Ref().String()
		}
		ns, probe := check(p)
		if b.policyOK(obj, ns, svc, found, name, probe) {
			chosen, found = p, true
		}
	}
	return chosen, found
}

// policyOK reports whether a policy applies: it must be in the service's
// namespace, pass the proxy's validation, and be the first to do so.
func (b *builder) policyOK(obj, ns string, svc *model.Service, taken bool, winner string, check *weftv1.Service) bool {
	if ns != svc.Namespace {
		b.problem(obj, "targetRef", "service %s is in another namespace; a policy applies only to services of its own", svc.Ref())
		return false
	}
	err, done := b.checked[obj]
	if !done {
		err = validate(check)
		b.checked[obj] = err
		reportRejection(b, obj, err, "the policy is ignored")
	}
	if err != nil {
		return false
	}
	if taken {
		b.problem(obj, "targetRef", "conflicts with the older %s, which applies to service %s", winner, svc.Ref())
		return false
	}
	return true
}

// inbound returns the inbound listener of the proxy's workload, with its
// authorization and mTLS modes, and adds its ports to reserved.
func (b *builder) inbound(w *model.Workload, reserved map[uint16]bool) *weftv1.Inbound {
	port := cmp.Or(w.ProxyInbound, DefaultInboundPort)
	reserved[port] = true
	own := slices.Sorted(maps.Keys(reserved))
	in := &weftv1.Inbound{Address: "0.0.0.0:" + strconv.Itoa(int(port))}
	ports := slices.Clone(w.Ports)
	slices.SortStableFunc(ports, func(a, b model.WorkloadPort) int { return cmp.Compare(a.Port, b.Port) })
	obj := string(model.KindWorkload) + " " + w.Ref().String()
	for i, wp := range ports {
		field := fmt.Sprintf("ports[%s]", cmp.Or(wp.Name, strconv.Itoa(int(wp.Port))))
		switch {
		case wp.Port == 0:
			b.problem(obj, field, "port 0 is not a TCP port; it is left out")
			continue
		case i > 0 && ports[i-1].Port == wp.Port:
			b.problem(obj, field, "port %d is listed twice; the first one applies", wp.Port)
			continue
		case reserved[wp.Port]:
			b.problem(obj, field, "port %d is one of the proxy's own listener ports %v; the application cannot be served on it", wp.Port, own)
			continue
		}
		proto := protocol(wp.Protocol)
		if wp.Opaque {
			proto = "opaque"
		}
		in.Ports = append(in.Ports, &weftv1.InboundPort{Port: uint32(wp.Port), Protocol: proto})
	}
	b.security(w, in, reserved)
	for _, p := range in.Ports {
		reserved[uint16(p.Port)] = true
	}
	return in
}

// explicit maps the watched service ports to local ports: previous
// assignments first, then the lowest free ports from base in name order.
func (b *builder) explicit(proxyObj string, watched []string, base uint16, reserved map[uint16]bool, previous *weftv1.ProxyConfig) []*weftv1.ExplicitListener {
	names := slices.Compact(slices.Sorted(slices.Values(watched)))
	prev := map[string]uint16{}
	for _, l := range previous.GetOutbound().GetExplicit() {
		if ap, err := netip.ParseAddrPort(l.GetAddress()); err == nil && ap.Addr() == netip.AddrFrom4([4]byte{127, 0, 0, 1}) {
			prev[l.GetService()] = ap.Port()
		}
	}
	used := maps.Clone(reserved)
	assigned := map[string]uint16{}
	for _, n := range names {
		if port, ok := prev[n]; ok && !used[port] {
			used[port] = true
			assigned[n] = port
		}
	}
	next := int(base)
	for _, n := range names {
		if _, ok := assigned[n]; ok {
			continue
		}
		for next <= 65535 && used[uint16(next)] {
			next++
		}
		if next > 65535 {
			b.problem(proxyObj, "explicit", "no free local port from %d up for service %s; lower ExplicitBase", base, n)
			continue
		}
		assigned[n] = uint16(next)
		used[uint16(next)] = true
	}
	var out []*weftv1.ExplicitListener
	for _, n := range names {
		if port, ok := assigned[n]; ok {
			out = append(out, &weftv1.ExplicitListener{Address: "127.0.0.1:" + strconv.Itoa(int(port)), Service: n})
		}
	}
	slices.SortFunc(out, func(a, b *weftv1.ExplicitListener) int {
		return cmp.Compare(assigned[a.Service], assigned[b.Service])
	})
	return out
}

// protocol maps a Kubernetes appProtocol to the proxy's protocol.
func protocol(appProtocol string) string {
	switch strings.ToLower(appProtocol) {
	case "http", "http1":
		return "http1"
	case "http2", "kubernetes.io/h2c":
		return "http2"
	case "grpc":
		return "grpc"
	case "tcp", "opaque":
		return "opaque"
	}
	return ""
}

// namespaceOf returns the namespace of a SPIFFE ID of the form
// spiffe://<trust-domain>/ns/<namespace>/sa/<serviceaccount>, or "".
func namespaceOf(id spiffeid.ID) string {
	parts := strings.Split(strings.TrimPrefix(id.Path(), "/"), "/")
	if len(parts) >= 2 && parts[0] == "ns" {
		return parts[1]
	}
	return ""
}

func routeObj(r *model.Route) string { return r.Key().String() }

func cloneMsg[M interface {
	proto.Message
	comparable
}](m M) M {
	var zero M
	if m == zero {
		return zero
	}
	return proto.Clone(m).(M)
}

func sortedKeys[K comparable, V any](m map[K]V, compare func(a, b K) int) []K {
	return slices.SortedFunc(maps.Keys(m), compare)
}

func compareServiceRef(a, b model.ServiceRef) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

func compareObjectRef(a, b model.ObjectRef) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

func compareRouteRef(a, b model.RouteRef) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Kind, b.Kind))
}
