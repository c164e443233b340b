package authz_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/proxy/authz"
)

// Callers of the tests. The workload itself is api in namespace default.
var (
	self      = ident("spiffe://cluster.local/ns/default/sa/api")
	frontend  = ident("spiffe://cluster.local/ns/default/sa/frontend")
	batch     = ident("spiffe://cluster.local/ns/batch/sa/batch")
	foreign   = ident("spiffe://other.example/ns/default/sa/frontend")
	noNS      = ident("spiffe://cluster.local/workload/frontend")
	plaintext = authz.Identity{}
)

func ident(s string) authz.Identity { return authz.NewIdentity(spiffeid.RequireFromString(s)) }

// parse reads an Authorization written in YAML, as in a proxy config.
func parse(t testing.TB, y string) *weftv1.Authorization {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatalf("test YAML: %v", err)
	}
	a := &weftv1.Authorization{}
	if err := protojson.Unmarshal(js, a); err != nil {
		t.Fatalf("test YAML does not fit Authorization: %v\n%s", err, y)
	}
	return a
}

func compile(t testing.TB, y string) *authz.Authorizer {
	t.Helper()
	az, err := authz.Compile(parse(t, y))
	if err != nil {
		t.Fatalf("compile: %v\n%s", err, y)
	}
	return az
}

// httpReq builds an HTTP/1.1 request; headers are name, value pairs.
func httpReq(method, target string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

// grpcReq builds a gRPC call of /service/method.
func grpcReq(service, method string) *http.Request {
	r := httptest.NewRequest("POST", "/"+service+"/"+method, nil)
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	r.Header.Set("Content-Type", "application/grpc")
	return r
}

// req is a request on port 8080 unless told otherwise.
type req struct {
	port uint16
	src  authz.Identity
	http *http.Request // nil: opaque TCP
}

func (r req) request() *authz.Request {
	port := r.port
	if port == 0 {
		port = 8080
	}
	return &authz.Request{Port: port, Source: r.src, Self: self, HTTP: r.http}
}

func (r req) String() string {
	s := r.src.String()
	if s == "" {
		s = "plaintext"
	}
	if r.http == nil {
		return s + " TCP"
	}
	return s + " " + r.http.Method + " " + r.http.URL.RequestURI()
}
