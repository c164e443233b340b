package httpproxy

import (
	"net/http"
	"time"
)

// statusWriter records what the proxy answered, and when, for metrics and
// the proxy-overhead histogram. Unwrap lets http.ResponseController reach
// the real writer's Flush and Hijack.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteAt     time.Time
	closeOnFail bool // a refused Upgrade: close the connection after the answer
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 || code == http.StatusSwitchingProtocols {
		w.status = code
		w.wroteAt = time.Now()
		if w.closeOnFail && code != http.StatusSwitchingProtocols {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// grpcStatus is the gRPC status the response ended with, from its trailers
// (or headers, for a trailers-only response); "" when there is none.
func (w *statusWriter) grpcStatus() string {
	h := w.Header()
	if v := h.Get("Grpc-Status"); v != "" {
		return v
	}
	return h.Get(http.TrailerPrefix + "Grpc-Status")
}

// timedTransport records when the round trip to the upstream started and
// when its response headers arrived.
type timedTransport struct {
	rt            http.RoundTripper
	start, header time.Time
	err           error
}

func (t *timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.start = time.Now()
	resp, err := t.rt.RoundTrip(r)
	t.header = time.Now()
	t.err = err
	return resp, err
}
