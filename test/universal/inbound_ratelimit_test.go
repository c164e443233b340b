package universal

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
)

// TestInboundRateLimitEndToEnd: a RateLimit written as a universal-mode
// file, with targetRefs to Service web and a per-client limit, is
// enforced by web's proxy on the requests of the client's identity: the
// second immediate request gets 429 with Retry-After and does not reach
// the application; removing the RateLimit restores the service.
func TestInboundRateLimitEndToEnd(t *testing.T) {
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
` + workload("web-1", webApp, freePort(t))
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
	if code, _ := get(); code != 200 {
		t.Fatalf("without a RateLimit: %d", code)
	}

	writeFile(t, m.meshFile, base+`---
apiVersion: policy.weft.dev/v1alpha1
kind: RateLimit
metadata: {name: per-client, namespace: default}
spec:
  targetRefs: [{group: "", kind: Service, name: web}]
  perClient: {requestsPerSecond: 0.05, burst: 1}
`)
	var retryAfter string
	eventually(t, "the client's second immediate request gets 429 with Retry-After", func() bool {
		get()
		code, ra := get()
		retryAfter = ra
		return code == http.StatusTooManyRequests && ra != ""
	})
	t.Logf("Retry-After: %s", retryAfter)
	// The bucket refills every 20s: the next requests are refused before
	// the application sees them.
	before := hits.Load()
	for range 3 {
		if code, _ := get(); code != http.StatusTooManyRequests {
			t.Fatalf("a request over the per-client limit: %d, want 429", code)
		}
	}
	if n := hits.Load() - before; n != 0 {
		t.Errorf("%d limited requests reached the application", n)
	}

	writeFile(t, m.meshFile, base)
	eventually(t, "removing the RateLimit restores the service", func() bool { code, _ := get(); return code == 200 })
	for range 3 {
		if code, _ := get(); code != 200 {
			t.Fatalf("after the RateLimit is removed: %d", code)
		}
	}
}
