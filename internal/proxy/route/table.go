package route

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// Table is the routing table of one service: every rule of every HTTPRoute
// and GRPCRoute attached to it, validated and put in precedence order. A
// Table is immutable and safe for concurrent use.
type Table struct {
	rules []Rule  // deep copies of the input, in input order
	http  []entry // HTTP matches, highest precedence first
	grpc  []entry // GRPC matches, highest precedence first
}

// entry is one match of one rule, compiled.
type entry struct {
	sel Selected // what Match returns

	// HTTP conditions.
	pathType PathType
	path     string // Exact: decoded value; PathPrefix: decoded, trailing "/" removed ("" matches all)
	pathRe   *regexp.Regexp
	method   string
	query    []queryCond

	// GRPC conditions.
	grpcType   ValueType
	service    string // "" = any
	grpcMethod string // "" = any
	serviceRe  *regexp.Regexp
	methodRe   *regexp.Regexp

	headers []headerCond

	key rankKey
}

type headerCond struct {
	key   string // canonical header name
	host  bool   // the Host header: matched against r.Host
	value string
	re    *regexp.Regexp // nil for Exact
}

type queryCond struct {
	name  string
	value string
	re    *regexp.Regexp // nil for Exact
}

// rankKey orders entries; see doc.go. Larger class and count fields win;
// then older Created, smaller Route, smaller Index, smaller match index.
type rankKey struct {
	class1, len1 int // HTTP: path class (exact 3, prefix 2, regex 1) and value length; GRPC: service class and length
	class2, len2 int // HTTP: method (1/0); GRPC: method class and length
	headers      int
	query        int
}

// NewTable validates rules and builds the table. Every problem found is
// reported, each as a *RuleError naming the route, rule index, field and
// fix, joined with errors.Join. The rules are copied: later changes to them
// do not affect the table.
func NewTable(rules []Rule) (*Table, error) {
	t := &Table{rules: make([]Rule, len(rules))}
	var errs []error
	type ruleID struct {
		kind  Kind
		route string
		index int
	}
	seen := make(map[ruleID]bool, len(rules))
	for i := range rules {
		t.rules[i] = cloneRule(&rules[i])
		r := &t.rules[i]
		c := checker{rule: r}
		c.checkRule()
		id := ruleID{r.Kind, r.Route, r.Index}
		if seen[id] {
			c.add("index", "another %v rule of this route has index %d; give each rule of a route its own index", r.Kind, r.Index)
		}
		seen[id] = true
		if len(c.errs) > 0 {
			errs = append(errs, c.errs...)
			continue
		}
		if err := t.addRule(r); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("routing table of %d rules not built, %d problems: %w", len(rules), len(errs), errors.Join(errs...))
	}
	sortEntries(t.http)
	sortEntries(t.grpc)
	return t, nil
}

// addRule compiles the matches of a validated rule.
func (t *Table) addRule(r *Rule) error {
	c := checker{rule: r}
	if len(r.Matches) == 0 {
		e := entry{sel: Selected{Rule: r, MatchIndex: -1}}
		if r.Kind == HTTP {
			e.pathType = PathPrefix
			e.sel.PrefixMatched = "/"
			e.key = rankKey{class1: 2, len1: 1}
			t.http = append(t.http, e)
		} else {
			t.grpc = append(t.grpc, e)
		}
		return nil
	}
	for i := range r.Matches {
		m := &r.Matches[i]
		field := fmt.Sprintf("matches[%d]", i)
		e := entry{sel: Selected{Rule: r, MatchIndex: i}}
		e.headers = compileHeaders(&c, field, m.Headers)
		e.key.headers = len(e.headers)
		if r.Kind == GRPC {
			if g := m.GRPC; g != nil {
				e.grpcType = g.Type
				e.service, e.grpcMethod = g.Service, g.Method
				if g.Type == RegularExpression {
					if g.Service != "" {
						e.serviceRe = c.regex(field+".grpc.service", g.Service)
					}
					if g.Method != "" {
						e.methodRe = c.regex(field+".grpc.method", g.Method)
					}
				}
				e.key.class1, e.key.len1 = grpcRank(g.Type, g.Service)
				e.key.class2, e.key.len2 = grpcRank(g.Type, g.Method)
			}
			t.grpc = append(t.grpc, e)
			continue
		}
		p := m.Path
		if p == nil {
			p = &PathMatch{Type: PathPrefix, Value: "/"}
		}
		e.pathType = p.Type
		switch p.Type {
		case PathExact:
			e.path = unescapePath(p.Value)
			e.key.class1 = 3
		case PathPrefix:
			e.path = strings.TrimSuffix(unescapePath(p.Value), "/")
			e.sel.PrefixMatched = p.Value
			e.key.class1 = 2
		case PathRegex:
			e.pathRe = c.regex(field+".path", p.Value)
			e.key.class1 = 1
		}
		e.key.len1 = len(p.Value)
		if m.Method != "" {
			e.method = m.Method
			e.key.class2 = 1
		}
		e.query = compileQuery(&c, field, m.Query)
		e.key.query = len(e.query)
		t.http = append(t.http, e)
	}
	return errors.Join(c.errs...)
}

// grpcRank ranks one of service and method: an Exact value over a regular
// expression over none, then by the number of characters.
func grpcRank(t ValueType, v string) (class, n int) {
	switch {
	case v == "":
		return 0, 0
	case t == Exact:
		return 2, len(v)
	default:
		return 1, len(v)
	}
}

// compileHeaders compiles header matches, keeping only the first of
// several with the same (case-insensitive) name, as the spec requires.
func compileHeaders(c *checker, field string, hs []HeaderMatch) []headerCond {
	var out []headerCond
	for j := range hs {
		h := &hs[j]
		key := canonicalKey(h.Name)
		if slices.ContainsFunc(out, func(o headerCond) bool { return o.key == key }) {
			continue
		}
		hc := headerCond{key: key, host: key == "Host", value: h.Value}
		if h.Type == RegularExpression {
			hc.re = c.regex(fmt.Sprintf("%s.headers[%d].value", field, j), h.Value)
		}
		out = append(out, hc)
	}
	return out
}

// compileQuery compiles query parameter matches, keeping only the first of
// several with the same (case-sensitive) name.
func compileQuery(c *checker, field string, qs []QueryMatch) []queryCond {
	var out []queryCond
	for j := range qs {
		q := &qs[j]
		if slices.ContainsFunc(out, func(o queryCond) bool { return o.name == q.Name }) {
			continue
		}
		qc := queryCond{name: q.Name, value: q.Value}
		if q.Type == RegularExpression {
			qc.re = c.regex(fmt.Sprintf("%s.query[%d].value", field, j), q.Value)
		}
		out = append(out, qc)
	}
	return out
}

func sortEntries(es []entry) {
	slices.SortStableFunc(es, func(a, b entry) int {
		ka, kb := &a.key, &b.key
		if c := cmp.Or(
			cmp.Compare(kb.class1, ka.class1),
			cmp.Compare(kb.len1, ka.len1),
			cmp.Compare(kb.class2, ka.class2),
			cmp.Compare(kb.len2, ka.len2),
			cmp.Compare(kb.headers, ka.headers),
			cmp.Compare(kb.query, ka.query),
		); c != 0 {
			return c
		}
		ra, rb := a.sel.Rule, b.sel.Rule
		return cmp.Or(
			ra.Created.Compare(rb.Created),
			strings.Compare(ra.Route, rb.Route),
			cmp.Compare(ra.Index, rb.Index),
			cmp.Compare(a.sel.MatchIndex, b.sel.MatchIndex),
		)
	})
}

// Rules returns the table's rules, in the order given to NewTable. They
// belong to the table: do not change them.
func (t *Table) Rules() []Rule {
	if t == nil {
		return nil
	}
	return t.rules
}

// Match returns the highest-precedence match for r, or nil, false when no
// rule matches (the caller then uses the service's default backend). A gRPC
// request (HTTP/2, content-type application/grpc) is matched against the
// GRPC rules first and, if none matches, against the HTTP rules; any other
// request against the HTTP rules only. Match does not change r and, unless
// a regular expression has to be evaluated against a repeated header,
// does not allocate.
func (t *Table) Match(r *http.Request) (*Selected, bool) {
	if t == nil || r == nil {
		return nil, false
	}
	path, rawQuery := "/", ""
	if r.URL != nil {
		if r.URL.Path != "" {
			path = r.URL.Path
		}
		rawQuery = r.URL.RawQuery
	}
	if len(t.grpc) > 0 && isGRPC(r) {
		service, method, _ := splitGRPCPath(path)
		for i := range t.grpc {
			if e := &t.grpc[i]; e.matchGRPC(r, service, method) {
				return &e.sel, true
			}
		}
	}
	for i := range t.http {
		if e := &t.http[i]; e.matchHTTP(r, path, rawQuery) {
			return &e.sel, true
		}
	}
	return nil, false
}

func (e *entry) matchHTTP(r *http.Request, path, rawQuery string) bool {
	switch e.pathType {
	case PathExact:
		if path != e.path {
			return false
		}
	case PathPrefix:
		if !prefixMatch(path, e.path) {
			return false
		}
	case PathRegex:
		if !e.pathRe.MatchString(path) {
			return false
		}
	}
	if e.method != "" && r.Method != e.method {
		return false
	}
	if !matchHeaders(r, e.headers) {
		return false
	}
	for i := range e.query {
		q := &e.query[i]
		v, ok := queryFirst(rawQuery, q.name)
		if !ok {
			return false
		}
		if q.re != nil {
			if !q.re.MatchString(v) {
				return false
			}
		} else if v != q.value {
			return false
		}
	}
	return true
}

func (e *entry) matchGRPC(r *http.Request, service, method string) bool {
	if e.service != "" {
		if e.serviceRe != nil {
			if service == "" || !e.serviceRe.MatchString(service) {
				return false
			}
		} else if service != e.service {
			return false
		}
	}
	if e.grpcMethod != "" {
		if e.methodRe != nil {
			if method == "" || !e.methodRe.MatchString(method) {
				return false
			}
		} else if method != e.grpcMethod {
			return false
		}
	}
	return matchHeaders(r, e.headers)
}

// prefixMatch reports whether path matches prefix element by element.
// prefix has its trailing "/" removed; "" matches every path.
func prefixMatch(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/' || prefix == ""
}

func matchHeaders(r *http.Request, hs []headerCond) bool {
	for i := range hs {
		h := &hs[i]
		var vals []string
		if h.host {
			if r.Host == "" {
				return false
			}
			vals = []string{r.Host} // does not escape: no allocation
		} else {
			vals = r.Header[h.key]
		}
		if len(vals) == 0 {
			return false
		}
		if h.re != nil {
			v := vals[0]
			if len(vals) > 1 {
				v = strings.Join(vals, ",")
			}
			if !h.re.MatchString(v) {
				return false
			}
		} else if !joinedEquals(vals, h.value) {
			return false
		}
	}
	return true
}

// joinedEquals reports whether strings.Join(vals, ",") == want, without
// joining.
func joinedEquals(vals []string, want string) bool {
	if len(vals) == 1 {
		return vals[0] == want
	}
	rest := want
	for i, v := range vals {
		if i > 0 {
			if rest == "" || rest[0] != ',' {
				return false
			}
			rest = rest[1:]
		}
		if !strings.HasPrefix(rest, v) {
			return false
		}
		rest = rest[len(v):]
	}
	return rest == ""
}

// isGRPC reports whether r is a gRPC request: HTTP/2 with content-type
// application/grpc or application/grpc+<codec> (not grpc-web).
func isGRPC(r *http.Request) bool {
	if r.ProtoMajor != 2 {
		return false
	}
	ct := r.Header["Content-Type"]
	if len(ct) == 0 {
		return false
	}
	const grpc = "application/grpc"
	v := ct[0]
	if len(v) < len(grpc) || !strings.EqualFold(v[:len(grpc)], grpc) {
		return false
	}
	return len(v) == len(grpc) || v[len(grpc)] == '+' || v[len(grpc)] == ';'
}

// splitGRPCPath splits "/<service>/<method>".
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
