package universal

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// TestLoadBalancerRingHashEndToEnd: a LoadBalancer written as a
// universal-mode file, RingHash on header x-user, makes the client's proxy
// send every request of a user to the same workload of the Service, while
// different users reach both.
func TestLoadBalancerRingHashEndToEnd(t *testing.T) {
	var hits1, hits2 atomic.Int64
	app1, app2 := app(t, "web-1", &hits1), app(t, "web-2", &hits2)
	mesh := `apiVersion: v1
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
` + workload("web-1", app1, freePort(t)) + workload("web-2", app2, freePort(t)) + `---
apiVersion: policy.weft.dev/v1alpha1
kind: LoadBalancer
metadata: {name: sticky, namespace: default}
spec:
  targetRef: {group: "", kind: Service, name: web}
  policy: RingHash
  hashOn:
    header: {name: x-user}
`
	m := startIssuedMesh(t, mesh)
	m.proxy("web", "web-1", nil, freePort(t))
	m.proxy("web", "web-2", nil, freePort(t))
	explicit := freePort(t)
	m.proxy("client", "client-1", []string{"default/web"}, explicit)

	// get returns the app that answered a request of user, "" on failure.
	get := func(user string) string {
		req, err := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/x", explicit), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("x-user", user)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return ""
		}
		name, _, _ := strings.Cut(string(body), " ")
		return name
	}
	// sticky sends 10 requests for each of 16 users: the app of each user
	// when each reached one app only, else nil.
	sticky := func() map[string]string {
		apps := map[string]string{}
		for u := range 16 {
			user := fmt.Sprintf("user-%d", u)
			for range 10 {
				a := get(user)
				if a == "" || apps[user] != "" && apps[user] != a {
					t.Logf("%s reached %q and %q", user, apps[user], a)
					return nil
				}
				apps[user] = a
			}
		}
		return apps
	}
	both := func(apps map[string]string) bool {
		seen := map[string]bool{}
		for _, a := range apps {
			seen[a] = true
		}
		return seen["web-1"] && seen["web-2"]
	}
	eventually(t, "each user sticks to one app, and the users reach both", func() bool {
		apps := sticky()
		return apps != nil && both(apps)
	})
	// And it stays so.
	first := sticky()
	if first == nil || !both(first) {
		t.Fatalf("users do not stick to one app, or reach one only: %v", first)
	}
	if again := sticky(); fmt.Sprint(again) != fmt.Sprint(first) {
		t.Errorf("users moved between apps:\nfirst %v\nthen  %v", first, again)
	}
	t.Logf("users per app: %v; hits web-1 %d, web-2 %d", first, hits1.Load(), hits2.Load())
}
