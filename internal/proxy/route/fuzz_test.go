package route_test

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/route"
)

// fuzzRules is the fixed table FuzzMatch matches against: every kind of
// condition, several routes of different ages, and filters.
func fuzzRules() []route.Rule {
	rs := concat(
		rules("ns/a",
			route.Rule{Matches: []route.Match{{Path: prefix("/api"), Headers: hdrs("X-Env", "prod")}}, Backends: to("a0")},
			route.Rule{Matches: []route.Match{{Path: prefix("/api/v1/")}}, Backends: to("a1")},
			route.Rule{Matches: []route.Match{{Path: exact("/api/v1/health")}, {Path: exact("/healthz"), Method: "GET"}}, Backends: to("a2")},
		),
		rules("ns/c",
			route.Rule{Matches: []route.Match{{
				Headers: []route.HeaderMatch{{Type: route.RegularExpression, Name: "x-env", Value: "stag.*"}},
				Query:   query("debug", "1"),
			}}, Backends: to("c0")},
			route.Rule{Matches: []route.Match{{Path: prefix("/static/")}},
				Filters: route.Filters{Rewrite: &route.Rewrite{Hostname: ptr("cdn.internal"), Path: &route.PathModifier{ReplacePrefixMatch: ptr("/assets")}}}, Backends: to("c1")},
			route.Rule{Matches: []route.Match{{Path: prefix("/old")}},
				Filters: route.Filters{Redirect: &route.Redirect{Path: &route.PathModifier{ReplacePrefixMatch: ptr("/new")}, StatusCode: 301}}},
			route.Rule{Matches: []route.Match{{Path: prefix("/caf%C3%A9"), Query: []route.QueryMatch{{Type: route.RegularExpression, Name: "q", Value: "[a-z]+"}}}},
				Filters: route.Filters{Rewrite: &route.Rewrite{Path: &route.PathModifier{ReplaceFullPath: ptr("/menu%20du%20jour")}}}, Backends: to("c3")},
		),
		rules("ns/g", route.Rule{Kind: route.GRPC, Matches: []route.Match{
			{GRPC: &route.GRPCMethodMatch{Service: "pkg.Echo"}},
			{GRPC: &route.GRPCMethodMatch{Type: route.RegularExpression, Method: "Get.*"}, Headers: hdrs("X-Env", "prod")},
		}, Backends: to("g0")}),
	)
	// ns/b is the oldest route.
	rs = append(rs, rules("ns/b",
		route.Rule{Created: at(-5), Matches: []route.Match{{Path: regex(`/api/v[0-9]+/items/[0-9]+`)}}, Backends: to("b0")},
		route.Rule{Created: at(-5), Matches: []route.Match{{Path: prefix("/"), Method: "POST"}},
			Filters: route.Filters{RequestHeaders: &route.HeaderModifier{Set: []route.Header{{Name: "X-Env", Value: "set"}}, Add: []route.Header{{Name: "Host", Value: "added.example"}}}}, Backends: to("b1")},
		route.Rule{Created: at(-5), Matches: []route.Match{{Path: prefix("/api/v1/")}}, Backends: to("b2")},
	)...)
	return rs
}

// refWinner is an independent, slow reading of the spec: it evaluates every
// match of every HTTP rule with different code from the package's and picks
// the best by the precedence documented in doc.go.
func refWinner(rs []route.Rule, r *http.Request) (winner *route.Rule, matchIndex int) {
	type cand struct {
		rule  *route.Rule
		match int
		key   [5]int
	}
	var best *cand
	for i := range rs {
		rule := &rs[i]
		if rule.Kind != route.HTTP {
			continue
		}
		ms := rule.Matches
		implicit := len(ms) == 0
		if implicit {
			ms = []route.Match{{}}
		}
		for j, m := range ms {
			if !refMatches(m, r) {
				continue
			}
			c := cand{rule: rule, match: j, key: refKey(m)}
			if implicit {
				c.match = -1
			}
			if best == nil || refBetter(&c.key, &best.key, c.rule, best.rule, c.match, best.match) {
				best = &c
			}
		}
	}
	if best == nil {
		return nil, 0
	}
	return best.rule, best.match
}

func refBetter(a, b *[5]int, ra, rb *route.Rule, ma, mb int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	if c := cmp.Or(ra.Created.Compare(rb.Created), strings.Compare(ra.Route, rb.Route), cmp.Compare(ra.Index, rb.Index), cmp.Compare(ma, mb)); c != 0 {
		return c < 0
	}
	return false
}

func refKey(m route.Match) [5]int {
	p := m.Path
	if p == nil {
		p = prefix("/")
	}
	class := map[route.PathType]int{route.PathExact: 3, route.PathPrefix: 2, route.PathRegex: 1}[p.Type]
	method := 0
	if m.Method != "" {
		method = 1
	}
	return [5]int{class, len(p.Value), method, len(m.Headers), len(m.Query)}
}

func refMatches(m route.Match, r *http.Request) bool {
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	p := m.Path
	if p == nil {
		p = prefix("/")
	}
	switch p.Type {
	case route.PathExact:
		v, _ := url.PathUnescape(p.Value)
		if path != v {
			return false
		}
	case route.PathPrefix:
		v, _ := url.PathUnescape(p.Value)
		if v != "/" {
			want := strings.Split(strings.TrimSuffix(v, "/"), "/")
			have := strings.Split(path, "/")
			if len(have) < len(want) {
				return false
			}
			for i := range want {
				if have[i] != want[i] {
					return false
				}
			}
		}
	case route.PathRegex:
		if !regexp.MustCompile("^(?:" + p.Value + ")$").MatchString(path) {
			return false
		}
	}
	if m.Method != "" && m.Method != r.Method {
		return false
	}
	for _, h := range m.Headers {
		vs := r.Header.Values(h.Name)
		if len(vs) == 0 {
			return false
		}
		v := strings.Join(vs, ",")
		if h.Type == route.RegularExpression {
			if !regexp.MustCompile("^(?:" + h.Value + ")$").MatchString(v) {
				return false
			}
		} else if v != h.Value {
			return false
		}
	}
	q := r.URL.Query()
	for _, qm := range m.Query {
		vs := q[qm.Name]
		if len(vs) == 0 {
			return false
		}
		if qm.Type == route.RegularExpression {
			if !regexp.MustCompile("^(?:" + qm.Value + ")$").MatchString(vs[0]) {
				return false
			}
		} else if vs[0] != qm.Value {
			return false
		}
	}
	return true
}

// FuzzMatch matches fuzzed request targets and headers against a fixed
// table. Match must not panic, must give the same answer twice, must agree
// with the reference reading of the spec for HTTP requests, and the
// filters must leave a consistent URL or a parseable Location.
func FuzzMatch(f *testing.F) {
	rs := fuzzRules()
	tab := mustTable(f, rs)
	f.Fuzz(func(t *testing.T, target, name, value string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		for _, method := range []string{"GET", "POST"} {
			r := &http.Request{Method: method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Host: "web:8080", Header: http.Header{}, RequestURI: target}
			if name != "" {
				r.Header.Add(name, value)
				if !strings.EqualFold(name, "X-Env") {
					r.Header.Set("X-Env", value)
				}
			}
			sel, ok := tab.Match(r)
			sel2, ok2 := tab.Match(r)
			if sel != sel2 || ok != ok2 {
				t.Fatalf("unstable: %s then %s", got(sel, ok), got(sel2, ok2))
			}
			wantRule, wantMatch := refWinner(rs, r)
			switch {
			case wantRule == nil && ok:
				t.Fatalf("%s %q %v: matched %s, reference matches nothing", method, target, r.Header, got(sel, ok))
			case wantRule != nil && (!ok || sel.Rule.Route != wantRule.Route || sel.Rule.Index != wantRule.Index || sel.MatchIndex != wantMatch):
				t.Fatalf("%s %q %v: matched %s, reference %s:%d/%d", method, target, r.Header, got(sel, ok), wantRule.Route, wantRule.Index, wantMatch)
			}
			if ok {
				checkFilters(t, sel, r)
			}

			// The same as a gRPC request: GRPC rules first, else as above.
			g := r.Clone(context.Background())
			g.Proto, g.ProtoMajor, g.ProtoMinor = "HTTP/2.0", 2, 0
			g.Header.Set("Content-Type", "application/grpc")
			gsel, gok := tab.Match(g)
			if gsel2, gok2 := tab.Match(g); gsel != gsel2 || gok != gok2 {
				t.Fatalf("unstable gRPC match: %s then %s", got(gsel, gok), got(gsel2, gok2))
			}
			rpcMethod, isEcho := strings.CutPrefix(g.URL.Path, "/pkg.Echo/")
			if isEcho && rpcMethod != "" && !strings.Contains(rpcMethod, "/") && (!gok || gsel.Rule.Kind != route.GRPC) {
				t.Fatalf("gRPC request %q went to %s, not the GRPC rule for pkg.Echo", g.URL.Path, got(gsel, gok))
			}
			if !gok && ok || gok && gsel.Rule.Kind == route.HTTP && gsel != sel {
				t.Fatalf("gRPC request fell back to %s, HTTP request matched %s", got(gsel, gok), got(sel, ok))
			}
		}
	})
}

func checkFilters(t *testing.T, sel *route.Selected, r *http.Request) {
	c := r.Clone(context.Background())
	loc, code := sel.ApplyRequestFilters(c)
	if code != 0 {
		if code != 301 && code != 302 || loc == "" {
			t.Fatalf("redirect %d %q", code, loc)
		}
		if _, err := url.Parse(loc); err != nil {
			t.Fatalf("Location %q does not parse: %v", loc, err)
		}
		return
	}
	if p, err := url.PathUnescape(c.URL.EscapedPath()); err != nil || p != c.URL.Path {
		t.Fatalf("after filters Path %q and EscapedPath %q disagree", c.URL.Path, c.URL.EscapedPath())
	}
	if c.URL.Path != r.URL.Path && !strings.HasPrefix(c.URL.Path, "/") {
		t.Fatalf("rewritten path %q is not absolute", c.URL.Path)
	}
}
