package configclient_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/discovery"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/configclient"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait: generous, since the machine is shared.
const waitTimeout = 15 * time.Second

const (
	idWeb = "spiffe://weft.test/ns/shop/sa/web"
	idAPI = "spiffe://weft.test/ns/shop/sa/api"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func cfg(version string) *weftv1.ProxyConfig {
	return &weftv1.ProxyConfig{
		Version:  version,
		Outbound: &weftv1.Outbound{TransparentAddress: "127.0.0.1:4140"},
	}
}

// controlPlane is a discovery server on a loopback address.
type controlPlane struct {
	cache *discovery.Cache
	addr  string
	g     *grpc.Server
	done  chan error
}

// startControlPlane serves c on addr ("" picks a free port) until stop or
// the end of the test.
func startControlPlane(t *testing.T, addr string, c *discovery.Cache, o discovery.Options) *controlPlane {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	if o.Debounce == 0 {
		o.Debounce = 10 * time.Millisecond
	}
	cp := &controlPlane{cache: c, addr: ln.Addr().String(), g: grpc.NewServer(), done: make(chan error, 1)}
	discovery.NewServer(c, o).Register(cp.g)
	go func() { cp.done <- cp.g.Serve(ln) }()
	t.Cleanup(func() { cp.stop(t) })
	return cp
}

func (cp *controlPlane) stop(t *testing.T) {
	t.Helper()
	if cp.done == nil {
		return
	}
	cp.g.Stop()
	if err := <-cp.done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	cp.done = nil
}

// status returns the status of every stream of identity.
func (cp *controlPlane) status(identity string) []discovery.ProxyStatus {
	var out []discovery.ProxyStatus
	for _, st := range cp.cache.Status() {
		if st.Node.GetIdentity() == identity {
			out = append(out, st)
		}
	}
	return out
}

// acked reports whether every stream of identity (at least want of them)
// acknowledged version.
func (cp *controlPlane) acked(identity, version string, want int) bool {
	sts := cp.status(identity)
	for _, st := range sts {
		if st.AckedVersion != version {
			return false
		}
	}
	return len(sts) >= want
}

// recorder is an Apply that compiles the config like the proxy does and also
// refuses any config whose version field is "bad".
type recorder struct {
	mu      sync.Mutex
	calls   []string // config version of every call
	applied []string // config version of every accepted config
}

func (r *recorder) apply(_ context.Context, c *weftv1.ProxyConfig, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c.GetVersion())
	if c.GetVersion() == "bad" {
		return errors.New(`version: "bad" is refused`)
	}
	if _, err := config.Compile(c); err != nil {
		return err
	}
	r.applied = append(r.applied, c.GetVersion())
	return nil
}

func (r *recorder) snapshot() (calls, applied []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls), slices.Clone(r.applied)
}

func (r *recorder) last() string {
	_, applied := r.snapshot()
	if len(applied) == 0 {
		return ""
	}
	return applied[len(applied)-1]
}

// startClient runs a client of addr until the end of the test.
func startClient(t *testing.T, addr string, node *discoveryv1.Node, r *recorder, modify func(*configclient.Options)) *configclient.Client {
	t.Helper()
	o := configclient.Options{
		Address: addr,
		Dial:    []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		Node:    node,
		Apply:   r.apply,
		Backoff: configclient.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond},
		Logger:  quietLogger(),
	}
	if modify != nil {
		modify(&o)
	}
	c, err := configclient.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("Run did not return after cancel")
		}
	})
	return c
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
