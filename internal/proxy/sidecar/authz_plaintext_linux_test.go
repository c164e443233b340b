//go:build linux

package sidecar_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/weft-mesh/weft/internal/netnstest"
	"github.com/weft-mesh/weft/internal/proxy/sidecar"
	"github.com/weft-mesh/weft/internal/proxy/tlsid/tlstest"
)

// TestPortMTLSModeWithPlaintextClients: plaintext clients outside the mesh
// reach the inbound proxy through a real iptables REDIRECT (transparent
// mode: only the original destination names the port of a plaintext
// connection). A strict port refuses them, a permissive one accepts them
// even under inbound.require_mtls, and a port without a mode follows
// require_mtls; unauthenticated authorization rules see them.
//
// The proxy runs in this process with its listeners in a network namespace
// of the test; the applications stay on the host's loopback, which the
// proxy's other threads dial.
func TestPortMTLSModeWithPlaintextClients(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: creates a network namespace")
	}
	ns := netnstest.New(t, "weft-mtls")
	web := startNameApp(t, "api", 200)
	svc := &testService{}
	rpcAddr := startGRPCApp(t, svc)
	db := startTCPEchoApp(t)
	for _, port := range []string{"8080", "8081", "8082", "8083", "8084"} {
		ns.IPTables(t, false, "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "127.0.0.1", "--dport", port, "-j", "REDIRECT", "--to-ports", "4143")
	}
	sf := tlstest.NewCA(t, "test.weft").Issue(t, serverID, time.Hour)
	cfgPath := filepath.Join(t.TempDir(), "server.yaml")
	appPort := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	config := func(version string, requireMTLS bool) string {
		return fmt.Sprintf(`version: %s
admin: {address: "127.0.0.1:4191"}
tls: {cert_file: %q, key_file: %q, trust_bundle_file: %q}
detection: {timeout: 0.2s}
inbound:
  address: "127.0.0.1:4143"
  require_mtls: %v
  ports:
  - {port: 8080, app_port: %s, protocol: http1, mtls: strict}
  - {port: 8081, app_port: %s, protocol: http1, mtls: permissive}
  - {port: 8082, app_port: %s, protocol: http1}
  - {port: 8083, app_port: %s, protocol: opaque, mtls: strict}
  - {port: 8084, app_port: %s, protocol: grpc, mtls: strict}
  authorization:
    policies:
    - {name: ns/probes, action: Allow, ports: [8081], rules: [{name: probes, from: {authentication: unauthenticated}, to: {paths: [{type: Exact, value: /healthz}]}}]}
`, version, sf.CertFile, sf.KeyFile, sf.TrustBundleFile, requireMTLS,
			appPort(web.addr), appPort(web.addr), appPort(web.addr), appPort(db.addr), appPort(rpcAddr))
	}
	writeFile(t, cfgPath, config("plain-1", false))

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		var runErr error
		// Run's own goroutine holds a thread in the namespace, so the
		// listeners it opens are there.
		err := ns.Do(func() error {
			runErr = sidecar.Run(ctx, sidecar.Options{ConfigPath: cfgPath, Logger: quietLogger(t), Ready: ready, ConfigPoll: 100 * time.Millisecond})
			return nil
		})
		done <- errors.Join(err, runErr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("proxy exit: %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Error("proxy did not stop")
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("proxy exited at start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("proxy did not start")
	}

	tr := &http.Transport{DialContext: ns.DialContext}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	fetch := func(t *testing.T, url string) (int, string) {
		t.Helper()
		resp, err := hc.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	rejected := func(t *testing.T, mode string) float64 {
		t.Helper()
		_, body := fetch(t, "http://127.0.0.1:4191/metrics")
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "weft_proxy_tls_rejected_total{") && strings.Contains(line, `mode="`+mode+`"`) && strings.Contains(line, `reason="plaintext"`) {
				var v float64
				fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
				return v
			}
		}
		return 0
	}
	const refusedText = "weft: this port accepts only mutual TLS from the mesh; call it through a weft-proxy"

	t.Run("strict port refuses plaintext HTTP with an answer", func(t *testing.T) {
		hits := web.hits.Load()
		code, body := fetch(t, "http://127.0.0.1:8080/")
		if code != http.StatusForbidden || body != refusedText {
			t.Errorf("got %d %q, want 403 %q", code, body, refusedText)
		}
		if web.hits.Load() != hits {
			t.Error("the application was reached")
		}
		if got := rejected(t, "strict"); got != 1 {
			t.Errorf("weft_proxy_tls_rejected_total{mode=strict} = %v, want 1", got)
		}
	})
	t.Run("strict opaque port closes plaintext TCP", func(t *testing.T) {
		accepts := db.accepts.Load()
		c, err := ns.DialContext(context.Background(), "tcp", "127.0.0.1:8083")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "ping\n")
		if line, err := bufio.NewReader(c).ReadString('\n'); err == nil || line != "" {
			t.Errorf("read %q, %v; want the connection closed", line, err)
		}
		if db.accepts.Load() != accepts {
			t.Error("the application accepted the connection")
		}
		if got := rejected(t, "strict"); got != 2 {
			t.Errorf("weft_proxy_tls_rejected_total{mode=strict} = %v, want 2", got)
		}
	})
	t.Run("permissive port admits plaintext, authorized as unauthenticated", func(t *testing.T) {
		if code, body := fetch(t, "http://127.0.0.1:8081/healthz"); code != 200 || body != "api" {
			t.Errorf("allowed probe: got %d %q", code, body)
		}
		if code, body := fetch(t, "http://127.0.0.1:8081/private"); code != http.StatusForbidden || body != deniedBody {
			t.Errorf("path outside the allow list: got %d %q, want 403 %q", code, body, deniedBody)
		}
	})
	t.Run("port without a mode follows require_mtls off", func(t *testing.T) {
		if code, body := fetch(t, "http://127.0.0.1:8082/"); code != 200 || body != "api" {
			t.Errorf("got %d %q", code, body)
		}
	})
	t.Run("strict gRPC port answers UNAUTHENTICATED", func(t *testing.T) {
		conn, err := grpc.NewClient("127.0.0.1:8084", grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return ns.DialContext(ctx, "tcp", addr) }))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		calls := svc.calls.Load()
		_, err = testgrpc.NewTestServiceClient(conn).UnaryCall(ctx, &testgrpc.SimpleRequest{})
		if st := status.Convert(err); st.Code() != codes.Unauthenticated || st.Message() != refusedText {
			t.Errorf("got %v, want UNAUTHENTICATED %q", err, refusedText)
		}
		if svc.calls.Load() != calls {
			t.Error("the application was called")
		}
	})

	writeFile(t, cfgPath, config("plain-2", true))
	eventually(t, "require_mtls is on", func() bool {
		_, dump := fetch(t, "http://127.0.0.1:4191/config_dump")
		return strings.Contains(dump, `"version": "plain-2"`)
	})
	t.Run("require_mtls refuses a port without a mode", func(t *testing.T) {
		before := rejected(t, "require_mtls")
		// The keep-alive connection opened before the change is refused
		// too: the port's mode is checked on every request.
		hits := web.hits.Load()
		if code, body := fetch(t, "http://127.0.0.1:8082/"); code != http.StatusForbidden || body != refusedText {
			t.Errorf("got %d %q, want 403 %q", code, body, refusedText)
		}
		tr.CloseIdleConnections()
		if code, body := fetch(t, "http://127.0.0.1:8082/"); code != http.StatusForbidden || body != refusedText {
			t.Errorf("new connection: got %d %q, want 403 %q", code, body, refusedText)
		}
		if web.hits.Load() != hits {
			t.Error("the application was reached")
		}
		if got := rejected(t, "require_mtls") - before; got != 2 {
			t.Errorf("weft_proxy_tls_rejected_total{mode=require_mtls} grew by %v, want 2", got)
		}
	})
	t.Run("a permissive port wins over require_mtls", func(t *testing.T) {
		if code, body := fetch(t, "http://127.0.0.1:8081/healthz"); code != 200 || body != "api" {
			t.Errorf("got %d %q", code, body)
		}
	})
}
