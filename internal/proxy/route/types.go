package route

import (
	"net/http"
	"strconv"
	"time"
)

// Kind says which Gateway API route resource a Rule comes from.
type Kind uint8

const (
	// HTTP is a rule of an HTTPRoute.
	HTTP Kind = iota
	// GRPC is a rule of a GRPCRoute.
	GRPC
)

func (k Kind) String() string {
	switch k {
	case HTTP:
		return "HTTP"
	case GRPC:
		return "GRPC"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// PathType is how a PathMatch compares the request path. The zero value is
// PathPrefix, the Gateway API default.
type PathType uint8

const (
	// PathPrefix matches a path prefix element by element: "/foo" matches
	// "/foo", "/foo/" and "/foo/bar" but not "/foobar". A trailing "/" in
	// the value is ignored, and "/" matches every path.
	PathPrefix PathType = iota
	// PathExact matches the path exactly, case-sensitively.
	PathExact
	// PathRegex matches when the whole path matches the RE2 expression.
	PathRegex
)

func (p PathType) String() string {
	switch p {
	case PathPrefix:
		return "PathPrefix"
	case PathExact:
		return "Exact"
	case PathRegex:
		return "RegularExpression"
	}
	return "PathType(" + strconv.Itoa(int(p)) + ")"
}

// ValueType is how a header, query parameter or gRPC method match compares
// values. The zero value is Exact, the Gateway API default.
type ValueType uint8

const (
	// Exact compares case-sensitively for equality.
	Exact ValueType = iota
	// RegularExpression matches when the whole value matches the RE2
	// expression (it is anchored at both ends).
	RegularExpression
)

func (v ValueType) String() string {
	switch v {
	case Exact:
		return "Exact"
	case RegularExpression:
		return "RegularExpression"
	}
	return "ValueType(" + strconv.Itoa(int(v)) + ")"
}

// PathMatch matches the request path (r.URL.Path). Value is written as in
// the route resource, percent-encoded where needed; Exact and PathPrefix
// values are decoded once and compared with the decoded request path.
type PathMatch struct {
	Type  PathType
	Value string
}

// HeaderMatch matches a request header. Names are case-insensitive; a
// header sent more than once is matched as its values joined with ",".
type HeaderMatch struct {
	Type        ValueType
	Name, Value string
}

// QueryMatch matches the first value of a query parameter. Names are
// case-sensitive.
type QueryMatch struct {
	Type        ValueType
	Name, Value string
}

// GRPCMethodMatch matches the service and method of a gRPC request path
// "/<service>/<method>". An empty Service or Method matches any; at least one
// must be set.
type GRPCMethodMatch struct {
	Type            ValueType
	Service, Method string
}

// Match is one match of a rule: every condition set must hold. A nil Path
// is the Gateway API default, PathPrefix "/". HTTP rules use Path, Method,
// Headers and Query; GRPC rules use GRPC and Headers.
type Match struct {
	Path    *PathMatch
	Method  string
	Headers []HeaderMatch
	Query   []QueryMatch
	GRPC    *GRPCMethodMatch
}

// Header is a header name and value.
type Header struct {
	Name, Value string
}

// HeaderModifier is the RequestHeaderModifier or ResponseHeaderModifier
// filter: Set replaces a header, Add appends a value to it, Remove deletes
// it. Names are case-insensitive.
type HeaderModifier struct {
	Set, Add []Header
	Remove   []string
}

// PathModifier replaces the request path: either the whole of it, or the
// prefix matched by the rule's single PathPrefix match. Exactly one is set.
type PathModifier struct {
	ReplaceFullPath    *string
	ReplacePrefixMatch *string
}

// Redirect is the RequestRedirect filter: the request is answered with a
// redirect to the request URL changed as given. StatusCode 0 means 302.
type Redirect struct {
	Scheme, Hostname *string
	Path             *PathModifier
	Port             *uint16
	StatusCode       int
}

// Rewrite is the URLRewrite filter: the request is forwarded with its Host
// and path changed.
type Rewrite struct {
	Hostname *string
	Path     *PathModifier
}

// Filters are the filters of a rule or, header modifiers only, of a backend.
type Filters struct {
	RequestHeaders, ResponseHeaders *HeaderModifier
	Redirect                        *Redirect
	Rewrite                         *Rewrite
}

// Backend is a backendRef: a port of a Service and its weight. Weight 0
// receives no traffic (the Gateway API default of 1 is the caller's to
// apply). Backend filters may only modify headers.
type Backend struct {
	Service string
	Port    uint16
	Weight  uint32
	Filters Filters
}

// Rule is one rule of an HTTPRoute or GRPCRoute attached to the service.
type Rule struct {
	// Route is "namespace/name" of the route resource.
	Route string
	// Created is the route's creationTimestamp; older routes win ties.
	Created time.Time
	// Kind is HTTP or GRPC.
	Kind Kind
	// Index is the rule's index within its route; rules of one route break
	// ties in Index order, and (Kind, Route, Index) must be unique.
	Index int
	// Matches are ORed; empty matches every request (HTTP: PathPrefix
	// "/"; GRPC: every gRPC request).
	Matches []Match
	Filters Filters
	// Backends are picked by weight. Empty with no Redirect means the
	// caller answers 500 (gRPC: UNAVAILABLE).
	Backends []Backend
}

// Selected is the rule and match a request matched. The Selected values
// returned by Table.Match belong to the Table and are shared by every
// request: read them, never change them.
type Selected struct {
	Rule *Rule
	// MatchIndex is the index in Rule.Matches of the match that matched,
	// or -1 when the rule has no matches.
	MatchIndex int
	// PrefixMatched is the PathPrefix value that matched, as configured
	// ("/" for the default match), or "" for Exact, regular expression and
	// gRPC matches. ReplacePrefixMatch replaces it.
	PrefixMatched string
}

// canonicalKey is http.CanonicalHeaderKey; named here so that the matching
// code reads as what it relies on.
func canonicalKey(name string) string { return http.CanonicalHeaderKey(name) }
