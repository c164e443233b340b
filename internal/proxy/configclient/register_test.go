package configclient_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	"github.com/weft-mesh/weft/internal/control/discovery"
	"github.com/weft-mesh/weft/internal/proxy/configclient"
)

// registrar records what a control plane hears of registrations: each
// stream's first request and later health reports and deregisters.
type registrar struct {
	mu     sync.Mutex
	firsts []*discoveryv1.DiscoveryRequest
	// events are "health:<value>:<detail>" and "deregister", in order.
	events []string
	ended  int
}

func (g *registrar) options(o discovery.Options) discovery.Options {
	o.Admit = func(_ context.Context, _ *discoveryv1.Node, first *discoveryv1.DiscoveryRequest) error {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.firsts = append(g.firsts, first)
		return nil
	}
	o.OnRequest = func(_ *discoveryv1.Node, r *discoveryv1.DiscoveryRequest) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if r.GetHealth() != discoveryv1.Health_HEALTH_UNKNOWN {
			g.events = append(g.events, "health:"+r.GetHealth().String()+":"+r.GetHealthDetail())
		}
		if r.GetDeregister() {
			g.events = append(g.events, "deregister")
		}
	}
	o.OnDisconnect = func(*discoveryv1.Node) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.ended++
	}
	return o
}

func (g *registrar) has(event string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, e := range g.events {
		if e == event {
			return true
		}
	}
	return false
}

func (g *registrar) first(i int) *discoveryv1.DiscoveryRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	if i < len(g.firsts) {
		return g.firsts[i]
	}
	return nil
}

func registeringNode() *discoveryv1.Node {
	return &discoveryv1.Node{Identity: idWeb, Id: "web-1", Registration: &discoveryv1.WorkloadRegistration{
		Address: "10.0.0.1", Ports: []*discoveryv1.WorkloadPort{{Name: "http", Port: 8080}}, Labels: map[string]string{"app": "web"}}}
}

// TestHealthReports: the registration and the health known before the
// stream opens ride on its first message; changes follow as they happen;
// a new stream after a reconnect starts with the current health again.
func TestHealthReports(t *testing.T) {
	var g registrar
	cp := startControlPlane(t, "", discovery.NewCache(), g.options(discovery.Options{}))
	r := &recorder{}
	cp.cache.Set(discovery.NodeKey(registeringNode()), cfg("v1"))
	c, err := configclient.New(configclient.Options{
		Address: cp.addr, Dial: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		Node: registeringNode(), Apply: r.apply, Logger: quietLogger(),
		Backoff: configclient.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.SetHealth(discoveryv1.Health_HEALTH_HEALTHY, "tcp check passed")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "the first stream", func() bool { return g.first(0) != nil })
	f := g.first(0)
	if f.GetHealth() != discoveryv1.Health_HEALTH_HEALTHY || f.GetHealthDetail() != "tcp check passed" || f.GetNode().GetRegistration().GetAddress() != "10.0.0.1" {
		t.Fatalf("first message %v, want the registration and HEALTHY", f)
	}
	c.SetHealth(discoveryv1.Health_HEALTH_UNHEALTHY, "connection refused")
	waitFor(t, "the health change", func() bool { return g.has("health:HEALTH_UNHEALTHY:connection refused") })

	// The control plane restarts on the same address.
	addr := cp.addr
	cp.stop(t)
	cp2 := startControlPlane(t, addr, discovery.NewCache(), g.options(discovery.Options{}))
	cp2.cache.Set(discovery.NodeKey(registeringNode()), cfg("v1"))
	waitFor(t, "the stream after the restart", func() bool { return g.first(1) != nil })
	if f := g.first(1); f.GetHealth() != discoveryv1.Health_HEALTH_UNHEALTHY || f.GetNode().GetRegistration() == nil {
		t.Fatalf("first message after reconnecting %v, want the registration and UNHEALTHY", f)
	}
}

// TestDeregister: a stopping proxy's deregister reaches the control plane,
// the stream ends and stays ended, and no config is applied any more.
func TestDeregister(t *testing.T) {
	var g registrar
	c1 := discovery.NewCache()
	cp := startControlPlane(t, "", c1, g.options(discovery.Options{}))
	r := &recorder{}
	v1 := cp.cache.Set(discovery.NodeKey(registeringNode()), cfg("v1"))
	c, err := configclient.New(configclient.Options{
		Address: cp.addr, Dial: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		Node: registeringNode(), Apply: r.apply, Logger: quietLogger(),
		Backoff: configclient.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitFor(t, "v1 acknowledged", func() bool { return cp.acked(idWeb, v1, 1) })

	dctx, dcancel := context.WithTimeout(context.Background(), waitTimeout)
	defer dcancel()
	if err := c.Deregister(dctx); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after the deregister")
	}
	if !g.has("deregister") {
		t.Fatal("the control plane did not hear the deregister")
	}
	waitFor(t, "the stream's end on the control plane", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.ended == 1 })
	cp.cache.Set(discovery.NodeKey(registeringNode()), cfg("v2"))
	if c.State().Connected || len(cp.status(idWeb)) != 0 {
		t.Fatal("the client reconnected after deregistering")
	}
	if got := r.last(); got != "v1" {
		t.Fatalf("applied %q after deregistering, want v1 kept", got)
	}
}

// TestDeregisterNotConnected: without a stream there is nothing to send;
// the client does not connect again either.
func TestDeregisterNotConnected(t *testing.T) {
	r := &recorder{}
	c, err := configclient.New(configclient.Options{
		Address: "127.0.0.1:1", Dial: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		Node: registeringNode(), Apply: r.apply, Logger: quietLogger(),
		Backoff: configclient.Backoff{Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	if err := c.Deregister(ctx); !errors.Is(err, configclient.ErrNotConnected) {
		t.Fatalf("Deregister: %v, want ErrNotConnected", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run kept reconnecting after Deregister")
	}
}
