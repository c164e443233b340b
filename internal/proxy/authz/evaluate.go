package authz

import (
	"net/http"
	"slices"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Identity is a SPIFFE ID taken apart once, for evaluating many requests
// (build it once per connection). The zero Identity is a plaintext client,
// or a workload without an identity.
type Identity struct {
	id, trustDomain, namespace string
}

// NewIdentity takes id apart. The namespace is the segment after "/ns/"
// when the path starts with it, as in spiffe://td/ns/<namespace>/sa/<sa>.
func NewIdentity(id spiffeid.ID) Identity {
	if id.IsZero() {
		return Identity{}
	}
	return Identity{id: id.String(), trustDomain: id.TrustDomain().Name(), namespace: namespaceOf(id.Path())}
}

func namespaceOf(path string) string {
	rest, ok := strings.CutPrefix(path, "/ns/")
	if !ok {
		return ""
	}
	ns, _, _ := strings.Cut(rest, "/")
	return ns
}

// IsZero reports whether i is no identity: a plaintext client.
func (i Identity) IsZero() bool { return i.id == "" }

// String returns the SPIFFE ID, or "" for none.
func (i Identity) String() string { return i.id }

// Namespace returns the namespace of the SPIFFE ID, or "".
func (i Identity) Namespace() string { return i.namespace }

// Request is what is known of an inbound request or connection.
type Request struct {
	// Port is the destination (service) port.
	Port uint16
	// Source is the caller: the verified peer of an mTLS connection, or
	// zero for a plaintext client.
	Source Identity
	// Self is this workload's own identity (allow-same-namespace).
	Self Identity
	// HTTP is the request; nil for an opaque TCP connection. It is only
	// read.
	HTTP *http.Request
}

// Decider names what took a decision; see the package documentation. Its
// fields are label values bounded by the config.
type Decider struct {
	Policy, Rule string
	name         string
}

// String is "policy:rule", "policy" for a policy without rules,
// "default:<default policy>" or "no allow rule matched".
func (d Decider) String() string { return d.name }

// Decision is the result of Evaluate.
type Decision struct {
	Allowed bool
	// By is what decided.
	By Decider
	// WouldDeny is set when the request is allowed but the dry-run
	// policies, enforced, would have denied it; DryRun says what would
	// have denied it.
	WouldDeny bool
	DryRun    Decider
}

// defaultAllowAll is what a nil Authorizer decides.
func defaultAllowAll() Decider {
	return Decider{Policy: DefaultPolicyName, Rule: AllowAll, name: DefaultPolicyName + ":" + AllowAll}
}

// view is a request prepared for matching: its path normalised (in req
// too when it had to change) and its gRPC service and method split once.
type view struct {
	Request                           // a copy: only its contents may escape
	req                 *http.Request // HTTP, or a copy with the normalised path
	path                string
	grpcService, grpcFn string
	grpcOK              bool
}

// Evaluate decides r. It never panics on any request, and a nil Authorizer
// allows everything.
func (a *Authorizer) Evaluate(r *Request) Decision {
	if a == nil {
		return Decision{Allowed: true, By: defaultAllowAll()}
	}
	v := view{Request: *r}
	if hr := r.HTTP; hr != nil {
		raw := ""
		if hr.URL != nil {
			raw = hr.URL.Path
		}
		v.req, v.path = hr, cleanPath(raw)
		if v.path != raw && hr.URL != nil {
			// Only route.Table needs the path in the request; give it a
			// shallow copy with the normalised one.
			u := *hr.URL
			u.Path, u.RawPath = v.path, ""
			cp := new(http.Request)
			*cp = *hr
			cp.URL = &u
			v.req = cp
		}
		v.grpcService, v.grpcFn, v.grpcOK = splitGRPCPath(v.path)
	}
	d := a.decide(&v, false)
	if d.Allowed && a.dryRun {
		if w := a.decide(&v, true); !w.Allowed {
			d.WouldDeny, d.DryRun = true, w.By
		}
	}
	return d
}

// decide evaluates the enforced policies, and the dry-run ones too when
// dryRun is set.
func (a *Authorizer) decide(v *view, dryRun bool) Decision {
	for _, p := range a.deny {
		if (p.dryRun && !dryRun) || !p.appliesTo(v.Port) {
			continue
		}
		if by, ok := p.match(v); ok {
			return Decision{Allowed: false, By: by}
		}
	}
	var exhausted *policy
	for _, p := range a.allow {
		if (p.dryRun && !dryRun) || !p.appliesTo(v.Port) {
			continue
		}
		if by, ok := p.match(v); ok {
			return Decision{Allowed: true, By: by}
		}
		if exhausted == nil {
			exhausted = p
		}
	}
	if exhausted != nil {
		return Decision{Allowed: false, By: exhausted.noMatch}
	}
	return Decision{Allowed: a.defaultAllows(v), By: a.byDefault}
}

func (a *Authorizer) defaultAllows(v *view) bool {
	src := &v.Source
	switch a.defaultPolicy {
	case AllowAll:
		return true
	case AllowSameNamespace:
		return !src.IsZero() && src.namespace != "" &&
			src.namespace == v.Self.namespace && src.trustDomain == v.Self.trustDomain
	case AllowAuthenticated:
		return !src.IsZero()
	}
	return false
}

func (p *policy) appliesTo(port uint16) bool {
	return len(p.ports) == 0 || slices.Contains(p.ports, port)
}

func (p *policy) match(v *view) (Decider, bool) {
	if len(p.rules) == 0 {
		return p.all, true
	}
	for _, r := range p.rules {
		if r.matches(v, p.action) {
			return r.by, true
		}
	}
	return Decider{}, false
}

func (r *rule) matches(v *view, action Action) bool {
	if !r.src.matches(&v.Source) {
		return false
	}
	if v.HTTP == nil {
		// Opaque TCP: HTTP conditions cannot be checked. An Allow rule
		// with them does not match; a Deny rule does (fail closed).
		return !r.http || action == Deny
	}
	return r.dst.matches(v)
}

func (s *source) matches(id *Identity) bool {
	switch s.auth {
	case authAuthenticated:
		if id.IsZero() {
			return false
		}
	case authUnauthenticated:
		if !id.IsZero() {
			return false
		}
	}
	if len(s.identities) > 0 && (id.IsZero() || !slices.Contains(s.identities, id.id)) {
		return false
	}
	if len(s.namespaces) > 0 && (id.namespace == "" || !slices.Contains(s.namespaces, id.namespace)) {
		return false
	}
	if len(s.trustDomains) > 0 && (id.IsZero() || !slices.Contains(s.trustDomains, id.trustDomain)) {
		return false
	}
	return true
}

func (t *target) matches(v *view) bool {
	if len(t.methods) > 0 && !slices.Contains(t.methods, v.HTTP.Method) {
		return false
	}
	if t.table != nil {
		if _, ok := t.table.Match(v.req); !ok {
			return false
		}
	}
	if len(t.grpc) > 0 {
		if !v.grpcOK {
			return false
		}
		for i := range t.grpc {
			if t.grpc[i].matches(v.grpcService, v.grpcFn) {
				return true
			}
		}
		return false
	}
	return true
}

func (g *grpcCond) matches(service, method string) bool {
	if g.service != "" {
		if g.serviceRe != nil {
			if !g.serviceRe.MatchString(service) {
				return false
			}
		} else if service != g.service {
			return false
		}
	}
	if g.method != "" {
		if g.methodRe != nil {
			if !g.methodRe.MatchString(method) {
				return false
			}
		} else if method != g.method {
			return false
		}
	}
	return true
}

// splitGRPCPath splits "/<service>/<method>", as package route does.
func splitGRPCPath(path string) (service, method string, ok bool) {
	if len(path) < 4 || path[0] != '/' {
		return "", "", false
	}
	service, method, ok = strings.Cut(path[1:], "/")
	if !ok || service == "" || method == "" || strings.IndexByte(method, '/') >= 0 {
		return "", "", false
	}
	return service, method, true
}

// cleanPath is the path authorization matches: "/" for none, dot segments
// removed (RFC 3986 section 5.2.4) and repeated slashes merged, a trailing
// slash kept. A path that needs none of it is returned as is, without
// allocating.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p // "*" of OPTIONS *; a CONNECT has no path at all
	}
	if !needsCleaning(p) {
		return p
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	trailing := false
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
			continue
		}
		if last {
			trailing = true
		}
	}
	if len(out) == 0 {
		return "/"
	}
	res := "/" + strings.Join(out, "/")
	if trailing {
		res += "/"
	}
	return res
}

// needsCleaning reports whether p (starting with "/") has an empty, "." or
// ".." segment other than a final empty one.
func needsCleaning(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		rest := p[i+1:]
		if rest == "" {
			return false // a trailing slash is kept
		}
		switch {
		case rest[0] == '/':
			return true
		case rest[0] == '.':
			seg := rest
			if j := strings.IndexByte(rest, '/'); j >= 0 {
				seg = rest[:j]
			}
			if seg == "." || seg == ".." {
				return true
			}
		}
	}
	return false
}
