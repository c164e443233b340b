package universal

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
)

// TestRouteFiltersEndToEnd: RateLimit and FaultInjection written as
// universal-mode files, referenced by an HTTPRoute rule's ExtensionRef
// filters, are enforced by the client's proxy on real requests; a filter
// naming nothing fails closed with 500; removing the filter restores the
// service.
func TestRouteFiltersEndToEnd(t *testing.T) {
	var hits atomic.Int64
	webApp := app(t, "web-1", &hits)
	base := `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: client-1, namespace: default, labels: {app: client}}
spec: {address: 127.0.0.1, serviceAccount: client, proxy: {inboundPort: ` + fmt.Sprint(freePort(t)) + `}}
` + workload("web-1", webApp, freePort(t)) + `---
apiVersion: policy.weft.dev/v1alpha1
kind: RateLimit
metadata: {name: one-per-second, namespace: default}
spec: {requestsPerSecond: 1, burst: 1}
---
apiVersion: policy.weft.dev/v1alpha1
kind: FaultInjection
metadata: {name: unavailable, namespace: default}
spec:
  abort: {percent: 100, httpStatus: 503}
`
	m := startIssuedMesh(t, base)
	m.proxy("web", "web-1", nil, freePort(t))
	explicit := freePort(t)
	m.proxy("client", "client-1", []string{"default/web"}, explicit)

	get := func() (int, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/x", explicit))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	route := func(filter string) string {
		return base + `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules:
  - filters:
    - type: ExtensionRef
      extensionRef: {group: policy.weft.dev, kind: ` + filter + `}
`
	}
	until := func(what string, want int) {
		t.Helper()
		eventually(t, what, func() bool { code, _ := get(); return code == want })
	}
	if code, _ := get(); code != 200 {
		t.Fatalf("without a route: %d", code)
	}

	writeFile(t, m.meshFile, route("RateLimit, name: one-per-second"))
	var retryAfter string
	eventually(t, "the second of two immediate requests gets 429 with Retry-After", func() bool {
		get()
		code, ra := get()
		retryAfter = ra
		return code == http.StatusTooManyRequests && ra != ""
	})
	t.Logf("Retry-After: %s", retryAfter)

	writeFile(t, m.meshFile, route("FaultInjection, name: unavailable"))
	until("the abort is injected", http.StatusServiceUnavailable)
	before := hits.Load()
	for range 5 {
		if code, _ := get(); code != http.StatusServiceUnavailable {
			t.Fatalf("an abort of 100%% let a request through: %d", code)
		}
	}
	if n := hits.Load() - before; n != 0 {
		t.Errorf("%d aborted requests reached the application", n)
	}

	// A filter naming nothing is not skipped: the rule fails closed.
	writeFile(t, m.meshFile, route("FaultInjection, name: missing"))
	until("a filter naming nothing answers 500", http.StatusInternalServerError)

	writeFile(t, m.meshFile, base)
	until("removing the filter restores the service", 200)
	for range 3 {
		if code, _ := get(); code != 200 {
			t.Fatalf("after the filter is removed: %d", code)
		}
	}
}
