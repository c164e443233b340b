package route_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/route"
)

// TestRequestHeaderModifier follows HTTPRouteRequestHeaderModifier.
func TestRequestHeaderModifier(t *testing.T) {
	mod := func(p string, m route.HeaderModifier) route.Rule {
		return route.Rule{Matches: []route.Match{{Path: prefix(p)}}, Filters: route.Filters{RequestHeaders: &m}, Backends: to("v1")}
	}
	h := func(kv ...string) []route.Header {
		var out []route.Header
		for i := 0; i < len(kv); i += 2 {
			out = append(out, route.Header{Name: kv[i], Value: kv[i+1]})
		}
		return out
	}
	tab := mustTable(t, rules("infra/request-header-modifier",
		mod("/set", route.HeaderModifier{Set: h("X-Header-Set", "set-overwrites-values")}),
		mod("/add", route.HeaderModifier{Add: h("X-Header-Add", "add-appends-values")}),
		mod("/remove", route.HeaderModifier{Remove: []string{"X-Header-Remove"}}),
		mod("/multiple", route.HeaderModifier{
			Set:    h("X-Header-Set-1", "header-set-1", "X-Header-Set-2", "header-set-2"),
			Add:    h("X-Header-Add-1", "header-add-1", "X-Header-Add-2", "header-add-2", "X-Header-Add-3", "header-add-3"),
			Remove: []string{"X-Header-Remove-1", "X-Header-Remove-2"},
		}),
		mod("/case-insensitivity", route.HeaderModifier{
			Set: h("X-Header-Set", "header-set"),
			Add: h("x-header-add", "header-add", "x-lowercase-add", "lower-add", "x-Mixedcase-ADD-1", "mixedcase-add-1",
				"X-mixeDcase-add-2", "mixedcase-add-2", "X-UPPERCASE-ADD", "uppercase-add"),
			Remove: []string{"X-Header-Remove"},
		}),
		mod("/host", route.HeaderModifier{Set: h("host", "other.example")}),
	))
	tests := []struct {
		name     string
		req      *http.Request
		check    []string
		want     string
		wantHost string
	}{{
		name:  "set overwrites",
		req:   req("GET", "/set", "Some-Other-Header", "val", "X-Header-Set", "some-other-value"),
		check: []string{"Some-Other-Header", "X-Header-Set"},
		want:  "Some-Other-Header=val X-Header-Set=set-overwrites-values",
	}, {
		name:  "set adds when absent",
		req:   req("GET", "/set", "Some-Other-Header", "val"),
		check: []string{"Some-Other-Header", "X-Header-Set"},
		want:  "Some-Other-Header=val X-Header-Set=set-overwrites-values",
	}, {
		name:  "add appends",
		req:   req("GET", "/add", "Some-Other-Header", "val", "X-Header-Add", "some-other-value"),
		check: []string{"Some-Other-Header", "X-Header-Add"},
		want:  "Some-Other-Header=val X-Header-Add=some-other-value|add-appends-values",
	}, {
		name:  "add when absent",
		req:   req("GET", "/add"),
		check: []string{"X-Header-Add"},
		want:  "X-Header-Add=add-appends-values",
	}, {
		name:  "remove",
		req:   req("GET", "/remove", "Some-Other-Header", "val", "X-Header-Remove", "val"),
		check: []string{"Some-Other-Header", "X-Header-Remove"},
		want:  "Some-Other-Header=val X-Header-Remove=<absent>",
	}, {
		name: "multiple",
		req: req("GET", "/multiple", "X-Header-Set-2", "set-val-2", "X-Header-Add-2", "add-val-2",
			"X-Header-Remove-2", "remove-val-2", "Another-Header", "another-header-val"),
		check: []string{"X-Header-Set-1", "X-Header-Set-2", "X-Header-Add-1", "X-Header-Add-2", "X-Header-Add-3",
			"X-Header-Remove-1", "X-Header-Remove-2", "Another-Header"},
		want: "X-Header-Set-1=header-set-1 X-Header-Set-2=header-set-2 X-Header-Add-1=header-add-1 " +
			"X-Header-Add-2=add-val-2|header-add-2 X-Header-Add-3=header-add-3 X-Header-Remove-1=<absent> " +
			"X-Header-Remove-2=<absent> Another-Header=another-header-val",
	}, {
		name: "case insensitivity",
		req: req("GET", "/case-insensitivity", "x-header-set", "original-val-set", "x-header-add", "original-val-add",
			"x-header-remove", "original-val-remove", "Another-Header", "another-header-val"),
		check: []string{"X-Header-Set", "X-Header-Add", "X-Lowercase-Add", "X-Mixedcase-Add-1", "X-Mixedcase-Add-2",
			"X-Uppercase-Add", "X-Header-Remove", "Another-Header"},
		want: "X-Header-Set=header-set X-Header-Add=original-val-add|header-add X-Lowercase-Add=lower-add " +
			"X-Mixedcase-Add-1=mixedcase-add-1 X-Mixedcase-Add-2=mixedcase-add-2 X-Uppercase-Add=uppercase-add " +
			"X-Header-Remove=<absent> Another-Header=another-header-val",
	}, {
		name:     "setting Host sets r.Host",
		req:      req("GET", "/host", "Host", "web:8080"),
		check:    []string{"Host"},
		want:     "Host=<absent>",
		wantHost: "other.example",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, ok := tab.Match(tt.req)
			if !ok {
				t.Fatal("no match")
			}
			if loc, code := sel.ApplyRequestFilters(tt.req); loc != "" || code != 0 {
				t.Fatalf("redirect %d %q from a header modifier", code, loc)
			}
			if g := headerString(tt.req.Header, tt.check...); g != tt.want {
				t.Errorf("headers:\n got %s\nwant %s", g, tt.want)
			}
			if tt.wantHost != "" && tt.req.Host != tt.wantHost {
				t.Errorf("Host = %q, want %q", tt.req.Host, tt.wantHost)
			}
		})
	}
}

func TestApplyHeaderModifier(t *testing.T) {
	tests := []struct {
		name  string
		in    http.Header
		m     *route.HeaderModifier
		check []string
		want  string
	}{{
		name:  "nil modifier",
		in:    http.Header{"A": {"1"}},
		check: []string{"A"},
		want:  "A=1",
	}, {
		name: "remove, set, add",
		in:   http.Header{"A": {"1"}, "B": {"2"}, "C": {"3", "4"}},
		m: &route.HeaderModifier{
			Remove: []string{"a"},
			Set:    []route.Header{{Name: "c", Value: "x"}},
			Add:    []route.Header{{Name: "b", Value: "y"}, {Name: "d", Value: "z"}},
		},
		check: []string{"A", "B", "C", "D"},
		want:  "A=<absent> B=2|y C=x D=z",
	}, {
		name: "first of duplicate names wins",
		in:   http.Header{},
		m: &route.HeaderModifier{
			Set: []route.Header{{Name: "x-a", Value: "first"}, {Name: "X-A", Value: "second"}},
			Add: []route.Header{{Name: "x-b", Value: "first"}, {Name: "X-b", Value: "second"}},
		},
		check: []string{"X-A", "X-B"},
		want:  "X-A=first X-B=first",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route.ApplyResponseHeaders(tt.in, tt.m)
			if g := headerString(tt.in, tt.check...); g != tt.want {
				t.Errorf("got %s, want %s", g, tt.want)
			}
		})
	}
	route.ApplyHeaderModifier(nil, &route.HeaderModifier{Set: []route.Header{{Name: "a", Value: "b"}}}) // must not panic
}

func TestBackendRequestHeaders(t *testing.T) {
	b := route.Backend{Service: "s", Port: 80, Weight: 1, Filters: route.Filters{RequestHeaders: &route.HeaderModifier{
		Add: []route.Header{{Name: "X-Backend", Value: "s"}},
	}}}
	r := req("GET", "/")
	r.Header = nil
	b.ApplyRequestHeaders(r)
	if g := headerString(r.Header, "X-Backend"); g != "X-Backend=s" {
		t.Errorf("got %s", g)
	}
}

// redirectRule is a single-rule route redirecting requests under p.
func redirectRule(p string, red route.Redirect) []route.Rule {
	return rules("infra/redirect", route.Rule{Matches: []route.Match{{Path: prefix(p)}}, Filters: route.Filters{Redirect: &red}})
}

// TestRedirect follows HTTPRouteRedirectPath, HTTPRouteRedirectHostAndStatus,
// HTTPRouteRedirectPortAndScheme and HTTPRouteRedirectScheme. The sidecar's
// "listener" is the port in the Host header, scheme http unless r.TLS.
func TestRedirect(t *testing.T) {
	tests := []struct {
		name     string
		red      route.Redirect
		prefix   string // default "/"
		req      *http.Request
		wantLoc  string
		wantCode int
	}{
		{"prefix replaced", route.Redirect{Path: &route.PathModifier{ReplacePrefixMatch: ptr("/replacement-prefix")}}, "/original-prefix",
			req("GET", "/original-prefix/lemon"), "http://example.com/replacement-prefix/lemon", 302},
		{"full path replaced", route.Redirect{Path: &route.PathModifier{ReplaceFullPath: ptr("/full-path-replacement")}}, "/full",
			req("GET", "/full/path/original"), "http://example.com/full-path-replacement", 302},
		{"path and host", route.Redirect{Hostname: ptr("example.org"), Path: &route.PathModifier{ReplacePrefixMatch: ptr("/replacement-prefix")}}, "/path-and-host",
			req("GET", "/path-and-host"), "http://example.org/replacement-prefix", 302},
		{"path and status", route.Redirect{Path: &route.PathModifier{ReplaceFullPath: ptr("/full-path-replacement")}, StatusCode: 301}, "/path-and-status",
			req("GET", "/path-and-status"), "http://example.com/full-path-replacement", 301},
		{"hostname", route.Redirect{Hostname: ptr("example.org")}, "",
			req("GET", "/hostname-redirect"), "http://example.org/hostname-redirect", 302},
		{"host and status", route.Redirect{Hostname: ptr("example.org"), StatusCode: 301}, "",
			req("GET", "/host-and-status"), "http://example.org/host-and-status", 301},
		{"hostname keeps the listener port", route.Redirect{Hostname: ptr("example.org")}, "",
			req("GET", "/x", "Host", "web:8080"), "http://example.org:8080/x", 302},
		{"scheme-nil-and-port-nil", route.Redirect{}, "",
			req("GET", "/scheme-nil-and-port-nil", "Host", "example.org"), "http://example.org/scheme-nil-and-port-nil", 302},
		{"scheme-nil-and-port-nil on port 80", route.Redirect{}, "",
			req("GET", "/p", "Host", "example.org:80"), "http://example.org/p", 302},
		{"scheme-nil-and-port-80", route.Redirect{Port: ptr[uint16](80)}, "",
			req("GET", "/p", "Host", "example.org"), "http://example.org/p", 302},
		{"scheme-nil-and-port-8080", route.Redirect{Port: ptr[uint16](8080)}, "",
			req("GET", "/p", "Host", "example.org"), "http://example.org:8080/p", 302},
		{"scheme-https-and-port-nil", route.Redirect{Scheme: ptr("https")}, "",
			req("GET", "/p", "Host", "example.org:8080"), "https://example.org/p", 302},
		{"scheme-https-and-port-443", route.Redirect{Scheme: ptr("https"), Port: ptr[uint16](443)}, "",
			req("GET", "/p", "Host", "example.org"), "https://example.org/p", 302},
		{"scheme-https-and-port-8443", route.Redirect{Scheme: ptr("https"), Port: ptr[uint16](8443)}, "",
			req("GET", "/p", "Host", "example.org"), "https://example.org:8443/p", 302},
		{"https listener: scheme-nil-and-port-nil", route.Redirect{}, "",
			tlsReq("https://example.org/p"), "https://example.org/p", 302},
		{"https listener: scheme-http-and-port-nil", route.Redirect{Scheme: ptr("http")}, "",
			tlsReq("https://example.org/p"), "http://example.org/p", 302},
		{"https listener: scheme-http-and-port-80", route.Redirect{Scheme: ptr("http"), Port: ptr[uint16](80)}, "",
			tlsReq("https://example.org/p"), "http://example.org/p", 302},
		{"https listener: scheme-http-and-port-8080", route.Redirect{Scheme: ptr("http"), Port: ptr[uint16](8080)}, "",
			tlsReq("https://example.org/p"), "http://example.org:8080/p", 302},
		{"scheme", route.Redirect{Scheme: ptr("https")}, "",
			req("GET", "/scheme"), "https://example.com/scheme", 302},
		{"scheme and host", route.Redirect{Scheme: ptr("https"), Hostname: ptr("example.org")}, "",
			req("GET", "/scheme-and-host"), "https://example.org/scheme-and-host", 302},
		{"scheme and status", route.Redirect{Scheme: ptr("https"), StatusCode: 301}, "",
			req("GET", "/scheme-and-status"), "https://example.com/scheme-and-status", 301},
		{"query kept", route.Redirect{Hostname: ptr("example.org")}, "",
			req("GET", "/q?a=1&b=x%20y"), "http://example.org/q?a=1&b=x%20y", 302},
		{"query kept with full path", route.Redirect{Path: &route.PathModifier{ReplaceFullPath: ptr("/new")}}, "",
			req("GET", "/old?a=1"), "http://example.com/new?a=1", 302},
		{"escaped path kept", route.Redirect{Scheme: ptr("https")}, "",
			req("GET", "/a%20b/c%2Fd"), "https://example.com/a%20b/c%2Fd", 302},
		{"prefix replaced, client's escaping kept", route.Redirect{Path: &route.PathModifier{ReplacePrefixMatch: ptr("/new")}}, "/old",
			req("GET", "/old/a%2Fb"), "http://example.com/new/a%2Fb", 302},
		{"strip prefix", route.Redirect{Path: &route.PathModifier{ReplacePrefixMatch: ptr("/")}}, "/strip",
			req("GET", "/strip/x"), "http://example.com/x", 302},
		{"IPv6 host with port", route.Redirect{}, "",
			req("GET", "/x", "Host", "[::1]:8080"), "http://[::1]:8080/x", 302},
		{"IPv6 host, port 80 left out", route.Redirect{Port: ptr[uint16](80)}, "",
			req("GET", "/x", "Host", "[fd00::1]:8080"), "http://[fd00::1]/x", 302},
		{"303", route.Redirect{StatusCode: 303}, "", req("GET", "/x"), "http://example.com/x", 303},
		{"307", route.Redirect{StatusCode: 307}, "", req("GET", "/x"), "http://example.com/x", 307},
		{"308", route.Redirect{StatusCode: 308}, "", req("GET", "/x"), "http://example.com/x", 308},
		{"no Host: path only", route.Redirect{}, "", req("GET", "/x", "Host", ""), "/x", 302},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.prefix
			if p == "" {
				p = "/"
			}
			tab := mustTable(t, redirectRule(p, tt.red))
			sel, ok := tab.Match(tt.req)
			if !ok {
				t.Fatal("no match")
			}
			before := tt.req.URL.String() + " " + tt.req.Host
			loc, code := sel.ApplyRequestFilters(tt.req)
			if loc != tt.wantLoc || code != tt.wantCode {
				t.Errorf("got %d %q, want %d %q", code, loc, tt.wantCode, tt.wantLoc)
			}
			if after := tt.req.URL.String() + " " + tt.req.Host; after != before {
				t.Errorf("redirect changed the request: %s -> %s", before, after)
			}
		})
	}
}

// TestRewrite follows HTTPRouteRewritePath and HTTPRouteRewriteHost.
func TestRewrite(t *testing.T) {
	rw := func(p string, w route.Rewrite, m *route.HeaderModifier) route.Rule {
		return route.Rule{Matches: []route.Match{{Path: prefix(p)}}, Filters: route.Filters{Rewrite: &w, RequestHeaders: m}, Backends: to("v1")}
	}
	headers := &route.HeaderModifier{
		Set:    []route.Header{{Name: "X-Header-Set", Value: "set-overwrites-values"}},
		Add:    []route.Header{{Name: "X-Header-Add", Value: "header-val-1"}},
		Remove: []string{"X-Header-Remove"},
	}
	tab := mustTable(t, rules("infra/rewrite",
		rw("/prefix/one", route.Rewrite{Path: &route.PathModifier{ReplacePrefixMatch: ptr("/one")}}, nil),
		rw("/full/one", route.Rewrite{Path: &route.PathModifier{ReplaceFullPath: ptr("/one")}}, nil),
		rw("/full/rewrite-path-and-modify-headers", route.Rewrite{Path: &route.PathModifier{ReplaceFullPath: ptr("/test")}}, headers),
		rw("/prefix/rewrite-path-and-modify-headers", route.Rewrite{Path: &route.PathModifier{ReplacePrefixMatch: ptr("/prefix")}}, headers),
		rw("/strip-prefix", route.Rewrite{Path: &route.PathModifier{ReplacePrefixMatch: ptr("/")}}, nil),
		rw("/one", route.Rewrite{Hostname: ptr("one.example.org")}, nil),
		rw("/rewrite-host-and-modify-headers", route.Rewrite{Hostname: ptr("test.example.org")}, headers),
		rw("/enc", route.Rewrite{Path: &route.PathModifier{ReplacePrefixMatch: ptr("/new%20dir")}}, nil),
		rw("/", route.Rewrite{}, nil),
	))
	tests := []struct {
		name        string
		req         *http.Request
		wantPath    string
		wantRawPath string
		wantURI     string
		wantHost    string
		wantHeaders string
	}{
		{"prefix", req("GET", "/prefix/one/two"), "/one/two", "", "/one/two", "example.com", ""},
		{"full", req("GET", "/full/one/two"), "/one", "", "/one", "example.com", ""},
		{"full keeps query", req("GET", "/full/one/two?q=v&x"), "/one", "", "/one?q=v&x", "example.com", ""},
		{"full and headers", req("GET", "/full/rewrite-path-and-modify-headers/test?q=1", "X-Header-Remove", "rm", "X-Header-Add", "orig"),
			"/test", "", "/test?q=1", "example.com",
			"X-Header-Set=set-overwrites-values X-Header-Add=orig|header-val-1 X-Header-Remove=<absent>"},
		{"prefix and headers", req("GET", "/prefix/rewrite-path-and-modify-headers/one", "X-Header-Set", "old"),
			"/prefix/one", "", "/prefix/one", "example.com",
			"X-Header-Set=set-overwrites-values X-Header-Add=header-val-1 X-Header-Remove=<absent>"},
		{"strip prefix", req("GET", "/strip-prefix/three"), "/three", "", "/three", "example.com", ""},
		{"strip prefix to root", req("GET", "/strip-prefix"), "/", "", "/", "example.com", ""},
		{"strip prefix with trailing slash", req("GET", "/strip-prefix/"), "/", "", "/", "example.com", ""},
		{"host", req("GET", "/one"), "/one", "", "/one", "one.example.org", ""},
		{"host replaces port too", req("GET", "/one/x", "Host", "web:8080"), "/one/x", "", "/one/x", "one.example.org", ""},
		{"host and headers", req("GET", "/rewrite-host-and-modify-headers"), "/rewrite-host-and-modify-headers", "",
			"/rewrite-host-and-modify-headers", "test.example.org",
			"X-Header-Set=set-overwrites-values X-Header-Add=header-val-1 X-Header-Remove=<absent>"},
		{"encoded slash kept", req("GET", "/prefix/one/a%2Fb"), "/one/a/b", "/one/a%2Fb", "/one/a%2Fb", "example.com", ""},
		{"encoded replacement", req("GET", "/enc/x"), "/new dir/x", "", "/new%20dir/x", "example.com", ""},
		{"no rewrite", req("GET", "/other?z"), "/other", "", "/other?z", "example.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, ok := tab.Match(tt.req)
			if !ok {
				t.Fatal("no match")
			}
			if loc, code := sel.ApplyRequestFilters(tt.req); loc != "" || code != 0 {
				t.Fatalf("redirect %d %q from a rewrite", code, loc)
			}
			u := tt.req.URL
			if u.Path != tt.wantPath || u.RawPath != tt.wantRawPath || tt.req.RequestURI != tt.wantURI || tt.req.Host != tt.wantHost {
				t.Errorf("got Path %q RawPath %q RequestURI %q Host %q, want %q %q %q %q",
					u.Path, u.RawPath, tt.req.RequestURI, tt.req.Host, tt.wantPath, tt.wantRawPath, tt.wantURI, tt.wantHost)
			}
			if u.RequestURI() != tt.wantURI {
				t.Errorf("URL.RequestURI() = %q, want %q", u.RequestURI(), tt.wantURI)
			}
			if tt.wantHeaders != "" {
				if g := headerString(tt.req.Header, "X-Header-Set", "X-Header-Add", "X-Header-Remove"); g != tt.wantHeaders {
					t.Errorf("headers:\n got %s\nwant %s", g, tt.wantHeaders)
				}
			}
		})
	}
}

// TestReplacePrefixMatchSpecTable runs the table in the Gateway API's
// HTTPPathModifier documentation, as a rewrite and as a redirect.
func TestReplacePrefixMatchSpecTable(t *testing.T) {
	tests := []struct{ path, prefix, replace, want string }{
		{"/foo/bar", "/foo", "/xyz", "/xyz/bar"},
		{"/foo/bar", "/foo", "/xyz/", "/xyz/bar"},
		{"/foo/bar", "/foo/", "/xyz", "/xyz/bar"},
		{"/foo/bar", "/foo/", "/xyz/", "/xyz/bar"},
		{"/foo", "/foo", "/xyz", "/xyz"},
		{"/foo/", "/foo", "/xyz", "/xyz/"},
		{"/foo/bar", "/foo", "", "/bar"},
		{"/foo/", "/foo", "", "/"},
		{"/foo", "/foo", "", "/"},
		{"/foo/", "/foo", "/", "/"},
		{"/foo", "/foo", "/", "/"},
		{"/foo/baz", "/foo", "/bar", "/bar/baz"},
		{"/foo", "/", "/bar", "/bar/foo"},
		{"/", "/", "/bar", "/bar/"},
	}
	for _, tt := range tests {
		name := tt.path + " prefix " + tt.prefix + " replace " + tt.replace
		t.Run(name, func(t *testing.T) {
			pm := &route.PathModifier{ReplacePrefixMatch: ptr(tt.replace)}
			tab := mustTable(t, rules("ns/rw", route.Rule{Matches: []route.Match{{Path: prefix(tt.prefix)}}, Filters: route.Filters{Rewrite: &route.Rewrite{Path: pm}}, Backends: to("a")}))
			r := req("GET", tt.path)
			sel, ok := tab.Match(r)
			if !ok {
				t.Fatal("no match")
			}
			sel.ApplyRequestFilters(r)
			if r.URL.Path != tt.want || r.URL.EscapedPath() != tt.want {
				t.Errorf("rewrite: got %q (%q), want %q", r.URL.Path, r.URL.EscapedPath(), tt.want)
			}

			tab = mustTable(t, rules("ns/rd", route.Rule{Matches: []route.Match{{Path: prefix(tt.prefix)}}, Filters: route.Filters{Redirect: &route.Redirect{Path: pm}}}))
			r = req("GET", tt.path)
			sel, ok = tab.Match(r)
			if !ok {
				t.Fatal("no match")
			}
			loc, _ := sel.ApplyRequestFilters(r)
			if want := "http://example.com" + tt.want; loc != want {
				t.Errorf("redirect: got %q, want %q", loc, want)
			}
		})
	}
}

// TestHandBuiltSelected checks that a Selected built by hand (not by a
// Table) works: PickBackend and ApplyRequestFilters use only its exported
// fields.
func TestHandBuiltSelected(t *testing.T) {
	rule := route.Rule{
		Route:    "ns/hand",
		Matches:  []route.Match{{Path: prefix("/a/")}},
		Filters:  route.Filters{Rewrite: &route.Rewrite{Path: &route.PathModifier{ReplacePrefixMatch: ptr("/b")}}},
		Backends: []route.Backend{{Service: "s", Port: 80, Weight: 0}, {Service: "t", Port: 80, Weight: 5}},
	}
	sel := &route.Selected{Rule: &rule, PrefixMatched: "/a/"}
	r := req("GET", "/a/x?y")
	sel.ApplyRequestFilters(r)
	if r.URL.Path != "/b/x" || r.RequestURI != "/b/x?y" {
		t.Errorf("rewrite: Path %q RequestURI %q", r.URL.Path, r.RequestURI)
	}
	r = req("GET", "/elsewhere")
	sel.ApplyRequestFilters(r)
	if r.URL.Path != "/elsewhere" {
		t.Errorf("a request not under the prefix was rewritten to %q", r.URL.Path)
	}
	if b, ok := sel.PickBackend(0); !ok || b.Service != "t" {
		t.Errorf("PickBackend = %v, %v", b, ok)
	}
	var nilSel *route.Selected
	if _, ok := nilSel.PickBackend(1); ok {
		t.Error("nil Selected picked a backend")
	}
	if loc, code := nilSel.ApplyRequestFilters(r); loc != "" || code != 0 {
		t.Error("nil Selected redirected")
	}
}

func TestRedirectNotForGRPCOrBackends(t *testing.T) {
	// A redirecting rule's backends are ignored: ApplyRequestFilters
	// reports the redirect whatever PickBackend would say.
	rs := rules("ns/r", route.Rule{Filters: route.Filters{Redirect: &route.Redirect{Scheme: ptr("https")}}, Backends: to("a")})
	tab := mustTable(t, rs)
	sel, _ := tab.Match(req("GET", "/x"))
	if loc, code := sel.ApplyRequestFilters(req("GET", "/x")); !strings.HasPrefix(loc, "https://") || code != 302 {
		t.Errorf("got %d %q", code, loc)
	}
}
