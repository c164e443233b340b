// Package processes tests the mesh as separate real processes on loopback:
// `weft control`, two weft-proxies that join with tokens from `weft token
// create`, and traffic through them while the control plane changes routes,
// is killed and comes back, and sends a config a proxy cannot apply.
package processes

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/meshtest"
)

func build(t *testing.T, dir string) { meshtest.Build(t, "../..", dir) }

func freePort(t *testing.T) int { return meshtest.FreePort(t) }

func writeFile(t *testing.T, path, content string) { meshtest.WriteFile(t, path, content) }

// start runs a process whose output goes to a log file in dir, killed at
// the end of the test.
func start(t *testing.T, dir, name string, argv ...string) *exec.Cmd {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("--- %s log:\n%s", name, b)
		}
	})
	return cmd
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	meshtest.Eventually(t, 30*time.Second, what, cond)
}

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func metric(t *testing.T, admin, name string) float64 { return meshtest.Metric(t, admin, name) }

func TestMeshOfProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds the binaries and runs real processes")
	}
	bin, dir := t.TempDir(), t.TempDir()
	build(t, bin)
	weft, proxy := filepath.Join(bin, "weft"), filepath.Join(bin, "weft-proxy")

	// The application: echoes a routing header so route changes show.
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "web route=%s", r.Header.Get("X-Route"))
	})}
	go app.Serve(appLn)
	t.Cleanup(func() { app.Close() })
	appPort := appLn.Addr().(*net.TCPAddr).Port

	meshDir := filepath.Join(dir, "mesh")
	os.Mkdir(meshDir, 0o700)
	base := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web-1, namespace: default, labels: {app: web}}
spec: {address: 127.0.0.1, serviceAccount: web, ports: [{name: http, port: %d}], proxy: {inboundPort: %d}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: client-1, namespace: default, labels: {app: client}}
spec: {address: 127.0.0.1, serviceAccount: client, proxy: {inboundPort: %d}}
`, appPort, freePort(t), freePort(t))
	meshFile := filepath.Join(meshDir, "mesh.yaml")
	writeFile(t, meshFile, base)

	dataDir := filepath.Join(dir, "data")
	cpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startCP := func(name string) *exec.Cmd {
		return start(t, dir, name, weft, "control", "--dir", meshDir, "--data-dir", dataDir, "--listen", cpAddr)
	}
	cp := startCP("control")
	anchor := filepath.Join(dataDir, "ca", "anchor.crt")
	eventually(t, "weft control is up", func() bool {
		c, err := net.Dial("tcp", cpAddr)
		if err != nil {
			return false
		}
		c.Close()
		_, err = os.Stat(anchor)
		return err == nil
	})

	// Proxies join with tokens made by the CLI.
	explicit := freePort(t)
	admins := map[string]string{}
	for _, p := range []struct {
		sa    string
		extra []string
	}{
		{"web", nil},
		// The client watches api too, which does not exist yet: when it
		// appears its listener (the next port) will be taken.
		{"client", []string{"--watch", "default/web", "--watch", "default/api", "--explicit-base", strconv.Itoa(explicit)}},
	} {
		tok, err := exec.Command(weft, "token", "create", "--data-dir", dataDir, "-n", "default", "--service-account", p.sa).Output()
		if err != nil {
			t.Fatalf("weft token create: %v", err)
		}
		tokFile := filepath.Join(dir, p.sa+".token")
		writeFile(t, tokFile, string(tok))
		admins[p.sa] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		boot := filepath.Join(dir, p.sa+".yaml")
		writeFile(t, boot, fmt.Sprintf("admin: {address: %q}\n", admins[p.sa]))
		args := append([]string{proxy, "run", "--config", boot, "--control-plane", cpAddr, "--node-id", p.sa + "-1",
			"--join-token-file", tokFile, "--trust-bundle", anchor, "--log-format", "text"}, p.extra...)
		start(t, dir, p.sa+"-proxy", args...)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", explicit)
	eventually(t, "requests flow through the mesh", func() bool { code, _ := get(url); return code == 200 })

	// Steady load for the rest of the test: every failure is counted.
	var ok, failed atomic.Int64
	var firstErr atomic.Pointer[string]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if code, body := get(url); code != 200 {
				failed.Add(1)
				msg := fmt.Sprintf("%d %s", code, body)
				firstErr.CompareAndSwap(nil, &msg)
			} else {
				ok.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	noFailures := func(when string) {
		t.Helper()
		n := ok.Load()
		eventually(t, when+": requests flow", func() bool { return ok.Load() > n+20 })
		if f := failed.Load(); f > 0 {
			t.Fatalf("%s: %d failed requests; first: %s", when, f, *firstErr.Load())
		}
	}
	noFailures("start")

	// A route change reaches the proxies and changes real traffic.
	route := `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-v2, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Route, value: v2}]}}]
    backendRefs: [{name: web, port: 80}]
`
	writeFile(t, meshFile, base+route)
	eventually(t, "the route change shows in traffic", func() bool { _, body := get(url); return body == "web route=v2" })
	noFailures("after the route change")

	// Kill the control plane (no goodbye) under load, and bring it back on
	// the same address and data directory: state rebuilt, proxies resync.
	if err := cp.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cp.Wait()
	time.Sleep(time.Second)
	noFailures("without a control plane")
	startCP("control-restarted")
	// The restarted control plane follows a change made meanwhile.
	writeFile(t, meshFile, base)
	eventually(t, "the proxies follow the restarted control plane", func() bool { _, body := get(url); return body == "web route=" })
	noFailures("after the control plane's restart")

	// A config the client proxy cannot apply: api's listener port is taken.
	hold, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", explicit+1))
	if err != nil {
		t.Fatalf("holding port %d: %v", explicit+1, err)
	}
	defer hold.Close()
	rejected := metric(t, admins["client"], "weft_proxy_config_rejected_total")
	writeFile(t, meshFile, base+`---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]
`)
	eventually(t, "the client proxy rejects the config it cannot apply", func() bool {
		return metric(t, admins["client"], "weft_proxy_config_rejected_total") > rejected
	})
	noFailures("after a rejected config (the last good one stays)")
	stopLoad()
	t.Logf("%d requests, none failed, through a route change, a control plane kill and restart, and a rejected config", ok.Load())
}
