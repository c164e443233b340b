package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weft-mesh/weft/internal/proxy/metrics"
)

// Options configures the admin endpoints. Every field may be nil: a nil
// Ready means always ready; a nil Metrics, ConfigDump or Shutdown makes its
// endpoint answer 503.
type Options struct {
	// Metrics is served on /metrics.
	Metrics *metrics.Metrics
	// Ready reports readiness: nil means ready; an error's text is shown
	// on /ready with 503.
	Ready func() error
	// ConfigDump returns the JSON of the running config, with secrets
	// already redacted.
	ConfigDump func() ([]byte, error)
	// Shutdown starts draining and exiting. It is called at most once per
	// Handler, on its own goroutine, after /shutdown has answered 202.
	Shutdown func()
	// Logger receives the admin server's logs; nil discards them.
	Logger *slog.Logger
}

// Server limits. ReadHeaderTimeout guards against slowloris clients.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	// shutdownTimeout bounds the graceful shutdown in Serve.
	shutdownTimeout = 5 * time.Second
	// maxScrapesInFlight bounds concurrent /metrics requests.
	maxScrapesInFlight = 4
)

const endpointList = `endpoints:
  GET  /metrics      Prometheus metrics
  GET  /live         liveness
  GET  /ready        readiness
  GET  /config_dump  running config as JSON (loopback only)
  POST /shutdown     drain and exit (loopback only)
`

const (
	allowGet  = "GET, HEAD"
	allowPost = "POST"
)

type handler struct {
	o        Options
	log      *slog.Logger
	metrics  http.Handler
	shutdown atomic.Bool // set once /shutdown has called Options.Shutdown
}

// Handler returns the admin endpoints as an http.Handler. See the package
// documentation for the endpoints and who may use them.
func Handler(o Options) http.Handler {
	h := &handler{o: o, log: logger(o.Logger)}
	if o.Metrics != nil {
		h.metrics = promhttp.HandlerFor(o.Metrics.Registry, promhttp.HandlerOpts{
			ErrorLog:            slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
			ErrorHandling:       promhttp.ContinueOnError,
			MaxRequestsInFlight: maxScrapesInFlight,
			EnableOpenMetrics:   true,
		})
	}
	return h
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch r.URL.Path {
	case "/metrics":
		if allowMethod(w, r, allowGet) {
			h.serveMetrics(w, r)
		}
	case "/live":
		if allowMethod(w, r, allowGet) {
			text(w, http.StatusOK, "live\n")
		}
	case "/ready":
		if allowMethod(w, r, allowGet) {
			h.serveReady(w)
		}
	case "/config_dump":
		if h.loopbackOnly(w, r) && allowMethod(w, r, allowGet) {
			h.serveConfigDump(w)
		}
	case "/shutdown":
		if h.loopbackOnly(w, r) && allowMethod(w, r, allowPost) {
			h.serveShutdown(w, r)
		}
	default:
		text(w, http.StatusNotFound, "404 page not found: "+strconv.Quote(r.URL.Path)+"\n"+endpointList)
	}
}

func (h *handler) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if h.metrics == nil {
		text(w, http.StatusServiceUnavailable, "metrics not configured\n")
		return
	}
	h.metrics.ServeHTTP(w, r)
}

func (h *handler) serveReady(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	if h.o.Ready != nil {
		if err := h.o.Ready(); err != nil {
			text(w, http.StatusServiceUnavailable, "not ready: "+err.Error()+"\n")
			return
		}
	}
	text(w, http.StatusOK, "ready\n")
}

func (h *handler) serveConfigDump(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	if h.o.ConfigDump == nil {
		text(w, http.StatusServiceUnavailable, "config dump not available\n")
		return
	}
	b, err := h.o.ConfigDump()
	if err != nil {
		h.log.Error("config dump failed", "error", err)
		text(w, http.StatusInternalServerError, "config dump failed: "+err.Error()+"\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (h *handler) serveShutdown(w http.ResponseWriter, r *http.Request) {
	if h.o.Shutdown == nil {
		text(w, http.StatusServiceUnavailable, "shutdown not available\n")
		return
	}
	if h.shutdown.CompareAndSwap(false, true) {
		h.log.Info("shutdown requested", "remote", r.RemoteAddr)
		// Shutdown may block while draining, or stop this very server
		// (which waits for this handler): never run it inline.
		go h.o.Shutdown()
	}
	text(w, http.StatusAccepted, "draining\n")
}

// loopbackOnly reports whether r comes from a loopback address, answering
// 403 with directions when it does not. Only the TCP peer address counts;
// forwarding headers are ignored.
func (h *handler) loopbackOnly(w http.ResponseWriter, r *http.Request) bool {
	if isLoopback(r.RemoteAddr) {
		return true
	}
	h.log.Info("admin request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", "not loopback")
	port := "<admin-port>"
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			port = strconv.Itoa(int(ap.Port()))
		}
	}
	text(w, http.StatusForbidden, fmt.Sprintf(
		"403 forbidden: %[1]s is loopback-only (127.0.0.0/8 or ::1) and this request came from %[2]s.\n"+
			"Reach it through a port-forward:\n"+
			"  kubectl port-forward pod/<pod> %[3]s:%[3]s\n"+
			"  curl http://127.0.0.1:%[3]s%[1]s\n"+
			"or run the request on the proxy's host (inside the pod: kubectl exec).\n",
		r.URL.Path, r.RemoteAddr, port))
	return false
}

// isLoopback reports whether remoteAddr ("host:port") is in 127.0.0.0/8 or
// is ::1, including IPv4-mapped IPv6 forms. Anything unparsable is not.
func isLoopback(remoteAddr string) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	return ap.Addr().Unmap().IsLoopback()
}

// allowMethod answers 405 with an Allow header unless r's method is in
// allow ("GET, HEAD" or "POST").
func allowMethod(w http.ResponseWriter, r *http.Request, allow string) bool {
	switch {
	case allow == allowGet && (r.Method == http.MethodGet || r.Method == http.MethodHead),
		allow == allowPost && r.Method == http.MethodPost:
		return true
	}
	w.Header().Set("Allow", allow)
	text(w, http.StatusMethodNotAllowed, "405 method not allowed: "+r.URL.Path+" accepts "+allow+"\n")
	return false
}

func text(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// newServer returns the http.Server used by Serve.
func newServer(o Options) *http.Server {
	return &http.Server{
		Handler:           Handler(o),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger(o.Logger).Handler(), slog.LevelWarn),
	}
}

// Serve serves the admin endpoints on ln until ctx is done, then shuts down
// gracefully, giving in-flight requests a few seconds before closing them.
// It returns nil on a clean stop, and an error if serving fails or the
// graceful shutdown runs out of time. ln is closed on return.
func Serve(ctx context.Context, ln net.Listener, o Options) error {
	log := logger(o.Logger)
	srv := newServer(o)
	addr := ln.Addr().String()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("admin server listening", "addr", addr)

	select {
	case err := <-errc:
		return fmt.Errorf("admin server on %s: serve: %w", addr, err)
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	shutdownErr := srv.Shutdown(sctx)
	if shutdownErr != nil {
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin server on %s: serve: %w", addr, err)
	}
	if shutdownErr != nil {
		log.Warn("admin server shutdown timed out", "addr", addr, "timeout", shutdownTimeout, "error", shutdownErr)
		return fmt.Errorf("admin server on %s: graceful shutdown: %w", addr, shutdownErr)
	}
	log.Info("admin server stopped", "addr", addr)
	return nil
}
