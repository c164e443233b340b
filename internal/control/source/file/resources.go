package file

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
	policyapi "github.com/weft-mesh/weft/pkg/apis/policy/v1alpha1"
	weftapi "github.com/weft-mesh/weft/pkg/apis/weft/v1alpha1"
)

// API versions of the resources a directory holds.
const (
	apiCore    = "v1"
	apiGateway = "gateway.networking.k8s.io/v1"
	apiWeft    = "weft.dev/v1alpha1"
	apiPolicy  = "policy.weft.dev/v1alpha1"
)

// kinds lists the apiVersion and kind of every resource weft reads.
func kinds() [][2]string {
	return [][2]string{
		{apiCore, "Service"}, {apiWeft, "Workload"}, {apiGateway, "HTTPRoute"}, {apiGateway, "GRPCRoute"},
		{apiPolicy, "RetryBudget"}, {apiPolicy, "CircuitBreaker"},
		{apiCore, "Namespace"}, {apiPolicy, "AuthorizationPolicy"}, {apiPolicy, "MutualTLSPolicy"},
	}
}

// newObject returns a new value of the Go type a document of apiVersion and
// kind decodes into, nil for one weft does not read.
func newObject(apiVersion, kind string) any {
	switch [2]string{apiVersion, kind} {
	case [2]string{apiCore, "Service"}:
		return &corev1.Service{}
	case [2]string{apiWeft, "Workload"}:
		return &weftapi.Workload{}
	case [2]string{apiGateway, "HTTPRoute"}:
		return &gwv1.HTTPRoute{}
	case [2]string{apiGateway, "GRPCRoute"}:
		return &gwv1.GRPCRoute{}
	case [2]string{apiPolicy, "RetryBudget"}:
		return &policyapi.RetryBudget{}
	case [2]string{apiPolicy, "CircuitBreaker"}:
		return &policyapi.CircuitBreaker{}
	case [2]string{apiCore, "Namespace"}:
		return &corev1.Namespace{}
	case [2]string{apiPolicy, "AuthorizationPolicy"}:
		return &policyapi.AuthorizationPolicy{}
	case [2]string{apiPolicy, "MutualTLSPolicy"}:
		return &policyapi.MutualTLSPolicy{}
	}
	return nil
}

// resource is one valid document: the model object it produced, where it
// came from, and what it refers to (checked once every file is read).
type resource struct {
	file string
	line int
	obj  model.Object
	refs []reference
	// For a Service, per port: the named target port ("" when numeric)
	// and the line of its field.
	targetNames []string
	targetLines []int
}

// refRole says what a reference to a Service is for, which decides what
// happens while it resolves to nothing.
type refRole int

const (
	refParent refRole = iota
	refBackend
	refMirror
	refPolicy
	refSecurity // a targetRef of an authorization or mTLS policy
)

type reference struct {
	field string
	line  int
	role  refRole
	to    model.ServicePortRef
	// target is a refSecurity's targetRef; to holds its namespace and
	// name.
	target model.PolicyTargetRef
}

// conv converts one document, collecting its problems.
type conv struct {
	file     string
	docLine  int
	created  time.Time // the file's modification time
	lines    map[string]int
	problems []Problem
	invalid  bool
	refs     []reference
}

const skipped = "; the document is ignored until it is fixed"

// maxDocProblems bounds the problems reported per document.
const maxDocProblems = 10

// fail records a problem that makes the document invalid.
func (c *conv) fail(field, format string, args ...any) {
	c.invalid = true
	c.problems = append(c.problems, Problem{File: c.file, Line: c.line(field), Field: field, Message: fmt.Sprintf(format, args...) + skipped})
}

// warn records a problem that leaves the document valid.
func (c *conv) warn(field, format string, args ...any) {
	c.problems = append(c.problems, Problem{File: c.file, Line: c.line(field), Field: field, Message: fmt.Sprintf(format, args...)})
}

// line returns the line of a field, or of its closest ancestor seen.
func (c *conv) line(field string) int {
	for field != "" {
		if l, ok := c.lines[field]; ok {
			return l
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return c.docLine
}

func (c *conv) ref(field string, role refRole, to model.ServicePortRef) {
	c.refs = append(c.refs, reference{field: field, line: c.line(field), role: role, to: to})
}

// parseDocument decodes and converts one document; nil when it is invalid.
func parseDocument(file string, doc document, mtime time.Time) (*resource, []Problem) {
	c := &conv{file: file, docLine: doc.line, created: mtime, lines: map[string]int{}}
	if doc.root.Kind != yaml.MappingNode {
		c.fail("", "a resource must be a mapping with apiVersion, kind, metadata and spec, got %s", describe(doc.root))
		return nil, c.problems
	}
	for i := 0; i+1 < len(doc.root.Content); i += 2 {
		c.lines[doc.root.Content[i].Value] = doc.root.Content[i].Line
	}
	apiVersion, kind := topScalar(doc.root, "apiVersion"), topScalar(doc.root, "kind")
	obj := newObject(apiVersion, kind)
	if obj == nil {
		c.unknownKind(apiVersion, kind)
		return nil, c.problems
	}
	d := newDecoder()
	d.decode(doc.root, reflect.ValueOf(obj).Elem(), "")
	maps.Copy(c.lines, d.lines)
	for _, e := range d.errs {
		c.invalid = true
		c.problems = append(c.problems, Problem{File: file, Line: e.line, Field: e.path, Message: e.msg + skipped})
	}
	if c.invalid {
		return nil, capProblems(c.problems)
	}
	res := &resource{file: file, line: doc.line}
	switch o := obj.(type) {
	case *corev1.Service:
		res.obj, res.targetNames, res.targetLines = c.service(o)
	case *weftapi.Workload:
		res.obj = c.workload(o)
	case *gwv1.HTTPRoute:
		res.obj = c.httpRoute(o)
	case *gwv1.GRPCRoute:
		res.obj = c.grpcRoute(o)
	case *policyapi.RetryBudget:
		res.obj = c.retryBudget(o)
	case *policyapi.CircuitBreaker:
		res.obj = c.circuitBreaker(o)
	case *corev1.Namespace:
		res.obj = c.namespace(o)
	case *policyapi.AuthorizationPolicy:
		res.obj = c.authorizationPolicy(o)
	case *policyapi.MutualTLSPolicy:
		res.obj = c.mutualTLSPolicy(o)
	}
	if c.invalid {
		return nil, capProblems(c.problems)
	}
	res.refs = c.refs
	return res, capProblems(c.problems)
}

// capProblems keeps the first maxDocProblems problems of a document and
// says how many more there are.
func capProblems(ps []Problem) []Problem {
	if len(ps) <= maxDocProblems {
		return ps
	}
	more := ps[maxDocProblems]
	more.Message = fmt.Sprintf("and %d more problems", len(ps)-maxDocProblems)
	return append(ps[:maxDocProblems], more)
}

func topScalar(m *yaml.Node, key string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.ScalarNode {
			return m.Content[i+1].Value
		}
	}
	return ""
}

func (c *conv) unknownKind(apiVersion, kind string) {
	if apiVersion == "" || kind == "" {
		c.fail("", "apiVersion and kind are required")
		return
	}
	for _, k := range kinds() {
		if k[1] == kind {
			c.fail("apiVersion", "%s %s is not supported; use apiVersion: %s", apiVersion, kind, k[0])
			return
		}
	}
	var known []string
	for _, k := range kinds() {
		known = append(known, k[1]+" ("+k[0]+")")
	}
	c.fail("kind", "kind %s (%s) is not one weft reads; use one of %s", kind, apiVersion, strings.Join(known, ", "))
}

// meta checks the name and namespace and returns them, the namespace
// defaulted. isName validates the name (Kubernetes' rule for the kind).
func (c *conv) meta(m *metav1.ObjectMeta, isName func(string) []string) (ns, name string) {
	ns = cmp.Or(m.Namespace, "default")
	if m.Name == "" {
		c.fail("metadata.name", "a name is required")
	} else if errs := isName(m.Name); len(errs) > 0 {
		c.fail("metadata.name", "%q is not a valid name: %s", m.Name, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		c.fail("metadata.namespace", "%q is not a valid namespace: %s", ns, strings.Join(errs, "; "))
	}
	c.labels("metadata.labels", m.Labels)
	return ns, m.Name
}

func (c *conv) labels(field string, labels map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			c.fail(mapPath(field, k), "%q is not a valid label key: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(labels[k]); len(errs) > 0 {
			c.fail(mapPath(field, k), "%q is not a valid label value: %s", labels[k], strings.Join(errs, "; "))
		}
	}
}

// createdAt is the creation timestamp, else the file's modification time.
func (c *conv) createdAt(m *metav1.ObjectMeta) time.Time {
	if !m.CreationTimestamp.IsZero() {
		return m.CreationTimestamp.UTC()
	}
	return c.created.UTC()
}

func (c *conv) port(field string, p int32) uint16 {
	if p < 1 || p > 65535 {
		c.fail(field, "%d is not a TCP port (1-65535)", p)
		return 0
	}
	return uint16(p)
}

func (c *conv) duration(field, s string) *durationpb.Duration {
	if s == "" {
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		c.fail(field, "%q is not a duration; write e.g. 500ms, 10s or 1m", s)
		return nil
	}
	return durationpb.New(d)
}

func (c *conv) service(s *corev1.Service) (*model.Service, []string, []int) {
	ns, name := c.meta(&s.ObjectMeta, validation.IsDNS1035Label)
	out := &model.Service{Namespace: ns, Name: name, Labels: s.Labels}
	if len(s.Spec.Selector) > 0 {
		out.Selector = s.Spec.Selector
		c.labels("spec.selector", s.Spec.Selector)
	}
	if s.Spec.Type == corev1.ServiceTypeExternalName {
		c.fail("spec.type", "ExternalName services are not supported; describe the external host as a Workload and select it")
	}
	var targetNames []string
	var targetLines []int
	names := map[string]bool{}
	numbers := map[uint16]bool{}
	for i, p := range s.Spec.Ports {
		f := fmt.Sprintf("spec.ports[%d]", i)
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			c.warn(f+".protocol", "protocol %s is not supported (weft carries TCP); the port is ignored", p.Protocol)
			continue
		}
		sp := model.ServicePort{Name: p.Name, Port: c.port(f+".port", p.Port)}
		switch {
		case p.Name == "" && len(s.Spec.Ports) > 1:
			c.fail(f+".name", "a service with several ports must name each one")
		case p.Name != "" && names[p.Name]:
			c.fail(f+".name", "port name %q is used twice", p.Name)
		case p.Name != "":
			if errs := validation.IsDNS1123Label(p.Name); len(errs) > 0 {
				c.fail(f+".name", "%q is not a valid port name: %s", p.Name, strings.Join(errs, "; "))
			}
		}
		names[p.Name] = true
		if numbers[sp.Port] {
			c.fail(f+".port", "port %d is listed twice", sp.Port)
		}
		numbers[sp.Port] = true
		targetName := ""
		switch p.TargetPort.Type {
		case intstr.Int:
			if p.TargetPort.IntVal != 0 {
				sp.TargetPort = c.port(f+".targetPort", p.TargetPort.IntVal)
			}
		case intstr.String:
			targetName = p.TargetPort.StrVal
			if errs := validation.IsValidPortName(targetName); len(errs) > 0 {
				c.fail(f+".targetPort", "%q is neither a port number nor a valid port name: %s", targetName, strings.Join(errs, "; "))
			}
		}
		if p.AppProtocol != nil {
			sp.AppProtocol = *p.AppProtocol
		}
		out.Ports = append(out.Ports, sp)
		targetNames = append(targetNames, targetName)
		targetLines = append(targetLines, c.line(f+".targetPort"))
	}
	ips := s.Spec.ClusterIPs
	if len(ips) == 0 && s.Spec.ClusterIP != "" {
		ips = []string{s.Spec.ClusterIP}
	} else if s.Spec.ClusterIP != "" && s.Spec.ClusterIP != ips[0] {
		c.fail("spec.clusterIP", "%s differs from clusterIPs[0] %s; they must agree", s.Spec.ClusterIP, ips[0])
	}
	for i, ip := range ips {
		f := "spec.clusterIP"
		if len(s.Spec.ClusterIPs) > 0 {
			f = fmt.Sprintf("spec.clusterIPs[%d]", i)
		}
		if ip == corev1.ClusterIPNone {
			if len(ips) > 1 {
				c.fail(f, "None (headless) cannot be listed with addresses")
			}
			continue
		}
		a, err := netip.ParseAddr(ip)
		if err != nil || a.Zone() != "" {
			c.fail(f, "%q is not an IP address", ip)
			continue
		}
		out.VIPs = append(out.VIPs, a.Unmap())
	}
	return out, targetNames, targetLines
}

func (c *conv) workload(w *weftapi.Workload) *model.Workload {
	ns, name := c.meta(&w.ObjectMeta, validation.IsDNS1123Subdomain)
	out := &model.Workload{Namespace: ns, Name: name, Labels: w.Labels, Meshed: true,
		ServiceAccount:       cmp.Or(w.Spec.ServiceAccount, "default"),
		DefaultInboundPolicy: c.defaultInbound(&w.ObjectMeta, "the namespace's default applies")}
	if errs := validation.IsDNS1123Subdomain(out.ServiceAccount); len(errs) > 0 {
		c.fail("spec.serviceAccount", "%q is not a valid service account name: %s", out.ServiceAccount, strings.Join(errs, "; "))
	}
	a, err := netip.ParseAddr(w.Spec.Address)
	switch {
	case w.Spec.Address == "":
		c.fail("spec.address", "the workload's IP address is required")
	case err != nil || a.Zone() != "" || a.IsUnspecified():
		c.fail("spec.address", "%q is not an IP address of a host", w.Spec.Address)
	default:
		out.Address = a.Unmap()
	}
	if w.Spec.Meshed != nil {
		out.Meshed = *w.Spec.Meshed
	}
	if w.Spec.Proxy != nil && w.Spec.Proxy.InboundPort != 0 {
		out.ProxyInbound = c.port("spec.proxy.inboundPort", w.Spec.Proxy.InboundPort)
	}
	names := map[string]bool{}
	numbers := map[uint16]bool{}
	for i, p := range w.Spec.Ports {
		f := fmt.Sprintf("spec.ports[%d]", i)
		wp := model.WorkloadPort{Name: p.Name, Port: c.port(f+".port", p.Port), Protocol: string(p.Protocol), Opaque: p.Protocol == weftapi.ProtocolOpaque}
		if p.Name != "" {
			if errs := validation.IsValidPortName(p.Name); len(errs) > 0 {
				c.fail(f+".name", "%q is not a valid port name: %s", p.Name, strings.Join(errs, "; "))
			}
			if names[p.Name] {
				c.fail(f+".name", "port name %q is used twice", p.Name)
			}
			names[p.Name] = true
		}
		if numbers[wp.Port] {
			c.fail(f+".port", "port %d is listed twice", wp.Port)
		}
		numbers[wp.Port] = true
		if protocols := []string{"opaque", "http1", "http2", "grpc"}; p.Protocol != "" && !slices.Contains(protocols, string(p.Protocol)) {
			c.fail(f+".protocol", "unknown protocol %q; use %s, or leave it out to detect", p.Protocol, strings.Join(protocols, ", "))
		}
		out.Ports = append(out.Ports, wp)
	}
	return out
}

func (c *conv) routeMeta(m *metav1.ObjectMeta, kind model.RouteKind, parents []gwv1.ParentReference, hostnames []gwv1.Hostname) *model.Route {
	ns, name := c.meta(m, validation.IsDNS1123Subdomain)
	r := &model.Route{Namespace: ns, Name: name, Kind: kind, Created: c.createdAt(m)}
	if len(hostnames) > 0 {
		c.warn("spec.hostnames", "hostnames do not apply to routes attached to Services (GAMMA) and are ignored")
	}
	for i, p := range parents {
		f := fmt.Sprintf("spec.parentRefs[%d]", i)
		group, kind := "gateway.networking.k8s.io", "Gateway"
		if p.Group != nil {
			group = string(*p.Group)
		}
		if p.Kind != nil {
			kind = string(*p.Kind)
		}
		if group != "" || kind != "Service" {
			c.warn(f, "weft attaches routes to Services only (group: \"\", kind: Service), not to %s; this parent is ignored", groupKind(group, kind))
			continue
		}
		if p.SectionName != nil {
			c.warn(f+".sectionName", "sectionName does not apply to a Service parent; use port; this parent is ignored")
			continue
		}
		ref := model.ServicePortRef{ServiceRef: model.ServiceRef{Namespace: ns, Name: string(p.Name)}}
		if p.Namespace != nil {
			ref.Namespace = string(*p.Namespace)
		}
		if p.Port != nil {
			ref.Port = c.port(f+".port", int32(*p.Port))
		}
		r.Parents = append(r.Parents, ref)
		c.ref(f, refParent, ref)
	}
	return r
}

func (c *conv) httpRoute(h *gwv1.HTTPRoute) *model.Route {
	r := c.routeMeta(&h.ObjectMeta, model.RouteHTTP, h.Spec.ParentRefs, h.Spec.Hostnames)
	for i, rule := range h.Spec.Rules {
		f := fmt.Sprintf("spec.rules[%d]", i)
		var out model.RouteRule
		for j, m := range rule.Matches {
			out.Matches = append(out.Matches, c.httpMatch(fmt.Sprintf("%s.matches[%d]", f, j), m))
		}
		c.filters(f+".filters", r.Namespace, rule.Filters, &out, nil, true)
		for j, b := range rule.BackendRefs {
			c.backend(fmt.Sprintf("%s.backendRefs[%d]", f, j), r.Namespace, b.BackendRef, b.Filters, &out)
		}
		if t := rule.Timeouts; t != nil {
			out.Timeouts = &weftv1.RouteTimeouts{}
			if t.Request != nil {
				out.Timeouts.Request = c.duration(f+".timeouts.request", string(*t.Request))
			}
			if t.BackendRequest != nil {
				out.Timeouts.BackendRequest = c.duration(f+".timeouts.backendRequest", string(*t.BackendRequest))
			}
		}
		if rt := rule.Retry; rt != nil && (rt.Attempts == nil || *rt.Attempts > 0) {
			out.Retry = &weftv1.RetryPolicy{}
			if rt.Attempts != nil {
				out.Retry.MaxRetries = uint32(*rt.Attempts)
			}
			for _, code := range rt.Codes {
				out.Retry.Statuses = append(out.Retry.Statuses, strconv.Itoa(int(code)))
			}
			if rt.Backoff != nil {
				out.Retry.BackoffBase = c.duration(f+".retry.backoff", string(*rt.Backoff))
			}
		} else if rt != nil && *rt.Attempts < 0 {
			c.fail(f+".retry.attempts", "%d is negative", *rt.Attempts)
		}
		if rule.SessionPersistence != nil {
			c.fail(f+".sessionPersistence", "session persistence is not supported; remove it")
		}
		r.Rules = append(r.Rules, out)
	}
	return r
}

func (c *conv) grpcRoute(g *gwv1.GRPCRoute) *model.Route {
	r := c.routeMeta(&g.ObjectMeta, model.RouteGRPC, g.Spec.ParentRefs, g.Spec.Hostnames)
	for i, rule := range g.Spec.Rules {
		f := fmt.Sprintf("spec.rules[%d]", i)
		var out model.RouteRule
		for j, m := range rule.Matches {
			mf := fmt.Sprintf("%s.matches[%d]", f, j)
			rm := &weftv1.RouteMatch{Headers: c.headerMatches(mf, grpcHeaders(m.Headers))}
			if mm := m.Method; mm != nil {
				t := string(gwv1.GRPCMethodMatchExact)
				if mm.Type != nil {
					t = string(*mm.Type)
				}
				c.oneOf(mf+".method.type", t, "Exact", "RegularExpression")
				rm.Grpc = &weftv1.GRPCMethodMatch{Type: t, Service: deref(mm.Service), Method: deref(mm.Method)}
			}
			out.Matches = append(out.Matches, rm)
		}
		c.filters(f+".filters", r.Namespace, grpcFilters(rule.Filters), &out, nil, false)
		for j, b := range rule.BackendRefs {
			c.backend(fmt.Sprintf("%s.backendRefs[%d]", f, j), r.Namespace, b.BackendRef, grpcFilters(b.Filters), &out)
		}
		if rule.SessionPersistence != nil {
			c.fail(f+".sessionPersistence", "session persistence is not supported; remove it")
		}
		r.Rules = append(r.Rules, out)
	}
	return r
}

func grpcHeaders(hs []gwv1.GRPCHeaderMatch) []gwv1.HTTPHeaderMatch {
	var out []gwv1.HTTPHeaderMatch
	for _, h := range hs {
		out = append(out, gwv1.HTTPHeaderMatch{Type: (*gwv1.HeaderMatchType)(h.Type), Name: gwv1.HTTPHeaderName(h.Name), Value: h.Value})
	}
	return out
}

// grpcFilters converts GRPCRoute filters to the HTTPRoute filters they are
// a subset of.
func grpcFilters(fs []gwv1.GRPCRouteFilter) []gwv1.HTTPRouteFilter {
	var out []gwv1.HTTPRouteFilter
	for _, f := range fs {
		out = append(out, gwv1.HTTPRouteFilter{
			Type:                   gwv1.HTTPRouteFilterType(f.Type),
			RequestHeaderModifier:  f.RequestHeaderModifier,
			ResponseHeaderModifier: f.ResponseHeaderModifier,
			RequestMirror:          f.RequestMirror,
			ExtensionRef:           f.ExtensionRef,
		})
	}
	return out
}

func (c *conv) oneOf(field, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		c.fail(field, "unknown type %q; use %s", v, strings.Join(allowed, " or "))
	}
}

func (c *conv) httpMatch(f string, m gwv1.HTTPRouteMatch) *weftv1.RouteMatch {
	out := &weftv1.RouteMatch{Headers: c.headerMatches(f, m.Headers)}
	if p := m.Path; p != nil {
		pm := &weftv1.PathMatch{Type: string(gwv1.PathMatchPathPrefix), Value: "/"}
		if p.Type != nil {
			pm.Type = string(*p.Type)
		}
		if p.Value != nil {
			pm.Value = *p.Value
		}
		c.oneOf(f+".path.type", pm.Type, "Exact", "PathPrefix", "RegularExpression")
		if pm.Type != "RegularExpression" && !strings.HasPrefix(pm.Value, "/") {
			c.fail(f+".path.value", "%q must start with /", pm.Value)
		}
		out.Path = pm
	}
	if m.Method != nil {
		out.Method = string(*m.Method)
	}
	for i, q := range m.QueryParams {
		t := string(gwv1.QueryParamMatchExact)
		if q.Type != nil {
			t = string(*q.Type)
		}
		c.oneOf(fmt.Sprintf("%s.queryParams[%d].type", f, i), t, "Exact", "RegularExpression")
		out.QueryParams = append(out.QueryParams, &weftv1.ValueMatch{Type: t, Name: string(q.Name), Value: q.Value})
	}
	return out
}

func (c *conv) headerMatches(f string, hs []gwv1.HTTPHeaderMatch) []*weftv1.ValueMatch {
	var out []*weftv1.ValueMatch
	for i, h := range hs {
		t := string(gwv1.HeaderMatchExact)
		if h.Type != nil {
			t = string(*h.Type)
		}
		c.oneOf(fmt.Sprintf("%s.headers[%d].type", f, i), t, "Exact", "RegularExpression")
		out = append(out, &weftv1.ValueMatch{Type: t, Name: string(h.Name), Value: h.Value})
	}
	return out
}

// filters converts a rule's filters into rule (be nil) or a backend's (be
// set: header modifiers only). http allows HTTPRoute's redirect and rewrite.
func (c *conv) filters(field, ns string, fs []gwv1.HTTPRouteFilter, rule *model.RouteRule, be *model.BackendRef, http bool) {
	seen := map[gwv1.HTTPRouteFilterType]bool{}
	for i, flt := range fs {
		f := fmt.Sprintf("%s[%d]", field, i)
		set := map[gwv1.HTTPRouteFilterType]bool{
			gwv1.HTTPRouteFilterRequestHeaderModifier:  flt.RequestHeaderModifier != nil,
			gwv1.HTTPRouteFilterResponseHeaderModifier: flt.ResponseHeaderModifier != nil,
			gwv1.HTTPRouteFilterRequestRedirect:        flt.RequestRedirect != nil,
			gwv1.HTTPRouteFilterURLRewrite:             flt.URLRewrite != nil,
			gwv1.HTTPRouteFilterRequestMirror:          flt.RequestMirror != nil,
			gwv1.HTTPRouteFilterCORS:                   flt.CORS != nil,
			gwv1.HTTPRouteFilterExtensionRef:           flt.ExtensionRef != nil,
		}
		allowed := []gwv1.HTTPRouteFilterType{gwv1.HTTPRouteFilterRequestHeaderModifier, gwv1.HTTPRouteFilterResponseHeaderModifier}
		switch {
		case be == nil && http:
			allowed = append(allowed, gwv1.HTTPRouteFilterRequestRedirect, gwv1.HTTPRouteFilterURLRewrite, gwv1.HTTPRouteFilterRequestMirror)
		case be == nil:
			allowed = append(allowed, gwv1.HTTPRouteFilterRequestMirror)
		}
		if !slices.Contains(allowed, flt.Type) {
			where := "weft"
			if be != nil {
				where = "weft on a backendRef"
			}
			c.fail(f+".type", "filter type %q is not supported by %s; use %s", flt.Type, where, joinTypes(allowed))
			continue
		}
		name := lowerFirst(string(flt.Type))
		for t, isSet := range set {
			if isSet && t != flt.Type {
				c.fail(f+"."+lowerFirst(string(t)), "only %s may be set in a filter of type %s", name, flt.Type)
			}
		}
		if !set[flt.Type] {
			c.fail(f+"."+name, "a filter of type %s needs %s", flt.Type, name)
			continue
		}
		if seen[flt.Type] && flt.Type != gwv1.HTTPRouteFilterRequestMirror {
			c.fail(f+".type", "filter type %s is listed twice", flt.Type)
			continue
		}
		seen[flt.Type] = true
		c.filter(f, ns, flt, rule, be)
	}
}

func (c *conv) filter(f, ns string, flt gwv1.HTTPRouteFilter, rule *model.RouteRule, be *model.BackendRef) {
	if be == nil && rule.Filters == nil && flt.Type != gwv1.HTTPRouteFilterRequestMirror {
		rule.Filters = &weftv1.RouteFilters{}
	}
	switch flt.Type {
	case gwv1.HTTPRouteFilterRequestHeaderModifier:
		if be != nil {
			be.RequestHeaders = headerModifier(flt.RequestHeaderModifier)
		} else {
			rule.Filters.RequestHeaders = headerModifier(flt.RequestHeaderModifier)
		}
	case gwv1.HTTPRouteFilterResponseHeaderModifier:
		if be != nil {
			be.ResponseHeaders = headerModifier(flt.ResponseHeaderModifier)
		} else {
			rule.Filters.ResponseHeaders = headerModifier(flt.ResponseHeaderModifier)
		}
	case gwv1.HTTPRouteFilterRequestRedirect:
		rd := flt.RequestRedirect
		out := &weftv1.Redirect{Scheme: deref(rd.Scheme), Hostname: string(derefAs(rd.Hostname)), Path: c.pathModifier(f+".requestRedirect.path", rd.Path)}
		if rd.Port != nil {
			out.Port = uint32(c.port(f+".requestRedirect.port", int32(*rd.Port)))
		}
		if rd.StatusCode != nil {
			if *rd.StatusCode < 300 || *rd.StatusCode > 399 {
				c.fail(f+".requestRedirect.statusCode", "%d is not a redirect status; use 301 or 302", *rd.StatusCode)
			}
			out.StatusCode = uint32(*rd.StatusCode)
		}
		rule.Filters.Redirect = out
	case gwv1.HTTPRouteFilterURLRewrite:
		rw := flt.URLRewrite
		rule.Filters.Rewrite = &weftv1.Rewrite{Hostname: string(derefAs(rw.Hostname)), Path: c.pathModifier(f+".urlRewrite.path", rw.Path)}
	case gwv1.HTTPRouteFilterRequestMirror:
		m := flt.RequestMirror
		ref, ok := c.serviceRef(f+".requestMirror.backendRef", ns, m.BackendRef)
		if !ok {
			return
		}
		percent := 0.0 // the model's "all"
		switch {
		case m.Percent != nil && m.Fraction != nil:
			c.fail(f+".requestMirror", "set percent or fraction, not both")
		case m.Percent != nil:
			if *m.Percent < 0 || *m.Percent > 100 {
				c.fail(f+".requestMirror.percent", "%d is not a percentage (0-100)", *m.Percent)
			}
			percent = float64(*m.Percent)
		case m.Fraction != nil:
			den := int32(100)
			if m.Fraction.Denominator != nil {
				den = *m.Fraction.Denominator
			}
			if den <= 0 || m.Fraction.Numerator < 0 || m.Fraction.Numerator > den {
				c.fail(f+".requestMirror.fraction", "%d/%d is not a fraction between 0 and 1", m.Fraction.Numerator, den)
				return
			}
			percent = 100 * float64(m.Fraction.Numerator) / float64(den)
		}
		if (m.Percent != nil || m.Fraction != nil) && percent == 0 {
			return // mirrors nothing
		}
		rule.Mirrors = append(rule.Mirrors, model.MirrorRef{ServicePortRef: ref, Percent: percent})
		c.ref(f+".requestMirror.backendRef", refMirror, ref)
	}
}

func (c *conv) pathModifier(f string, p *gwv1.HTTPPathModifier) *weftv1.PathModifier {
	if p == nil {
		return nil
	}
	switch p.Type {
	case gwv1.FullPathHTTPPathModifier:
		if p.ReplaceFullPath == nil || p.ReplacePrefixMatch != nil {
			c.fail(f, "type ReplaceFullPath needs replaceFullPath, and only it")
		}
		return &weftv1.PathModifier{Type: string(p.Type), Value: deref(p.ReplaceFullPath)}
	case gwv1.PrefixMatchHTTPPathModifier:
		if p.ReplacePrefixMatch == nil || p.ReplaceFullPath != nil {
			c.fail(f, "type ReplacePrefixMatch needs replacePrefixMatch, and only it")
		}
		return &weftv1.PathModifier{Type: string(p.Type), Value: deref(p.ReplacePrefixMatch)}
	}
	c.fail(f+".type", "unknown type %q; use ReplaceFullPath or ReplacePrefixMatch", p.Type)
	return nil
}

func headerModifier(h *gwv1.HTTPHeaderFilter) *weftv1.HeaderModifier {
	out := &weftv1.HeaderModifier{Remove: h.Remove}
	for _, s := range h.Set {
		out.Set = append(out.Set, &weftv1.Header{Name: string(s.Name), Value: s.Value})
	}
	for _, a := range h.Add {
		out.Add = append(out.Add, &weftv1.Header{Name: string(a.Name), Value: a.Value})
	}
	return out
}

// serviceRef converts a backendRef (or a mirror's) to a Service port.
func (c *conv) serviceRef(f, ns string, b gwv1.BackendObjectReference) (model.ServicePortRef, bool) {
	if (b.Group != nil && *b.Group != "") || (b.Kind != nil && *b.Kind != "Service") {
		c.fail(f, "weft sends to Services only (group: \"\", kind: Service), not to %s", groupKind(string(derefAs(b.Group)), string(cmp.Or(derefAs(b.Kind), "Service"))))
		return model.ServicePortRef{}, false
	}
	if b.Name == "" {
		c.fail(f+".name", "the service's name is required")
		return model.ServicePortRef{}, false
	}
	ref := model.ServicePortRef{ServiceRef: model.ServiceRef{Namespace: ns, Name: string(b.Name)}}
	if b.Namespace != nil && *b.Namespace != "" {
		ref.Namespace = string(*b.Namespace)
	}
	if b.Port != nil {
		ref.Port = c.port(f+".port", int32(*b.Port))
	}
	return ref, true
}

func (c *conv) backend(f, ns string, b gwv1.BackendRef, fs []gwv1.HTTPRouteFilter, rule *model.RouteRule) {
	ref, ok := c.serviceRef(f, ns, b.BackendObjectReference)
	if !ok {
		return
	}
	be := model.BackendRef{ServicePortRef: ref, Weight: 1}
	if b.Weight != nil {
		if *b.Weight < 0 || *b.Weight > 1_000_000 {
			c.fail(f+".weight", "%d is not a weight (0-1000000)", *b.Weight)
		}
		be.Weight = uint32(max(*b.Weight, 0))
	}
	c.filters(f+".filters", ns, fs, rule, &be, false)
	rule.Backends = append(rule.Backends, be)
	c.ref(f, refBackend, ref)
}

// target checks a policy's targetRef and returns the service it names.
func (c *conv) target(ns string, t policyapi.ServiceTargetReference) model.ServiceRef {
	if t.Group != "" || t.Kind != "Service" {
		c.fail("spec.targetRef", "a policy targets a Service (group: \"\", kind: Service), not %s", groupKind(t.Group, cmp.Or(t.Kind, "(no kind)")))
	}
	if t.Name == "" {
		c.fail("spec.targetRef.name", "the service's name is required")
	}
	ref := model.ServiceRef{Namespace: ns, Name: t.Name}
	c.ref("spec.targetRef", refPolicy, model.ServicePortRef{ServiceRef: ref})
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

// groupKind names a kind of a group, e.g. "Gateway of group
// gateway.networking.k8s.io", or "Pod" for the core group.
func groupKind(group, kind string) string {
	if group == "" {
		return kind
	}
	return kind + " of group " + group
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func derefAs[T ~string](p *T) T { return deref(p) }

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	if strings.HasPrefix(s, "URL") {
		return "url" + s[3:]
	}
	if s == "CORS" {
		return "cors"
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func joinTypes(ts []gwv1.HTTPRouteFilterType) string {
	var s []string
	for _, t := range ts {
		s = append(s, string(t))
	}
	return strings.Join(s, ", ")
}
