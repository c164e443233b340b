package route_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weft-mesh/weft/internal/proxy/route"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// at is a route creation time, minutes after the one most test routes have.
func at(minutes int) time.Time {
	return time.Date(2024, 5, 1, 12, minutes, 0, 0, time.UTC)
}

func ptr[T any](v T) *T { return &v }

func prefix(v string) *route.PathMatch { return &route.PathMatch{Type: route.PathPrefix, Value: v} }
func exact(v string) *route.PathMatch  { return &route.PathMatch{Type: route.PathExact, Value: v} }
func regex(v string) *route.PathMatch  { return &route.PathMatch{Type: route.PathRegex, Value: v} }

func hdrs(kv ...string) []route.HeaderMatch {
	var out []route.HeaderMatch
	for i := 0; i < len(kv); i += 2 {
		out = append(out, route.HeaderMatch{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func query(kv ...string) []route.QueryMatch {
	var out []route.QueryMatch
	for i := 0; i < len(kv); i += 2 {
		out = append(out, route.QueryMatch{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func to(service string) []route.Backend {
	return []route.Backend{{Service: service, Port: 8080, Weight: 1}}
}

// rules gives each rule its Route (and Created at(0) unless set) and its Index
// as its position among the rules of that route.
func rules(name string, rs ...route.Rule) []route.Rule {
	for i := range rs {
		rs[i].Route = name
		rs[i].Index = i
		if rs[i].Created.IsZero() {
			rs[i].Created = at(0)
		}
	}
	return rs
}

func mustTable(t testing.TB, rs []route.Rule) *route.Table {
	t.Helper()
	tab, err := route.NewTable(rs)
	if err != nil {
		t.Fatalf("NewTable: %v", err)
	}
	return tab
}

// req builds a server-side request as net/http would hand it to a
// handler: HTTP/1.1, the target parsed, Host example.com unless a "Host"
// header is given, and headers given as name, value pairs (repeatable).
func req(method, target string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i < len(headers); i += 2 {
		if http.CanonicalHeaderKey(headers[i]) == "Host" {
			r.Host = headers[i+1]
			continue
		}
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

// grpcReq builds a gRPC request (HTTP/2, content-type application/grpc)
// for /service/method.
func grpcReq(path string, headers ...string) *http.Request {
	r := req(http.MethodPost, path, headers...)
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	r.Header.Set("Content-Type", "application/grpc")
	return r
}

func tlsReq(target string) *http.Request {
	r := req(http.MethodGet, target)
	r.TLS = &tls.ConnectionState{}
	return r
}

// got names the match as "route:index" ("route:index/match" when the rule
// has more than one match), or "-" for none.
func got(sel *route.Selected, ok bool) string {
	if !ok {
		if sel != nil {
			return "non-nil Selected with false"
		}
		return "-"
	}
	s := sel.Rule.Route + ":" + strconv.Itoa(sel.Rule.Index)
	if len(sel.Rule.Matches) > 1 {
		s += "/" + strconv.Itoa(sel.MatchIndex)
	}
	return s
}

// headerString renders the headers named in names, canonical name order
// as given, "Name=v1|v2" joined by " " ("Name=<absent>" if absent).
func headerString(h http.Header, names ...string) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		v, ok := h[http.CanonicalHeaderKey(n)]
		if !ok {
			b.WriteString(http.CanonicalHeaderKey(n) + "=<absent>")
			continue
		}
		b.WriteString(http.CanonicalHeaderKey(n) + "=" + strings.Join(v, "|"))
	}
	return b.String()
}
