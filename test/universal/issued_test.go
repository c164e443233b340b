package universal

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/clocktest"
	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/control/identity"
	"github.com/weft-mesh/weft/internal/control/jointoken"
	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/server"
	"github.com/weft-mesh/weft/internal/control/source/file"
	"github.com/weft-mesh/weft/internal/proxy/sidecar"
)

// issuedMesh is a control plane that issues identities, on a clock the test
// controls, with a directory of resources and proxies joining with tokens.
type issuedMesh struct {
	t        *testing.T
	clk      *clocktest.Clock
	dir      string
	caDir    string
	meshFile string
	auth     *identity.Authority
	tokens   *jointoken.Store
	addr     string
	log      *slog.Logger

	ctx       context.Context
	cancel    context.CancelFunc
	cpStop    context.CancelFunc
	cpDone    chan error
	proxyDone []chan error
}

// startIssuedMesh starts the control plane; opts, when given, change its
// options (e.g. add a Registry).
func startIssuedMesh(t *testing.T, resources string, opts ...func(*server.Options)) *issuedMesh {
	t.Helper()
	m := &issuedMesh{t: t, clk: clocktest.New(), dir: t.TempDir(), log: slog.New(slog.DiscardHandler)}
	if testing.Verbose() {
		m.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	dir := filepath.Join(m.dir, "mesh")
	os.Mkdir(dir, 0o700)
	m.meshFile = filepath.Join(dir, "mesh.yaml")
	writeFile(t, m.meshFile, resources)
	m.caDir = filepath.Join(m.dir, "ca")
	var err error
	if m.auth, err = identity.OpenAuthority(m.caDir, ca.Options{TrustDomain: "weft.local", Now: m.clk.Now}, m.log); err != nil {
		t.Fatal(err)
	}
	if m.tokens, err = jointoken.Open(m.dir, m.clk.Now); err != nil {
		t.Fatal(err)
	}
	src, err := file.New(dir, file.Options{Logger: m.log, Poll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.addr = ln.Addr().String()
	cpCtx, cpStop := context.WithCancel(context.Background())
	m.cpStop, m.cpDone = cpStop, make(chan error, 1)
	ready := make(chan struct{})
	so := server.Options{Listener: ln, Sources: []model.Source{src}, Logger: m.log, Ready: ready,
		Identity: &identity.Options{Authority: m.auth, Tokens: m.tokens, Now: m.clk.Now, Logger: m.log}}
	for _, o := range opts {
		o(&so)
	}
	go func() { m.cpDone <- server.Run(cpCtx, so) }()
	<-ready
	m.ctx, m.cancel = context.WithCancel(context.Background())
	t.Cleanup(m.stop)
	return m
}

// stopControlPlane stops the control plane; the proxies keep running.
func (m *issuedMesh) stopControlPlane() {
	m.t.Helper()
	m.cpStop()
	if err := <-m.cpDone; err != nil {
		m.t.Fatal(err)
	}
	m.cpDone <- nil
}

func (m *issuedMesh) stop() {
	m.cancel()
	m.cpStop()
	for _, d := range append(m.proxyDone, m.cpDone) {
		if err := <-d; err != nil {
			m.t.Error(err)
		}
	}
}

// proxy starts the proxy of workload nodeID with a fresh single-use join
// token for service account sa in namespace default, and waits for its
// first config. It returns the proxy's admin address.
func (m *issuedMesh) proxy(sa, nodeID string, watch []string, explicitBase int) string {
	m.t.Helper()
	admin, _ := m.proxyWith(sa, nodeID, watch, explicitBase, nil)
	return admin
}

// proxyWith is proxy with edit, when not nil, changing the proxy's
// ControlPlane settings (e.g. to register its workload). It also returns a
// function that stops this proxy (it drains) and waits for it.
func (m *issuedMesh) proxyWith(sa, nodeID string, watch []string, explicitBase int, edit func(*sidecar.ControlPlane)) (admin string, stop func()) {
	t := m.t
	t.Helper()
	tok, _, err := m.tokens.Create(jointoken.CreateOptions{Identity: spiffeid.RequireFromString("spiffe://weft.local/ns/default/sa/" + sa), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(m.dir, nodeID+".token")
	writeFile(t, tokFile, tok)
	admin = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	boot := filepath.Join(m.dir, nodeID+".yaml")
	writeFile(t, boot, fmt.Sprintf("admin: {address: %q}\n", admin))
	ready := make(chan string, 1)
	done := make(chan error, 1)
	cp := &sidecar.ControlPlane{
		Address: m.addr, NodeID: nodeID, Watch: watch, ExplicitBase: uint16(explicitBase),
		JoinTokenFile: tokFile, TrustBundleFile: filepath.Join(m.caDir, ca.AnchorCertFile), Now: m.clk.Now, After: m.clk.AfterOrReal,
	}
	if edit != nil {
		edit(cp)
	}
	ctx, cancel := context.WithCancel(m.ctx)
	go func() {
		done <- sidecar.Run(ctx, sidecar.Options{ConfigPath: boot, Logger: m.log, Ready: ready, ControlPlane: cp})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("proxy %s exited: %v", nodeID, err)
	case <-time.After(45 * time.Second): // generous: a loaded 2-core machine under -race
		cancel()
		t.Fatalf("proxy %s got no config from the control plane within 45s", nodeID)
	}
	m.proxyDone = append(m.proxyDone, done)
	stop = func() {
		t.Helper()
		cancel()
		err := <-done
		done <- nil // for m.stop
		if err != nil {
			t.Fatalf("proxy %s: %v", nodeID, err)
		}
	}
	return admin, stop
}
