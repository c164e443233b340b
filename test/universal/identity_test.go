package universal

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/meshtest"

	"github.com/weft-mesh/weft/internal/control/ca"
)

// metric reads one unlabelled sample (or the sum of a labelled one, with
// the label filter in name's braces) from a proxy's /metrics.
func metric(t *testing.T, admin, name string) float64 { return meshtest.Metric(t, admin, name) }

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	meshtest.Eventually(t, 20*time.Second, what, cond)
}

// TestIssuedIdentityRenewalAndAnchorRoll: proxies get their certificates
// from the control plane with single-use join tokens, renew them under
// load, and live through a whole trust anchor rotation, with a clock the
// test controls and not one failed request. Then, with the control plane
// gone, certificates expire: the proxies say so and stop mTLS.
func TestIssuedIdentityRenewalAndAnchorRoll(t *testing.T) {
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
` + workload("web-1", app1, freePort(t))
	m := startIssuedMesh(t, mesh)
	clk, caDir, meshFile, auth := m.clk, m.caDir, m.meshFile, m.auth
	webAdmin := m.proxy("web", "web-1", nil, freePort(t))
	explicit := freePort(t)
	clientAdmin := m.proxy("client", "client-1", []string{"default/web"}, explicit)

	// Load through the mesh for the whole rotation.
	var ok, failed atomic.Int64
	var firstErr atomic.Pointer[string]
	stopLoad := make(chan struct{})
	var loadWG sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for range 2 {
		loadWG.Go(func() {
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/hello", explicit))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d (%s)", resp.StatusCode, resp.Header.Get("Weft-Proxy-Error"))
					}
				}
				if err != nil {
					failed.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				ok.Add(1)
			}
		})
	}
	stopLoadOnce := sync.OnceFunc(func() { close(stopLoad); loadWG.Wait() })
	defer stopLoadOnce()
	progress := func(what string) {
		t.Helper()
		n := ok.Load()
		eventually(t, what+": requests flow", func() bool { return ok.Load() > n+20 })
		if f := failed.Load(); f > 0 {
			t.Fatalf("%s: %d failed requests, first: %s", what, f, *firstErr.Load())
		}
	}
	progress("start")
	admins := []string{webAdmin, clientAdmin}
	renewals := func(want float64) func() bool {
		return func() bool {
			for _, a := range admins {
				if metric(t, a, `weft_identity_renewals_total{result="success"}`) < want {
					return false
				}
			}
			return true
		}
	}

	// 1. Renewal at ~70% of the 24h lifetime, under load.
	eventually(t, "both proxies wait to renew", func() bool { return clk.Waiters() >= 2 })
	clk.Advance(18 * time.Hour)
	eventually(t, "both proxies renewed", renewals(2))
	progress("after renewal")
	// Past the first certificates' expiry: the renewed ones carry on.
	clk.Advance(7 * time.Hour)
	progress("past the first certificates' expiry")

	// 2. Anchor roll: a new anchor joins the bundle, reaching every proxy.
	if _, err := ca.AddAnchor(caDir, ca.Options{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	anchors := func(want float64) func() bool {
		return func() bool {
			for _, a := range admins {
				if metric(t, a, "weft_identity_trust_anchors") != want {
					return false
				}
			}
			return true
		}
	}
	eventually(t, "every proxy trusts both anchors", anchors(2))
	progress("with two anchors")
	// A new issuer signed by the new anchor: proxies re-issue (after a
	// jitter of up to 5s on the test's clock).
	if _, err := ca.RotateIssuer(caDir, ca.Options{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !renewals(3)() {
		if time.Now().After(deadline) {
			t.Fatal("the proxies did not re-issue after the issuer rotation")
		}
		clk.Advance(time.Second)
		time.Sleep(50 * time.Millisecond)
	}
	progress("after re-issue")
	// A workload that starts now gets a certificate chaining to the new
	// anchor; the client, whose bundle has both, reaches it.
	// Same service account as web-1 but other ports: a config of its own.
	// It joins the service only once its proxy is up.
	web2 := workload("web-2", app2, freePort(t))
	writeFile(t, meshFile, mesh+strings.Replace(web2, "app: web", "app: web-starting", 1))
	webAdmin2 := m.proxy("web", "web-2", nil, freePort(t))
	admins = append(admins, webAdmin2)
	writeFile(t, meshFile, mesh+web2)
	eventually(t, "the new workload gets traffic", func() bool { return hits2.Load() > 0 })
	progress("with the new workload")
	// The old anchor leaves the bundle.
	old := ""
	for _, e := range auth.Current().Expiries() {
		if e.What == "trust anchor" && e.Note == "" {
			old = e.Fingerprint
		}
	}
	if err := ca.RemoveAnchor(caDir, old[:16], ca.Options{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every proxy trusts only the new anchor", anchors(1))
	progress("after the old anchor left")
	stopLoadOnce()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d failed requests during rotation, first: %s", f, *firstErr.Load())
	}
	t.Logf("%d requests, none failed, through renewal and an anchor roll", ok.Load())

	// 3. Expiry: with the control plane gone nothing renews. Past expiry
	// the proxies report it and mTLS stops.
	m.stopControlPlane()
	clk.Advance(48 * time.Hour)
	eventually(t, "the client proxy reports its expired certificate", func() bool {
		resp, err := http.Get("http://" + clientAdmin + "/ready")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 503 && strings.Contains(string(b), "expired")
	})
	if v := metric(t, clientAdmin, "weft_identity_certificate_valid"); v != 0 {
		t.Fatalf("weft_identity_certificate_valid = %v after expiry, want 0", v)
	}
	eventually(t, "requests over mTLS fail", func() bool {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/hello", explicit))
		if err != nil {
			return true
		}
		resp.Body.Close()
		return resp.StatusCode != 200
	})
}
