package sidecar_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weft-mesh/weft/internal/proxy/sidecar"
	"github.com/weft-mesh/weft/internal/proxy/tlsid"
	"github.com/weft-mesh/weft/internal/proxy/tlsid/tlstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Idle keep-alive connections of http.DefaultTransport-like clients
		// in tests are closed asynchronously.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

const (
	clientID = "spiffe://test.weft/ns/default/sa/client"
	serverID = "spiffe://test.weft/ns/default/sa/server"
)

// app is one backend application the server-side proxy fronts.
type app struct {
	name     string // service name
	protocol string // service protocol ("" detects)
	addr     string // where the application listens
	more     string // more YAML lines of the service entry (routes, budgets), indented by 2
}

// pair is an outbound proxy and an inbound proxy, meshed with mTLS, each
// running in this process with real sockets.
type pair struct {
	t          testing.TB
	dir        string
	listen     map[string]string // service -> client-side explicit listener address
	inbound    string
	clientAdm  string
	serverAdm  string
	clientCfg  string
	serverCfg  string
	clientTLS  tlsid.Files
	cancel     context.CancelFunc
	clientDone chan error
	serverDone chan error
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func quietLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startPair starts a server proxy fronting apps and a client proxy with one
// explicit listener per app. extraClient is appended to the client config.
func startPair(t testing.TB, apps []app, extraClient string) *pair {
	t.Helper()
	ca := tlstest.NewCA(t, "test.weft")
	cf := ca.Issue(t, clientID, time.Hour)
	sf := ca.Issue(t, serverID, time.Hour)
	p := &pair{
		t:         t,
		dir:       t.TempDir(),
		listen:    map[string]string{},
		inbound:   freeAddr(t),
		clientAdm: freeAddr(t),
		serverAdm: freeAddr(t),
	}
	p.serverCfg = filepath.Join(p.dir, "server.yaml")
	p.clientCfg = filepath.Join(p.dir, "client.yaml")
	writeFile(t, p.serverCfg, fmt.Sprintf(`version: server-1
admin: {address: %q}
tls: {cert_file: %q, key_file: %q, trust_bundle_file: %q}
inbound: {address: %q}
detection: {timeout: 0.2s}
`, p.serverAdm, sf.CertFile, sf.KeyFile, sf.TrustBundleFile, p.inbound))
	p.clientTLS = cf
	writeFile(t, p.clientCfg, p.clientConfig(cf, apps, "client-1", extraClient))

	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.serverDone = run(ctx, t, p.serverCfg)
	p.clientDone = run(ctx, t, p.clientCfg)
	t.Cleanup(p.stop)
	return p
}

func (p *pair) clientConfig(cf tlsid.Files, apps []app, version, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: %s\nadmin: {address: %q}\ntls: {cert_file: %q, key_file: %q, trust_bundle_file: %q}\ndetection: {timeout: 0.2s}\n",
		version, p.clientAdm, cf.CertFile, cf.KeyFile, cf.TrustBundleFile)
	b.WriteString("services:\n")
	for _, a := range apps {
		if a.addr == "" {
			fmt.Fprintf(&b, "- name: %s\n  protocol: %q\n  endpoints: []\n", a.name, a.protocol)
			b.WriteString(a.more)
			continue
		}
		fmt.Fprintf(&b, "- name: %s\n  protocol: %q\n  endpoints:\n  - {address: %q, proxy_address: %q, identity: %q}\n",
			a.name, a.protocol, a.addr, p.inbound, serverID)
		b.WriteString(a.more)
	}
	b.WriteString("outbound:\n  explicit:\n")
	for _, a := range apps {
		if _, ok := p.listen[a.name]; !ok {
			p.listen[a.name] = freeAddr(p.t)
		}
		fmt.Fprintf(&b, "  - {address: %q, service: %s}\n", p.listen[a.name], a.name)
	}
	b.WriteString(extra)
	return b.String()
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// run starts a proxy and waits until its listeners are open.
func run(ctx context.Context, t testing.TB, cfg string) chan error {
	t.Helper()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- sidecar.Run(ctx, sidecar.Options{ConfigPath: cfg, Logger: quietLogger(t), Ready: ready, ConfigPoll: 100 * time.Millisecond})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("proxy with %s exited at start: %v", cfg, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("proxy with %s did not start", cfg)
	}
	return done
}

func (p *pair) stop() {
	p.cancel()
	for _, d := range []chan error{p.clientDone, p.serverDone} {
		select {
		case err := <-d:
			if err != nil {
				p.t.Errorf("proxy exit: %v", err)
			}
		case <-time.After(40 * time.Second):
			p.t.Error("proxy did not stop")
		}
	}
}

// url is the client-side URL of a service.
func (p *pair) url(service, path string) string {
	return "http://" + p.listen[service] + path
}

// metric returns the value of the first metric sample line on admin that
// starts with name and contains every one of labels.
func metric(t testing.TB, admin, name string, labels ...string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var sum float64
	found := false
lines:
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue lines
			}
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			sum += v
			found = true
		}
	}
	return sum, found
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serve runs an HTTP/1.1 server for h on a fresh loopback port.
func serve(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("app server: %v", err)
		}
	}()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// reconfigure rewrites the client proxy's config with apps and waits until
// the proxy runs it.
func (p *pair) reconfigure(apps []app, version string) {
	p.t.Helper()
	writeFile(p.t, p.clientCfg, p.clientConfig(p.clientTLS, apps, version, ""))
	eventually(p.t, "config "+version+" is running", func() bool {
		_, dump := get(p.t, "http://"+p.clientAdm+"/config_dump")
		return strings.Contains(dump, `"version": "`+version+`"`)
	})
}
