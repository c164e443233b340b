package httpproxy

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers weft-proxies exchange. A client's own copies are removed on the way
// in, so an application can never forge them.
const (
	// HeaderDstPort carries the destination application port from the
	// outbound proxy to the inbound proxy (explicit mode has no original
	// destination address to read it from).
	HeaderDstPort = "Weft-Dst-Port"
	// HeaderOrigProto carries the protocol the client spoke ("HTTP/1.1") when
	// it differs from the HTTP/2 between the proxies.
	HeaderOrigProto = "Weft-Orig-Proto"
	// HeaderProxyError is set on responses the proxy generated itself, with
	// the reason, so a failure is never mistaken for the application's.
	HeaderProxyError = "Weft-Proxy-Error"
)

func stripMeshHeaders(h http.Header) {
	h.Del(HeaderDstPort)
	h.Del(HeaderOrigProto)
}

// isGRPC reports whether r is a gRPC call (content-type application/grpc or
// application/grpc+proto and friends).
func isGRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return r.ProtoMajor == 2 && strings.HasPrefix(ct, "application/grpc") &&
		(len(ct) == len("application/grpc") || ct[len("application/grpc")] == '+' || ct[len("application/grpc")] == ';')
}

// isUpgrade reports whether r asks to switch protocols (WebSocket and co).
func isUpgrade(r *http.Request) bool {
	if r.ProtoMajor != 1 || r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// parseGRPCTimeout decodes a grpc-timeout header value: at most 8 digits and
// a unit (H, M, S, m, u, n), per the gRPC over HTTP/2 spec.
func parseGRPCTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	if n > int64((1<<63-1)/unit) {
		return 1<<63 - 1, true
	}
	return time.Duration(n) * unit, true
}
