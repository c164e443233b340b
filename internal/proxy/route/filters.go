package route

import (
	"math/bits"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// PickBackend picks a backend of the selected rule at random in proportion
// to Weight, using rnd as the random number (uniform over uint64; its high
// bits matter most). It returns false when the rule has no backends or all
// weights are 0: the caller answers 500 (gRPC: UNAVAILABLE). It does not
// allocate.
func (s *Selected) PickBackend(rnd uint64) (*Backend, bool) {
	if s == nil || s.Rule == nil {
		return nil, false
	}
	bs := s.Rule.Backends
	var total uint64
	for i := range bs {
		total += uint64(bs[i].Weight)
	}
	if total == 0 {
		return nil, false
	}
	x, _ := bits.Mul64(rnd, total) // uniform in [0, total)
	for i := range bs {
		w := uint64(bs[i].Weight)
		if x < w {
			return &bs[i], true
		}
		x -= w
	}
	return nil, false // not reached: x < total
}

// ApplyRequestFilters applies the selected rule's request filters to r.
//
// If the rule redirects, r is left as it is and the redirect is returned:
// the caller answers it (Location: redirectURL, status redirectCode) and
// does not forward the request. Otherwise redirectURL is "" and
// redirectCode 0, the RequestHeaderModifier has been applied to r.Header
// (a "Host" it sets or adds becomes r.Host), and the URLRewrite to r.Host
// and r.URL (Path and RawPath kept consistent; the query is kept; a
// non-empty r.RequestURI is updated to match).
//
// Backend-level header modifiers are the caller's to apply, after
// PickBackend, with Backend.ApplyRequestHeaders.
func (s *Selected) ApplyRequestFilters(r *http.Request) (redirectURL string, redirectCode int) {
	if s == nil || s.Rule == nil {
		return "", 0
	}
	f := &s.Rule.Filters
	if f.Redirect != nil {
		return s.redirect(r, f.Redirect)
	}
	applyRequestHeaders(r, f.RequestHeaders)
	if rw := f.Rewrite; rw != nil {
		if rw.Hostname != nil {
			r.Host = *rw.Hostname
			if r.URL != nil && r.URL.Host != "" {
				r.URL.Host = *rw.Hostname
			}
		}
		if rw.Path != nil && r.URL != nil {
			path, escaped := s.replacePath(r.URL, rw.Path)
			setPath(r.URL, path, escaped)
			if r.RequestURI != "" {
				r.RequestURI = r.URL.RequestURI()
			}
		}
	}
	return "", 0
}

// ApplyRequestHeaders applies the backend's request header modifier to r.
func (b *Backend) ApplyRequestHeaders(r *http.Request) {
	if b != nil {
		applyRequestHeaders(r, b.Filters.RequestHeaders)
	}
}

func applyRequestHeaders(r *http.Request, m *HeaderModifier) {
	if m == nil {
		return
	}
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	ApplyHeaderModifier(r.Header, m)
	// net/http keeps the request's Host out of r.Header; one that the
	// modifier put there is the new Host.
	if v, ok := r.Header["Host"]; ok {
		if len(v) > 0 && v[0] != "" {
			r.Host = v[0]
		}
		delete(r.Header, "Host")
	}
}

// ApplyResponseHeaders applies a ResponseHeaderModifier (of a rule or a
// backend) to the response headers h.
func ApplyResponseHeaders(h http.Header, m *HeaderModifier) {
	ApplyHeaderModifier(h, m)
}

// ApplyHeaderModifier applies m to h: Remove deletes, Set replaces, Add
// appends a value. Names are case-insensitive (h is keyed by canonical
// names, as net/http keeps it). When a name appears more than once in Set
// or in Add, the first entry wins and the others are ignored, as the spec
// says of HTTPHeader lists. A nil m does nothing; so does a nil h.
func ApplyHeaderModifier(h http.Header, m *HeaderModifier) {
	if m == nil || h == nil {
		return
	}
	for _, name := range m.Remove {
		h.Del(name)
	}
	for i, hd := range m.Set {
		if !firstOf(m.Set, i) {
			continue
		}
		h.Set(hd.Name, hd.Value)
	}
	for i, hd := range m.Add {
		if !firstOf(m.Add, i) {
			continue
		}
		h.Add(hd.Name, hd.Value)
	}
}

// firstOf reports whether hs[i] is the first entry with its name.
func firstOf(hs []Header, i int) bool {
	for j := range i {
		if strings.EqualFold(hs[j].Name, hs[i].Name) {
			return false
		}
	}
	return true
}

// redirect builds the Location and status of a RequestRedirect.
func (s *Selected) redirect(r *http.Request, red *Redirect) (string, int) {
	code := red.StatusCode
	if code == 0 {
		code = http.StatusFound
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if red.Scheme != nil {
		scheme = *red.Scheme
	}
	hostport := r.Host
	if hostport == "" && r.URL != nil {
		hostport = r.URL.Host
	}
	host, port := splitHostPort(hostport)
	if red.Hostname != nil {
		host = *red.Hostname
	}
	switch {
	case red.Port != nil:
		port = strconv.Itoa(int(*red.Port))
	case red.Scheme != nil:
		port = "" // the well-known port of the new scheme
	default:
		// The spec's "Gateway Listener port": for a sidecar, the port the
		// client addressed, which is the one in its Host header (none
		// there: the scheme's default).
	}
	if scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		port = ""
	}
	var b strings.Builder
	if host != "" {
		b.WriteString(scheme)
		b.WriteString("://")
		switch {
		case port != "":
			b.WriteString(net.JoinHostPort(host, port))
		case strings.IndexByte(host, ':') >= 0:
			b.WriteString("[" + host + "]")
		default:
			b.WriteString(host)
		}
	}
	u := r.URL
	if u == nil {
		u = &url.URL{Path: "/"}
	}
	escaped := u.EscapedPath()
	if red.Path != nil {
		_, escaped = s.replacePath(u, red.Path)
	}
	if escaped == "" {
		escaped = "/"
	}
	b.WriteString(escaped)
	if u.RawQuery != "" {
		b.WriteByte('?')
		b.WriteString(u.RawQuery)
	}
	return b.String(), code
}

// splitHostPort splits a Host header value into host (without brackets) and
// port ("" when there is none or it is not a number).
func splitHostPort(hostport string) (host, port string) {
	host = hostport
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return hostport, ""
		}
		host = hostport[1:end]
		if rest := hostport[end+1:]; strings.HasPrefix(rest, ":") {
			port = rest[1:]
		}
	} else if i := strings.LastIndexByte(hostport, ':'); i >= 0 && strings.IndexByte(hostport[:i], ':') < 0 {
		host, port = hostport[:i], hostport[i+1:]
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		port = ""
	}
	return host, port
}

// replacePath returns u's path after the path modifier m: decoded, and
// escaped (the form for a Location header or RawPath).
func (s *Selected) replacePath(u *url.URL, m *PathModifier) (path, escaped string) {
	if m.ReplaceFullPath != nil {
		return unescapePath(*m.ReplaceFullPath), *m.ReplaceFullPath
	}
	cur := u.Path
	if cur == "" {
		cur = "/"
	}
	curEscaped := u.EscapedPath()
	if curEscaped == "" {
		curEscaped = "/"
	}
	if m.ReplacePrefixMatch == nil || s.PrefixMatched == "" {
		return cur, curEscaped
	}
	prefix := strings.TrimSuffix(unescapePath(s.PrefixMatched), "/")
	if !prefixMatch(cur, prefix) {
		return cur, curEscaped // not the request that matched: leave it
	}
	rest := cur[len(prefix):] // "" or starting with "/"
	repl := strings.TrimRight(*m.ReplacePrefixMatch, "/")
	path = strings.TrimRight(unescapePath(repl), "/") + rest
	if path == "" {
		path = "/"
	}
	escaped = repl + escapedSuffix(curEscaped, rest)
	if escaped == "" {
		escaped = "/"
	}
	if unescapePath(escaped) != path {
		escaped = (&url.URL{Path: path}).EscapedPath()
	}
	return path, escaped
}

// escapedSuffix returns the suffix of the escaped path that decodes to the
// decoded suffix rest ("" or starting with "/"), keeping the client's own
// escaping; if there is none, the default escaping of rest.
func escapedSuffix(escaped, rest string) string {
	if rest == "" {
		return ""
	}
	if strings.HasSuffix(escaped, rest) && unescapePath(escaped[len(escaped)-len(rest):]) == rest {
		return escaped[len(escaped)-len(rest):]
	}
	for i := 0; i < len(escaped); i++ {
		if escaped[i] == '/' && unescapePath(escaped[i:]) == rest {
			return escaped[i:]
		}
	}
	return (&url.URL{Path: rest}).EscapedPath()
}

// setPath sets u's path, with RawPath set only when the escaped form is not
// the default escaping of path (as url.URL keeps it).
func setPath(u *url.URL, path, escaped string) {
	u.Path, u.RawPath = path, ""
	if escaped != u.EscapedPath() && unescapePath(escaped) == path {
		u.RawPath = escaped
	}
}
