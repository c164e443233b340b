package sidecar_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/weft-mesh/weft/internal/proxy/sidecar"
	"github.com/weft-mesh/weft/internal/proxy/tlsid/tlstest"
)

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBadConfigKeepsLastGood(t *testing.T) {
	p := startPair(t, []app{{name: "web", addr: echoApp(t)}}, "")
	if code, _ := get(t, p.url("web", "/")); code != 200 {
		t.Fatalf("before reload: %d", code)
	}
	good, err := readFile(p.clientCfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"{not yaml",
		strings.Replace(good, "service: web", "service: nowhere", 1),
		strings.Replace(good, "detection:", "unknown_field: 1\ndetection:", 1),
	} {
		before, _ := metric(t, p.clientAdm, "weft_proxy_config_rejected_total")
		writeFile(t, p.clientCfg, bad)
		eventually(t, "the bad config is rejected", func() bool {
			v, _ := metric(t, p.clientAdm, "weft_proxy_config_rejected_total")
			return v > before
		})
		if code, _ := get(t, p.url("web", "/")); code != 200 {
			t.Fatalf("after a bad config the proxy stopped serving: %d", code)
		}
	}

	// A good config is swapped in live, listeners included.
	next := strings.Replace(good, "version: client-1", "version: client-2", 1)
	p.listen["web2"] = freeAddr(t)
	next = strings.Replace(next, "outbound:\n  explicit:\n", "outbound:\n  explicit:\n  - {address: \""+p.listen["web2"]+"\", service: web}\n", 1)
	writeFile(t, p.clientCfg, next)
	eventually(t, "the new config is running", func() bool {
		_, dump := get(t, "http://"+p.clientAdm+"/config_dump")
		return strings.Contains(dump, `"version": "client-2"`)
	})
	if code, _ := get(t, p.url("web2", "/")); code != 200 {
		t.Fatalf("new explicit listener: %d", code)
	}
	if code, _ := get(t, p.url("web", "/")); code != 200 {
		t.Fatalf("old listener after reload: %d", code)
	}
}

func TestAdminEndpoints(t *testing.T) {
	p := startPair(t, []app{{name: "web", addr: echoApp(t)}}, "")
	if code, body := get(t, "http://"+p.clientAdm+"/ready"); code != 200 {
		t.Fatalf("/ready: %d %s", code, body)
	}
	if code, _ := get(t, "http://"+p.clientAdm+"/live"); code != 200 {
		t.Fatalf("/live: %d", code)
	}
	code, body := get(t, "http://"+p.clientAdm+"/config_dump")
	if code != 200 {
		t.Fatalf("/config_dump: %d", code)
	}
	var dump struct {
		Identity struct {
			SPIFFEID string `json:"spiffe_id"`
		} `json:"identity"`
		Listeners []string `json:"listeners"`
		Services  []struct {
			Name      string `json:"name"`
			Endpoints []struct {
				Address string `json:"address"`
			} `json:"endpoints"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(body), &dump); err != nil {
		t.Fatalf("config_dump is not JSON: %v", err)
	}
	if dump.Identity.SPIFFEID != clientID || len(dump.Services) != 1 || len(dump.Services[0].Endpoints) != 1 || len(dump.Listeners) != 1 {
		t.Fatalf("config_dump does not describe the running proxy: %s", body)
	}
	if strings.Contains(body, "PRIVATE KEY") {
		t.Fatal("config_dump leaks key material")
	}
}

func TestWrongPeerIdentityRefused(t *testing.T) {
	p := startPair(t, []app{{name: "web", addr: echoApp(t)}}, "")
	good, _ := readFile(p.clientCfg)
	// The client now expects another identity at the same peer.
	writeFile(t, p.clientCfg, strings.Replace(strings.Replace(good, serverID, "spiffe://test.weft/ns/default/sa/impostor", 1), "client-1", "client-2", 1))
	eventually(t, "the new config is running", func() bool {
		_, dump := get(t, "http://"+p.clientAdm+"/config_dump")
		return strings.Contains(dump, `"version": "client-2"`)
	})
	resp, err := http.Get(p.url("web", "/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	reason := resp.Header.Get("Weft-Proxy-Error")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(reason, "impostor") || !strings.Contains(reason, "sa/server") {
		t.Fatalf("status %d, reason %q: want 502 naming the expected and the presented identity", resp.StatusCode, reason)
	}
}

func TestShutdownDrainsInFlight(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case started <- struct{}{}:
		default: // a probe that slipped in before the listener closed
		}
		<-release
		io.WriteString(w, "finished")
	}))
	ca := tlstest.NewCA(t, "test.weft")
	f := ca.Issue(t, clientID, time.Hour)
	dir := t.TempDir()
	admin, listen := freeAddr(t), freeAddr(t)
	cfg := dir + "/proxy.yaml"
	writeFile(t, cfg, `admin: {address: "`+admin+`"}
tls: {cert_file: "`+f.CertFile+`", key_file: "`+f.KeyFile+`", trust_bundle_file: "`+f.TrustBundleFile+`"}
timeouts: {drain: 20s}
services:
- name: slow
  endpoints: [{address: "`+addr+`"}]
outbound:
  explicit: [{address: "`+listen+`", service: slow, protocol: http1}]
`)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- sidecar.Run(context.Background(), sidecar.Options{ConfigPath: cfg, Logger: quietLogger(t), Ready: ready})
	}()
	<-ready
	result := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + listen + "/")
		if err != nil {
			result <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- string(b)
	}()
	<-started
	resp, err := http.Post("http://"+admin+"/shutdown", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /shutdown: %d", resp.StatusCode)
	}
	eventually(t, "the listener closes", func() bool {
		_, err := http.Get("http://" + listen + "/")
		return err != nil
	})
	close(release)
	if got := <-result; got != "finished" {
		t.Fatalf("in-flight request got %q, want it finished during the drain", got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("proxy did not exit after draining")
	}
}

// TestPeerCannotReachProxyPorts: a peer naming the inbound proxy's own admin
// port as destination is refused; the admin server would otherwise trust the
// proxy's loopback connection with /config_dump and /shutdown.
func TestPeerCannotReachProxyPorts(t *testing.T) {
	web := app{name: "web", addr: echoApp(t)}
	p := startPair(t, []app{web}, "")
	p.reconfigure([]app{web, {name: "admin", addr: p.serverAdm}}, "client-2")
	for _, path := range []string{"/config_dump", "/metrics"} {
		resp, err := http.Get(p.url("admin", path))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Header.Get("Weft-Proxy-Error"), "skipped") {
			t.Errorf("%s through the mesh: status %d (%s), want 403", path, resp.StatusCode, resp.Header.Get("Weft-Proxy-Error"))
		}
	}
	if code, _ := get(t, p.url("web", "/")); code != 200 {
		t.Errorf("application port: %d", code)
	}
}

// TestNewCertificateFilesAreWatched: a reload that names other certificate
// files switches to them, and later rotations of those files are followed.
func TestNewCertificateFilesAreWatched(t *testing.T) {
	p := startPair(t, []app{{name: "web", addr: echoApp(t)}}, "")
	ca := tlstest.NewCA(t, "test.weft")
	next := ca.Issue(t, clientID, 2*time.Hour)
	cfg, _ := readFile(p.clientCfg)
	cfg = strings.Replace(cfg, p.clientTLS.CertFile, next.CertFile, 1)
	cfg = strings.Replace(cfg, p.clientTLS.KeyFile, next.KeyFile, 1)
	cfg = strings.Replace(cfg, p.clientTLS.TrustBundleFile, next.TrustBundleFile, 1)
	writeFile(t, p.clientCfg, strings.Replace(cfg, "client-1", "client-2", 1))
	eventually(t, "the new certificate files are in use", func() bool {
		_, dump := get(t, "http://"+p.clientAdm+"/config_dump")
		return strings.Contains(dump, next.CertFile)
	})
	notAfter := func() string {
		_, dump := get(t, "http://"+p.clientAdm+"/config_dump")
		var d struct {
			Identity struct {
				NotAfter string `json:"not_after"`
			} `json:"identity"`
		}
		json.Unmarshal([]byte(dump), &d)
		return d.Identity.NotAfter
	}
	before := notAfter()
	// Rotate the new files in place: same paths, a longer-lived certificate.
	rotated := ca.Issue(t, clientID, 5*time.Hour)
	for _, pair := range [][2]string{{rotated.CertFile, next.CertFile}, {rotated.KeyFile, next.KeyFile}} {
		b, err := os.ReadFile(pair[0])
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, pair[1], string(b))
	}
	eventually(t, "the rotation of the new files is picked up", func() bool { return notAfter() != before })
}

// TestShutdownWaitsForTunnels: a WebSocket open when the drain starts keeps
// working during the drain, and the proxy exits once it closes.
func TestShutdownWaitsForTunnels(t *testing.T) {
	addr := serve(t, websocket.Handler(func(ws *websocket.Conn) {
		for {
			var msg string
			if websocket.Message.Receive(ws, &msg) != nil || websocket.Message.Send(ws, msg) != nil {
				return
			}
		}
	}))
	dir := t.TempDir()
	admin, listen := freeAddr(t), freeAddr(t)
	cfg := dir + "/proxy.yaml"
	writeFile(t, cfg, `admin: {address: "`+admin+`"}
timeouts: {drain: 20s}
services: [{name: ws, endpoints: [{address: "`+addr+`"}]}]
outbound: {explicit: [{address: "`+listen+`", service: ws, protocol: http1}]}
`)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- sidecar.Run(context.Background(), sidecar.Options{ConfigPath: cfg, Logger: quietLogger(t), Ready: ready})
	}()
	<-ready
	ws, err := websocket.Dial("ws://"+listen+"/", "", "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	ws.SetDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.Post("http://"+admin+"/shutdown", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	eventually(t, "the listener closes", func() bool {
		_, err := http.Get("http://" + listen + "/")
		return err != nil
	})
	var got string
	if err := websocket.Message.Send(ws, "still here"); err != nil {
		t.Fatalf("the tunnel was cut when the drain began: %v", err)
	}
	if err := websocket.Message.Receive(ws, &got); err != nil || got != "still here" {
		t.Fatalf("echo during the drain: %q, %v", got, err)
	}
	select {
	case <-done:
		t.Fatal("the proxy exited with a tunnel still open")
	default:
	}
	ws.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the proxy did not exit after the tunnel closed")
	}
}
