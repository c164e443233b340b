// Package universal tests weft in universal mode end to end, in one
// process with real sockets: a directory of YAML resources, the control
// plane (`weft control`'s server), and two weft-proxies that get their
// config from it, carrying a client's requests over mTLS to an application.
package universal

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/meshtest"

	"go.uber.org/goleak"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/server"
	"github.com/weft-mesh/weft/internal/control/source/file"
	"github.com/weft-mesh/weft/internal/proxy/sidecar"
	"github.com/weft-mesh/weft/internal/proxy/tlsid/tlstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

func freePort(t *testing.T) int { return meshtest.FreePort(t) }

// app answers with its name and counts its requests.
func app(t *testing.T, name string, hits *atomic.Int64) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintf(w, "%s saw %s %s", name, r.Method, r.URL.Path)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

func writeFile(t *testing.T, path, content string) { meshtest.WriteFile(t, path, content) }

func workload(name string, appPort, inbound int) string {
	return fmt.Sprintf(`---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: %s, namespace: default, labels: {app: web}}
spec:
  address: 127.0.0.1
  serviceAccount: web
  ports: [{name: http, port: %d}]
  proxy: {inboundPort: %d}
`, name, appPort, inbound)
}

func TestUniversalMode(t *testing.T) {
	var hits1, hits2 atomic.Int64
	app1, app2 := app(t, "web-1", &hits1), app(t, "web-2", &hits2)
	inbound := freePort(t)
	dir := t.TempDir()
	resources := filepath.Join(dir, "mesh")
	os.Mkdir(resources, 0o700)
	meshFile := filepath.Join(resources, "mesh.yaml")
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
` + workload("web-1", app1, inbound)
	writeFile(t, meshFile, mesh)

	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	src, err := file.New(resources, file.Options{Logger: log, Poll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// The control plane has its own lifetime: the test restarts it.
	startControlPlane := func(ln net.Listener, src model.Source) (context.CancelFunc, chan error) {
		cpCtx, cpCancel := context.WithCancel(context.Background())
		ready := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- server.Run(cpCtx, server.Options{Listener: ln, Sources: []model.Source{src}, Logger: log, Ready: ready})
		}()
		<-ready
		return cpCancel, done
	}
	cpStop, cpDone := startControlPlane(ln, src)

	ca := tlstest.NewCA(t, "weft.local")
	proxy := func(sa, nodeID string, watch []string, explicitBase int) (admin string, done chan error) {
		f := ca.Issue(t, "spiffe://weft.local/ns/default/sa/"+sa, time.Hour)
		admin = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		boot := filepath.Join(dir, sa+".yaml")
		writeFile(t, boot, fmt.Sprintf("admin: {address: %q}\ntls: {cert_file: %q, key_file: %q, trust_bundle_file: %q}\n", admin, f.CertFile, f.KeyFile, f.TrustBundleFile))
		ready := make(chan string, 1)
		done = make(chan error, 1)
		go func() {
			done <- sidecar.Run(ctx, sidecar.Options{ConfigPath: boot, Logger: log, Ready: ready, ControlPlane: &sidecar.ControlPlane{
				Address: ln.Addr().String(), NodeID: nodeID, Watch: watch, ExplicitBase: uint16(explicitBase),
			}})
		}()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("proxy %s exited: %v", sa, err)
		case <-time.After(15 * time.Second):
			t.Fatalf("proxy %s got no config from the control plane", sa)
		}
		return admin, done
	}
	_, serverDone := proxy("web", "web-1", nil, freePort(t))
	explicit := freePort(t)
	clientAdmin, clientDone := proxy("client", "client-1", []string{"default/web"}, explicit)
	defer func() {
		cancel()
		cpStop()
		for _, d := range []chan error{clientDone, serverDone, cpDone} {
			if err := <-d; err != nil {
				t.Error(err)
			}
		}
	}()

	get := func() (string, error) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/hello", explicit))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("status %d: %s (%s)", resp.StatusCode, b, resp.Header.Get("Weft-Proxy-Error"))
		}
		return string(b), nil
	}
	body, err := get()
	if err != nil || body != "web-1 saw GET /hello" {
		t.Fatalf("through the mesh: %q, %v", body, err)
	}
	resp, err := http.Get("http://" + clientAdmin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `peer="spiffe://weft.local/ns/default/sa/web"`; !strings.Contains(string(b), want) {
		t.Fatalf("the client proxy did not reach web over mTLS (no %s in its metrics)", want)
	}

	// A second workload of the service appears: traffic reaches it too.
	writeFile(t, meshFile, mesh+workload("web-2", app2, inbound))
	deadline := time.Now().Add(15 * time.Second)
	for hits2.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the new workload never got traffic")
		}
		if _, err := get(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	endpoints := func() int {
		resp, err := http.Get("http://" + clientAdmin + "/config_dump")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var dump struct {
			Services []struct {
				Endpoints []json.RawMessage `json:"endpoints"`
			} `json:"services"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&dump); err != nil || len(dump.Services) != 1 {
			t.Fatalf("config_dump: %v", err)
		}
		return len(dump.Services[0].Endpoints)
	}
	if n := endpoints(); n != 2 {
		t.Fatalf("the client proxy has %d endpoints of web before the restart, want 2", n)
	}
	// The control plane goes away: the proxies keep serving their last
	// config, with no failed request.
	cpStop()
	if err := <-cpDone; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, err := get(); err != nil {
			t.Fatalf("request %d without a control plane: %v", i, err)
		}
	}
	// It comes back on the same address with its state rebuilt from the
	// files; the proxies reconnect and follow a change made meanwhile.
	writeFile(t, meshFile, mesh)
	ln2, err := net.Listen("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	src2, err := file.New(resources, file.Options{Logger: log, Poll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cpStop, cpDone = startControlPlane(ln2, src2)
	deadline = time.Now().Add(20 * time.Second)
	for endpoints() != 1 {
		// web-2 is gone from the files; until the proxies reconnected and
		// got the new config they keep serving the old one.
		if time.Now().After(deadline) {
			t.Fatal("the proxies did not follow the restarted control plane")
		}
		if _, err := get(); err != nil {
			t.Fatalf("request while the control plane restarts: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if body, err := get(); err != nil || body != "web-1 saw GET /hello" {
		t.Fatalf("after the restart: %q, %v", body, err)
	}
}
