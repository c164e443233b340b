package convert

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
)

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
		c.ref(f, RoleParent, ref)
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
			allowed = append(allowed, gwv1.HTTPRouteFilterRequestRedirect, gwv1.HTTPRouteFilterURLRewrite, gwv1.HTTPRouteFilterRequestMirror, gwv1.HTTPRouteFilterExtensionRef)
		case be == nil:
			allowed = append(allowed, gwv1.HTTPRouteFilterRequestMirror, gwv1.HTTPRouteFilterExtensionRef)
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
		if seen[flt.Type] && flt.Type != gwv1.HTTPRouteFilterRequestMirror && flt.Type != gwv1.HTTPRouteFilterExtensionRef {
			c.fail(f+".type", "filter type %s is listed twice", flt.Type)
			continue
		}
		seen[flt.Type] = true
		if flt.Type == gwv1.HTTPRouteFilterExtensionRef {
			c.extensionRef(f+".extensionRef", i, *flt.ExtensionRef, rule)
			continue
		}
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
		c.ref(f+".requestMirror.backendRef", RoleMirror, ref)
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
		c.failReason(ReasonInvalidKind, f, "weft sends to Services only (group: \"\", kind: Service), not to %s", groupKind(string(derefAs(b.Group)), string(cmp.Or(derefAs(b.Kind), "Service"))))
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
	c.ref(f, RoleBackend, ref)
}
