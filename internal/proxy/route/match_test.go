package route_test

import (
	"net/http"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/route"
)

type matchCase struct {
	name string
	req  *http.Request
	want string // "route:index", "route:index/match" for rules with several matches, "-" for none
}

func concat(rss ...[]route.Rule) []route.Rule {
	var out []route.Rule
	for _, rs := range rss {
		out = append(out, rs...)
	}
	return out
}

// TestMatch runs the matching and precedence cases, most of them those of
// the Gateway API conformance tests named (with hostnames left out: this
// package does not match hostnames).
func TestMatch(t *testing.T) {
	const (
		grpcEcho = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"
		part1    = "gateway-conformance-infra/matching-part1"
		part2    = "gateway-conformance-infra/matching-part2"
	)
	// The rules of HTTPRouteHeaderMatching, also used for
	// GRPCRouteHeaderMatching.
	headerMatching := func(kind route.Kind) []route.Rule {
		rs := rules("infra/header-matching",
			route.Rule{Matches: []route.Match{{Headers: hdrs("version", "one")}}, Backends: to("v1")},
			route.Rule{Matches: []route.Match{{Headers: hdrs("version", "two")}}, Backends: to("v2")},
			route.Rule{Matches: []route.Match{{Headers: hdrs("version", "two", "color", "orange")}}, Backends: to("v1")},
			route.Rule{Matches: []route.Match{{Headers: hdrs("color", "blue")}, {Headers: hdrs("color", "green")}}, Backends: to("v1")},
			route.Rule{Matches: []route.Match{{Headers: hdrs("color", "red")}, {Headers: hdrs("color", "yellow")}}, Backends: to("v2")},
		)
		for i := range rs {
			rs[i].Kind = kind
		}
		return rs
	}
	suites := []struct {
		name  string
		rules []route.Rule
		cases []matchCase
	}{{
		name: "HTTPRouteMatchingAcrossRoutes",
		rules: concat(
			rules(part1, route.Rule{Matches: []route.Match{{Path: prefix("/")}, {Headers: hdrs("version", "one")}}, Backends: to("v1")}),
			rules(part2, route.Rule{Matches: []route.Match{{Path: prefix("/v2")}, {Headers: hdrs("version", "two")}}, Backends: to("v2")}),
		),
		cases: []matchCase{
			{"root", req("GET", "/"), part1 + ":0/0"},
			{"example", req("GET", "/example"), part1 + ":0/0"},
			{"example version one: a header match beats plain prefix /", req("GET", "/example", "Version", "one"), part1 + ":0/1"},
			{"v2", req("GET", "/v2"), part2 + ":0/0"},
			{"v2 subpath", req("GET", "/v2/example"), part2 + ":0/0"},
			{"root version two", req("GET", "/", "Version", "two"), part2 + ":0/1"},
			{"v2example is not under /v2", req("GET", "/v2example"), part1 + ":0/0"},
			{"longer prefix beats header", req("GET", "/v2", "version", "one"), part2 + ":0/0"},
		},
	}, {
		name:  "HTTPRouteHeaderMatching",
		rules: headerMatching(route.HTTP),
		cases: []matchCase{
			{"version one", req("GET", "/", "Version", "one"), "infra/header-matching:0"},
			{"version two", req("GET", "/", "Version", "two"), "infra/header-matching:1"},
			{"version two color orange", req("GET", "/", "Version", "two", "Color", "orange"), "infra/header-matching:2"},
			{"version two color blue: tie, first rule", req("GET", "/", "Version", "two", "Color", "blue"), "infra/header-matching:1"},
			{"color orange alone", req("GET", "/", "Color", "orange"), "-"},
			{"other header", req("GET", "/", "Some-Other-Header", "one"), "-"},
			{"color blue", req("GET", "/", "Color", "blue"), "infra/header-matching:3/0"},
			{"color green", req("GET", "/", "Color", "green"), "infra/header-matching:3/1"},
			{"color red", req("GET", "/", "Color", "red"), "infra/header-matching:4/0"},
			{"color yellow", req("GET", "/", "Color", "yellow"), "infra/header-matching:4/1"},
			{"color purple", req("GET", "/", "Color", "purple"), "-"},
			{"name case-insensitive", req("GET", "/", "VERSION", "one"), "infra/header-matching:0"},
			{"value case-sensitive", req("GET", "/", "Version", "One"), "-"},
		},
	}, {
		name: "HTTPRouteQueryParamMatching",
		rules: rules("infra/query-param-matching",
			route.Rule{Matches: []route.Match{{Query: query("animal", "whale")}}, Backends: to("v1")},
			route.Rule{Matches: []route.Match{{Query: query("animal", "dolphin")}}, Backends: to("v2")},
			route.Rule{Matches: []route.Match{{Query: query("animal", "dolphin", "color", "blue")}, {Query: query("ANIMAL", "Whale")}}, Backends: to("v3")},
			route.Rule{Matches: []route.Match{{Path: prefix("/path1"), Query: query("animal", "whale")}}, Backends: to("v1")},
			route.Rule{Matches: []route.Match{{Headers: hdrs("version", "one"), Query: query("animal", "whale")}}, Backends: to("v2")},
			route.Rule{Matches: []route.Match{{Path: prefix("/path2"), Headers: hdrs("version", "two"), Query: query("animal", "whale")}}, Backends: to("v3")},
			route.Rule{Matches: []route.Match{
				{Path: prefix("/path3"), Query: query("animal", "shark")},
				{Path: prefix("/path4"), Headers: hdrs("version", "three"), Query: query("animal", "kraken")},
			}, Backends: to("v1")},
			route.Rule{Matches: []route.Match{{Path: prefix("/path5")}}, Backends: to("v1")},
			route.Rule{Matches: []route.Match{{Query: query("animal", "hydra")}}, Backends: to("v2")},
			route.Rule{Matches: []route.Match{{Headers: hdrs("version", "four")}}, Backends: to("v3")},
		),
		cases: []matchCase{
			{"whale", req("GET", "/?animal=whale"), "infra/query-param-matching:0"},
			{"dolphin", req("GET", "/?animal=dolphin"), "infra/query-param-matching:1"},
			{"dolphin blue: more query matches", req("GET", "/?animal=dolphin&color=blue"), "infra/query-param-matching:2/0"},
			{"names case-sensitive", req("GET", "/?ANIMAL=Whale"), "infra/query-param-matching:2/1"},
			{"other params ignored", req("GET", "/?animal=whale&otherparam=irrelevant"), "infra/query-param-matching:0"},
			{"dolphin yellow", req("GET", "/?animal=dolphin&color=yellow"), "infra/query-param-matching:1"},
			{"color alone", req("GET", "/?color=blue"), "-"},
			{"dog", req("GET", "/?animal=dog"), "-"},
			{"exact value", req("GET", "/?animal=whaledolphin"), "-"},
			{"no query", req("GET", "/"), "-"},
			{"path and query", req("GET", "/path1?animal=whale"), "infra/query-param-matching:3"},
			{"header and query", req("GET", "/?animal=whale", "version", "one"), "infra/query-param-matching:4"},
			{"path header and query", req("GET", "/path2?animal=whale", "version", "two"), "infra/query-param-matching:5"},
			{"ORed first", req("GET", "/path3?animal=shark"), "infra/query-param-matching:6/0"},
			{"ORed second", req("GET", "/path4?animal=kraken", "version", "three"), "infra/query-param-matching:6/1"},
			{"ANDed subset shark", req("GET", "/?animal=shark"), "-"},
			{"ANDed subset kraken", req("GET", "/path4?animal=kraken"), "-"},
			{"path beats query", req("GET", "/path5?animal=hydra"), "infra/query-param-matching:7"},
			{"header beats query", req("GET", "/?animal=hydra", "version", "four"), "infra/query-param-matching:9"},
			{"first value of repeated param", req("GET", "/?animal=dog&animal=whale"), "-"},
			{"first value whale", req("GET", "/?animal=whale&animal=dog"), "infra/query-param-matching:0"},
			{"encoded name and value", req("GET", "/?%61nimal=wh%61le"), "infra/query-param-matching:0"},
			{"plus is space", req("GET", "/?animal=whale+shark"), "-"},
			{"semicolon pair skipped", req("GET", "/?animal=whale;x=1"), "-"},
			{"empty pairs skipped", req("GET", "/?&&animal=dolphin&"), "infra/query-param-matching:1"},
		},
	}, {
		name: "HTTPRouteMethodMatching",
		rules: rules("infra/method-matching",
			route.Rule{Matches: []route.Match{{Method: "POST"}}, Backends: to("v1")},
			route.Rule{Matches: []route.Match{{Method: "GET"}}, Backends: to("v2")},
			route.Rule{Matches: []route.Match{{Path: prefix("/path1"), Method: "GET"}}, Backends: to("v1")},
			route.Rule{Matches: []route.Match{{Headers: hdrs("version", "one"), Method: "PUT"}}, Backends: to("v2")},
			route.Rule{Matches: []route.Match{{Path: prefix("/path2"), Headers: hdrs("version", "two"), Method: "POST"}}, Backends: to("v3")},
			route.Rule{Matches: []route.Match{
				{Path: prefix("/path3"), Method: "PATCH"},
				{Path: prefix("/path4"), Headers: hdrs("version", "three"), Method: "DELETE"},
			}, Backends: to("v1")},
			route.Rule{Matches: []route.Match{{Path: prefix("/path5")}}, Backends: to("v1")},
			route.Rule{Matches: []route.Match{{Method: "PATCH"}}, Backends: to("v2")},
			route.Rule{Matches: []route.Match{{Headers: hdrs("version", "four")}}, Backends: to("v3")},
		),
		cases: []matchCase{
			{"POST", req("POST", "/"), "infra/method-matching:0"},
			{"GET", req("GET", "/"), "infra/method-matching:1"},
			{"HEAD", req("HEAD", "/"), "-"},
			{"path and method", req("GET", "/path1"), "infra/method-matching:2"},
			{"header and method", req("PUT", "/", "version", "one"), "infra/method-matching:3"},
			{"path header method", req("POST", "/path2", "version", "two"), "infra/method-matching:4"},
			{"ORed first", req("PATCH", "/path3"), "infra/method-matching:5/0"},
			{"ORed second", req("DELETE", "/path4", "version", "three"), "infra/method-matching:5/1"},
			{"ANDed subset PUT", req("PUT", "/"), "-"},
			{"ANDed subset DELETE", req("DELETE", "/path4"), "-"},
			{"path beats method", req("PATCH", "/path5"), "infra/method-matching:6"},
			{"method beats header", req("PATCH", "/", "version", "four"), "infra/method-matching:7"},
		},
	}, {
		name: "HTTPRouteExactPathMatching",
		rules: rules("infra/exact-path-matching",
			route.Rule{Matches: []route.Match{{Path: exact("/one")}}, Backends: to("v1")},
			route.Rule{Matches: []route.Match{{Path: exact("/two")}}, Backends: to("v2")},
			route.Rule{Matches: []route.Match{{Path: exact("/caf%C3%A9")}}, Backends: to("v3")},
		),
		cases: []matchCase{
			{"one", req("GET", "/one"), "infra/exact-path-matching:0"},
			{"two", req("GET", "/two"), "infra/exact-path-matching:1"},
			{"root", req("GET", "/"), "-"},
			{"below one", req("GET", "/one/example"), "-"},
			{"trailing slash", req("GET", "/two/"), "-"},
			{"case", req("GET", "/One"), "-"},
			{"query ignored", req("GET", "/one?x=y"), "infra/exact-path-matching:0"},
			{"percent-encoded value matches decoded path", req("GET", "/caf%C3%A9"), "infra/exact-path-matching:2"},
			{"differently encoded request", req("GET", "/caf%c3%a9"), "infra/exact-path-matching:2"},
		},
	}, {
		name: "HTTPRoutePathMatchOrder",
		rules: rules("infra/path-matching-order",
			route.Rule{Matches: []route.Match{{Path: exact("/match/exact")}, {Path: prefix("/match/prefix/one")}}, Backends: to("v2")},
			route.Rule{Matches: []route.Match{{Path: exact("/match/exact/one")}, {Path: prefix("/match/")}}, Backends: to("v3")},
			route.Rule{Matches: []route.Match{{Path: exact("/match")}, {Path: prefix("/match/prefix")}}, Backends: to("v1")},
		),
		cases: []matchCase{
			{"exact beats prefix", req("GET", "/match/exact/one"), "infra/path-matching-order:1/0"},
			{"exact", req("GET", "/match/exact"), "infra/path-matching-order:0/0"},
			{"exact beats trailing-slash prefix", req("GET", "/match"), "infra/path-matching-order:2/0"},
			{"longest prefix", req("GET", "/match/prefix/one/any"), "infra/path-matching-order:0/1"},
			{"second longest prefix", req("GET", "/match/prefix/any"), "infra/path-matching-order:2/1"},
			{"shortest prefix", req("GET", "/match/any"), "infra/path-matching-order:1/1"},
			{"prefix /match/ matches /match/", req("GET", "/match/"), "infra/path-matching-order:1/1"},
			{"elements, not characters", req("GET", "/matchbox"), "-"},
		},
	}, {
		name: "prefix semantics",
		rules: rules("ns/prefix",
			route.Rule{Matches: []route.Match{{Path: prefix("/foo")}}, Backends: to("a")},
			route.Rule{Matches: []route.Match{{Path: prefix("/bar/")}}, Backends: to("b")},
			route.Rule{Matches: []route.Match{{Path: prefix("/a%20b")}}, Backends: to("c")},
		),
		cases: []matchCase{
			{"/foo", req("GET", "/foo"), "ns/prefix:0"},
			{"/foo/", req("GET", "/foo/"), "ns/prefix:0"},
			{"/foo/bar", req("GET", "/foo/bar"), "ns/prefix:0"},
			{"/foobar", req("GET", "/foobar"), "-"},
			{"/Foo is case-sensitive", req("GET", "/Foo"), "-"},
			{"trailing slash in value ignored", req("GET", "/bar"), "ns/prefix:1"},
			{"/bar/x", req("GET", "/bar/x"), "ns/prefix:1"},
			{"/barx", req("GET", "/barx"), "-"},
			{"encoded value", req("GET", "/a%20b/c"), "ns/prefix:2"},
			{"/ matches nothing here", req("GET", "/"), "-"},
		},
	}, {
		name: "regular expression paths rank after exact and prefix, longer pattern first",
		rules: rules("ns/re",
			route.Rule{Matches: []route.Match{{Path: regex("/api/.*")}}, Backends: to("a")},
			route.Rule{Matches: []route.Match{{Path: regex("/api/v[0-9]+/.*")}}, Backends: to("b")},
			route.Rule{Matches: []route.Match{{Path: prefix("/api/v1/static")}}, Backends: to("c")},
			route.Rule{Matches: []route.Match{{Path: exact("/api/v1/health")}}, Backends: to("d")},
		),
		cases: []matchCase{
			{"longer pattern", req("GET", "/api/v1/users"), "ns/re:1"},
			{"shorter pattern", req("GET", "/api/x"), "ns/re:0"},
			{"shorter pattern only", req("GET", "/api/v1"), "ns/re:0"},
			{"exact beats regex", req("GET", "/api/v1/health"), "ns/re:3"},
			{"prefix beats regex", req("GET", "/api/v1/static/x.css"), "ns/re:2"},
			{"anchored at the start", req("GET", "/x/api/v1/y"), "-"},
			{"none", req("GET", "/other"), "-"},
		},
	}, {
		name: "even prefix / beats a regular expression",
		rules: rules("ns/re",
			route.Rule{Matches: []route.Match{{Path: regex("/api/.*")}}, Backends: to("a")},
			route.Rule{Backends: to("b")},
		),
		cases: []matchCase{
			{"default match", req("GET", "/api/x"), "ns/re:1"},
		},
	}, {
		name: "tie-breaks: precedence, then oldest route, then name, then rule index, then match order",
		rules: concat(
			[]route.Rule{
				{Route: "ns/zz-old", Created: at(-10), Matches: []route.Match{{Path: prefix("/")}}, Backends: to("old")},
				{Route: "ns/aa-new", Created: at(10), Matches: []route.Match{{Path: prefix("/")}}, Backends: to("new")},
				{Route: "ns/aa-new", Index: 1, Created: at(10), Matches: []route.Match{{Path: prefix("/longer")}}, Backends: to("new")},
				{Route: "ns/b", Index: 1, Created: at(0), Matches: []route.Match{{Path: prefix("/same")}}, Backends: to("b1")},
				{Route: "ns/b", Index: 0, Created: at(0), Matches: []route.Match{{Path: prefix("/same")}}, Backends: to("b0")},
				{Route: "ns/a", Index: 3, Created: at(0), Matches: []route.Match{{Path: prefix("/name")}}, Backends: to("a")},
				{Route: "ns/c", Index: 0, Created: at(0), Matches: []route.Match{{Path: prefix("/name")}}, Backends: to("c")},
				{Route: "ns/m", Index: 0, Created: at(0), Matches: []route.Match{
					{Path: prefix("/m"), Headers: hdrs("x", "1")},
					{Path: prefix("/m"), Headers: hdrs("y", "2")},
				}, Backends: to("m")},
			},
		),
		cases: []matchCase{
			{"oldest route wins a tie", req("GET", "/x"), "ns/zz-old:0"},
			{"precedence beats age", req("GET", "/longer/x"), "ns/aa-new:1"},
			{"rule index order within a route", req("GET", "/same"), "ns/b:0"},
			{"alphabetical by namespace/name", req("GET", "/name"), "ns/a:3"},
			{"match order within a rule", req("GET", "/m", "x", "1", "y", "2"), "ns/m:0/0"},
			{"second match", req("GET", "/m", "y", "2"), "ns/m:0/1"},
		},
	}, {
		name: "header details",
		rules: rules("ns/h",
			route.Rule{Matches: []route.Match{{Path: prefix("/joined"), Headers: hdrs("X-Tag", "a,b")}}, Backends: to("a")},
			route.Rule{Matches: []route.Match{{Path: prefix("/joined-re"), Headers: []route.HeaderMatch{{Type: route.RegularExpression, Name: "x-tag", Value: "a,.*"}}}}, Backends: to("a")},
			route.Rule{Matches: []route.Match{{Path: prefix("/dup"), Headers: hdrs("version", "one", "Version", "two")}}, Backends: to("a")},
			route.Rule{Matches: []route.Match{{Path: prefix("/dup"), Headers: hdrs("color", "red")}}, Backends: to("a")},
			route.Rule{Matches: []route.Match{{Path: prefix("/host"), Headers: hdrs("host", "web:8080")}}, Backends: to("a")},
			route.Rule{Matches: []route.Match{{Path: prefix("/re"), Headers: []route.HeaderMatch{{Type: route.RegularExpression, Name: "version", Value: "v[12]"}}}}, Backends: to("a")},
		),
		cases: []matchCase{
			{"repeated header matched comma-joined", req("GET", "/joined", "X-Tag", "a", "X-Tag", "b"), "ns/h:0"},
			{"single value a,b", req("GET", "/joined", "X-Tag", "a,b"), "ns/h:0"},
			{"one of the values is not enough", req("GET", "/joined", "X-Tag", "a"), "-"},
			{"three values", req("GET", "/joined", "X-Tag", "a", "X-Tag", "b", "X-Tag", "c"), "-"},
			{"regex on joined value", req("GET", "/joined-re", "X-Tag", "a", "X-Tag", "zz"), "ns/h:1"},
			{"duplicate name in match: first counts", req("GET", "/dup", "Version", "one"), "ns/h:2"},
			{"duplicate name in match: later ignored", req("GET", "/dup", "Version", "two"), "-"},
			{"ignored duplicate does not count for precedence", req("GET", "/dup", "Version", "one", "Color", "red"), "ns/h:2"},
			{"Host matched against r.Host", req("GET", "/host", "Host", "web:8080"), "ns/h:4"},
			{"Host differs", req("GET", "/host", "Host", "web"), "-"},
			{"regex anchored: v1", req("GET", "/re", "Version", "v1"), "ns/h:5"},
			{"regex anchored: v10", req("GET", "/re", "Version", "v10"), "-"},
			{"missing header", req("GET", "/re"), "-"},
		},
	}, {
		name: "GRPCRouteExactMethodMatching",
		rules: func() []route.Rule {
			rs := rules("infra/exact-matching",
				route.Rule{Matches: []route.Match{{GRPC: &route.GRPCMethodMatch{Service: grpcEcho, Method: "Echo"}}}, Backends: to("v1")},
				route.Rule{Matches: []route.Match{{GRPC: &route.GRPCMethodMatch{Service: grpcEcho, Method: "EchoTwo"}}}, Backends: to("v2")},
			)
			rs[0].Kind, rs[1].Kind = route.GRPC, route.GRPC
			return rs
		}(),
		cases: []matchCase{
			{"Echo", grpcReq("/" + grpcEcho + "/Echo"), "infra/exact-matching:0"},
			{"EchoTwo", grpcReq("/" + grpcEcho + "/EchoTwo"), "infra/exact-matching:1"},
			{"EchoThree", grpcReq("/" + grpcEcho + "/EchoThree"), "-"},
			{"method is case-sensitive", grpcReq("/" + grpcEcho + "/echo"), "-"},
			{"not gRPC: HTTP/1.1", req("POST", "/"+grpcEcho+"/Echo", "Content-Type", "application/grpc"), "-"},
		},
	}, {
		name:  "GRPCRouteHeaderMatching",
		rules: headerMatching(route.GRPC),
		cases: []matchCase{
			{"version one", grpcReq("/svc.S/M", "Version", "one"), "infra/header-matching:0"},
			{"version two", grpcReq("/svc.S/M", "Version", "two"), "infra/header-matching:1"},
			{"version two color orange", grpcReq("/svc.S/M", "Version", "two", "Color", "orange"), "infra/header-matching:2"},
			{"version two color blue", grpcReq("/svc.S/M", "Version", "two", "Color", "blue"), "infra/header-matching:1"},
			{"color orange", grpcReq("/svc.S/M", "Color", "orange"), "-"},
			{"other", grpcReq("/svc.S/M", "Some-Other-Header", "one"), "-"},
			{"color blue", grpcReq("/svc.S/M", "Color", "blue"), "infra/header-matching:3/0"},
			{"color green", grpcReq("/svc.S/M", "Color", "green"), "infra/header-matching:3/1"},
			{"color red", grpcReq("/svc.S/M", "Color", "red"), "infra/header-matching:4/0"},
			{"color yellow", grpcReq("/svc.S/M", "Color", "yellow"), "infra/header-matching:4/1"},
			{"color purple", grpcReq("/svc.S/M", "Color", "purple"), "-"},
		},
	}, {
		name: "GRPC precedence: service, then method, then headers",
		rules: func() []route.Rule {
			rs := rules("ns/g",
				route.Rule{Matches: []route.Match{{GRPC: &route.GRPCMethodMatch{Method: "Echo"}}}, Backends: to("a")},
				route.Rule{Matches: []route.Match{{GRPC: &route.GRPCMethodMatch{Service: "pkg.Echo"}}}, Backends: to("a")},
				route.Rule{Matches: []route.Match{{GRPC: &route.GRPCMethodMatch{Service: "pkg.Echo", Method: "Echo"}}}, Backends: to("a")},
				route.Rule{Matches: []route.Match{{GRPC: &route.GRPCMethodMatch{Type: route.RegularExpression, Service: `pkg\..*`}}}, Backends: to("a")},
				route.Rule{Backends: to("a")},
				route.Rule{Matches: []route.Match{{Headers: hdrs("x", "1")}}, Backends: to("a")},
				route.Rule{Matches: []route.Match{{GRPC: &route.GRPCMethodMatch{Type: route.RegularExpression, Service: `pkg\.Echo`}}}, Backends: to("a")},
			)
			for i := range rs {
				rs[i].Kind = route.GRPC
			}
			return rs
		}(),
		cases: []matchCase{
			{"service and method", grpcReq("/pkg.Echo/Echo"), "ns/g:2"},
			{"exact service beats regex service", grpcReq("/pkg.Echo/Other"), "ns/g:1"},
			{"method only", grpcReq("/other.Svc/Echo"), "ns/g:0"},
			{"longer regex", grpcReq("/pkg.Other/X"), "ns/g:3"},
			{"service beats headers", grpcReq("/pkg.Other/X", "x", "1"), "ns/g:3"},
			{"no matches = every gRPC request", grpcReq("/z.Z/X"), "ns/g:4"},
			{"headers beat nothing", grpcReq("/z.Z/X", "x", "1"), "ns/g:5"},
			{"unparsable path still gRPC", grpcReq("/"), "ns/g:4"},
		},
	}, {
		name: "GRPC rules first, then HTTP rules",
		rules: concat(
			func() []route.Rule {
				rs := rules("ns/grpc", route.Rule{Matches: []route.Match{{GRPC: &route.GRPCMethodMatch{Service: "pkg.Echo"}}}, Backends: to("g")})
				rs[0].Kind = route.GRPC
				return rs
			}(),
			rules("ns/http", route.Rule{Matches: []route.Match{{Path: prefix("/")}}, Backends: to("h")}),
		),
		cases: []matchCase{
			{"gRPC request, GRPC rule", grpcReq("/pkg.Echo/Echo"), "ns/grpc:0"},
			{"gRPC request, no GRPC rule: HTTP rule", grpcReq("/pkg.Other/Echo"), "ns/http:0"},
			{"HTTP/1.1 with gRPC content-type: HTTP rules only", req("POST", "/pkg.Echo/Echo", "Content-Type", "application/grpc"), "ns/http:0"},
			{"grpc-web is not gRPC", func() *http.Request {
				r := grpcReq("/pkg.Echo/Echo")
				r.Header.Set("Content-Type", "application/grpc-web")
				return r
			}(), "ns/http:0"},
			{"grpc+proto is gRPC", func() *http.Request {
				r := grpcReq("/pkg.Echo/Echo")
				r.Header.Set("Content-Type", "application/grpc+proto")
				return r
			}(), "ns/grpc:0"},
			{"HTTP/2 without content-type", func() *http.Request {
				r := grpcReq("/pkg.Echo/Echo")
				r.Header.Del("Content-Type")
				return r
			}(), "ns/http:0"},
		},
	}}
	for _, s := range suites {
		t.Run(s.name, func(t *testing.T) {
			tab := mustTable(t, s.rules)
			for _, c := range s.cases {
				t.Run(c.name, func(t *testing.T) {
					if g := got(tab.Match(c.req)); g != c.want {
						t.Errorf("%s %s %v: matched %s, want %s", c.req.Method, c.req.URL, c.req.Header, g, c.want)
					}
				})
			}
		})
	}
}

func TestMatchEmptyTable(t *testing.T) {
	tab := mustTable(t, nil)
	if g := got(tab.Match(req("GET", "/"))); g != "-" {
		t.Errorf("empty table matched %s", g)
	}
	var nilTab *route.Table
	if g := got(nilTab.Match(req("GET", "/"))); g != "-" {
		t.Errorf("nil table matched %s", g)
	}
}

func TestSelectedFields(t *testing.T) {
	tab := mustTable(t, concat(
		rules("ns/a", route.Rule{Matches: []route.Match{{Path: exact("/e")}, {Path: prefix("/p/")}}, Backends: to("a")}),
		rules("ns/b", route.Rule{Backends: to("b")}),
	))
	tests := []struct {
		target     string
		wantRoute  string
		wantMatch  int
		wantPrefix string
	}{
		{"/e", "ns/a", 0, ""},
		{"/p/x", "ns/a", 1, "/p/"},
		{"/other", "ns/b", -1, "/"},
	}
	for _, tt := range tests {
		sel, ok := tab.Match(req("GET", tt.target))
		if !ok {
			t.Fatalf("%s: no match", tt.target)
		}
		if sel.Rule.Route != tt.wantRoute || sel.MatchIndex != tt.wantMatch || sel.PrefixMatched != tt.wantPrefix {
			t.Errorf("%s: got (%s, %d, %q), want (%s, %d, %q)", tt.target,
				sel.Rule.Route, sel.MatchIndex, sel.PrefixMatched, tt.wantRoute, tt.wantMatch, tt.wantPrefix)
		}
	}
}

// TestTableCopiesRules checks that changing the rules after NewTable does
// not change the table.
func TestTableCopiesRules(t *testing.T) {
	rs := rules("ns/a", route.Rule{Matches: []route.Match{{Path: prefix("/a"), Headers: hdrs("x", "1")}}, Backends: to("a")})
	tab := mustTable(t, rs)
	rs[0].Matches[0].Path.Value = "/b"
	rs[0].Matches[0].Headers[0].Value = "2"
	rs[0].Backends[0].Service = "changed"
	sel, ok := tab.Match(req("GET", "/a", "x", "1"))
	if !ok {
		t.Fatal("no match after the caller changed its rules")
	}
	if sel.Rule.Matches[0].Path.Value != "/a" || sel.Rule.Backends[0].Service != "a" {
		t.Errorf("table's rule changed with the caller's: %+v", sel.Rule)
	}
	if len(tab.Rules()) != 1 {
		t.Errorf("Rules() = %d rules, want 1", len(tab.Rules()))
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	extra := rules("ns/extra",
		route.Rule{Matches: []route.Match{{Path: prefix("/q"), Query: query("tier", "gold")}}, Backends: to("q")},
		route.Rule{Kind: route.GRPC, Matches: []route.Match{{GRPC: &route.GRPCMethodMatch{Service: "pkg.Echo"}, Headers: hdrs("x-tenant", "t")}}, Backends: to("g")},
		route.Rule{Matches: []route.Match{{Path: prefix("/h"), Headers: hdrs("Host", "web")}}, Backends: to("h")},
	)
	tab := mustTable(t, append(benchRules(), extra...))
	tests := []struct {
		name string
		r    *http.Request
	}{
		{"header hit", req("GET", "/api/v1/orders/17", "X-Tenant", "tenant-7", "X-Version", "v2")},
		{"miss", req("GET", "/nothing")},
		{"query", req("GET", "/q?tier=gold&x=1")},
		{"gRPC", grpcReq("/pkg.Echo/Echo", "X-Tenant", "t")},
		{"Host header match", req("GET", "/h", "Host", "web")},
	}
	for _, tt := range tests {
		if _, ok := tab.Match(tt.r); !ok && tt.name != "miss" {
			t.Fatalf("%s: no match", tt.name)
		}
		if n := testing.AllocsPerRun(100, func() { tab.Match(tt.r) }); n != 0 {
			t.Errorf("%s: Match allocates %.0f times", tt.name, n)
		}
	}
}
