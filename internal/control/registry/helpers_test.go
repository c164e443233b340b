package registry

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	"github.com/weft-mesh/weft/internal/clocktest"
	"github.com/weft-mesh/weft/internal/control/model"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait: generous, since the machine is shared.
const waitTimeout = 10 * time.Second

const (
	ns         = "shop"
	fileSource = "file:test"
	grace      = 30 * time.Second
)

var webRef = model.ServiceRef{Namespace: ns, Name: "web"}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func identity(sa string) string { return "spiffe://weft.local/ns/" + ns + "/sa/" + sa }

// node is the node of a proxy of service account web registering workload
// id at addr, with port http 8080 and label app=web; each call is a new
// stream.
func node(id, addr string) *discoveryv1.Node {
	return &discoveryv1.Node{
		Identity: identity("web"),
		Id:       id,
		Registration: &discoveryv1.WorkloadRegistration{
			Address:          addr,
			Ports:            []*discoveryv1.WorkloadPort{{Name: "http", Port: 8080, Protocol: "http1"}},
			Labels:           map[string]string{"app": "web", "version": "v1"},
			ProxyInboundPort: 4143,
		},
	}
}

func first(h discoveryv1.Health) *discoveryv1.DiscoveryRequest {
	return &discoveryv1.DiscoveryRequest{Health: h}
}

// harness is a running Registry on a store that also holds what a file
// source would: Service web (selector app=web, port http 80 to the named
// port http) with one file endpoint.
type harness struct {
	t     *testing.T
	clk   *clocktest.Clock
	store *model.Store
	reg   *Registry
	stop  func()
}

func start(t *testing.T, dir string, clk *clocktest.Clock) *harness {
	t.Helper()
	reg, err := New(Options{DataDir: dir, Grace: grace, Now: clk.Now, After: clk.After, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	store := model.NewStore()
	err = store.Apply(fileSource,
		model.Change{Upsert: &model.Service{Namespace: ns, Name: "web", Selector: map[string]string{"app": "web"},
			Ports: []model.ServicePort{{Name: "http", Port: 80, AppProtocol: "http"}}}},
		model.Change{Upsert: &model.EndpointSet{Service: webRef, Endpoints: []model.Endpoint{
			{Address: netip.MustParseAddrPort("10.0.0.9:8080"), PortName: "http", Ready: true, Workload: "file-1"}}}},
		model.Change{Upsert: &model.Workload{Namespace: ns, Name: "file-1", ServiceAccount: "web", Address: netip.MustParseAddr("10.0.0.9"),
			Labels: map[string]string{"app": "web"}, Meshed: true}},
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- reg.Run(ctx, store) }()
	select {
	case <-reg.started:
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v", err)
	}
	h := &harness{t: t, clk: clk, store: store, reg: reg}
	stopped := false
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) connect(n *discoveryv1.Node, health discoveryv1.Health) {
	h.t.Helper()
	if err := h.reg.Connect(context.Background(), n, first(health)); err != nil {
		h.t.Fatalf("Connect %s: %v", n.GetId(), err)
	}
}

// registered reports whether workload name is in the store.
func (h *harness) registered(name string) bool {
	return h.store.Snapshot().Workloads[model.ObjectRef{Namespace: ns, Name: name}] != nil
}

// endpoint returns the endpoint of workload name in Service web, as the
// control plane translates it.
func (h *harness) endpoint(name string) (model.Endpoint, bool) {
	for _, e := range h.reg.Overlay(h.store.Snapshot()).Endpoints[webRef] {
		if e.Workload == name {
			return e, true
		}
	}
	return model.Endpoint{}, false
}

// state sums up workload name as a user sees it: "absent", "ready" or
// "not ready" (registered, endpoint left out of load balancers).
func (h *harness) state(name string) string {
	e, ok := h.endpoint(name)
	switch {
	case !h.registered(name) && !ok:
		return "absent"
	case !h.registered(name) || !ok:
		return fmt.Sprintf("inconsistent (in store %v, endpoint %v)", h.registered(name), ok)
	case e.Ready:
		return "ready"
	}
	return "not ready"
}

// waitState waits until workload name is in state want: for what the
// registry's loop does after the clock moved.
func (h *harness) waitState(name, want string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	revisions := h.store.Subscribe(ctx)
	changes := h.reg.Subscribe(ctx)
	for h.state(name) != want {
		select {
		case <-revisions:
		case <-changes:
		case <-ctx.Done():
			h.t.Fatalf("workload %s is %s, want %s", name, h.state(name), want)
		}
	}
}
