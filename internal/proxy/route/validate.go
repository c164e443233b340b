package route

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// RuleError is one problem NewTable found in a rule. NewTable joins all of
// them with errors.Join; find them with errors.As.
type RuleError struct {
	Route string // "namespace/name"
	Kind  Kind
	Index int    // rule index within the route
	Field string // e.g. "matches[0].path"
	// Problem says what is wrong and how to fix it.
	Problem string
	// Err is the underlying error, if any (a regular expression's).
	Err error
}

func (e *RuleError) Error() string {
	kind := ""
	if e.Kind == GRPC {
		kind = " (GRPC)" // an HTTPRoute and a GRPCRoute may share a name
	}
	return "route " + e.Route + kind + " rule " + strconv.Itoa(e.Index) + ": " + e.Field + ": " + e.Problem
}

func (e *RuleError) Unwrap() error { return e.Err }

// Limits from the Gateway API CRDs.
const (
	maxPathLen        = 1024
	maxHeaderNameLen  = 256
	maxHeaderValueLen = 4096
	maxQueryValueLen  = 1024
	maxHostnameLen    = 253
	maxGRPCNameLen    = 1024
	maxWeight         = 1_000_000
)

// checker collects the problems of one rule.
type checker struct {
	rule *Rule
	errs []error
}

func (c *checker) add(field, format string, args ...any) {
	c.errs = append(c.errs, &RuleError{
		Route: c.rule.Route, Kind: c.rule.Kind, Index: c.rule.Index,
		Field: field, Problem: fmt.Sprintf(format, args...),
	})
}

func (c *checker) addErr(field string, err error, format string, args ...any) {
	c.errs = append(c.errs, &RuleError{
		Route: c.rule.Route, Kind: c.rule.Kind, Index: c.rule.Index,
		Field: field, Problem: fmt.Sprintf(format, args...), Err: err,
	})
}

// compileAnchored compiles an RE2 expression that must match a whole value.
func compileAnchored(expr string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(expr); err != nil {
		return nil, err
	}
	return regexp.Compile("^(?:" + expr + ")$")
}

// regex compiles expr for field, recording a problem if it does not compile.
func (c *checker) regex(field, expr string) *regexp.Regexp {
	re, err := compileAnchored(expr)
	if err != nil {
		c.addErr(field, err, "regular expression %q does not compile: %v; fix the pattern (RE2 syntax, see https://github.com/google/re2/wiki/Syntax)", expr, err)
		return nil
	}
	return re
}

// checkRule validates everything about r that does not need the other
// rules.
func (c *checker) checkRule() {
	r := c.rule
	if r.Route == "" {
		c.add("route", `is empty; set it to "namespace/name" of the route resource`)
	}
	if r.Index < 0 {
		c.add("index", "is %d; set it to the rule's index within its route (0 or more)", r.Index)
	}
	if r.Kind != HTTP && r.Kind != GRPC {
		c.add("kind", "%v is unknown; use HTTP or GRPC", r.Kind)
		return
	}
	for i := range r.Matches {
		c.checkMatch(fmt.Sprintf("matches[%d]", i), &r.Matches[i])
	}
	c.checkFilters("filters", &r.Filters, false)
	c.checkBackends()
}

func (c *checker) checkMatch(field string, m *Match) {
	if c.rule.Kind == GRPC {
		if m.Path != nil {
			c.add(field+".path", "is set on a GRPC rule; gRPC rules match on grpc (service/method) and headers only: remove it, or make the rule an HTTP rule")
		}
		if m.Method != "" {
			c.add(field+".method", "is set on a GRPC rule; gRPC requests are all POST: remove it, or make the rule an HTTP rule")
		}
		if len(m.Query) > 0 {
			c.add(field+".query", "is set on a GRPC rule; gRPC rules match on grpc (service/method) and headers only: remove it, or make the rule an HTTP rule")
		}
		if m.GRPC != nil {
			c.checkGRPC(field+".grpc", m.GRPC)
		}
	} else {
		if m.GRPC != nil {
			c.add(field+".grpc", "is set on an HTTP rule; set Kind GRPC for a GRPCRoute rule, or match the path instead")
		}
		if m.Path != nil {
			c.checkPathMatch(field+".path", m.Path)
		}
		if m.Method != "" && !validMethod(m.Method) {
			c.add(field+".method", "%q is not a method the Gateway API matches on; use one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH (upper case)", m.Method)
		}
		for j := range m.Query {
			q := &m.Query[j]
			f := fmt.Sprintf("%s.query[%d]", field, j)
			if !validToken(q.Name) || len(q.Name) > maxHeaderNameLen {
				c.add(f+".name", "%q is not a valid query parameter name; use 1 to %d letters, digits or !#$%%&'*+-.^_`|~", q.Name, maxHeaderNameLen)
			}
			c.checkValue(f, q.Type, q.Value, maxQueryValueLen)
		}
	}
	for j := range m.Headers {
		h := &m.Headers[j]
		f := fmt.Sprintf("%s.headers[%d]", field, j)
		if !validToken(h.Name) || len(h.Name) > maxHeaderNameLen {
			c.add(f+".name", "%q is not a valid header name; use 1 to %d letters, digits or !#$%%&'*+-.^_`|~", h.Name, maxHeaderNameLen)
		}
		c.checkValue(f, h.Type, h.Value, maxHeaderValueLen)
	}
}

// checkValue checks the value of a header or query parameter match.
func (c *checker) checkValue(field string, t ValueType, v string, maxLen int) {
	switch t {
	case Exact:
		if v == "" {
			c.add(field+".value", "is empty; give the value to match (to match any value use RegularExpression \".*\")")
		} else if len(v) > maxLen {
			c.add(field+".value", "is %d bytes long; shorten it to at most %d", len(v), maxLen)
		} else if !validHeaderValue(v) {
			c.add(field+".value", "%q contains control characters, which no request carries; remove them", v)
		}
	case RegularExpression:
		c.regex(field+".value", v)
	default:
		c.add(field+".type", "%v is unknown; use Exact or RegularExpression", t)
	}
}

func (c *checker) checkPathMatch(field string, p *PathMatch) {
	switch p.Type {
	case PathExact, PathPrefix:
		if problem := pathValueProblem(p.Value); problem != "" {
			c.add(field, "%s %q %s", p.Type, p.Value, problem)
		}
	case PathRegex:
		if p.Value == "" {
			c.add(field, "regular expression is empty; give a pattern, or use PathPrefix \"/\" to match every path")
		} else if len(p.Value) > maxPathLen {
			c.add(field, "regular expression is %d bytes long; shorten it to at most %d", len(p.Value), maxPathLen)
		} else {
			c.regex(field, p.Value)
		}
	default:
		c.add(field+".type", "%v is unknown; use PathExact, PathPrefix or PathRegex", p.Type)
	}
}

// pathValueProblem returns what is wrong with an Exact or PathPrefix value,
// per the Gateway API validation rules, and how to fix it; "" if nothing.
func pathValueProblem(v string) string {
	switch {
	case v == "":
		return `is empty; use "/" to match every path`
	case len(v) > maxPathLen:
		return fmt.Sprintf("is %d bytes long; shorten it to at most %d", len(v), maxPathLen)
	case v[0] != '/':
		return `does not start with "/"; write an absolute path such as "/` + v + `"`
	case strings.Contains(v, "//"):
		return `contains "//"; collapse the repeated slashes`
	case strings.Contains(v, "/./") || strings.HasSuffix(v, "/."):
		return `contains a "." path segment; remove it`
	case strings.Contains(v, "/../") || strings.HasSuffix(v, "/.."):
		return `contains a ".." path segment; write the path without it`
	case strings.Contains(v, "%2f") || strings.Contains(v, "%2F"):
		return `contains an encoded "/" (%2F); match on path elements separated by a plain "/"`
	case strings.Contains(v, "#"):
		return `contains "#"; a fragment is never sent to the server: remove it`
	case !validPathChars(v):
		return "contains characters a path must percent-encode (or a malformed %XX escape); percent-encode them"
	}
	return ""
}

func (c *checker) checkGRPC(field string, g *GRPCMethodMatch) {
	if g.Service == "" && g.Method == "" {
		c.add(field, "has neither service nor method; set one or both, or remove grpc to match every gRPC request")
		return
	}
	switch g.Type {
	case Exact:
		if g.Service != "" && !validGRPCService(g.Service) {
			c.add(field+".service", "%q is not a gRPC service name; write it as package.Service (letters, digits, _ and dots), without slashes", g.Service)
		}
		if g.Method != "" && !validGRPCMethod(g.Method) {
			c.add(field+".method", "%q is not a gRPC method name; write the method alone (letters, digits and _), without slashes", g.Method)
		}
	case RegularExpression:
		if g.Service != "" {
			c.regex(field+".service", g.Service)
		}
		if g.Method != "" {
			c.regex(field+".method", g.Method)
		}
	default:
		c.add(field+".type", "%v is unknown; use Exact or RegularExpression", g.Type)
	}
	if len(g.Service) > maxGRPCNameLen {
		c.add(field+".service", "is %d bytes long; shorten it to at most %d", len(g.Service), maxGRPCNameLen)
	}
	if len(g.Method) > maxGRPCNameLen {
		c.add(field+".method", "is %d bytes long; shorten it to at most %d", len(g.Method), maxGRPCNameLen)
	}
}

func (c *checker) checkFilters(field string, f *Filters, backend bool) {
	c.checkHeaderModifier(field+".requestHeaders", f.RequestHeaders)
	c.checkHeaderModifier(field+".responseHeaders", f.ResponseHeaders)
	switch {
	case backend && f.Redirect != nil:
		c.add(field+".redirect", "is set on a backend; backend filters may only modify headers: move the redirect to the rule's filters")
	case backend && f.Rewrite != nil:
		c.add(field+".rewrite", "is set on a backend; backend filters may only modify headers: move the rewrite to the rule's filters")
	case backend:
	case c.rule.Kind == GRPC && (f.Redirect != nil || f.Rewrite != nil):
		c.add(field, "a GRPC rule may not redirect or rewrite; GRPCRoute filters only modify headers: remove the redirect/rewrite or make the rule an HTTP rule")
	case f.Redirect != nil && f.Rewrite != nil:
		c.add(field, "has both a redirect and a rewrite, which the Gateway API forbids; keep one of them")
	case f.Redirect != nil:
		c.checkRedirect(field+".redirect", f.Redirect)
	case f.Rewrite != nil:
		if h := f.Rewrite.Hostname; h != nil && !validPreciseHostname(*h) {
			c.add(field+".rewrite.hostname", "%q is not a hostname; use lower-case DNS labels such as \"web.default.svc\", with no port", *h)
		}
		if f.Rewrite.Path != nil {
			c.checkPathModifier(field+".rewrite.path", f.Rewrite.Path)
		}
	}
}

func (c *checker) checkRedirect(field string, r *Redirect) {
	if r.Scheme != nil && *r.Scheme != "http" && *r.Scheme != "https" {
		c.add(field+".scheme", "%q is not supported; use \"http\" or \"https\", or leave it unset to keep the request's", *r.Scheme)
	}
	if r.Hostname != nil && !validPreciseHostname(*r.Hostname) {
		c.add(field+".hostname", "%q is not a hostname; use lower-case DNS labels such as \"example.com\", with no port (set port separately)", *r.Hostname)
	}
	if r.Port != nil && *r.Port == 0 {
		c.add(field+".port", "is 0; use 1 to 65535, or leave it unset")
	}
	switch r.StatusCode {
	case 0, 301, 302, 303, 307, 308:
	default:
		c.add(field+".statusCode", "%d is not a redirect status; use 301 or 302 (or 303, 307, 308), or 0 for the default 302", r.StatusCode)
	}
	if r.Path != nil {
		c.checkPathModifier(field+".path", r.Path)
	}
}

func (c *checker) checkPathModifier(field string, p *PathModifier) {
	switch {
	case p.ReplaceFullPath != nil && p.ReplacePrefixMatch != nil:
		c.add(field, "sets both replaceFullPath and replacePrefixMatch; keep one of them")
	case p.ReplaceFullPath != nil:
		v := *p.ReplaceFullPath
		if v == "" || v[0] != '/' {
			c.add(field+".replaceFullPath", "%q is not an absolute path; start it with \"/\"", v)
		} else if problem := replacementProblem(v); problem != "" {
			c.add(field+".replaceFullPath", "%q %s", v, problem)
		}
	case p.ReplacePrefixMatch != nil:
		v := *p.ReplacePrefixMatch
		if v != "" && v[0] != '/' {
			c.add(field+".replacePrefixMatch", "%q is not an absolute path; start it with \"/\" (or leave it empty to strip the prefix)", v)
		} else if problem := replacementProblem(v); problem != "" {
			c.add(field+".replacePrefixMatch", "%q %s", v, problem)
		}
		m := c.rule.Matches
		if len(m) != 1 || m[0].Path == nil || m[0].Path.Type != PathPrefix {
			c.add(field+".replacePrefixMatch", "needs the rule to have exactly one match, with a PathPrefix path; give the rule a single PathPrefix match or use replaceFullPath")
		}
	default:
		c.add(field, "sets neither replaceFullPath nor replacePrefixMatch; set one of them, or remove the path modifier")
	}
}

// replacementProblem checks a replacement path (already known to be empty or
// to start with "/").
func replacementProblem(v string) string {
	switch {
	case len(v) > maxPathLen:
		return fmt.Sprintf("is %d bytes long; shorten it to at most %d", len(v), maxPathLen)
	case strings.Contains(v, "//"):
		return `contains "//"; collapse the repeated slashes`
	case v != "" && !validPathChars(v):
		return "contains characters a path must percent-encode (or a malformed %XX escape), or a query or fragment; percent-encode them"
	}
	return ""
}

func (c *checker) checkHeaderModifier(field string, m *HeaderModifier) {
	if m == nil {
		return
	}
	// Only one action per header name (HTTPHeaderFilter): a name may
	// appear once in all of Set, Add and Remove together.
	seen := make(map[string]string)
	note := func(f, name string) {
		key := canonicalKey(name)
		if prev, dup := seen[key]; dup {
			c.add(f, "header %q is already modified by %s; give each header one action (to set several values, join them with \",\")", name, prev)
			return
		}
		seen[key] = f
	}
	for _, list := range []struct {
		name string
		hs   []Header
	}{{"set", m.Set}, {"add", m.Add}} {
		for i, h := range list.hs {
			f := fmt.Sprintf("%s.%s[%d]", field, list.name, i)
			if !validToken(h.Name) || len(h.Name) > maxHeaderNameLen {
				c.add(f+".name", "%q is not a valid header name; use 1 to %d letters, digits or !#$%%&'*+-.^_`|~", h.Name, maxHeaderNameLen)
				continue
			}
			switch {
			case h.Value == "":
				c.add(f+".value", "is empty; give a value, or remove the header with remove")
			case len(h.Value) > maxHeaderValueLen:
				c.add(f+".value", "is %d bytes long; shorten it to at most %d", len(h.Value), maxHeaderValueLen)
			case !validHeaderValue(h.Value):
				c.add(f+".value", "%q contains control characters (such as CR or LF), which would corrupt the message; remove them", h.Value)
			}
			note(f, h.Name)
		}
	}
	for i, name := range m.Remove {
		f := fmt.Sprintf("%s.remove[%d]", field, i)
		if !validToken(name) || len(name) > maxHeaderNameLen {
			c.add(f, "%q is not a valid header name; use 1 to %d letters, digits or !#$%%&'*+-.^_`|~", name, maxHeaderNameLen)
			continue
		}
		note(f, name)
	}
}

func (c *checker) checkBackends() {
	r := c.rule
	for i := range r.Backends {
		b := &r.Backends[i]
		f := fmt.Sprintf("backends[%d]", i)
		if b.Service == "" {
			c.add(f+".service", "is empty; name the Service the backend refers to")
		}
		if b.Weight > maxWeight {
			c.add(f+".weight", "is %d; use 0 to %d", b.Weight, maxWeight)
		}
		c.checkFilters(f+".filters", &b.Filters, true)
	}
	// Every weight 0 is valid (Gateway API conformance
	// HTTPRouteAllBackendsWeightZero): such a rule answers 500, and the
	// caller does so when PickBackend finds nothing. A backend's port is
	// optional here: in the proxy's model a backend names a service entry,
	// which is already one port of a Kubernetes Service.
}

func validMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH":
		return true
	}
	return false
}

// validToken reports whether s is an RFC 9110 token (a valid header name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) {
			continue
		}
		switch c {
		case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
			continue
		}
		return false
	}
	return true
}

// validHeaderValue reports whether v has no control characters other than
// horizontal tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validPathChars reports whether v matches
// ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$.
func validPathChars(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isAlnum(c) {
			continue
		}
		switch c {
		case '-', '/', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
			continue
		case '%':
			if i+2 < len(v) && isHex(v[i+1]) && isHex(v[i+2]) {
				i += 2
				continue
			}
		}
		return false
	}
	return true
}

// validPreciseHostname reports whether h matches the Gateway API
// PreciseHostname pattern
// ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$.
func validPreciseHostname(h string) bool {
	if h == "" || len(h) > maxHostnameLen {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validGRPCService matches ^(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$.
func validGRPCService(s string) bool {
	s = strings.TrimPrefix(s, ".")
	if s == "" {
		return false
	}
	for part := range strings.SplitSeq(s, ".") {
		if !validGRPCMethod(part) {
			return false
		}
	}
	return true
}

// validGRPCMethod matches ^[A-Za-z_][A-Za-z_0-9]*$.
func validGRPCMethod(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(isAlnum(c) || c == '_') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// unescapePath decodes a validated path value; values without "%" are
// returned as they are.
func unescapePath(v string) string {
	if !strings.Contains(v, "%") {
		return v
	}
	if d, err := url.PathUnescape(v); err == nil {
		return d
	}
	return v
}
