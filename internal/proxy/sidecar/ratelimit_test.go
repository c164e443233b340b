package sidecar_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// rlCall is one call through a caller's proxy to the rate-limited server,
// and whether the server's inbound rate limit should let it through.
type rlCall struct {
	caller   string
	kind     string // "http", "grpc" or "tcp"
	admitted bool
}

// TestInboundRateLimitThroughMeshedProxies: the server proxy limits each
// caller by its verified identity on its inbound ports, so each caller has a
// budget of its own, and the port's total caps every caller together. The
// rates are low enough that no bucket refills during a subtest; each
// subtest's config starts with full buckets.
func TestInboundRateLimitThroughMeshedProxies(t *testing.T) {
	m := startAuthzMesh(t)
	fe, batch := frontendID, batchID
	perID := "{per_identity_requests_per_second: 0.05, per_identity_burst: 1}"
	total := "{requests_per_second: 0.05, burst: 2, per_identity_requests_per_second: 100}"
	cases := []struct {
		name    string
		limit   string
		calls   []rlCall
		decided map[string]float64 // decision -> count on the web port
	}{
		{
			name:  "per identity: each caller its own budget",
			limit: perID,
			calls: []rlCall{
				{fe, "http", true}, {fe, "http", false},
				// The other caller is unaffected by the first one's use.
				{batch, "http", true}, {batch, "http", false},
				{fe, "grpc", true}, {fe, "grpc", false}, {batch, "grpc", true},
				{fe, "tcp", true}, {fe, "tcp", false}, {batch, "tcp", true},
			},
			decided: map[string]float64{"limited_identity": 2, "limited_port": 0},
		},
		{
			name:  "total caps every caller",
			limit: total,
			calls: []rlCall{
				{fe, "http", true}, {batch, "http", true},
				{batch, "http", false}, {fe, "http", false},
				{fe, "grpc", true}, {batch, "grpc", true}, {fe, "grpc", false},
			},
			decided: map[string]float64{"limited_identity": 0, "limited_port": 2},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := map[string]float64{}
			for d := range tc.decided {
				before[d] = m.webRateLimited(t, d)
			}
			m.setInbound(t, fmt.Sprintf("  ports:\n  - {port: {web}, rate_limit: %s}\n  - {port: {rpc}, rate_limit: %s}\n  - {port: {db}, rate_limit: %s}\n",
				tc.limit, tc.limit, tc.limit))
			for i, c := range tc.calls {
				m.rateLimitedCall(t, i, c)
			}
			for d, want := range tc.decided {
				if got := m.webRateLimited(t, d) - before[d]; got != want {
					t.Errorf("weft_policy_decisions_total{decision=%q} on the web port grew by %v, want %v", d, got, want)
				}
			}
		})
	}
}

// rateLimitedCall makes c and checks what the caller sees: the application's
// answer when admitted; otherwise 429 with Retry-After, RESOURCE_EXHAUSTED,
// or a TCP connection closed before the application accepted it.
func (m *authzMesh) rateLimitedCall(t *testing.T, i int, c rlCall) {
	t.Helper()
	mc := m.callers[c.caller]
	who := c.caller[strings.LastIndexByte(c.caller, '/')+1:]
	switch c.kind {
	case "http":
		hits := m.web.hits.Load()
		resp, err := mc.http.Get("http://" + mc.listen["web"] + "/")
		if err != nil {
			t.Fatalf("call %d (%s http): %v", i, who, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		reached := m.web.hits.Load() > hits
		switch {
		case c.admitted && (resp.StatusCode != 200 || !reached):
			t.Errorf("call %d (%s http): status %d %q, want the application's 200", i, who, resp.StatusCode, body)
		case !c.admitted && (resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || reached):
			t.Errorf("call %d (%s http): status %d Retry-After %q (application reached: %v), want 429 with Retry-After", i, who, resp.StatusCode, resp.Header.Get("Retry-After"), reached)
		}
	case "grpc":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := mc.grpc.EmptyCall(ctx, &testgrpc.Empty{})
		code := status.Code(err)
		switch {
		case c.admitted && code == codes.ResourceExhausted:
			t.Errorf("call %d (%s grpc): %v, want the call admitted", i, who, err)
		case !c.admitted && code != codes.ResourceExhausted:
			t.Errorf("call %d (%s grpc): %v, want RESOURCE_EXHAUSTED", i, who, err)
		}
	case "tcp":
		accepts := m.db.accepts.Load()
		conn, err := net.DialTimeout("tcp", mc.listen["db"], 5*time.Second)
		if err != nil {
			t.Fatalf("call %d (%s tcp): %v", i, who, err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(conn, "ping\n")
		line, err := bufio.NewReader(conn).ReadString('\n')
		echoed := err == nil && line == "ping\n"
		switch {
		case c.admitted && !echoed:
			t.Errorf("call %d (%s tcp): read %q, %v; want the echo", i, who, line, err)
		case !c.admitted && (echoed || m.db.accepts.Load() != accepts):
			t.Errorf("call %d (%s tcp): echoed %v, application accepted %d; want the connection closed before the application", i, who, echoed, m.db.accepts.Load()-accepts)
		}
	}
}

// webRateLimited reads the server's rate-limit decisions on the web port.
func (m *authzMesh) webRateLimited(t *testing.T, decision string) float64 {
	t.Helper()
	_, body := get(t, "http://"+m.serverAdm+"/metrics")
	port := strings.TrimSpace(m.ports.Replace("{web}"))
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "weft_policy_decisions_total{") ||
			!strings.Contains(line, `direction="inbound"`) || !strings.Contains(line, `policy="ratelimit"`) ||
			!strings.Contains(line, `decision="`+decision+`"`) || !strings.Contains(line, `service="`+port+`"`) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}
