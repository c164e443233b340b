package sidecar_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// nameApp answers every request with its name, and counts what it saw.
type nameApp struct {
	name  string
	addr  string
	hits  atomic.Int64
	mu    sync.Mutex
	hosts []string
}

func startNameApp(t *testing.T, name string, status int) *nameApp {
	a := &nameApp{name: name}
	a.addr = serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		a.mu.Lock()
		a.hosts = append(a.hosts, r.Host)
		a.mu.Unlock()
		w.Header().Set("X-App", name)
		w.Header().Set("X-Seen-Routed", r.Header.Get("X-Routed"))
		if d := r.URL.Query().Get("sleep"); d != "" {
			dur, _ := time.ParseDuration(d)
			select {
			case <-time.After(dur):
			case <-r.Context().Done():
				return
			}
		}
		w.WriteHeader(status)
		io.WriteString(w, name)
	}))
	return a
}

func do(t *testing.T, c *http.Client, method, url string, header map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestRoutesSplitMatchAndFilters(t *testing.T) {
	v1 := startNameApp(t, "v1", 200)
	v2 := startNameApp(t, "v2", 200)
	p := startPair(t, []app{
		{name: "web", addr: v1.addr, more: `  routes:
  - route: default/canary-by-header
    created: "2026-01-01T00:00:00Z"
    matches: [{headers: [{name: x-canary, value: "true"}]}]
    filters: {request_headers: {set: [{name: x-routed, value: by-header}]}}
    backends: [{service: web-v2, port: 80, weight: 1}]
  - route: default/split
    created: "2026-01-02T00:00:00Z"
    matches: [{path: {type: PathPrefix, value: /split}}]
    backends: [{service: web-v1, port: 80, weight: 90}, {service: web-v2, port: 80, weight: 10}]
  - route: default/moved
    created: "2026-01-03T00:00:00Z"
    matches: [{path: {type: Exact, value: /old}}]
    filters: {redirect: {path: {type: ReplaceFullPath, value: /new}, status_code: 301}}
`},
		{name: "web-v1", addr: v1.addr},
		{name: "web-v2", addr: v2.addr},
	}, "")
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	t.Run("no match goes to the service itself", func(t *testing.T) {
		if got := do(t, c, "GET", p.url("web", "/other"), nil).Header.Get("X-App"); got != "v1" {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("header match with request header filter", func(t *testing.T) {
		resp := do(t, c, "GET", p.url("web", "/other"), map[string]string{"X-Canary": "true"})
		if resp.Header.Get("X-App") != "v2" || resp.Header.Get("X-Seen-Routed") != "by-header" {
			t.Fatalf("went to %s with x-routed %q", resp.Header.Get("X-App"), resp.Header.Get("X-Seen-Routed"))
		}
		// Gateway API precedence: the longer path prefix wins over more
		// header matches.
		resp = do(t, c, "GET", p.url("web", "/split/x"), map[string]string{"X-Canary": "true"})
		if resp.Header.Get("X-Seen-Routed") != "" {
			t.Fatalf("/split with the header took the header rule; the longer prefix must win")
		}
	})
	t.Run("weighted split 90/10", func(t *testing.T) {
		const n = 1000
		v2Before := v2.hits.Load()
		for i := 0; i < n; i++ {
			do(t, c, "GET", p.url("web", "/split/x"), nil)
		}
		got := float64(v2.hits.Load()-v2Before) / n
		// Binomial(1000, 0.1): stddev about 0.0095; 5 sigma either side.
		if got < 0.05 || got > 0.15 {
			t.Fatalf("web-v2 got %.1f%% of the split, want about 10%%", got*100)
		}
		if v, _ := metric(t, p.clientAdm, "weft_requests_total", `route="default/split"`); v < n {
			t.Errorf("requests not counted under the route label: %v", v)
		}
	})
	t.Run("redirect", func(t *testing.T) {
		resp := do(t, c, "GET", p.url("web", "/old?q=1"), nil)
		if resp.StatusCode != 301 || !strings.HasSuffix(resp.Header.Get("Location"), "/new?q=1") {
			t.Fatalf("status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

func TestRetryBudgetStopsRetriesDuringAnOutage(t *testing.T) {
	down := startNameApp(t, "down", 503)
	p := startPair(t, []app{{name: "web", addr: down.addr, more: `  retry_budget: {retry_ratio: 0.2, min_retries_per_second: 1, ttl: 1s}
  routes:
  - route: default/retrying
    backends: [{service: web, port: 80, weight: 1}]
    retry: {max_retries: 2, statuses: ["503"], backoff_base: 1ms, backoff_max: 2ms}
`}}, "")
	const n = 200
	for i := 0; i < n; i++ {
		if resp := do(t, http.DefaultClient, "GET", p.url("web", "/"), nil); resp.StatusCode != 503 {
			t.Fatalf("status %d; the application's 503 must come through after retries", resp.StatusCode)
		}
	}
	hits := down.hits.Load()
	// Without a budget: n*(1+2) = 600 tries. With 20% + 1/s: about 240.
	if hits <= n || hits > n*13/10+10 {
		t.Fatalf("the application saw %d tries for %d requests: want some retries, and at most about 20%% more", hits, n)
	}
	if v, _ := metric(t, p.clientAdm, "weft_policy_decisions_total", `policy="retry"`, `decision="budget_exhausted"`); v < 1 {
		t.Errorf("budget exhaustion not counted")
	}
	if v, _ := metric(t, p.clientAdm, "weft_policy_decisions_total", `policy="retry"`, `decision="retried"`); v != float64(hits-n) {
		t.Errorf("retries counted %v, the application saw %d", v, hits-n)
	}
}

func TestRetryRecoversFromFailingEndpoint(t *testing.T) {
	var calls atomic.Int64
	flaky := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%2 == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	p := startPair(t, []app{{name: "web", addr: flaky, more: `  routes:
  - route: default/retrying
    retry: {statuses: ["502-504"], backoff_base: 1ms, backoff_max: 2ms}
`}}, "")
	for i := 0; i < 20; i++ {
		if resp := do(t, http.DefaultClient, "GET", p.url("web", "/"), nil); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d; a retry should have hidden the failure", i, resp.StatusCode)
		}
	}
}

func TestTimeoutsFaultsRateLimitsAndMirrors(t *testing.T) {
	main := startNameApp(t, "app", 200)
	shadow := startNameApp(t, "shadow", 500)
	p := startPair(t, []app{
		{name: "web", addr: main.addr, more: `  routes:
  - route: default/slow
    matches: [{path: {value: /slow}}]
    timeouts: {request: 200ms}
  - route: default/broken
    matches: [{path: {value: /broken}}]
    fault: {abort_percent: 100, abort_http_status: 418}
  - route: default/limited
    matches: [{path: {value: /limited}}]
    rate_limit: {requests_per_second: 0.5, burst: 2}
  - route: default/shadowed
    matches: [{path: {value: /shadowed}}]
    mirrors: [{service: shadow}]
`},
		{name: "shadow", addr: shadow.addr},
	}, "")
	t.Run("request timeout", func(t *testing.T) {
		resp := do(t, http.DefaultClient, "GET", p.url("web", "/slow?sleep=5s"), nil)
		if resp.StatusCode != http.StatusGatewayTimeout || resp.Header.Get("Weft-Proxy-Error") == "" {
			t.Fatalf("status %d (%s), want 504 from the proxy", resp.StatusCode, resp.Header.Get("Weft-Proxy-Error"))
		}
	})
	t.Run("fault abort", func(t *testing.T) {
		before := main.hits.Load()
		resp := do(t, http.DefaultClient, "GET", p.url("web", "/broken"), nil)
		if resp.StatusCode != 418 || main.hits.Load() != before {
			t.Fatalf("status %d; an aborted request must not reach the application", resp.StatusCode)
		}
		if v, _ := metric(t, p.clientAdm, "weft_policy_decisions_total", `policy="fault"`, `decision="aborted"`); v != 1 {
			t.Errorf("fault not counted: %v", v)
		}
	})
	t.Run("rate limit", func(t *testing.T) {
		var codes []int
		for i := 0; i < 3; i++ {
			codes = append(codes, do(t, http.DefaultClient, "GET", p.url("web", "/limited"), nil).StatusCode)
		}
		resp := do(t, http.DefaultClient, "GET", p.url("web", "/limited"), nil)
		if fmt.Sprint(codes) != "[200 200 429]" || resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("statuses %v then %d (Retry-After %q); want a burst of 2 then 429 with Retry-After", codes, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	})
	t.Run("mirror", func(t *testing.T) {
		for i := 0; i < 5; i++ {
			if resp := do(t, http.DefaultClient, "GET", p.url("web", "/shadowed"), nil); resp.StatusCode != 200 || resp.Header.Get("X-App") != "app" {
				t.Fatalf("the mirror's 500 leaked into the response: %d %s", resp.StatusCode, resp.Header.Get("X-App"))
			}
		}
		eventually(t, "five copies reach the mirror", func() bool { return shadow.hits.Load() == 5 })
		shadow.mu.Lock()
		defer shadow.mu.Unlock()
		if !strings.HasSuffix(strings.Split(shadow.hosts[0], ":")[0], "-shadow") {
			t.Errorf("mirror saw Host %q, want a -shadow suffix", shadow.hosts[0])
		}
	})
}

// TestConnectFailureRetriedOnAnotherEndpoint: a dead endpoint costs a
// retry, not an error, and is steered away from afterwards.
func TestConnectFailureRetriedOnAnotherEndpoint(t *testing.T) {
	live := startNameApp(t, "live", 200)
	dead := freeAddr(t) // nothing listens here
	p := startPair(t, []app{{name: "web", addr: live.addr, more: `  load_balancer: {policy: round-robin}
  routes:
  - route: default/any
    retry: {backoff_base: 1ms, backoff_max: 2ms}
`}}, "")
	good, _ := readFile(p.clientCfg)
	next := strings.Replace(good, "  endpoints:\n  - {address: \""+live.addr+"\"",
		"  endpoints:\n  - {address: \""+dead+"\"}\n  - {address: \""+live.addr+"\"", 1)
	writeFile(t, p.clientCfg, strings.Replace(next, "client-1", "client-2", 1))
	eventually(t, "two endpoints configured", func() bool {
		_, dump := get(t, "http://"+p.clientAdm+"/config_dump")
		return strings.Contains(dump, dead)
	})
	for i := 0; i < 10; i++ {
		if resp := do(t, http.DefaultClient, "GET", p.url("web", "/"), nil); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, resp.Header.Get("Weft-Proxy-Error"))
		}
	}
}

// TestOutlierEjectionAndReturn: an endpoint that keeps failing is ejected
// and gets no traffic; once healthy it is probed and let back in.
func TestOutlierEjectionAndReturn(t *testing.T) {
	good := startNameApp(t, "good", 200)
	var broken atomic.Bool
	broken.Store(true)
	var badHits atomic.Int64
	bad := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		badHits.Add(1)
		if broken.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "bad-but-recovered")
	}))
	p := startPair(t, []app{{name: "web", addr: good.addr, more: `  load_balancer: {policy: round-robin}
  circuit_breaker:
    outlier_detection: {consecutive_failures: 3, base_ejection_time: 300ms}
`}}, "")
	cfg, _ := readFile(p.clientCfg)
	cfg = strings.Replace(cfg, "  endpoints:\n  - {address: \""+good.addr+"\"", "  endpoints:\n  - {address: \""+bad+"\"}\n  - {address: \""+good.addr+"\"", 1)
	writeFile(t, p.clientCfg, strings.Replace(cfg, "client-1", "client-2", 1))
	eventually(t, "two endpoints configured", func() bool {
		_, dump := get(t, "http://"+p.clientAdm+"/config_dump")
		return strings.Contains(dump, bad)
	})
	for i := 0; i < 10; i++ {
		do(t, http.DefaultClient, "GET", p.url("web", "/"), nil)
	}
	ejectedAt := badHits.Load()
	if ejectedAt < 3 {
		t.Fatalf("the failing endpoint got %d requests before ejection, want 3", ejectedAt)
	}
	for i := 0; i < 20; i++ {
		if resp := do(t, http.DefaultClient, "GET", p.url("web", "/"), nil); resp.StatusCode != 200 {
			t.Fatalf("request after ejection answered %d: the ejected endpoint got traffic", resp.StatusCode)
		}
	}
	if badHits.Load() > ejectedAt+1 { // at most one probe if the ejection time passed
		t.Fatalf("the ejected endpoint got %d more requests", badHits.Load()-ejectedAt)
	}
	if v, _ := metric(t, p.clientAdm, "weft_policy_decisions_total", `policy="breaker"`, `decision="ejected"`); v < 1 {
		t.Error("ejection not counted")
	}
	broken.Store(false)
	eventually(t, "the recovered endpoint is let back in", func() bool {
		do(t, http.DefaultClient, "GET", p.url("web", "/"), nil)
		return badHits.Load() > ejectedAt+3
	})
}

// TestCircuitBreakerLimitsFailFast: past max_requests a request fails at
// once with 503 instead of queueing behind a slow backend.
func TestCircuitBreakerLimitsFailFast(t *testing.T) {
	release := make(chan struct{})
	slow := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	p := startPair(t, []app{{name: "web", addr: slow, more: `  circuit_breaker: {max_requests: 1}
`}}, "")
	first := make(chan int, 1)
	go func() {
		resp, err := http.Get(p.url("web", "/"))
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	eventually(t, "the first request is in flight", func() bool {
		_, dump := get(t, "http://"+p.clientAdm+"/config_dump")
		return strings.Contains(dump, `"in_flight": 1`)
	})
	resp := do(t, http.DefaultClient, "GET", p.url("web", "/"), nil)
	close(release)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(resp.Header.Get("Weft-Proxy-Error"), "circuit breaker") {
		t.Fatalf("second request: %d %q, want 503 from the circuit breaker", resp.StatusCode, resp.Header.Get("Weft-Proxy-Error"))
	}
	if code := <-first; code != 200 {
		t.Fatalf("first request: %d", code)
	}
}
