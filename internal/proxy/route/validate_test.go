package route_test

import (
	"errors"
	"regexp/syntax"
	"strconv"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/route"
)

// ruleErrors returns every *RuleError in err's tree.
func ruleErrors(err error) []*route.RuleError {
	var out []*route.RuleError
	var walk func(error)
	walk = func(e error) {
		if re, ok := e.(*route.RuleError); ok {
			out = append(out, re)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

func TestNewTableRejects(t *testing.T) {
	valid := func() route.Rule {
		return route.Rule{Route: "ns/web", Index: 2, Created: at(0), Matches: []route.Match{{Path: prefix("/")}}, Backends: to("a")}
	}
	grpc := func(r *route.Rule) {
		r.Kind = route.GRPC
		r.Matches = []route.Match{{GRPC: &route.GRPCMethodMatch{Service: "pkg.Svc"}}}
	}
	hm := func(kv ...string) *route.HeaderModifier {
		m := &route.HeaderModifier{}
		for i := 0; i < len(kv); i += 2 {
			m.Set = append(m.Set, route.Header{Name: kv[i], Value: kv[i+1]})
		}
		return m
	}
	rewritePrefix := func(r *route.Rule) {
		r.Filters.Rewrite = &route.Rewrite{Path: &route.PathModifier{ReplacePrefixMatch: ptr("/x")}}
	}
	tests := []struct {
		name      string
		edit      func(r *route.Rule)
		field     string
		inMessage string
	}{
		{"path regex does not compile", func(r *route.Rule) { r.Matches[0].Path = regex("a(") },
			"matches[0].path", `regular expression "a(" does not compile: error parsing regexp: missing closing ): ` + "`a(`" + `; fix the pattern`},
		{"prefix not absolute", func(r *route.Rule) { r.Matches[0].Path = prefix("foo") }, "matches[0].path", `does not start with "/"`},
		{"prefix with //", func(r *route.Rule) { r.Matches[0].Path = prefix("/foo//") }, "matches[0].path", `contains "//"`},
		{"exact with //", func(r *route.Rule) { r.Matches[0].Path = exact("//") }, "matches[0].path", `contains "//"`},
		{"dot segment", func(r *route.Rule) { r.Matches[0].Path = exact("/a/./b") }, "matches[0].path", `"." path segment`},
		{"trailing dot segment", func(r *route.Rule) { r.Matches[0].Path = prefix("/a/.") }, "matches[0].path", `"." path segment`},
		{"dot-dot segment", func(r *route.Rule) { r.Matches[0].Path = prefix("/a/../b") }, "matches[0].path", `".." path segment`},
		{"trailing dot-dot", func(r *route.Rule) { r.Matches[0].Path = prefix("/a/..") }, "matches[0].path", `".." path segment`},
		{"encoded slash", func(r *route.Rule) { r.Matches[0].Path = prefix("/a%2fb") }, "matches[0].path", "encoded"},
		{"fragment", func(r *route.Rule) { r.Matches[0].Path = exact("/a#b") }, "matches[0].path", `contains "#"`},
		{"space", func(r *route.Rule) { r.Matches[0].Path = prefix("/a b") }, "matches[0].path", "percent-encode"},
		{"bad escape", func(r *route.Rule) { r.Matches[0].Path = prefix("/a%zz") }, "matches[0].path", "malformed"},
		{"empty prefix", func(r *route.Rule) { r.Matches[0].Path = prefix("") }, "matches[0].path", `is empty; use "/"`},
		{"empty regex", func(r *route.Rule) { r.Matches[0].Path = regex("") }, "matches[0].path", "empty"},
		{"unknown path type", func(r *route.Rule) { r.Matches[0].Path = &route.PathMatch{Type: 9, Value: "/"} }, "matches[0].path.type", "unknown"},
		{"lower-case method", func(r *route.Rule) { r.Matches[0].Method = "get" }, "matches[0].method", "upper case"},
		{"unknown method", func(r *route.Rule) { r.Matches[0].Method = "PURGE" }, "matches[0].method", "GET, HEAD"},
		{"header name", func(r *route.Rule) { r.Matches[0].Headers = hdrs("bad name", "x") }, "matches[0].headers[0].name", "not a valid header name"},
		{"header name with colon", func(r *route.Rule) { r.Matches[0].Headers = hdrs(":authority", "x") }, "matches[0].headers[0].name", "not a valid header name"},
		{"header value empty", func(r *route.Rule) { r.Matches[0].Headers = hdrs("a", "ok", "b", "") }, "matches[0].headers[1].value", "is empty"},
		{"header value newline", func(r *route.Rule) { r.Matches[0].Headers = hdrs("a", "x\ny") }, "matches[0].headers[0].value", "control characters"},
		{"header regex", func(r *route.Rule) {
			r.Matches[0].Headers = []route.HeaderMatch{{Type: route.RegularExpression, Name: "a", Value: "[z-a]"}}
		}, "matches[0].headers[0].value", `regular expression "[z-a]" does not compile`},
		{"header match type", func(r *route.Rule) { r.Matches[0].Headers = []route.HeaderMatch{{Type: 7, Name: "a", Value: "b"}} }, "matches[0].headers[0].type", "unknown"},
		{"query name", func(r *route.Rule) { r.Matches[0].Query = query("a=b", "c") }, "matches[0].query[0].name", "not a valid query parameter name"},
		{"query value empty", func(r *route.Rule) { r.Matches[0].Query = query("a", "") }, "matches[0].query[0].value", "is empty"},
		{"query regex", func(r *route.Rule) {
			r.Matches[0].Query = []route.QueryMatch{{Type: route.RegularExpression, Name: "a", Value: "(?P<x"}}
		}, "matches[0].query[0].value", "does not compile"},
		{"grpc on HTTP rule", func(r *route.Rule) { r.Matches[0].GRPC = &route.GRPCMethodMatch{Service: "a.B"} }, "matches[0].grpc", "HTTP rule"},
		{"path on GRPC rule", func(r *route.Rule) { grpc(r); r.Matches[0].Path = prefix("/") }, "matches[0].path", "GRPC rule"},
		{"method on GRPC rule", func(r *route.Rule) { grpc(r); r.Matches[0].Method = "POST" }, "matches[0].method", "GRPC rule"},
		{"query on GRPC rule", func(r *route.Rule) { grpc(r); r.Matches[0].Query = query("a", "b") }, "matches[0].query", "GRPC rule"},
		{"GRPC neither service nor method", func(r *route.Rule) { grpc(r); r.Matches[0].GRPC = &route.GRPCMethodMatch{} }, "matches[0].grpc", "neither service nor method"},
		{"GRPC neither, regex", func(r *route.Rule) {
			grpc(r)
			r.Matches[0].GRPC = &route.GRPCMethodMatch{Type: route.RegularExpression}
		}, "matches[0].grpc", "neither service nor method"},
		{"GRPC service with slash", func(r *route.Rule) { grpc(r); r.Matches[0].GRPC.Service = "/pkg.Svc/Echo" }, "matches[0].grpc.service", "not a gRPC service name"},
		{"GRPC service starting with digit", func(r *route.Rule) { grpc(r); r.Matches[0].GRPC.Service = "pkg.1Svc" }, "matches[0].grpc.service", "not a gRPC service name"},
		{"GRPC method with slash", func(r *route.Rule) { grpc(r); r.Matches[0].GRPC.Method = "Echo/x" }, "matches[0].grpc.method", "not a gRPC method name"},
		{"GRPC regex", func(r *route.Rule) {
			grpc(r)
			r.Matches[0].GRPC = &route.GRPCMethodMatch{Type: route.RegularExpression, Method: "E(cho"}
		}, "matches[0].grpc.method", "does not compile"},
		{"GRPC match type", func(r *route.Rule) { grpc(r); r.Matches[0].GRPC.Type = 5 }, "matches[0].grpc.type", "unknown"},
		{"GRPC redirect", func(r *route.Rule) { grpc(r); r.Filters.Redirect = &route.Redirect{} }, "filters", "GRPC rule may not redirect"},
		{"GRPC rewrite", func(r *route.Rule) { grpc(r); r.Filters.Rewrite = &route.Rewrite{Hostname: ptr("a")} }, "filters", "GRPC rule may not redirect or rewrite"},
		{"redirect and rewrite", func(r *route.Rule) {
			r.Filters.Redirect = &route.Redirect{}
			r.Filters.Rewrite = &route.Rewrite{}
		}, "filters", "both a redirect and a rewrite"},
		{"redirect scheme", func(r *route.Rule) { r.Filters.Redirect = &route.Redirect{Scheme: ptr("ftp")} }, "filters.redirect.scheme", `use "http" or "https"`},
		{"redirect hostname upper case", func(r *route.Rule) { r.Filters.Redirect = &route.Redirect{Hostname: ptr("Example.com")} }, "filters.redirect.hostname", "not a hostname"},
		{"redirect hostname with port", func(r *route.Rule) { r.Filters.Redirect = &route.Redirect{Hostname: ptr("example.com:80")} }, "filters.redirect.hostname", "not a hostname"},
		{"redirect hostname wildcard", func(r *route.Rule) { r.Filters.Redirect = &route.Redirect{Hostname: ptr("*.example.com")} }, "filters.redirect.hostname", "not a hostname"},
		{"redirect port 0", func(r *route.Rule) { r.Filters.Redirect = &route.Redirect{Port: ptr[uint16](0)} }, "filters.redirect.port", "is 0"},
		{"redirect status", func(r *route.Rule) { r.Filters.Redirect = &route.Redirect{StatusCode: 404} }, "filters.redirect.statusCode", "use 301 or 302"},
		{"redirect status 200", func(r *route.Rule) { r.Filters.Redirect = &route.Redirect{StatusCode: 200} }, "filters.redirect.statusCode", "not a redirect status"},
		{"path modifier both", func(r *route.Rule) {
			r.Filters.Rewrite = &route.Rewrite{Path: &route.PathModifier{ReplaceFullPath: ptr("/a"), ReplacePrefixMatch: ptr("/b")}}
		}, "filters.rewrite.path", "both"},
		{"path modifier neither", func(r *route.Rule) { r.Filters.Rewrite = &route.Rewrite{Path: &route.PathModifier{}} }, "filters.rewrite.path", "neither"},
		{"ReplacePrefixMatch with an exact match", func(r *route.Rule) {
			r.Matches[0].Path = exact("/a")
			rewritePrefix(r)
		}, "filters.rewrite.path.replacePrefixMatch", "exactly one match, with a PathPrefix path"},
		{"ReplacePrefixMatch with two matches", func(r *route.Rule) {
			r.Matches = []route.Match{{Path: prefix("/a")}, {Path: prefix("/b")}}
			rewritePrefix(r)
		}, "filters.rewrite.path.replacePrefixMatch", "exactly one match"},
		{"ReplacePrefixMatch with no matches", func(r *route.Rule) {
			r.Matches = nil
			rewritePrefix(r)
		}, "filters.rewrite.path.replacePrefixMatch", "exactly one match"},
		{"ReplacePrefixMatch with default path", func(r *route.Rule) {
			r.Matches = []route.Match{{Headers: hdrs("a", "b")}}
			r.Backends = nil
			r.Filters.Redirect = &route.Redirect{Path: &route.PathModifier{ReplacePrefixMatch: ptr("/x")}}
		}, "filters.redirect.path.replacePrefixMatch", "exactly one match"},
		{"ReplacePrefixMatch with regex", func(r *route.Rule) {
			r.Matches[0].Path = regex("/a.*")
			rewritePrefix(r)
		}, "filters.rewrite.path.replacePrefixMatch", "PathPrefix"},
		{"ReplacePrefixMatch relative", func(r *route.Rule) {
			r.Filters.Rewrite = &route.Rewrite{Path: &route.PathModifier{ReplacePrefixMatch: ptr("x")}}
		}, "filters.rewrite.path.replacePrefixMatch", "not an absolute path"},
		{"ReplaceFullPath relative", func(r *route.Rule) {
			r.Filters.Rewrite = &route.Rewrite{Path: &route.PathModifier{ReplaceFullPath: ptr("x")}}
		}, "filters.rewrite.path.replaceFullPath", "not an absolute path"},
		{"ReplaceFullPath empty", func(r *route.Rule) {
			r.Filters.Rewrite = &route.Rewrite{Path: &route.PathModifier{ReplaceFullPath: ptr("")}}
		}, "filters.rewrite.path.replaceFullPath", "not an absolute path"},
		{"ReplaceFullPath with query", func(r *route.Rule) {
			r.Filters.Redirect = &route.Redirect{Path: &route.PathModifier{ReplaceFullPath: ptr("/a?b=c")}}
		}, "filters.redirect.path.replaceFullPath", "query"},
		{"rewrite hostname", func(r *route.Rule) { r.Filters.Rewrite = &route.Rewrite{Hostname: ptr("bad_host")} }, "filters.rewrite.hostname", "not a hostname"},
		{"request header name", func(r *route.Rule) { r.Filters.RequestHeaders = hm("a b", "c") }, "filters.requestHeaders.set[0].name", "not a valid header name"},
		{"response header value CRLF", func(r *route.Rule) {
			r.Filters.ResponseHeaders = &route.HeaderModifier{Add: []route.Header{{Name: "X", Value: "a\r\nSet-Cookie: evil"}}}
		}, "filters.responseHeaders.add[0].value", "control characters"},
		{"header modifier empty value", func(r *route.Rule) { r.Filters.RequestHeaders = hm("a", "") }, "filters.requestHeaders.set[0].value", "is empty"},
		{"header set and removed", func(r *route.Rule) {
			r.Filters.RequestHeaders = hm("x-a", "1")
			r.Filters.RequestHeaders.Remove = []string{"X-A"}
		}, "filters.requestHeaders.remove[0]", "already modified by filters.requestHeaders.set[0]"},
		{"header set twice", func(r *route.Rule) { r.Filters.RequestHeaders = hm("x-a", "1", "X-A", "2") }, "filters.requestHeaders.set[1]", "one action"},
		{"remove name", func(r *route.Rule) { r.Filters.ResponseHeaders = &route.HeaderModifier{Remove: []string{""}} }, "filters.responseHeaders.remove[0]", "not a valid header name"},
		{"backend service", func(r *route.Rule) { r.Backends[0].Service = "" }, "backends[0].service", "is empty"},
		{"backend weight", func(r *route.Rule) { r.Backends[0].Weight = 1_000_001 }, "backends[0].weight", "use 0 to 1000000"},
		{"backend redirect", func(r *route.Rule) { r.Backends[0].Filters.Redirect = &route.Redirect{} }, "backends[0].filters.redirect", "only modify headers"},
		{"backend rewrite", func(r *route.Rule) { r.Backends[0].Filters.Rewrite = &route.Rewrite{} }, "backends[0].filters.rewrite", "only modify headers"},
		{"backend header modifier", func(r *route.Rule) { r.Backends[0].Filters.RequestHeaders = hm("a:b", "c") }, "backends[0].filters.requestHeaders.set[0].name", "not a valid header name"},
		{"empty route", func(r *route.Rule) { r.Route = "" }, "route", `set it to "namespace/name"`},
		{"negative index", func(r *route.Rule) { r.Index = -1 }, "index", "is -1"},
		{"unknown kind", func(r *route.Rule) { r.Kind = 3 }, "kind", "use HTTP or GRPC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid()
			tt.edit(&r)
			tab, err := route.NewTable([]route.Rule{r})
			if err == nil {
				t.Fatal("NewTable accepted the rule")
			}
			if tab != nil {
				t.Error("NewTable returned a table with its error")
			}
			kind := ""
			if r.Kind == route.GRPC {
				kind = " (GRPC)"
			}
			want := "route " + r.Route + kind + " rule " + strconv.Itoa(r.Index) + ": " + tt.field + ": "
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tt.inMessage) {
				t.Errorf("error\n  %v\nwant it to contain %q and %q", err, want, tt.inMessage)
			}
			res := ruleErrors(err)
			if len(res) != 1 {
				t.Fatalf("%d RuleErrors, want 1: %v", len(res), err)
			}
			if res[0].Route != r.Route || res[0].Index != r.Index || res[0].Field != tt.field {
				t.Errorf("RuleError{Route %q, Index %d, Field %q}, want {%q, %d, %q}",
					res[0].Route, res[0].Index, res[0].Field, r.Route, r.Index, tt.field)
			}
		})
	}
}

func TestNewTableRegexErrorUnwraps(t *testing.T) {
	_, err := route.NewTable(rules("ns/web", route.Rule{Matches: []route.Match{{Path: regex("a(")}}, Backends: to("a")}))
	var se *syntax.Error
	if !errors.As(err, &se) {
		t.Fatalf("error does not wrap the regexp/syntax error: %v", err)
	}
	var re *route.RuleError
	if !errors.As(err, &re) || re.Field != "matches[0].path" {
		t.Fatalf("errors.As(*RuleError) = %+v", re)
	}
}

// TestNewTableReportsAll checks that every problem of every rule is
// reported.
func TestNewTableReportsAll(t *testing.T) {
	rs := concat(
		rules("ns/a",
			route.Rule{Matches: []route.Match{{Path: prefix("x"), Method: "get"}}, Backends: to("a")},
			route.Rule{Matches: []route.Match{{Path: prefix("/ok")}}, Backends: to("a")},
		),
		rules("ns/b", route.Rule{Backends: []route.Backend{{Service: "", Port: 0, Weight: 1}}}),
		// A duplicate of ns/b rule 0.
		rules("ns/b", route.Rule{Backends: to("b")}),
	)
	_, err := route.NewTable(rs)
	got := map[string]bool{}
	for _, re := range ruleErrors(err) {
		got[re.Route+" "+strconv.Itoa(re.Index)+" "+re.Field] = true
	}
	want := []string{
		"ns/a 0 matches[0].path", "ns/a 0 matches[0].method",
		"ns/b 0 backends[0].service",
		"ns/b 0 index",
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("missing problem %q in\n%v", w, err)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(got), len(want), err)
	}
}

func TestNewTableAccepts(t *testing.T) {
	tests := []struct {
		name string
		rule route.Rule
	}{
		{"no matches, no backends (500)", route.Rule{}},
		{"redirect with zero-weight backends", route.Rule{
			Filters:  route.Filters{Redirect: &route.Redirect{Scheme: ptr("https"), StatusCode: 301}},
			Backends: []route.Backend{{Service: "a", Port: 80}},
		}},
		{"some zero weights", route.Rule{Backends: []route.Backend{{Service: "a", Port: 80}, {Service: "b", Port: 80, Weight: 1}}}},
		{"every weight zero (answers 500, Gateway API HTTPRouteAllBackendsWeightZero)", route.Rule{Backends: []route.Backend{{Service: "a", Port: 80}, {Service: "b", Port: 80}}}},
		{"backend without a port (a service entry is one port)", route.Rule{Backends: []route.Backend{{Service: "a", Weight: 1}}}},
		{"every condition", route.Rule{
			Matches: []route.Match{{
				Path:    exact("/a/b-c_d.e~f!$&'()*+,;=:@%20"),
				Method:  "PATCH",
				Headers: []route.HeaderMatch{{Name: "X-A", Value: "v a\tl"}, {Type: route.RegularExpression, Name: "x-b", Value: ".*"}},
				Query:   []route.QueryMatch{{Name: "q", Value: "1"}, {Type: route.RegularExpression, Name: "r", Value: "[0-9]+"}},
			}, {Path: regex(`/(a|b)/[^/]+`)}},
			Filters: route.Filters{
				RequestHeaders:  &route.HeaderModifier{Set: []route.Header{{Name: "a", Value: "1"}}, Add: []route.Header{{Name: "b", Value: "2"}}, Remove: []string{"c"}},
				ResponseHeaders: &route.HeaderModifier{Remove: []string{"Server"}},
				Rewrite:         &route.Rewrite{Hostname: ptr("web.default.svc.cluster.local"), Path: &route.PathModifier{ReplaceFullPath: ptr("/")}},
			},
			Backends: []route.Backend{{Service: "a", Port: 80, Weight: 1_000_000, Filters: route.Filters{ResponseHeaders: &route.HeaderModifier{Set: []route.Header{{Name: "x", Value: "y"}}}}}},
		}},
		{"ReplacePrefixMatch empty", route.Rule{
			Matches:  []route.Match{{Path: prefix("/api/")}},
			Filters:  route.Filters{Rewrite: &route.Rewrite{Path: &route.PathModifier{ReplacePrefixMatch: ptr("")}}},
			Backends: to("a"),
		}},
		{"GRPC method only, regex service", route.Rule{Kind: route.GRPC, Matches: []route.Match{
			{GRPC: &route.GRPCMethodMatch{Method: "Echo"}},
			{GRPC: &route.GRPCMethodMatch{Type: route.RegularExpression, Service: `.*\.v1\..*`}},
			{GRPC: &route.GRPCMethodMatch{Service: ".pkg.sub_1.Svc"}, Headers: hdrs("x", "y")},
			{Headers: hdrs("x", "z")},
		}, Filters: route.Filters{RequestHeaders: &route.HeaderModifier{Set: []route.Header{{Name: "a", Value: "b"}}}}, Backends: to("g")}},
		{"duplicate header match names (first wins, not an error)", route.Rule{Matches: []route.Match{{Headers: hdrs("a", "1", "A", "2")}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := route.NewTable(rules("ns/ok", tt.rule)); err != nil {
				t.Errorf("NewTable: %v", err)
			}
		})
	}
	// The same route name and index may be used by an HTTPRoute and a
	// GRPCRoute.
	rs := concat(rules("ns/same", route.Rule{}), rules("ns/same", route.Rule{Kind: route.GRPC}))
	if _, err := route.NewTable(rs); err != nil {
		t.Errorf("HTTP and GRPC rule with the same route and index: %v", err)
	}
}
