package model

import (
	"maps"
	"net/netip"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
)

// Kind names a type of object in the model.
type Kind string

// The kinds of objects a Store holds.
const (
	KindService        Kind = "Service"
	KindEndpoints      Kind = "Endpoints"
	KindWorkload       Kind = "Workload"
	KindHTTPRoute      Kind = "HTTPRoute"
	KindGRPCRoute      Kind = "GRPCRoute"
	KindRetryBudget    Kind = "RetryBudgetPolicy"
	KindCircuitBreaker Kind = "CircuitBreakerPolicy"
	KindLoadBalancer   Kind = "LoadBalancerPolicy"
	// KindNamespace is cluster-scoped: its Key has no Namespace.
	KindNamespace     Kind = "Namespace"
	KindAuthorization Kind = "AuthorizationPolicy"
	KindMutualTLS     Kind = "MutualTLSPolicy"
	KindRateLimit     Kind = "RateLimit"
	KindFault         Kind = "FaultInjection"
)

// Key identifies one object of the model: what Change.Delete names.
type Key struct {
	Kind            Kind
	Namespace, Name string
}

func (k Key) String() string {
	if k.Namespace == "" {
		return string(k.Kind) + " " + k.Name
	}
	return string(k.Kind) + " " + k.Namespace + "/" + k.Name
}

// Object is what a Store holds: every model type below implements it.
type Object interface {
	Key() Key
	// clone returns a deep copy, so the store owns what it holds.
	clone() Object
}

// ObjectRef names a namespaced object whose kind is known from context.
type ObjectRef struct{ Namespace, Name string }

func (r ObjectRef) String() string { return r.Namespace + "/" + r.Name }

// ServiceRef names a Service.
type ServiceRef struct{ Namespace, Name string }

func (r ServiceRef) String() string { return r.Namespace + "/" + r.Name }

// ServicePortRef names one port of a Service; Port 0 means every port (in a
// route's parentRef) or the Service's only port (in a backendRef).
type ServicePortRef struct {
	ServiceRef
	Port uint16
}

// Service is the frontend of a Kubernetes-style Service: its name, ports and
// virtual addresses. Its backends are the Endpoints applied for it.
type Service struct {
	Namespace, Name string
	Ports           []ServicePort
	// VIPs are the ClusterIPs (two when dual-stack); empty for a headless
	// service.
	VIPs     []netip.Addr
	Labels   map[string]string
	Selector map[string]string
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Name string
	Port uint16
	// TargetPort is the workloads' port; 0 means the same as Port. A named
	// target port is resolved per endpoint: see Endpoint.PortName.
	TargetPort uint16
	// AppProtocol as Kubernetes spells it: "http", "http2", "grpc",
	// "kubernetes.io/h2c", "tcp", "opaque", ...; "" lets the proxy detect.
	AppProtocol string
}

// Target is the workload port the service port forwards to.
func (p ServicePort) Target() uint16 {
	if p.TargetPort != 0 {
		return p.TargetPort
	}
	return p.Port
}

// Ref returns the reference to the service.
func (s *Service) Ref() ServiceRef { return ServiceRef{s.Namespace, s.Name} }

// Key implements Object.
func (s *Service) Key() Key { return Key{KindService, s.Namespace, s.Name} }

// PortByNumber returns the service port numbered port.
func (s *Service) PortByNumber(port uint16) (ServicePort, bool) {
	for _, p := range s.Ports {
		if p.Port == port {
			return p, true
		}
	}
	return ServicePort{}, false
}

func (s *Service) clone() Object {
	c := *s
	c.Ports = slices.Clone(s.Ports)
	c.VIPs = slices.Clone(s.VIPs)
	c.Labels = maps.Clone(s.Labels)
	c.Selector = maps.Clone(s.Selector)
	return &c
}

// Endpoint is one backend address of a Service.
type Endpoint struct {
	Service ServiceRef
	// Address is the workload's ip:targetPort.
	Address netip.AddrPort
	// PortName is the name of the service port this address serves, as an
	// EndpointSlice names its ports. Empty: the endpoint serves the service
	// port whose target port equals Address's port. Set it when target
	// ports are named, since a name may resolve to different numbers on
	// different workloads.
	PortName string
	// ProxyAddress is the inbound listener of the workload's proxy in
	// explicit mode; zero for a transparent workload.
	ProxyAddress netip.AddrPort
	// Identity is the SPIFFE ID of the workload's proxy; empty when the
	// workload is not in the mesh.
	Identity string
	Zone     string
	// Ready is true when the workload passes its readiness checks (an
	// EndpointSlice's "serving" condition), also while it terminates.
	Ready bool
	// Terminating is true once the workload is being shut down.
	Terminating bool
	// Weight is relative; 0 means the default, 1.
	Weight uint32
	// Workload is the name of the workload (in the service's namespace)
	// behind the address, when known.
	Workload string
}

// EndpointSet is every endpoint of one Service, applied as one object (a
// Kubernetes source merges the service's EndpointSlices).
type EndpointSet struct {
	Service   ServiceRef
	Endpoints []Endpoint
}

// Key implements Object.
func (e *EndpointSet) Key() Key { return Key{KindEndpoints, e.Service.Namespace, e.Service.Name} }

func (e *EndpointSet) clone() Object {
	c := &EndpointSet{Service: e.Service, Endpoints: slices.Clone(e.Endpoints)}
	for i := range c.Endpoints {
		c.Endpoints[i].Service = e.Service
	}
	return c
}

// Workload is one instance of an application (a pod, a VM).
type Workload struct {
	Namespace, Name string
	ServiceAccount  string
	Labels          map[string]string
	Address         netip.Addr
	// ProxyInbound is the port of the proxy's inbound listener in explicit
	// mode; 0 for a transparent workload (the default listener).
	ProxyInbound uint16
	Ports        []WorkloadPort
	// Meshed is true when the workload runs a weft proxy.
	Meshed bool
	// DefaultInboundPolicy is the workload's default inbound authorization
	// policy as written (the AnnotationDefaultInboundPolicy annotation);
	// "" defers to its namespace. The translation checks the value.
	DefaultInboundPolicy string
}

// WorkloadPort is one port the workload's application listens on.
type WorkloadPort struct {
	Name string
	Port uint16
	// Protocol overrides detection, in AppProtocol's vocabulary ("http",
	// "grpc", ...); "" detects.
	Protocol string
	// Opaque relays the port as TCP, whatever Protocol says.
	Opaque bool
}

// Ref returns the reference to the workload.
func (w *Workload) Ref() ObjectRef { return ObjectRef{w.Namespace, w.Name} }

// Key implements Object.
func (w *Workload) Key() Key { return Key{KindWorkload, w.Namespace, w.Name} }

func (w *Workload) clone() Object {
	c := *w
	c.Labels = maps.Clone(w.Labels)
	c.Ports = slices.Clone(w.Ports)
	return &c
}

// RouteKind says which Gateway API route type a Route is.
type RouteKind string

// The route kinds.
const (
	RouteHTTP RouteKind = "http"
	RouteGRPC RouteKind = "grpc"
)

// RouteRef names a route: HTTPRoutes and GRPCRoutes are distinct resources
// and may share a name.
type RouteRef struct {
	Kind            RouteKind
	Namespace, Name string
}

// Route is an HTTPRoute or a GRPCRoute whose parents are Services (GAMMA).
type Route struct {
	Namespace, Name string
	Kind            RouteKind
	// Created is the creation time: the oldest route wins ties.
	Created time.Time
	// Parents are the route's parentRefs to Services; Port 0 attaches to
	// every port of the service.
	Parents []ServicePortRef
	Rules   []RouteRule
}

// Ref returns the reference to the route.
func (r *Route) Ref() RouteRef { return RouteRef{r.Kind, r.Namespace, r.Name} }

// Key implements Object.
func (r *Route) Key() Key {
	k := KindHTTPRoute
	if r.Kind == RouteGRPC {
		k = KindGRPCRoute
	}
	return Key{k, r.Namespace, r.Name}
}

func (r *Route) clone() Object {
	c := *r
	c.Parents = slices.Clone(r.Parents)
	c.Rules = make([]RouteRule, len(r.Rules))
	for i := range r.Rules {
		c.Rules[i] = r.Rules[i].clone()
	}
	return &c
}

// RouteRule is one rule of a route. The fields that name no other object
// are the proxy's own (Gateway-API-shaped) messages; backends and mirrors
// are model references, resolved by the translation.
type RouteRule struct {
	// Matches are ORed; none matches every request.
	Matches []*weftv1.RouteMatch
	Filters *weftv1.RouteFilters
	// Backends are weighted; empty sends to the parent service.
	Backends  []BackendRef
	Timeouts  *weftv1.RouteTimeouts
	Retry     *weftv1.RetryPolicy
	RateLimit *weftv1.RateLimit
	Fault     *weftv1.Fault
	Mirrors   []MirrorRef
	// RateLimitRef and FaultRef are the rule's ExtensionRef filters to a
	// RateLimit and a FaultInjection of the route's namespace, resolved by
	// the translation: when set, they replace RateLimit and Fault. A
	// reference to nothing makes the rule answer every request with an
	// error (Gateway API: a filter that cannot be resolved is not skipped).
	RateLimitRef, FaultRef *FilterRef
}

// FilterRef is an ExtensionRef filter of a route rule to an object of the
// route's namespace whose kind is known from context.
type FilterRef struct {
	Name string
	// Filter is the filter's index in the rule's filters, for problems.
	Filter int
}

// BackendRef is a weighted backendRef to a port of a Service.
type BackendRef struct {
	ServicePortRef
	// Weight is the effective weight: sources apply Gateway API's default
	// of 1 when the resource leaves it unset.
	Weight                          uint32
	RequestHeaders, ResponseHeaders *weftv1.HeaderModifier
}

// MirrorRef sends a copy of Percent (0: 100) percent of the requests to a
// port of a Service.
type MirrorRef struct {
	ServicePortRef
	Percent float64
}

func (r RouteRule) clone() RouteRule {
	c := RouteRule{
		Filters:   cloneMsg(r.Filters),
		Timeouts:  cloneMsg(r.Timeouts),
		Retry:     cloneMsg(r.Retry),
		RateLimit: cloneMsg(r.RateLimit),
		Fault:     cloneMsg(r.Fault),
		Mirrors:   slices.Clone(r.Mirrors),
	}
	if r.RateLimitRef != nil {
		ref := *r.RateLimitRef
		c.RateLimitRef = &ref
	}
	if r.FaultRef != nil {
		ref := *r.FaultRef
		c.FaultRef = &ref
	}
	for _, m := range r.Matches {
		c.Matches = append(c.Matches, cloneMsg(m))
	}
	for _, b := range r.Backends {
		b.RequestHeaders = cloneMsg(b.RequestHeaders)
		b.ResponseHeaders = cloneMsg(b.ResponseHeaders)
		c.Backends = append(c.Backends, b)
	}
	return c
}

// RetryBudgetPolicy sets the retry budget of a Service (every port).
type RetryBudgetPolicy struct {
	Namespace, Name string
	Created         time.Time
	TargetRef       ServiceRef
	Budget          *weftv1.RetryBudget
}

// Ref returns the reference to the policy.
func (p *RetryBudgetPolicy) Ref() ObjectRef { return ObjectRef{p.Namespace, p.Name} }

// Key implements Object.
func (p *RetryBudgetPolicy) Key() Key { return Key{KindRetryBudget, p.Namespace, p.Name} }

func (p *RetryBudgetPolicy) clone() Object {
	c := *p
	c.Budget = cloneMsg(p.Budget)
	return &c
}

// CircuitBreakerPolicy sets the circuit breaker of a Service (every port).
type CircuitBreakerPolicy struct {
	Namespace, Name string
	Created         time.Time
	TargetRef       ServiceRef
	Breaker         *weftv1.CircuitBreaker
}

// Ref returns the reference to the policy.
func (p *CircuitBreakerPolicy) Ref() ObjectRef { return ObjectRef{p.Namespace, p.Name} }

// Key implements Object.
func (p *CircuitBreakerPolicy) Key() Key { return Key{KindCircuitBreaker, p.Namespace, p.Name} }

func (p *CircuitBreakerPolicy) clone() Object {
	c := *p
	c.Breaker = cloneMsg(p.Breaker)
	return &c
}

// LoadBalancerPolicy sets the load balancer of a Service (every port).
type LoadBalancerPolicy struct {
	Namespace, Name string
	Created         time.Time
	TargetRef       ServiceRef
	Balancer        *weftv1.LoadBalancer
}

// Ref returns the reference to the policy.
func (p *LoadBalancerPolicy) Ref() ObjectRef { return ObjectRef{p.Namespace, p.Name} }

// Key implements Object.
func (p *LoadBalancerPolicy) Key() Key { return Key{KindLoadBalancer, p.Namespace, p.Name} }

func (p *LoadBalancerPolicy) clone() Object {
	c := *p
	c.Balancer = cloneMsg(p.Balancer)
	return &c
}

// RateLimitPolicy is a RateLimit: the token bucket of the route rules that
// reference it (the total only), and of the inbound ports its TargetRefs
// select (the total and PerClient).
type RateLimitPolicy struct {
	Namespace, Name string
	Created         time.Time
	// TargetRefs select the workload ports whose inbound the limit
	// applies to; none: only route rules' filters apply it.
	TargetRefs []PolicyTargetRef
	// Limit is the total (requests_per_second and burst only); nil when
	// the RateLimit sets none (PerClient only).
	Limit *weftv1.RateLimit
	// PerClient is each caller's bucket at the inbound; nil: none.
	PerClient *ClientRate
}

// ClientRate is the token bucket of each client of an inbound port.
type ClientRate struct {
	RequestsPerSecond float64
	Burst             uint32
}

// Ref returns the reference to the policy.
func (p *RateLimitPolicy) Ref() ObjectRef { return ObjectRef{p.Namespace, p.Name} }

// Key implements Object.
func (p *RateLimitPolicy) Key() Key { return Key{KindRateLimit, p.Namespace, p.Name} }

func (p *RateLimitPolicy) clone() Object {
	c := *p
	c.TargetRefs = slices.Clone(p.TargetRefs)
	c.Limit = cloneMsg(p.Limit)
	if p.PerClient != nil {
		pc := *p.PerClient
		c.PerClient = &pc
	}
	return &c
}

// Inbound returns the rate limit of an inbound port the policy selects:
// the total and the per-client bucket.
func (p *RateLimitPolicy) Inbound() *weftv1.RateLimit {
	out := &weftv1.RateLimit{RequestsPerSecond: p.Limit.GetRequestsPerSecond(), Burst: p.Limit.GetBurst()}
	if pc := p.PerClient; pc != nil {
		out.PerIdentityRequestsPerSecond, out.PerIdentityBurst = pc.RequestsPerSecond, pc.Burst
	}
	return out
}

// Validate checks what the translation relies on: the targets, and that
// some limit is set.
func (p *RateLimitPolicy) Validate() []FieldError {
	var v fieldErrors
	v.targets(p.TargetRefs)
	switch {
	case p.Limit == nil && p.PerClient == nil:
		v.add("requestsPerSecond", "set requestsPerSecond (the total), perClient, or both")
	case p.Limit != nil && !(p.Limit.GetRequestsPerSecond() > 0):
		v.add("requestsPerSecond", "%v is not a rate: set it above 0", p.Limit.GetRequestsPerSecond())
	case p.PerClient != nil && !(p.PerClient.RequestsPerSecond > 0):
		v.add("perClient.requestsPerSecond", "%v is not a rate: set it above 0", p.PerClient.RequestsPerSecond)
	}
	return v
}

// FaultInjectionPolicy is a FaultInjection: the faults injected into the
// requests of the route rules that reference it.
type FaultInjectionPolicy struct {
	Namespace, Name string
	Fault           *weftv1.Fault
}

// Ref returns the reference to the policy.
func (p *FaultInjectionPolicy) Ref() ObjectRef { return ObjectRef{p.Namespace, p.Name} }

// Key implements Object.
func (p *FaultInjectionPolicy) Key() Key { return Key{KindFault, p.Namespace, p.Name} }

func (p *FaultInjectionPolicy) clone() Object {
	c := *p
	c.Fault = cloneMsg(p.Fault)
	return &c
}

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
