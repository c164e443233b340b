package model

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
)

// FieldError is a problem at a field of an object, its path relative to
// the object's spec in the resource's spelling, e.g.
// "rules[0].from.identities[1]".
type FieldError struct {
	Field, Message string
}

func (e FieldError) String() string { return e.Field + ": " + e.Message }

// Validate checks what the translation needs of an authorization policy,
// and the most of what the proxy does: a known action, SPIFFE IDs and
// trust domains that parse, regular expressions that compile, methods and
// header names that are HTTP tokens, known match types, ports, and rule
// names used once. It does not check that targetRefs' objects exist. A
// Store accepts invalid policies; translate.ValidateAuthorization adds the
// proxy's own rules, and the translation refuses what either refuses.
func (p *AuthorizationPolicy) Validate() []FieldError {
	var v fieldErrors
	switch p.Action {
	case AuthorizationAllow, AuthorizationDeny:
	case "":
		v.add("action", "an action is required; use %s or %s", AuthorizationAllow, AuthorizationDeny)
	default:
		v.add("action", "unknown action %q; use %s or %s", p.Action, AuthorizationAllow, AuthorizationDeny)
	}
	v.targets(p.TargetRefs)
	names := map[string]int{}
	for i, r := range p.Rules {
		f := fmt.Sprintf("rules[%d]", i)
		name := r.RuleName(i)
		if j, dup := names[name]; dup {
			v.add(f+".name", "rule name %q is also the name of rules[%d]; rule names must be unique within a policy", name, j)
		} else {
			names[name] = i
		}
		if r.Name != "" && !isDNSLabel(r.Name) {
			v.add(f+".name", "%q is not a rule name: use lowercase letters, digits and '-' (at most 63)", r.Name)
		}
		v.source(f+".from", r.From)
		for j, port := range r.Ports {
			if port == 0 {
				v.add(fmt.Sprintf("%s.to.ports[%d]", f, j), "0 is not a TCP port (1-65535)")
			}
		}
		v.target(f+".to", r.To)
	}
	return v
}

// RuleName is the name of rule number index of its policy: Name, or
// "rule-<index>".
func (r AuthorizationRule) RuleName(index int) string {
	if r.Name != "" {
		return r.Name
	}
	return "rule-" + strconv.Itoa(index)
}

// Validate checks an mTLS policy's modes and ports.
func (p *MutualTLSPolicy) Validate() []FieldError {
	var v fieldErrors
	v.mode("mode", p.Mode)
	v.targets(p.TargetRefs)
	seen := map[uint16]int{}
	for i, pm := range p.Ports {
		f := fmt.Sprintf("ports[%d]", i)
		if pm.Port == 0 {
			v.add(f+".port", "0 is not a TCP port (1-65535)")
		} else if j, dup := seen[pm.Port]; dup {
			v.add(f+".port", "port %d is also listed at ports[%d]", pm.Port, j)
		} else {
			seen[pm.Port] = i
		}
		v.mode(f+".mode", pm.Mode)
	}
	return v
}

type fieldErrors []FieldError

func (v *fieldErrors) add(field, format string, args ...any) {
	*v = append(*v, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (v *fieldErrors) mode(field string, m MTLSMode) {
	switch m {
	case MTLSStrict, MTLSPermissive:
	case "":
		v.add(field, "a mode is required; use %s or %s", MTLSStrict, MTLSPermissive)
	default:
		v.add(field, "unknown mode %q; use %s or %s", m, MTLSStrict, MTLSPermissive)
	}
}

func (v *fieldErrors) targets(refs []PolicyTargetRef) {
	for i, r := range refs {
		f := fmt.Sprintf("targetRefs[%d]", i)
		if r.Kind != TargetService && r.Kind != TargetWorkload {
			v.add(f+".kind", "unknown kind %q; use %s or %s", r.Kind, TargetService, TargetWorkload)
		}
		if r.Name == "" {
			v.add(f+".name", "a name is required")
		}
	}
}

func (v *fieldErrors) source(f string, s *weftv1.AuthorizationSource) {
	for i, id := range s.GetIdentities() {
		if _, err := spiffeid.FromString(id); err != nil {
			v.add(fmt.Sprintf("%s.identities[%d]", f, i), "%q is not a SPIFFE ID (spiffe://<trust-domain>/<path>): %v", id, err)
		}
	}
	for i, ns := range s.GetNamespaces() {
		if !isDNSLabel(ns) {
			v.add(fmt.Sprintf("%s.namespaces[%d]", f, i), "%q is not a namespace name (lowercase letters, digits and '-', at most 63)", ns)
		}
	}
	for i, td := range s.GetTrustDomains() {
		if _, err := spiffeid.TrustDomainFromString(td); err != nil || strings.Contains(td, "/") {
			v.add(fmt.Sprintf("%s.trustDomains[%d]", f, i), "%q is not a trust domain (e.g. weft.local)", td)
		}
	}
	switch a := s.GetAuthentication(); a {
	case "", "authenticated":
	case "unauthenticated":
		if len(s.GetIdentities())+len(s.GetNamespaces())+len(s.GetTrustDomains()) > 0 {
			v.add(f+".authentication", "an unauthenticated client has no identity, so with identities, namespaces or trustDomains the rule never matches; drop one or the other")
		}
	default:
		v.add(f+".authentication", "unknown authentication %q; use authenticated or unauthenticated", a)
	}
}

func (v *fieldErrors) target(f string, t *weftv1.AuthorizationTarget) {
	for i, m := range t.GetMethods() {
		if !isToken(m) || strings.ToUpper(m) != m {
			v.add(fmt.Sprintf("%s.methods[%d]", f, i), "%q is not an HTTP method: methods are case-sensitive tokens, in upper case (e.g. GET)", m)
		}
	}
	for i, p := range t.GetPaths() {
		pf := fmt.Sprintf("%s.paths[%d]", f, i)
		switch p.GetType() {
		case "", "Exact", "PathPrefix":
			if !strings.HasPrefix(p.GetValue(), "/") {
				v.add(pf+".value", "%q must start with /", p.GetValue())
			}
		case "RegularExpression":
			v.regexp(pf+".value", p.GetValue())
		default:
			v.add(pf+".type", "unknown type %q; use Exact, PathPrefix or RegularExpression", p.GetType())
		}
	}
	headers := map[string]int{}
	for i, h := range t.GetHeaders() {
		hf := fmt.Sprintf("%s.headers[%d]", f, i)
		if !isToken(h.GetName()) {
			v.add(hf+".name", "%q is not a header name", h.GetName())
		} else if j, dup := headers[strings.ToLower(h.GetName())]; dup {
			v.add(hf+".name", "header %q is also matched by headers[%d]; match each header once", h.GetName(), j)
		} else {
			headers[strings.ToLower(h.GetName())] = i
		}
		v.valueMatch(hf, h.GetType(), h.GetValue())
	}
	for i, g := range t.GetGrpc() {
		gf := fmt.Sprintf("%s.grpc[%d]", f, i)
		if g.GetService() == "" && g.GetMethod() == "" {
			v.add(gf, "set service, method or both")
		}
		switch g.GetType() {
		case "", "Exact":
		case "RegularExpression":
			v.regexp(gf+".service", g.GetService())
			v.regexp(gf+".method", g.GetMethod())
		default:
			v.add(gf+".type", "unknown type %q; use Exact or RegularExpression", g.GetType())
		}
	}
}

func (v *fieldErrors) valueMatch(f, typ, value string) {
	switch typ {
	case "", "Exact":
	case "RegularExpression":
		v.regexp(f+".value", value)
	default:
		v.add(f+".type", "unknown type %q; use Exact or RegularExpression", typ)
	}
}

func (v *fieldErrors) regexp(f, expr string) {
	if _, err := regexp.Compile(expr); err != nil {
		v.add(f, "%q is not a regular expression (RE2 syntax): %s", expr, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
}

// isToken reports whether s is an HTTP token (RFC 9110), as methods and
// header names are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r) {
			continue
		}
		return false
	}
	return true
}

// isDNSLabel reports whether s is an RFC 1123 label, as namespace names
// are.
func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
