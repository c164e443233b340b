// Package route routes each request the weft proxy receives for a service
// by the HTTPRoute and GRPCRoute rules attached to that service (the
// Gateway API's GAMMA pattern), with the Gateway API's semantics: which rule
// matches, which backend it goes to, and what its filters change.
//
// The package is pure: the control plane or the config loader turns route
// resources into []Rule, NewTable validates them and precomputes their
// precedence, and the proxy calls Table.Match for each request, then
// Selected.PickBackend and Selected.ApplyRequestFilters (and
// ApplyResponseHeaders on the response). Nothing here knows of Kubernetes
// or protobuf. A Table is immutable and safe for concurrent use; replace it
// as a whole when the routes change.
//
// # Matching
//
// A rule matches when any of its matches does; a match when all its
// conditions do. A rule with no matches matches every request (HTTP: the
// spec's default PathPrefix "/"; GRPC: every gRPC request).
//
//   - Paths are compared with r.URL.Path, the decoded path as net/http
//     parsed it, with no further normalisation ("" counts as "/"). Exact and
//     PathPrefix values, written percent-encoded as in the resource, are
//     decoded once when the table is built. PathPrefix is element-wise:
//     "/foo" and "/foo/" match "/foo", "/foo/" and "/foo/bar", not "/foobar";
//     "/" matches everything.
//   - Regular expressions (paths, header and query values, gRPC service and
//     method) are Go's RE2 and must match the whole value: they are anchored
//     at both ends.
//   - Header names are case-insensitive; request headers are looked up by
//     their canonical name, as net/http stores them. A match on "Host" is
//     against r.Host. A header sent more than once is matched as its values
//     joined with "," (RFC 9110 section 5.3; the spec leaves repeated
//     headers to the implementation and writes combined values that way in
//     its own examples). When a match names the same header twice, only the
//     first counts, as the spec requires; likewise for query parameters.
//   - Query parameter names are case-sensitive and only the first value of a
//     repeated parameter is matched (the spec's recommendation). Names and
//     values are decoded as url.ParseQuery does.
//   - A gRPC request is an HTTP/2 request whose content-type is
//     application/grpc or application/grpc+<codec>. It is matched against
//     the GRPC rules first; if none matches, against the HTTP rules, so an
//     HTTPRoute still catches gRPC traffic no GRPCRoute claims. Any other
//     request is matched against the HTTP rules only. The gRPC service and
//     method come from the path "/<service>/<method>".
//
// # Precedence
//
// When several matches (of any rules of any routes) match, the first in this
// order wins. HTTP:
//
//  1. an Exact path, then a PathPrefix path, then a regular expression path
//     (the spec leaves regular expressions to the implementation: here they
//     rank after every PathPrefix, "/" included, as in Istio);
//  2. the longer path value (PathPrefix: number of characters as written;
//     regular expressions: the longer pattern);
//  3. a method match over none;
//  4. more header matches;
//  5. more query parameter matches.
//
// GRPC: the longer matching service, then the longer matching method, then
// more header matches. Hostnames are not matched here. Where the spec counts
// "characters in a matching service" a regular expression is not
// comparable, so: an Exact service over a regular expression over none,
// then the longer value or pattern; the same for the method.
//
// Remaining ties, for both: the route created first (Created), then the
// route name ("namespace/name") in alphabetical order, then the rule Index,
// then the order of the matches within the rule.
//
// # Filters
//
// RequestHeaderModifier and ResponseHeaderModifier remove, then set (replace),
// then add (append) headers; the spec allows one action per header name, so
// the order matters only to hand-built modifiers. RequestRedirect answers
// instead of forwarding; its Location is built from the request: the
// request's scheme ("http": the sidecar sees plaintext; "https" if r.TLS is
// set), the Host without its port, the path (replaced as configured) and the
// query as received. Its port, per the spec: the configured one; else, if a
// scheme is configured, that scheme's well-known port; else the listener
// port, which for a sidecar is the port in the Host header (none there: the
// scheme's default). Port 80 with http and 443 with https are left out. A
// request with no Host gets a Location of the path alone. URLRewrite sets
// r.Host and r.URL.Path and RawPath. ReplacePrefixMatch replaces the matched
// prefix element by element, as in the table of the spec's HTTPPathModifier:
// prefix "/foo" and replacement "/bar" turn "/foo/baz" into "/bar/baz" and
// "/foo" into "/bar"; an empty replacement or "/" turns "/foo/baz" into "/baz"
// and "/foo" into "/".
//
// # Validation
//
// NewTable checks what the Gateway API's CRD validation checks and what this
// package relies on, and reports every problem found (errors.Join of
// *RuleError, each naming the route, rule index, field and fix): regular
// expressions compile; Exact and PathPrefix values are absolute paths
// without "//", "." or ".." segments, encoded slashes, "#" or unencoded
// characters; methods are the spec's; header and query names are tokens and
// values have no control characters; a header modifier touches each header
// once; redirect schemes are http or https, hostnames are precise hostnames,
// status codes 301 or 302 (303, 307 and 308 too, as the spec now allows);
// a rule does not both redirect and rewrite; ReplacePrefixMatch is used only
// by a rule with exactly one match, a PathPrefix one; GRPC rules match only
// on service, method and headers, name at least one of service and method
// per method match, and neither redirect nor rewrite; backends name a
// service and port and weigh at most 1,000,000; backend filters only modify
// headers; (Kind, Route, Index) is unique.
//
// Two choices differ from the letter of the spec. A rule whose backends all
// weigh 0 is rejected unless it redirects (the spec accepts it and answers
// 500; weft's configuration treats it as a mistake); a rule with no backends
// is accepted and Selected.PickBackend reports false, for the caller to
// answer 500. A redirecting rule that also has backends is accepted (newer
// spec versions reject the combination) and its backends are ignored.
//
// # Cost
//
// Match walks the matches in precedence order and, for requests that need no
// regular expression evaluated against a repeated header or an encoded
// query parameter, does not allocate; nor does PickBackend.
package route
