package httpproxy

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/metrics"
	"github.com/weft-mesh/weft/internal/proxy/route"
	"github.com/weft-mesh/weft/internal/proxy/tcpproxy"
)

// forwardedHeaders are left exactly as the client sent them: a transparent
// mesh neither adds nor strips X-Forwarded-* (ReverseProxy's Rewrite mode
// removes them, so they are copied back).
var forwardedHeaders = [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// Env is what every handler shares.
type Env struct {
	Up        *Upstreams
	Metrics   *metrics.Metrics
	Log       *slog.Logger
	AccessLog bool
	// TCPIdle bounds tunnels (CONNECT, and Upgrade through the peer).
	TCPIdle tcpproxy.Options
	// ErrorLog receives ReverseProxy's own complaints (client resets and
	// the like), at debug level.
	ErrorLog *log.Logger
	// Buffers are the body-copy buffers, shared by every request; without
	// them ReverseProxy allocates 32 KiB per request.
	Buffers *BufferPool
	// Tunnels counts upgraded and CONNECT connections, which the HTTP
	// server's graceful shutdown does not see, so that a drain waits for
	// them too.
	Tunnels *sync.WaitGroup
}

// trackTunnel counts r while it runs when it takes over its connection.
func (e *Env) trackTunnel(r *http.Request) func() {
	if e.Tunnels == nil || !isTunnel(r) {
		return func() {}
	}
	e.Tunnels.Add(1)
	return e.Tunnels.Done
}

// BufferPool recycles body-copy buffers (httputil.BufferPool).
type BufferPool struct{ p sync.Pool }

// NewBufferPool returns a pool of 32 KiB buffers.
func NewBufferPool() *BufferPool {
	return &BufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

// Get returns a buffer.
func (bp *BufferPool) Get() []byte { return *(bp.p.Get().(*[]byte)) }

// Put returns a buffer to the pool.
func (bp *BufferPool) Put(b []byte) { bp.p.Put(&b) }

// exchange is one request on its way through the proxy.
type exchange struct {
	env    *Env
	start  time.Time
	grpc   bool
	labels metrics.Labels
	sw     *statusWriter
	tt     timedTransport
}

// forward sends r through rt, which sets the destination of each try, and
// answers w, applying the route's response header filters. It returns the
// upstream error, if any.
func (x *exchange) forward(w http.ResponseWriter, r *http.Request, host string, rt http.RoundTripper, respHeaders []*route.HeaderModifier) error {
	var upErr error
	rp := httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			for _, h := range forwardedHeaders {
				if v, ok := pr.In.Header[h]; ok {
					pr.Out.Header[h] = v
				}
			}
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = host
		},
		Transport: rt,
		// Streaming responses (unknown length, SSE) are flushed per write by
		// ReverseProxy itself. Nothing else is flushed early: a gRPC
		// trailers-only response (status in the headers, no body) must leave
		// as one HEADERS frame with END_STREAM, or clients see a stream that
		// ended without trailers, and retries could not read its status.
		FlushInterval: 0,
		BufferPool:    x.env.Buffers,
		ErrorLog:      x.env.ErrorLog,
		ModifyResponse: func(resp *http.Response) error {
			if r.ProtoMajor == 2 && r.Body != nil && r.Body != http.NoBody {
				resp.Body = &endsRequest{ReadCloser: resp.Body, req: r.Body}
			}
			for _, m := range respHeaders {
				route.ApplyResponseHeaders(resp.Header, m)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			upErr = err
			upstreamError(w, r, x.grpc, err)
		},
	}
	rp.ServeHTTP(w, r)
	return upErr
}

// withGRPCDeadline honours a gRPC call's grpc-timeout: the proxy gives up
// (DEADLINE_EXCEEDED) when the client would, and the header travels on
// unchanged, so the next hop honours it too.
func withGRPCDeadline(r *http.Request) (*http.Request, context.CancelFunc) {
	d, ok := parseGRPCTimeout(r.Header.Get("Grpc-Timeout"))
	if !ok {
		return r, func() {}
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	return r.WithContext(ctx), cancel
}

// done records the exchange in metrics and, when switched on, the access log.
func (x *exchange) done(r *http.Request, upstream string, err error) {
	end := time.Now()
	total := end.Sub(x.start)
	var inProxy time.Duration
	if !x.tt.start.IsZero() {
		inProxy = x.tt.start.Sub(x.start)
		if !x.sw.wroteAt.IsZero() && x.sw.wroteAt.After(x.tt.header) {
			inProxy += x.sw.wroteAt.Sub(x.tt.header)
		}
	}
	grpcStatus := ""
	if x.grpc {
		grpcStatus = x.sw.grpcStatus()
	}
	status := x.sw.status
	if status == 499 {
		status = 0
	}
	x.env.Metrics.RequestDone(x.labels, status, grpcStatus, total, inProxy)
	if x.env.AccessLog {
		attrs := []slog.Attr{
			slog.String("direction", x.labels.Direction),
			slog.String("service", x.labels.Service),
			slog.String("peer", x.labels.Peer),
			slog.String("method", r.Method),
			slog.String("authority", r.Host),
			slog.String("path", r.URL.Path),
			slog.String("proto", r.Proto),
			slog.String("upstream", upstream),
			slog.Int("status", x.sw.status),
			slog.Duration("duration", total),
			slog.Duration("in_proxy", inProxy),
		}
		if grpcStatus != "" {
			attrs = append(attrs, slog.String("grpc_status", grpcStatus))
		}
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		x.env.Log.LogAttrs(r.Context(), slog.LevelInfo, "access", attrs...)
	}
}

// endsRequest closes the client's HTTP/2 request body once the upstream's
// response has ended. An upstream may finish a stream while the client is
// still sending (a gRPC server returning a status mid-stream); the HTTP/2
// transport then waits for its request-body copy, which ReverseProxy shields
// from Close, and the exchange would hang until the client gave up.
type endsRequest struct {
	io.ReadCloser
	req  io.Closer
	once sync.Once
}

func (b *endsRequest) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(func() { b.req.Close() })
	}
	return n, err
}
