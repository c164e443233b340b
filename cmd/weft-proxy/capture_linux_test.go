//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
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

// Two hosts in their own network namespaces, joined by a veth pair: a client
// workload with an outbound weft-proxy, and a server workload with an
// inbound weft-proxy. Real iptables REDIRECT rules capture the traffic, as
// `weft-proxy init` will install them, and the proxies are the real binary.
const (
	clientAddr = "169.254.77.1"
	serverAddr = "169.254.77.2"
	webVIP     = "169.254.77.100:80"   // the web service's virtual address
	dbVIP      = "169.254.77.101:3306" // a server-first database service
	clientID   = "spiffe://capture.test/ns/default/sa/client"
	serverID   = "spiffe://capture.test/ns/default/sa/server"
)

func TestTransparentCaptureBetweenTwoHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds the proxy and creates network namespaces")
	}
	client := netnstest.New(t, "weft-cl")
	server := netnstest.New(t, "weft-sv")
	netnstest.Link(t, client, clientAddr+"/24", server, serverAddr+"/24")
	bin := buildProxy(t)
	ca := tlstest.NewCA(t, "capture.test")
	dir := t.TempDir()

	// Server host: applications on loopback, inbound capture of their ports.
	web := server.Listen(t, "tcp", "127.0.0.1:8080")
	go http.Serve(web, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "web saw %s %s %s", r.Method, r.URL.Path, r.Proto)
	}))
	db := server.Listen(t, "tcp", "127.0.0.1:3306")
	go serveGreeting(db)
	for _, port := range []string{"8080", "8081", "3306", "9999"} {
		server.IPTables(t, false, "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", port, "-j", "REDIRECT", "--to-ports", "4143")
	}
	sf := ca.Issue(t, serverID, time.Hour)
	startProxy(t, server, bin, filepath.Join(dir, "server.yaml"), fmt.Sprintf(`version: server
admin: {address: "127.0.0.1:4191"}
tls: {cert_file: %q, key_file: %q, trust_bundle_file: %q}
inbound:
  address: "0.0.0.0:4143"
  ports:
  - {port: 8081, app_port: 8080, protocol: http1}   # the service port differs from the container port
  - {port: 9999, skip: true}
`, sf.CertFile, sf.KeyFile, sf.TrustBundleFile))

	// Client host: outbound capture of the services' virtual addresses.
	for _, vip := range []string{webVIP, dbVIP} {
		host, port, _ := net.SplitHostPort(vip)
		client.IPTables(t, false, "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", host, "--dport", port, "-j", "REDIRECT", "--to-ports", "4140")
	}
	cf := ca.Issue(t, clientID, time.Hour)
	clientProxy := startProxy(t, client, bin, filepath.Join(dir, "client.yaml"), fmt.Sprintf(`version: client
admin: {address: "127.0.0.1:4191"}
tls: {cert_file: %q, key_file: %q, trust_bundle_file: %q}
outbound: {transparent_address: "127.0.0.1:4140"}
services:
- name: web
  addresses: [%q]
  endpoints: [{address: "%s:8080", identity: %q}]
- name: db
  addresses: [%q]
  endpoints: [{address: "%s:3306", identity: %q}]
`, cf.CertFile, cf.KeyFile, cf.TrustBundleFile, webVIP, serverAddr, serverID, dbVIP, serverAddr, serverID))

	httpc := &http.Client{Transport: &http.Transport{DialContext: client.DialContext}, Timeout: 10 * time.Second}
	serverHTTP := &http.Client{Transport: &http.Transport{DialContext: server.DialContext}, Timeout: 10 * time.Second}
	t.Run("HTTP to a virtual address crosses both proxies over mTLS", func(t *testing.T) {
		body := mustGet(t, httpc, "http://"+webVIP+"/hello")
		if body != "web saw GET /hello HTTP/1.1" {
			t.Fatalf("got %q", body)
		}
		metrics := mustGet(t, httpc, "http://127.0.0.1:4191/metrics")
		if !strings.Contains(metrics, `weft_requests_total{direction="outbound",peer="`+serverID+`",route="default",service="web"} 1`) {
			t.Errorf("the client proxy did not count a meshed request to web:\n%s", grep(metrics, "weft_requests_total"))
		}
		metrics = mustGet(t, serverHTTP, "http://127.0.0.1:4191/metrics")
		if !strings.Contains(metrics, `weft_requests_total{direction="inbound",peer="`+clientID+`",route="default",service="8080"} 1`) {
			t.Errorf("the server proxy did not see the client's identity on port 8080:\n%s", grep(metrics, "weft_requests_total"))
		}
	})
	t.Run("server-first protocol on a default opaque port", func(t *testing.T) {
		c := client.Dial(t, dbVIP)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "greeting\n" {
			t.Fatalf("got %q, %v", line, err)
		}
	})
	t.Run("plaintext client outside the mesh is accepted (permissive)", func(t *testing.T) {
		// No capture for this destination on the client host: the request
		// reaches the server host's inbound proxy in plaintext.
		body := mustGet(t, httpc, "http://"+serverAddr+":8080/direct")
		if body != "web saw GET /direct HTTP/1.1" {
			t.Fatalf("got %q", body)
		}
	})
	t.Run("inbound port settings: app port mapping and skip", func(t *testing.T) {
		if body := mustGet(t, httpc, "http://"+serverAddr+":8081/mapped"); body != "web saw GET /mapped HTTP/1.1" {
			t.Fatalf("port 8081 → app 8080: got %q", body)
		}
		c := client.Dial(t, serverAddr+":9999")
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("a skipped port answered %d bytes", n)
		}
	})
	t.Run("SIGTERM drains and exits 0", func(t *testing.T) {
		if err := clientProxy.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- clientProxy.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("weft-proxy exited with %v after SIGTERM", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("weft-proxy did not exit after SIGTERM")
		}
	})
}

func serveGreeting(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.WriteString(c, "greeting\n")
		c.Close()
	}
}

func buildProxy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "weft-proxy")
	out, err := exec.Command("go", "build", "-tags", "grpcnotrace", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("building weft-proxy: %v\n%s", err, out)
	}
	return bin
}

// startProxy runs the proxy binary inside ns and waits until it is ready.
func startProxy(t *testing.T, ns *netnstest.Netns, bin, cfgPath, cfg string) *exec.Cmd {
	t.Helper()
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := ns.Command(bin, "run", "--config", cfgPath, "--log-format", "text")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
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
				return cmd
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy in %s not ready: %v\n%s", ns.Name, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustGet(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s (%s)", url, resp.StatusCode, b, resp.Header.Get("Weft-Proxy-Error"))
	}
	return string(b)
}

func grep(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
