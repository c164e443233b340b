package authz

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/proxy/route"
)

// Default policies: what decides when no policy applies.
const (
	AllowAll           = "allow-all"
	DenyAll            = "deny-all"
	AllowSameNamespace = "allow-same-namespace"
	AllowAuthenticated = "allow-authenticated"
)

// DefaultPolicyName is Decider.Policy when the default policy decided.
const DefaultPolicyName = "default"

// NoAllowMatch is Decider.Rule when Allow policies applied to the port and
// none of their rules matched.
const NoAllowMatch = "no-allow-match"

// Action is what a policy does to the requests its rules match.
type Action uint8

// The actions.
const (
	Allow Action = iota
	Deny
)

func (a Action) String() string {
	if a == Deny {
		return "Deny"
	}
	return "Allow"
}

// Values of AuthorizationSource.authentication.
const (
	authAny             = ""
	authAuthenticated   = "authenticated"
	authUnauthenticated = "unauthenticated"
)

// FieldError is one problem in an Authorization: the field, relative to
// the Authorization message (e.g. "policies[0].rules[1].to.paths[0].value"),
// and what is wrong with how to fix it.
type FieldError struct {
	Field   string
	Problem string
	// Err is the underlying error, if any (a regular expression's).
	Err error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

func (e *FieldError) Unwrap() error { return e.Err }

// CompileError lists every problem Compile found.
type CompileError struct {
	Problems []*FieldError
}

func (e *CompileError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.As.
func (e *CompileError) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

// Authorizer is a compiled Authorization. It is immutable and safe for
// concurrent use. A nil *Authorizer allows everything, like an empty
// Authorization.
type Authorizer struct {
	defaultPolicy string
	byDefault     Decider
	policies      []*policy // config order
	deny, allow   []*policy // enforced and dry-run, config order
	dryRun        bool      // some policy is dry-run
}

type policy struct {
	name    string
	action  Action
	dryRun  bool
	ports   []uint16 // empty: every port
	rules   []*rule
	all     Decider // a policy without rules
	noMatch Decider // an exhaustive allow list
}

type rule struct {
	by   Decider
	src  source
	dst  target
	http bool // has to.* conditions
}

type source struct {
	identities   []string
	namespaces   []string
	trustDomains []string
	auth         string
}

type target struct {
	methods []string
	paths   []route.PathMatch   // as compiled into table, for Describe
	headers []route.HeaderMatch // likewise
	table   *route.Table        // paths and headers; nil: neither is set
	grpc    []grpcCond
}

type grpcCond struct {
	typ                 route.ValueType
	service, method     string // "" = any
	serviceRe, methodRe *regexp.Regexp
}

// checker collects problems.
type checker struct {
	problems []*FieldError
}

func (c *checker) add(field, format string, args ...any) {
	c.problems = append(c.problems, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

// Compile validates a and builds its Authorizer. nil compiles to allow-all.
// The error, when not nil, is a *CompileError listing every problem.
func Compile(a *weftv1.Authorization) (*Authorizer, error) {
	var c checker
	az := &Authorizer{defaultPolicy: a.GetDefaultPolicy()}
	switch az.defaultPolicy {
	case "":
		az.defaultPolicy = AllowAll
	case AllowAll, DenyAll, AllowSameNamespace, AllowAuthenticated:
	default:
		c.add("default_policy", "unknown default policy %q; use %s (the default), %s, %s or %s", az.defaultPolicy, AllowAll, DenyAll, AllowSameNamespace, AllowAuthenticated)
		az.defaultPolicy = DenyAll
	}
	az.byDefault = Decider{Policy: DefaultPolicyName, Rule: az.defaultPolicy, name: DefaultPolicyName + ":" + az.defaultPolicy}
	for i, p := range a.GetPolicies() {
		cp := c.policy(fmt.Sprintf("policies[%d]", i), p)
		if cp == nil {
			continue
		}
		az.policies = append(az.policies, cp)
		if cp.action == Deny {
			az.deny = append(az.deny, cp)
		} else {
			az.allow = append(az.allow, cp)
		}
		az.dryRun = az.dryRun || cp.dryRun
	}
	if len(c.problems) > 0 {
		return nil, &CompileError{Problems: c.problems}
	}
	return az, nil
}

func (c *checker) policy(f string, p *weftv1.AuthorizationPolicy) *policy {
	n := len(c.problems)
	cp := &policy{name: p.GetName(), dryRun: p.GetDryRun()}
	switch {
	case cp.name == "":
		c.add(f+".name", "is empty; name the policy namespace/name, as it will appear in metrics and logs")
	case cp.name == DefaultPolicyName:
		c.add(f+".name", "%q names the default policy in metrics and logs; name the policy namespace/name", cp.name)
	case !validLabel(cp.name):
		c.add(f+".name", "%q contains control characters or invalid UTF-8; use printable characters", cp.name)
	}
	switch strings.ToLower(p.GetAction()) {
	case "allow":
		cp.action = Allow
	case "deny":
		cp.action = Deny
	case "":
		c.add(f+".action", "is empty; set Allow or Deny")
	default:
		c.add(f+".action", "unknown action %q; use Allow or Deny", p.GetAction())
	}
	for i, port := range p.GetPorts() {
		if port == 0 || port > 65535 {
			c.add(fmt.Sprintf("%s.ports[%d]", f, i), "%d is not a TCP port (1-65535)", port)
			continue
		}
		cp.ports = append(cp.ports, uint16(port))
	}
	cp.all = Decider{Policy: cp.name, name: cp.name}
	cp.noMatch = Decider{Policy: cp.name, Rule: NoAllowMatch, name: "no allow rule matched"}
	names := map[string]int{}
	for i, r := range p.GetRules() {
		rf := fmt.Sprintf("%s.rules[%d]", f, i)
		name := r.GetName()
		switch {
		case name == "":
			name = "rule-" + strconv.Itoa(i)
		case !validLabel(name):
			c.add(rf+".name", "%q contains control characters or invalid UTF-8; use printable characters", name)
		}
		if j, dup := names[name]; dup {
			c.add(rf+".name", "%q is also the name of rules[%d]; give each rule of a policy its own name (it identifies the rule in metrics and logs)", name, j)
		}
		names[name] = i
		cr := &rule{by: Decider{Policy: cp.name, Rule: name, name: cp.name + ":" + name}}
		cr.src = c.source(rf+".from", r.GetFrom())
		cr.dst, cr.http = c.target(rf+".to", r.GetTo())
		cp.rules = append(cp.rules, cr)
	}
	if len(c.problems) > n {
		return nil
	}
	return cp
}

func (c *checker) source(f string, s *weftv1.AuthorizationSource) source {
	out := source{auth: s.GetAuthentication()}
	for i, v := range s.GetIdentities() {
		id, err := spiffeid.FromString(v)
		if err != nil {
			c.add(fmt.Sprintf("%s.identities[%d]", f, i), "%q is not a SPIFFE ID (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>): %v", v, err)
			continue
		}
		out.identities = append(out.identities, id.String())
	}
	for i, v := range s.GetNamespaces() {
		if !validSegment(v) {
			c.add(fmt.Sprintf("%s.namespaces[%d]", f, i), "%q is not a namespace a SPIFFE ID can carry; use letters, digits, '.', '-' or '_'", v)
			continue
		}
		out.namespaces = append(out.namespaces, v)
	}
	for i, v := range s.GetTrustDomains() {
		td, err := spiffeid.TrustDomainFromString(v)
		if err != nil || strings.Contains(v, "/") {
			c.add(fmt.Sprintf("%s.trust_domains[%d]", f, i), "%q is not a trust domain name (e.g. cluster.local, without spiffe://): %v", v, err)
			continue
		}
		out.trustDomains = append(out.trustDomains, td.Name())
	}
	switch out.auth {
	case authAny, authAuthenticated:
	case authUnauthenticated:
		if len(s.GetIdentities())+len(s.GetNamespaces())+len(s.GetTrustDomains()) > 0 {
			c.add(f+".authentication", "unauthenticated never matches together with identities, namespaces or trust_domains: a plaintext client has none; split them into two rules")
		}
	default:
		c.add(f+".authentication", "unknown value %q; use authenticated, unauthenticated, or leave it empty for any caller", out.auth)
	}
	return out
}

func (c *checker) target(f string, t *weftv1.AuthorizationTarget) (target, bool) {
	var out target
	for i, m := range t.GetMethods() {
		if !validMethod(m) {
			c.add(fmt.Sprintf("%s.methods[%d]", f, i), "%q is not an HTTP method; write it in upper case, e.g. GET (methods are case-sensitive)", m)
			continue
		}
		out.methods = append(out.methods, m)
	}
	ok := true
	for i, p := range t.GetPaths() {
		pm := route.PathMatch{Value: p.GetValue()}
		switch p.GetType() {
		case "", "PathPrefix":
			pm.Type = route.PathPrefix
		case "Exact":
			pm.Type = route.PathExact
		case "RegularExpression":
			pm.Type = route.PathRegex
		default:
			c.add(fmt.Sprintf("%s.paths[%d].type", f, i), "unknown type %q; use Exact, PathPrefix (the default) or RegularExpression", p.GetType())
			ok = false
		}
		out.paths = append(out.paths, pm)
	}
	seen := map[string]int{}
	for i, h := range t.GetHeaders() {
		hm := route.HeaderMatch{Type: c.valueType(fmt.Sprintf("%s.headers[%d].type", f, i), h.GetType(), &ok), Name: h.GetName(), Value: h.GetValue()}
		key := http.CanonicalHeaderKey(h.GetName())
		if j, dup := seen[key]; dup {
			c.add(fmt.Sprintf("%s.headers[%d].name", f, i), "header %q is also matched by headers[%d]; match each header once (use one RegularExpression to combine conditions)", h.GetName(), j)
			ok = false
		}
		seen[key] = i
		out.headers = append(out.headers, hm)
	}
	for i, g := range t.GetGrpc() {
		out.grpc = append(out.grpc, grpcCond{
			typ:     c.valueType(fmt.Sprintf("%s.grpc[%d].type", f, i), g.GetType(), &ok),
			service: g.GetService(),
			method:  g.GetMethod(),
		})
	}
	if ok {
		c.checkWithRoute(f, &out)
	}
	hasHTTP := len(t.GetMethods())+len(t.GetPaths())+len(t.GetHeaders())+len(t.GetGrpc()) > 0
	return out, hasHTTP
}

func (c *checker) valueType(f, t string, ok *bool) route.ValueType {
	switch t {
	case "", "Exact":
		return route.Exact
	case "RegularExpression":
		return route.RegularExpression
	default:
		c.add(f, "unknown type %q; use Exact (the default) or RegularExpression", t)
		*ok = false
		return route.Exact
	}
}

// checkWithRoute validates paths, headers and gRPC methods with package
// route, so that they mean here what they mean in a route, and builds the
// table that matches paths and headers. Route's problems are reported
// under this target's field names.
func (c *checker) checkWithRoute(f string, t *target) {
	if len(t.paths) > 0 || len(t.headers) > 0 {
		// One route match per path, each with every header: any path,
		// and all headers.
		var matches []route.Match
		for i := range t.paths {
			matches = append(matches, route.Match{Path: &t.paths[i], Headers: t.headers})
		}
		if len(matches) == 0 {
			matches = []route.Match{{Headers: t.headers}}
		}
		table, err := route.NewTable([]route.Rule{{Route: "authz", Kind: route.HTTP, Matches: matches}})
		c.routeProblems(f, err, func(field string) string {
			i, rest := splitMatchField(field)
			switch {
			case strings.HasPrefix(rest, "path"):
				return fmt.Sprintf("%s.paths[%d]%s", f, i, pathField(strings.TrimPrefix(rest, "path")))
			case strings.HasPrefix(rest, "headers"):
				return f + "." + rest
			}
			return f
		})
		t.table = table
	}
	if len(t.grpc) > 0 {
		var matches []route.Match
		for _, g := range t.grpc {
			matches = append(matches, route.Match{GRPC: &route.GRPCMethodMatch{Type: g.typ, Service: g.service, Method: g.method}})
		}
		_, err := route.NewTable([]route.Rule{{Route: "authz", Kind: route.GRPC, Matches: matches}})
		n := len(c.problems)
		c.routeProblems(f, err, func(field string) string {
			i, rest := splitMatchField(field)
			return fmt.Sprintf("%s.grpc[%d]%s", f, i, strings.TrimPrefix(rest, "grpc"))
		})
		if len(c.problems) > n {
			return
		}
		for i := range t.grpc {
			g := &t.grpc[i]
			if g.typ != route.RegularExpression {
				continue
			}
			if g.service != "" {
				g.serviceRe = regexp.MustCompile(anchored(g.service)) // route compiled it already
			}
			if g.method != "" {
				g.methodRe = regexp.MustCompile(anchored(g.method))
			}
		}
	}
}

// pathField maps what follows "path" in a route field to this package's
// names: route reports value problems on "path" itself.
func pathField(rest string) string {
	if rest == "" {
		return ".value"
	}
	return rest
}

// routeProblems reports the *route.RuleError problems in err under the
// field names rename gives, once each.
func (c *checker) routeProblems(f string, err error, rename func(string) string) {
	if err == nil {
		return
	}
	var found []*route.RuleError
	collectRuleErrors(err, &found)
	if len(found) == 0 {
		c.add(f, "%v", err)
		return
	}
	seen := map[string]bool{}
	for _, re := range found {
		field := rename(re.Field)
		if seen[field+"\x00"+re.Problem] {
			continue
		}
		seen[field+"\x00"+re.Problem] = true
		c.problems = append(c.problems, &FieldError{Field: field, Problem: re.Problem, Err: re.Err})
	}
}

func collectRuleErrors(err error, out *[]*route.RuleError) {
	if re, ok := err.(*route.RuleError); ok {
		*out = append(*out, re)
		return
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			collectRuleErrors(e, out)
		}
	case interface{ Unwrap() error }:
		if e := u.Unwrap(); e != nil {
			collectRuleErrors(e, out)
		}
	}
}

// splitMatchField splits route's "matches[3].path" into 3 and "path".
func splitMatchField(field string) (int, string) {
	rest, ok := strings.CutPrefix(field, "matches[")
	if !ok {
		return 0, field
	}
	num, after, ok := strings.Cut(rest, "]")
	if !ok {
		return 0, field
	}
	i, err := strconv.Atoi(num)
	if err != nil {
		return 0, field
	}
	return i, strings.TrimPrefix(after, ".")
}

func anchored(expr string) string { return "^(?:" + expr + ")$" }

// validMethod reports whether m is an upper-case HTTP token.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validSegment reports whether s is a non-empty SPIFFE ID path segment.
func validSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validLabel reports whether s can be a metric label value and a log
// field as is: valid UTF-8 without control characters.
func validLabel(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}
