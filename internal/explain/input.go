package explain

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/server"
	"github.com/weft-mesh/weft/internal/suggest"
)

// Input is the request to explain, as the command's flags give it.
type Input struct {
	// From is the calling workload: "namespace/name".
	From string
	// To is the destination: "service.namespace[:port]" or
	// "namespace/service[:port]"; the port is a number or a port name, and
	// may be left out for a service with one port.
	To string
	// Method defaults to GET (POST for a gRPC call).
	Method string
	// Path defaults to "/"; it may carry a query ("/api?x=1").
	Path string
	// Headers are "name=value"; a "host" header sets the request's Host.
	Headers []string
	// GRPC is "package.Service/Method" for a gRPC call.
	GRPC string
}

// ErrNotFound is wrapped by the errors for a workload, service or port
// that does not exist.
var ErrNotFound = errors.New("not found")

// httpMethods are the methods routes may match (Gateway API's HTTPMethod).
func httpMethods() []string {
	return []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodConnect, http.MethodOptions, http.MethodTrace, http.MethodPatch}
}

// parsed is Input checked: the request's parts, not yet tied to the model.
type parsed struct {
	from    model.ObjectRef
	to      model.ServiceRef
	port    string // as given: a number, a name, or ""
	method  string
	path    string // path and query
	headers [][2]string
	host    string
	grpc    string
}

// parse checks every flag value of in and says, for a bad one, which
// values are allowed.
func parse(in Input) (parsed, error) {
	var p parsed
	ns, name, ok := strings.Cut(in.From, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return p, fmt.Errorf("--from %q: want namespace/workload, e.g. --from shop/frontend-1", in.From)
	}
	p.from = model.ObjectRef{Namespace: ns, Name: name}
	var err error
	if p.to, p.port, err = parseTarget(in.To); err != nil {
		return p, err
	}

	p.method = in.Method
	if in.GRPC != "" {
		svc, method, ok := strings.Cut(in.GRPC, "/")
		if !ok || svc == "" || method == "" || strings.Contains(method, "/") || strings.HasPrefix(in.GRPC, "/") {
			return p, fmt.Errorf("--grpc %q: want package.Service/Method, e.g. --grpc shop.Catalog/GetItem", in.GRPC)
		}
		if in.Path != "" {
			return p, fmt.Errorf("--grpc sets the path (/%s); drop --path %s", in.GRPC, in.Path)
		}
		if p.method != "" && p.method != http.MethodPost {
			return p, fmt.Errorf("--method %s: a gRPC call is a POST; drop --method", p.method)
		}
		p.grpc, p.method, p.path = in.GRPC, http.MethodPost, "/"+in.GRPC
	}
	if p.method == "" {
		p.method = http.MethodGet
	}
	if !slices.Contains(httpMethods(), p.method) {
		return p, fmt.Errorf("--method %q: use one of %s (methods are upper case)", in.Method, strings.Join(httpMethods(), ", "))
	}
	if p.path == "" {
		p.path = "/"
		if in.Path != "" {
			p.path = in.Path
		}
	}
	if !strings.HasPrefix(p.path, "/") {
		return p, fmt.Errorf("--path %q: want an absolute path, e.g. --path /api/items?page=2", in.Path)
	}
	if _, err := url.ParseRequestURI(p.path); err != nil {
		return p, fmt.Errorf("--path %q: not a request path: %w", in.Path, err)
	}
	for _, h := range in.Headers {
		name, value, ok := strings.Cut(h, "=")
		if !ok || !isToken(name) {
			return p, fmt.Errorf("--header %q: want name=value with a header name of letters, digits and -, e.g. --header x-canary=true", h)
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return p, fmt.Errorf("--header %q: a header value cannot hold line breaks or NUL", h)
		}
		if strings.EqualFold(name, "host") {
			p.host = value
			continue
		}
		p.headers = append(p.headers, [2]string{name, value})
	}
	return p, nil
}

// parseTarget reads "service.namespace[:port]" or
// "namespace/service[:port]" (server.ParseServiceRef's form, which
// proxies' --watch takes).
func parseTarget(s string) (model.ServiceRef, string, error) {
	if strings.Contains(s, "/") {
		// The port may be a name here too: split it off before
		// ParseServiceRef, which takes numbers only.
		rest, port, _ := strings.Cut(s, ":")
		ref, err := server.ParseServiceRef(rest)
		if err != nil || strings.Contains(ref.Name, "/") {
			return model.ServiceRef{}, "", fmt.Errorf("--to %q: want service.namespace[:port] or namespace/service[:port], e.g. --to web.shop:80", s)
		}
		return ref.ServiceRef, port, nil
	}
	host, port, _ := strings.Cut(s, ":")
	name, ns, ok := strings.Cut(host, ".")
	// A cluster-style name is accepted: web.shop.svc.cluster.local.
	ns = strings.TrimSuffix(strings.TrimSuffix(ns, ".svc.cluster.local"), ".svc")
	if !ok || name == "" || ns == "" || strings.Contains(ns, ".") {
		return model.ServiceRef{}, "", fmt.Errorf("--to %q: want service.namespace[:port] or namespace/service[:port], e.g. --to web.shop:80", s)
	}
	return model.ServiceRef{Namespace: ns, Name: name}, port, nil
}

// servicePort finds the port of svc the request names: by number or name,
// or the only one.
func servicePort(svc *model.Service, port string) (model.ServicePort, error) {
	var have []string
	for _, p := range svc.Ports {
		have = append(have, strings.TrimSpace(strconv.Itoa(int(p.Port))+" "+paren(p.Name)))
	}
	list := strings.Join(have, ", ")
	if port == "" {
		if len(svc.Ports) == 1 {
			return svc.Ports[0], nil
		}
		return model.ServicePort{}, fmt.Errorf("--to %s.%s: the service has %d ports (%s); add :port", svc.Name, svc.Namespace, len(svc.Ports), list)
	}
	for _, p := range svc.Ports {
		if strconv.Itoa(int(p.Port)) == port || p.Name != "" && p.Name == port {
			return p, nil
		}
	}
	return model.ServicePort{}, &notFoundError{fmt.Sprintf("--to %s.%s:%s: the service has no port %s; its ports: %s", svc.Name, svc.Namespace, port, port, list)}
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}

// isToken reports whether s is an HTTP token (RFC 9110), as header names
// are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// closest returns up to three of names that are close to want, closest
// first: an edit distance of at most a third of its length (at least 2),
// one containing the other, or the same base name (baseOf) in another
// namespace.
func closest(want string, names []string, baseOf func(string) string) []string {
	type cand struct {
		name string
		d    int
	}
	limit := max(2, len(want)/3)
	var cs []cand
	for _, n := range names {
		d := suggest.Distance(want, n)
		if baseOf(n) == baseOf(want) {
			d = min(d, 1)
		}
		if d <= limit || strings.Contains(n, want) || strings.Contains(want, n) {
			cs = append(cs, cand{n, d})
		}
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return a.d - b.d })
	var out []string
	for _, c := range cs[:min(3, len(cs))] {
		out = append(out, c.name)
	}
	return out
}

// notFoundError is an error for a name the model does not have; it is
// ErrNotFound.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }

func (e *notFoundError) Is(target error) bool { return target == ErrNotFound }

// notFound says that the model has no what called name (given by flag),
// what is close to it, and what there is.
func notFound(flag, what, name string, all []string, baseOf func(string) string) error {
	slices.Sort(all)
	msg := fmt.Sprintf("%s %s: there is no %s %s", flag, name, what, name)
	if c := closest(name, all, baseOf); len(c) > 0 {
		msg += "; did you mean " + strings.Join(c, " or ") + "?"
	}
	switch {
	case len(all) == 0:
		msg += fmt.Sprintf(" (the directory defines no %s)", what)
	case len(all) <= 12:
		msg += fmt.Sprintf(" (%ss: %s)", what, strings.Join(all, ", "))
	default:
		msg += fmt.Sprintf(" (%d %ss, e.g. %s)", len(all), what, strings.Join(all[:12], ", "))
	}
	return &notFoundError{msg}
}
