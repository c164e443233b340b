//go:build linux

package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/netnstest"
	"github.com/weft-mesh/weft/internal/proxy/tlsid/tlstest"
)

// The mesh as an injected pod has it: `weft-proxy init` writes the capture
// rules (no hand-written iptables), and both proxies run as the proxy's
// UID, so the rules must let their own connections out.
const (
	initClientAddr = "169.254.79.1"
	initServerAddr = "169.254.79.2"
	initWebVIP     = "169.254.79.100:80"
	initProxyUID   = 2102
)

// TestInitCapturesForTheRealProxy runs the real binary's `init` in two
// namespaces and sends a request through both proxies: an application
// (root) on the client calls a service's virtual address; the client's
// rules send it to the outbound listener; the client proxy's own mTLS
// connection (UID 2102) leaves uncaptured; the server's rules send it to
// the inbound listener; the server proxy reaches the application on
// loopback. Then init again changes nothing, and `init revert` removes
// every weft rule and leaves the user's.
func TestInitCapturesForTheRealProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds the proxy and creates network namespaces")
	}
	client := netnstest.New(t, "winit-cl")
	server := netnstest.New(t, "winit-sv")
	netnstest.Link(t, client, initClientAddr+"/24", server, initServerAddr+"/24")
	dir := sharedDir(t)
	bin := filepath.Join(dir, "weft-proxy")
	copyFile(t, buildProxy(t), bin, 0o755)
	ca := tlstest.NewCA(t, "capture.test")

	// A rule of the user's in the client, which revert must leave.
	client.IPTables(t, false, "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "192.0.2.7", "--dport", "7", "-j", "RETURN")
	for _, ns := range []*netnstest.Netns{client, server} {
		logs := runInit(t, ns, bin, "init", "--log-format", "text", "--ipv6", "on")
		for _, want := range []string{`msg="capture rules applied" family=IPv4 backend=nft rules=10 jumps_added=2`, "family=IPv6", `msg="traffic capture on"`} {
			if !strings.Contains(logs, want) {
				t.Errorf("init in %s did not log %q:\n%s", ns.Name, want, logs)
			}
		}
	}
	before := saveAll(t, client)
	logs := runInit(t, client, bin, "init", "--log-format", "text", "--ipv6", "on")
	if !strings.Contains(logs, "jumps_added=0 stale_jumps_deleted=0") {
		t.Errorf("init again added or deleted jumps:\n%s", logs)
	}
	if after := saveAll(t, client); after != before {
		t.Errorf("init again changed the rules:\nbefore\n%s\nafter\n%s", before, after)
	}

	web := server.Listen(t, "tcp", "127.0.0.1:8080")
	go http.Serve(web, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "web saw %s %s", r.Method, r.URL.Path)
	}))
	sf := ca.Issue(t, serverID, time.Hour)
	startProxyAs(t, server, bin, dir, "server.yaml", fmt.Sprintf(`version: server
admin: {address: "127.0.0.1:4191"}
tls: {cert_file: %q, key_file: %q, trust_bundle_file: %q}
inbound: {address: "0.0.0.0:4143"}
`, share(t, dir, sf.CertFile), share(t, dir, sf.KeyFile), share(t, dir, sf.TrustBundleFile)))
	cf := ca.Issue(t, clientID, time.Hour)
	startProxyAs(t, client, bin, dir, "client.yaml", fmt.Sprintf(`version: client
admin: {address: "127.0.0.1:4191"}
tls: {cert_file: %q, key_file: %q, trust_bundle_file: %q}
outbound: {transparent_address: "127.0.0.1:4140"}
services:
- name: web
  addresses: [%q]
  endpoints: [{address: "%s:8080", identity: %q}]
`, share(t, dir, cf.CertFile), share(t, dir, cf.KeyFile), share(t, dir, cf.TrustBundleFile), initWebVIP, initServerAddr, serverID))

	httpc := &http.Client{Transport: &http.Transport{DialContext: client.DialContext}, Timeout: 10 * time.Second}
	if body := mustGet(t, httpc, "http://"+initWebVIP+"/hello"); body != "web saw GET /hello" {
		t.Fatalf("got %q", body)
	}
	metrics := mustGet(t, httpc, "http://127.0.0.1:4191/metrics")
	if !strings.Contains(metrics, `weft_requests_total{direction="outbound",peer="`+serverID+`",route="default",service="web"} 1`) {
		t.Errorf("the client proxy did not count a meshed request to web:\n%s", grep(metrics, "weft_requests_total"))
	}
	serverHTTP := &http.Client{Transport: &http.Transport{DialContext: server.DialContext}, Timeout: 10 * time.Second}
	metrics = mustGet(t, serverHTTP, "http://127.0.0.1:4191/metrics")
	if !strings.Contains(metrics, `weft_requests_total{direction="inbound",peer="`+clientID+`",route="default",service="8080"} 1`) {
		t.Errorf("the server proxy did not see the client's identity on port 8080:\n%s", grep(metrics, "weft_requests_total"))
	}

	dry, err := client.Command(bin, "init", "revert", "--dry-run", "--log-format", "text").Output()
	if err != nil || !strings.Contains(string(dry), "-D OUTPUT -p tcp -j WEFT_OUTBOUND\n") || !strings.Contains(string(dry), "-X WEFT_REDIRECT_OUT\n") {
		t.Errorf("init revert --dry-run printed (%v):\n%s", err, dry)
	}
	if after := saveAll(t, client); after != before {
		t.Errorf("init revert --dry-run changed the rules:\n%s", after)
	}
	for _, ns := range []*netnstest.Netns{client, server} {
		logs := runInit(t, ns, bin, "init", "revert", "--log-format", "text")
		if !strings.Contains(logs, `msg="capture rules reverted" family=IPv4`) || !strings.Contains(logs, `msg="capture rules reverted" family=IPv6`) {
			t.Errorf("revert in %s logged:\n%s", ns.Name, logs)
		}
		if rules := saveAll(t, ns); strings.Contains(rules, "WEFT") {
			t.Errorf("weft's rules are still in %s after revert:\n%s", ns.Name, rules)
		}
	}
	if rules := saveAll(t, client); !strings.Contains(rules, "-A OUTPUT -d 192.0.2.7/32 -p tcp -m tcp --dport 7 -j RETURN") {
		t.Errorf("revert removed the user's rule:\n%s", rules)
	}
	if logs := runInit(t, client, bin, "init", "--revert", "--log-format", "text"); !strings.Contains(logs, "no capture rules to revert") {
		t.Errorf("a second revert logged:\n%s", logs)
	}
}

// runInit runs the binary in ns and returns its log; it fails the test if
// the command fails.
func runInit(t *testing.T, ns *netnstest.Netns, bin string, args ...string) string {
	t.Helper()
	out, err := ns.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("weft-proxy %s in %s: %v\n%s", strings.Join(args, " "), ns.Name, err, out)
	}
	return string(out)
}

// saveAll is the nat tables of both families, without the comment lines
// (they hold the time).
func saveAll(t *testing.T, ns *netnstest.Netns) string {
	t.Helper()
	var b strings.Builder
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		out, err := ns.Command(save, "-t", "nat").CombinedOutput()
		if err != nil {
			t.Fatalf("%s in %s: %v: %s", save, ns.Name, err, out)
		}
		for line := range strings.Lines(string(out)) {
			if !strings.HasPrefix(line, "#") {
				b.WriteString(line)
			}
		}
	}
	return b.String()
}

// sharedDir is a directory the proxy's UID can read and run files from.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "weft-init-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// share copies a file into dir, owned by the proxy's UID, and returns the
// copy's path.
func share(t *testing.T, dir, path string) string {
	t.Helper()
	to := filepath.Join(dir, filepath.Base(filepath.Dir(path))+"-"+filepath.Base(path))
	copyFile(t, path, to, 0o600)
	if err := os.Chown(to, initProxyUID, initProxyUID); err != nil {
		t.Fatal(err)
	}
	return to
}

// startProxyAs runs the proxy in ns as the proxy's UID, as the injected
// sidecar runs, and waits until it is ready.
func startProxyAs(t *testing.T, ns *netnstest.Netns, bin, dir, name, cfg string) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "run", "--config", path, "--log-format", "text")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: initProxyUID, Gid: initProxyUID}}
	// Started from a thread inside ns: the proxy inherits the namespace.
	if err := ns.Do(cmd.Start); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("logs of the proxy in %s:\n%s", ns.Name, logs.String())
		}
	})
	hc := &http.Client{Transport: &http.Transport{DialContext: ns.DialContext}, Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := hc.Get("http://127.0.0.1:4191/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy in %s not ready: %v\n%s", ns.Name, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
