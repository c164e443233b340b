package universal

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
)

// TestPoliciesEndToEnd: AuthorizationPolicy and MutualTLSPolicy written as
// universal-mode files reach the right proxy and are enforced on real
// requests between proxies with issued identities.
func TestPoliciesEndToEnd(t *testing.T) {
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
	webAdmin := m.proxy("web", "web-1", nil, freePort(t))
	explicit := freePort(t)
	m.proxy("client", "client-1", []string{"default/web"}, explicit)

	status := func(path string) int {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", explicit, path))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	apply := func(policies string) { writeFile(t, m.meshFile, base+policies) }
	until := func(what, path string, want int) {
		t.Helper()
		eventually(t, what, func() bool { return status(path) == want })
	}
	if got := status("/x"); got != 200 {
		t.Fatalf("without policies: %d", got)
	}

	const deny = `---
apiVersion: policy.weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: no-client, namespace: default}
spec:
  targetRefs: [{group: "", kind: Service, name: web}]
  action: Deny
  %s
  rules: [{name: client, from: {identities: ["spiffe://weft.local/ns/default/sa/client"]}}]
`
	apply(fmt.Sprintf(deny, ""))
	until("the Deny policy is enforced", "/x", 403)
	if v := metric(t, webAdmin, `weft_authz_decisions_total{decision="deny",policy="default/no-client",rule="client"}`); v < 1 {
		t.Fatalf("deny not counted with its rule: %v", v)
	}
	apply(fmt.Sprintf(deny, "mode: DryRun"))
	until("the dry-run policy lets requests through", "/x", 200)
	if v := metric(t, webAdmin, `weft_authz_decisions_total{decision="would_deny",policy="default/no-client",rule="client"}`); v < 1 {
		t.Fatalf("dry run not counted as would_deny: %v", v)
	}

	// An allow list on a path: everything else on the port is denied.
	apply(`---
apiVersion: policy.weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: public-only, namespace: default}
spec:
  targetRefs: [{group: "", kind: Service, name: web}]
  action: Allow
  rules: [{name: public, from: {namespaces: [default]}, to: {methods: [GET], paths: [{type: PathPrefix, value: /public}]}}]
`)
	until("the allow list is enforced", "/private", 403)
	if got := status("/public/page"); got != 200 {
		t.Fatalf("GET /public/page under the allow list: %d", got)
	}

	// A default inbound policy by annotation on the workload.
	apply(`---
apiVersion: v1
kind: Namespace
metadata: {name: default, annotations: {weft.dev/default-inbound-policy: deny-all}}
`)
	until("the namespace's deny-all default applies", "/x", 403)

	// Strict mTLS for the workload reaches its proxy's config.
	apply(`---
apiVersion: policy.weft.dev/v1alpha1
kind: MutualTLSPolicy
metadata: {name: strict, namespace: default}
spec: {mode: Strict, targetRefs: [{group: "", kind: Service, name: web}]}
`)
	until("requests flow again without the deny-all default", "/x", 200)
	eventually(t, "web's proxy requires mTLS", func() bool {
		resp, err := http.Get("http://" + webAdmin + "/config_dump")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var dump struct {
			Config struct {
				Inbound struct {
					RequireMTLS bool `json:"require_mtls"`
					Ports       []struct {
						Port uint16 `json:"port"`
						MTLS string `json:"mtls"`
					} `json:"ports"`
				} `json:"inbound"`
			} `json:"config"`
		}
		b, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(b, &dump) != nil {
			return false
		}
		in := dump.Config.Inbound
		strict := in.RequireMTLS
		for _, p := range in.Ports {
			if int(p.Port) == webApp && p.MTLS != "" {
				strict = p.MTLS == "strict"
			}
		}
		return strict
	})
	if got := status("/x"); got != 200 {
		t.Fatalf("a meshed client under strict mTLS: %d", got)
	}
}
