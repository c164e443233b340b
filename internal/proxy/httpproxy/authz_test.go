package httpproxy

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/proxy/authz"
	"github.com/weft-mesh/weft/internal/proxy/metrics"
)

// records keeps the log records of a test.
type records struct {
	mu  sync.Mutex
	got []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, r)
	return nil
}
func (h *records) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *records) WithGroup(string) slog.Handler      { return h }

func attrs(r slog.Record) map[string]string {
	out := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		out[a.Key] = a.Value.String()
		return true
	})
	return out
}

// decisions reads one series of weft_authz_decisions_total.
func decisions(t *testing.T, m *metrics.Metrics, decision, policy, rule string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"decision": decision, "policy": policy, "rule": rule}
	for _, mf := range mfs {
		if mf.GetName() != "weft_authz_decisions_total" {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			return s.GetCounter().GetValue()
		}
	}
	return 0
}

func TestDeniedAnswers(t *testing.T) {
	cases := []struct {
		name       string
		grpc       bool
		write      func(http.ResponseWriter, *http.Request)
		status     int
		body       string
		grpcStatus string
		grpcMsg    string
		close      bool
	}{
		{"HTTP denied", false, func(w http.ResponseWriter, r *http.Request) { denyRequest(w, false) }, 403, deniedMessage + "\n", "", "", false},
		{"gRPC denied", true, func(w http.ResponseWriter, r *http.Request) { denyRequest(w, true) }, 200, "", "7", "weft: access denied by authorization policy", false},
		{"HTTP plaintext refused", false, refusePlaintext, 403, plaintextRefusedText + "\n", "", "", true},
		{"gRPC plaintext refused", true, refusePlaintext, 200, "", "16", plaintextRefusedText, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/pkg.Svc/Get", nil)
			if tc.grpc {
				r.ProtoMajor = 2
				r.Header.Set("Content-Type", "application/grpc")
			}
			w := httptest.NewRecorder()
			tc.write(w, r)
			h := w.Result().Header
			if w.Code != tc.status || w.Body.String() != tc.body {
				t.Errorf("got %d %q, want %d %q", w.Code, w.Body.String(), tc.status, tc.body)
			}
			if h.Get("Grpc-Status") != tc.grpcStatus || h.Get("Grpc-Message") != tc.grpcMsg {
				t.Errorf("grpc-status %q grpc-message %q, want %q %q", h.Get("Grpc-Status"), h.Get("Grpc-Message"), tc.grpcStatus, tc.grpcMsg)
			}
			if (h.Get("Connection") == "close") != tc.close {
				t.Errorf("Connection: %q", h.Get("Connection"))
			}
			if strings.Contains(w.Body.String()+h.Get(HeaderProxyError)+h.Get("Grpc-Message"), "ns/") {
				t.Error("the answer names a policy")
			}
		})
	}
}

// TestAuthorizeCountsAndLogs: decisions are counted by policy and rule;
// a dry-run denial is logged with who called what, and never denies.
func TestAuthorizeCountsAndLogs(t *testing.T) {
	az, err := authz.Compile(&weftv1.Authorization{Policies: []*weftv1.AuthorizationPolicy{
		{Name: "ns/deny-post", Action: "Deny", Rules: []*weftv1.AuthorizationRule{{Name: "post", To: &weftv1.AuthorizationTarget{Methods: []string{"POST"}}}}},
		{Name: "ns/trial", Action: "Deny", DryRun: true, Rules: []*weftv1.AuthorizationRule{{Name: "batch", From: &weftv1.AuthorizationSource{Namespaces: []string{"batch"}}}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	logs := &records{}
	e := &Env{Metrics: metrics.New(metrics.Options{}), Log: slog.New(logs)}
	batch := authz.NewIdentity(spiffeid.RequireFromString("spiffe://td/ns/batch/sa/worker"))
	cases := []struct {
		method  string
		allowed bool
	}{{"GET", true}, {"POST", false}}
	for _, tc := range cases {
		req := &authz.Request{Port: 8080, Source: batch, HTTP: httptest.NewRequest(tc.method, "/orders?id=1", nil)}
		if got := e.Authorize(context.Background(), az, req); got != tc.allowed {
			t.Errorf("%s: allowed %v, want %v", tc.method, got, tc.allowed)
		}
	}
	for _, c := range []struct {
		decision, policy, rule string
		want                   float64
	}{
		{metrics.AuthzAllow, "default", "allow-all", 1},
		{metrics.AuthzWouldDeny, "ns/trial", "batch", 1},
		{metrics.AuthzDeny, "ns/deny-post", "post", 1},
	} {
		if got := decisions(t, e.Metrics, c.decision, c.policy, c.rule); got != c.want {
			t.Errorf("weft_authz_decisions_total{%s,%s,%s} = %v, want %v", c.decision, c.policy, c.rule, got, c.want)
		}
	}
	var dry []map[string]string
	for _, r := range logs.got {
		if r.Message == "request would be denied by a dry-run authorization policy" {
			if r.Level != slog.LevelInfo {
				t.Errorf("dry-run logged at %v", r.Level)
			}
			dry = append(dry, attrs(r))
		}
	}
	want := map[string]string{"caller": "spiffe://td/ns/batch/sa/worker", "port": "8080", "method": "GET", "path": "/orders", "policy": "ns/trial", "rule": "batch", "client": "192.0.2.1:1234"}
	if len(dry) != 1 {
		t.Fatalf("%d dry-run log lines, want 1 (the denied POST is not would-deny)", len(dry))
	}
	for k, v := range want {
		if dry[0][k] != v {
			t.Errorf("dry-run log %s=%q, want %q (all: %v)", k, dry[0][k], v, dry[0])
		}
	}
}
