package registry

import (
	"context"
	"net/netip"
	"testing"
	"time"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	"github.com/weft-mesh/weft/internal/clocktest"
	"github.com/weft-mesh/weft/internal/control/model"
)

const (
	healthy   = discoveryv1.Health_HEALTH_HEALTHY
	unhealthy = discoveryv1.Health_HEALTH_UNHEALTHY
	unknown   = discoveryv1.Health_HEALTH_UNKNOWN
)

// TestLifecycle: a registration becomes an endpoint of the Service that
// selects it, follows its health, and leaves at once on deregister.
func TestLifecycle(t *testing.T) {
	h := start(t, "", clocktest.New())
	stream := node("web-1", "10.0.0.1")
	steps := []struct {
		name string
		do   func()
		want string
	}{
		{"before registering", func() {}, "absent"},
		{"registered, health not reported yet", func() { h.connect(stream, unknown) }, "ready"},
		{"unhealthy", func() {
			h.reg.Request(stream, &discoveryv1.DiscoveryRequest{Health: unhealthy, HealthDetail: "connection refused"})
		}, "not ready"},
		{"an answer without health changes nothing", func() { h.reg.Request(stream, &discoveryv1.DiscoveryRequest{Version: "v1", ResponseNonce: "1"}) }, "not ready"},
		{"healthy again", func() { h.reg.Request(stream, &discoveryv1.DiscoveryRequest{Health: healthy}) }, "ready"},
		{"deregistered", func() { h.reg.Request(stream, &discoveryv1.DiscoveryRequest{Deregister: true}) }, "absent"},
		{"the stream's end after deregister changes nothing", func() { h.reg.Disconnect(stream) }, "absent"},
	}
	for _, s := range steps {
		s.do()
		if got := h.state("web-1"); got != s.want {
			t.Fatalf("%s: web-1 is %s, want %s", s.name, got, s.want)
		}
		if s.want != "ready" {
			continue
		}
		// Selected like a file workload: the service port's named target
		// port, the proxy's identity and its explicit-mode inbound port.
		e, _ := h.endpoint("web-1")
		want := model.Endpoint{Service: webRef, Address: netip.MustParseAddrPort("10.0.0.1:8080"), PortName: "http",
			ProxyAddress: netip.MustParseAddrPort("10.0.0.1:4143"), Identity: identity("web"), Ready: true, Workload: "web-1"}
		if e != want {
			t.Errorf("%s: endpoint\n%+v, want\n%+v", s.name, e, want)
		}
		w := h.store.Snapshot().Workloads[model.ObjectRef{Namespace: ns, Name: "web-1"}]
		if w.ServiceAccount != "web" || !w.Meshed || w.ProxyInbound != 4143 || len(w.Ports) != 1 || w.Ports[0].Protocol != "http1" {
			t.Errorf("%s: workload %+v", s.name, w)
		}
		if _, ok := h.endpoint("file-1"); !ok {
			t.Errorf("%s: the file workload's endpoint is gone", s.name)
		}
	}
}

// TestFirstMessageHealth: the health on a stream's first message counts
// from the start.
func TestFirstMessageHealth(t *testing.T) {
	h := start(t, "", clocktest.New())
	h.connect(node("web-1", "10.0.0.1"), unhealthy)
	if got := h.state("web-1"); got != "not ready" {
		t.Fatalf("registered unhealthy: %s", got)
	}
}

// TestStreamLost: a stream that ends without deregister leaves its
// workload registered but not ready, and the workload is removed when the
// grace period has passed, not before.
func TestStreamLost(t *testing.T) {
	h := start(t, "", clocktest.New())
	a, b := node("web-1", "10.0.0.1"), node("web-2", "10.0.0.2")
	h.connect(a, healthy)
	h.connect(b, healthy)

	h.reg.Disconnect(a)
	if got := h.state("web-1"); got != "not ready" {
		t.Fatalf("just after its stream ended: web-1 is %s, want not ready", got)
	}
	h.clk.Advance(10 * time.Second)
	h.reg.Disconnect(b)
	h.clk.Advance(grace - 10*time.Second)
	h.waitState("web-1", "absent")
	// The sweep that removed web-1 saw web-2, lost 10s later.
	if got := h.state("web-2"); got != "not ready" {
		t.Fatalf("web-2, 10s short of its grace period: %s, want not ready", got)
	}
	h.clk.Advance(10 * time.Second)
	h.waitState("web-2", "absent")
}

// TestReconnectWithinGrace: a proxy that comes back within the grace
// period keeps its workload, ready again; a new stream takes the
// registration over from an older one still open.
func TestReconnectWithinGrace(t *testing.T) {
	h := start(t, "", clocktest.New())
	a, b := node("web-1", "10.0.0.1"), node("web-2", "10.0.0.2")
	h.connect(a, healthy)
	h.connect(b, healthy)
	h.reg.Disconnect(a)
	h.reg.Disconnect(b)
	h.clk.Advance(10 * time.Second)
	again := node("web-1", "10.0.0.1")
	h.connect(again, unknown)
	if got := h.state("web-1"); got != "ready" {
		t.Fatalf("reconnected: web-1 is %s, want ready", got)
	}
	h.clk.Advance(grace)
	h.waitState("web-2", "absent")
	if got := h.state("web-1"); got != "ready" {
		t.Fatalf("reconnected within the grace period, after it: web-1 is %s, want ready", got)
	}

	// A proxy restarted before its old stream was seen to end.
	newer := node("web-1", "10.0.0.1")
	h.connect(newer, healthy)
	h.reg.Request(again, &discoveryv1.DiscoveryRequest{Health: unhealthy})
	h.reg.Disconnect(again)
	if got := h.state("web-1"); got != "ready" {
		t.Fatalf("after the replaced stream reported and ended: web-1 is %s, want ready", got)
	}
	h.reg.Request(newer, &discoveryv1.DiscoveryRequest{Health: unhealthy})
	if got := h.state("web-1"); got != "not ready" {
		t.Fatalf("the newer stream's report: web-1 is %s, want not ready", got)
	}
}

// TestReregisterChanges: a proxy that comes back with another address or
// labels updates its workload; its last health stands until it reports.
func TestReregisterChanges(t *testing.T) {
	h := start(t, "", clocktest.New())
	a := node("web-1", "10.0.0.1")
	h.connect(a, unhealthy)
	h.reg.Disconnect(a)
	moved := node("web-1", "10.0.0.5")
	h.connect(moved, unknown)
	e, ok := h.endpoint("web-1")
	if !ok || e.Address != netip.MustParseAddrPort("10.0.0.5:8080") || e.Ready {
		t.Fatalf("moved, health not reported again: endpoint %+v (%v); want 10.0.0.5:8080, not ready", e, ok)
	}
	relabeled := node("web-1", "10.0.0.5")
	relabeled.Registration.Labels = map[string]string{"app": "other"}
	h.connect(relabeled, healthy)
	if h.state("web-1") == "ready" || !h.registered("web-1") {
		t.Fatalf("relabeled out of the service: %s", h.state("web-1"))
	}
	if _, ok := h.endpoint("web-1"); ok {
		t.Fatal("a workload the selector no longer matches is still an endpoint")
	}
}

// TestSubscribe: a health change, which the store does not see, reaches
// subscribers.
func TestSubscribe(t *testing.T) {
	h := start(t, "", clocktest.New())
	a := node("web-1", "10.0.0.1")
	h.connect(a, healthy)
	ctx, cancel := context.WithCancel(context.Background())
	ch := h.reg.Subscribe(ctx)
	h.reg.Request(a, &discoveryv1.DiscoveryRequest{Health: unhealthy})
	select {
	case <-ch:
	case <-time.After(waitTimeout):
		t.Fatal("no notification of the health change")
	}
	cancel()
	for range ch { // closed once ctx ends
	}
}
