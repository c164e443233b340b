package httpproxy

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/weft-mesh/weft/internal/proxy/breaker"
	"github.com/weft-mesh/weft/internal/proxy/retry"
)

// gRPC status codes the proxy itself may answer with (google.golang.org/grpc/codes
// values; the proxy does not link grpc for two integers).
const (
	grpcDeadlineExceeded  = 4
	grpcUnavailable       = 14
	grpcInvalidArgument   = 3
	grpcResourceExhausted = 8
)

// proxyError answers a request the proxy could not forward. gRPC clients get
// a trailers-only response with a gRPC status (they ignore HTTP statuses);
// everyone gets the reason in the Weft-Proxy-Error header.
func proxyError(w http.ResponseWriter, r *http.Request, grpc bool, status, grpcCode int, reason string) {
	h := w.Header()
	h.Set(HeaderProxyError, reason)
	if grpc {
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", strconv.Itoa(grpcCode))
		h.Set("Grpc-Message", grpcMessageEncode(reason))
		w.WriteHeader(http.StatusOK)
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte("weft-proxy: " + reason + "\n"))
}

// upstreamError maps a failed round trip to the answer the client gets.
func upstreamError(w http.ResponseWriter, r *http.Request, grpc bool, err error) {
	switch {
	case isNoEndpoints(err) || errors.Is(err, breaker.ErrOpen):
		proxyError(w, r, grpc, http.StatusServiceUnavailable, grpcUnavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, retry.ErrPerTryTimeout):
		proxyError(w, r, grpc, http.StatusGatewayTimeout, grpcDeadlineExceeded, "upstream deadline exceeded: "+err.Error())
	case errors.Is(r.Context().Err(), context.Canceled):
		// The client went away; nobody reads this answer.
		w.WriteHeader(499)
	default:
		proxyError(w, r, grpc, http.StatusBadGateway, grpcUnavailable, "upstream failed: "+err.Error())
	}
}

// grpcMessageEncode percent-encodes a grpc-message value as the gRPC over
// HTTP/2 spec requires (printable ASCII except '%' stays as is).
func grpcMessageEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c <= 0x7e && c != '%' {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(s)+8), s[:i]...)
		}
		b = append(b, '%', hex[c>>4], hex[c&0xf])
	}
	if b == nil {
		return s
	}
	return string(b)
}
