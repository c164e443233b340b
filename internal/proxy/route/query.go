package route

import (
	"net/url"
	"strings"
)

// queryFirst returns the first value of the query parameter name in the raw
// query, as url.ParseQuery(raw).Get(name) would (pairs that do not parse are
// skipped), but without building the map: it allocates only to decode a
// name or value that is percent- or plus-encoded.
func queryFirst(raw, name string) (string, bool) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if !queryKeyIs(k, name) {
			continue
		}
		if !needsQueryUnescape(v) {
			return v, true
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			return dv, true
		}
	}
	return "", false
}

// queryKeyIs reports whether the raw key k decodes to name; a key that does
// not decode matches nothing.
func queryKeyIs(k, name string) bool {
	if !needsQueryUnescape(k) {
		return k == name
	}
	dk, err := url.QueryUnescape(k)
	return err == nil && dk == name
}

func needsQueryUnescape(s string) bool {
	return strings.IndexByte(s, '%') >= 0 || strings.IndexByte(s, '+') >= 0
}
