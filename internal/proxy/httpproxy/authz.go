package httpproxy

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/weft-mesh/weft/internal/proxy/authz"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/metrics"
)

// gRPC status codes of authorization and mTLS refusals.
const (
	grpcPermissionDenied = 7
	grpcUnauthenticated  = 16
)

// What a denied caller reads: never which policy denied it (that is in the
// proxy's metrics and logs).
const (
	deniedMessage        = "weft: access denied by authorization policy"
	plaintextRefusedText = "weft: this port accepts only mutual TLS from the mesh; call it through a weft-proxy"
)

// Authorize evaluates an inbound request or opaque connection against az,
// counts the decision in weft_authz_decisions_total, and logs what a
// dry-run policy would have denied (and, at debug level, denials). It
// reports whether the request or connection may go on.
func (e *Env) Authorize(ctx context.Context, az *authz.Authorizer, req *authz.Request) bool {
	d := az.Evaluate(req)
	decision := metrics.AuthzAllow
	if !d.Allowed {
		decision = metrics.AuthzDeny
	}
	e.Metrics.AuthzDecision(decision, d.By.Policy, d.By.Rule)
	if d.WouldDeny {
		e.Metrics.AuthzDecision(metrics.AuthzWouldDeny, d.DryRun.Policy, d.DryRun.Rule)
		e.logDecision(ctx, slog.LevelInfo, "request would be denied by a dry-run authorization policy", req, d.DryRun)
	}
	if !d.Allowed && e.Log.Enabled(ctx, slog.LevelDebug) {
		e.logDecision(ctx, slog.LevelDebug, "request denied by authorization policy", req, d.By)
	}
	return d.Allowed
}

func (e *Env) logDecision(ctx context.Context, level slog.Level, msg string, req *authz.Request, by authz.Decider) {
	attrs := []slog.Attr{
		slog.String("caller", req.Source.String()),
		slog.Int("port", int(req.Port)),
		slog.String("policy", by.Policy),
		slog.String("rule", by.Rule),
	}
	if r := req.HTTP; r != nil {
		attrs = append(attrs, slog.String("client", r.RemoteAddr), slog.String("method", r.Method), slog.String("path", r.URL.Path))
	} else {
		attrs = append(attrs, slog.String("protocol", "tcp"))
	}
	e.Log.LogAttrs(ctx, level, msg, attrs...)
}

// PlaintextRejected counts a plaintext connection or request refused by
// the mTLS mode by (MTLSStrict: the port's own; else inbound.require_mtls).
func (e *Env) PlaintextRejected(by config.MTLSMode) {
	mode := metrics.ModeRequireMTLS
	if by == config.MTLSStrict {
		mode = metrics.ModeStrict
	}
	e.Metrics.PlaintextRejected(mode)
}

// denyRequest answers a request authorization denied: 403 with a short
// plain body, or for gRPC a trailers-only PERMISSION_DENIED.
func denyRequest(w http.ResponseWriter, grpc bool) {
	h := w.Header()
	h.Set(HeaderProxyError, "access denied by authorization policy")
	if grpc {
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", strconv.Itoa(grpcPermissionDenied))
		h.Set("Grpc-Message", grpcMessageEncode(deniedMessage))
		w.WriteHeader(http.StatusOK)
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(deniedMessage + "\n"))
}

// refusePlaintext answers a plaintext request to a port that requires
// mTLS, and asks for the connection to be closed: 403 with a short body,
// or for gRPC a trailers-only UNAUTHENTICATED.
func refusePlaintext(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Connection", "close") // HTTP/2: GOAWAY once the stream is done
	h.Set(HeaderProxyError, "plaintext refused: the port requires mTLS")
	if isGRPC(r) {
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", strconv.Itoa(grpcUnauthenticated))
		h.Set("Grpc-Message", grpcMessageEncode(plaintextRefusedText))
		w.WriteHeader(http.StatusOK)
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(plaintextRefusedText + "\n"))
}

// PlaintextRefused returns the handler for a plaintext HTTP connection to
// a port that requires mTLS: every request on it is refused with a clear
// answer (see refusePlaintext) and the connection closed, instead of a
// bare reset the client could not explain. The caller counts and logs the
// refusal once per connection.
func PlaintextRefused() http.Handler {
	return http.HandlerFunc(refusePlaintext)
}
