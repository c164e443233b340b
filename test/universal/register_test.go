package universal

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/control/registry"
	"github.com/weft-mesh/weft/internal/control/server"
	"github.com/weft-mesh/weft/internal/proxy/health"
	"github.com/weft-mesh/weft/internal/proxy/sidecar"
)

// restartableApp is an HTTP application on a fixed port that can stop
// listening and start again.
type restartableApp struct {
	t    *testing.T
	name string
	addr string
	mu   sync.Mutex
	srv  *http.Server
}

func newRestartableApp(t *testing.T, name string) *restartableApp {
	a := &restartableApp{t: t, name: name, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	a.start()
	t.Cleanup(a.stop)
	return a
}

func (a *restartableApp) port() uint16 { return netip.MustParseAddrPort(a.addr).Port() }

func (a *restartableApp) start() {
	a.t.Helper()
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		a.t.Fatalf("app %s: %v", a.name, err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s saw %s %s", a.name, r.Method, r.URL.Path)
	})}
	go srv.Serve(ln)
	a.mu.Lock()
	a.srv = srv
	a.mu.Unlock()
}

// stop closes the listener and every connection: the application is gone.
func (a *restartableApp) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		a.srv.Close()
		a.srv = nil
	}
}

// TestRegisteredWorkload: a workload that no file describes joins the mesh
// because its proxy registers it; the Service selecting it by label sends
// it traffic from another proxy. When the application stops answering its
// health checks, the client's proxy stops sending to it (503, no
// endpoints) and resumes when it is back; when its proxy stops, the
// endpoint is gone at once, long before the grace period.
func TestRegisteredWorkload(t *testing.T) {
	web := newRestartableApp(t, "web-1")
	resources := `apiVersion: v1
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
`
	m := startIssuedMesh(t, resources, func(o *server.Options) {
		// A grace period longer than the test: only the deregister can
		// remove the workload in time.
		reg, err := registry.New(registry.Options{DataDir: t.TempDir(), Grace: 10 * time.Minute, Logger: o.Logger})
		if err != nil {
			t.Fatal(err)
		}
		o.Registry = reg
	})
	inbound := uint16(freePort(t))
	_, stopWeb := m.proxyWith("web", "web-1", nil, freePort(t), func(cp *sidecar.ControlPlane) {
		cp.Register = &sidecar.Registration{
			Address:        netip.MustParseAddr("127.0.0.1"),
			Ports:          []sidecar.RegisteredPort{{Name: "http", Port: web.port(), Protocol: "http1"}},
			Labels:         map[string]string{"app": "web"},
			InboundPort:    inbound,
			Health:         health.Spec{Kind: health.KindTCP},
			HealthInterval: 50 * time.Millisecond,
		}
	})
	explicit := freePort(t)
	clientAdmin := m.proxy("client", "client-1", []string{"default/web"}, explicit)

	get := func() (int, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/hello", explicit))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	endpoints := func() int {
		resp, err := http.Get("http://" + clientAdmin + "/config_dump")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var dump struct {
			Services []struct {
				Name      string            `json:"name"`
				Endpoints []json.RawMessage `json:"endpoints"`
			} `json:"services"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&dump); err != nil {
			t.Fatalf("config_dump: %v", err)
		}
		n := 0
		for _, s := range dump.Services {
			n += len(s.Endpoints)
		}
		return n
	}
	servedByWeb := func() bool {
		code, body := get()
		return code == 200 && body == "web-1 saw GET /hello"
	}

	eventually(t, "the registered workload serves through the mesh", servedByWeb)
	if n := endpoints(); n != 1 {
		t.Fatalf("the client's proxy has %d endpoints of web, want 1", n)
	}

	web.stop()
	eventually(t, "the client's proxy drops the unhealthy endpoint", func() bool { return endpoints() == 0 })
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "no endpoints") {
		t.Fatalf("with the application down: %d %q, want 503 saying there are no endpoints", code, body)
	}

	web.start()
	eventually(t, "the healthy endpoint comes back", func() bool { return endpoints() == 1 })
	if !servedByWeb() {
		t.Fatal("the endpoint is back but requests fail")
	}

	start := time.Now()
	stopWeb()
	eventually(t, "the deregistered endpoint leaves the client's proxy", func() bool { return endpoints() == 0 })
	t.Logf("endpoint gone %v after the server's proxy was told to stop", time.Since(start))
	if code, _ := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("after the server's proxy stopped: %d, want 503", code)
	}
}

// TestRegistryNeedsIdentity: a control plane that does not verify the
// proxies' identities refuses to take registrations, whose namespace and
// service account come from those identities.
func TestRegistryNeedsIdentity(t *testing.T) {
	reg, err := registry.New(registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = server.Run(context.Background(), server.Options{Listener: ln, Registry: reg, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "needs Identity") {
		t.Fatalf("Run: %v, want a refusal saying the registry needs Identity", err)
	}
}
