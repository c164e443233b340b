package registry

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	"github.com/weft-mesh/weft/internal/clocktest"
)

// TestRefused: invalid registrations are refused with the fields named;
// names another source defines or another identity holds, with
// AlreadyExists. Nothing is registered either way.
func TestRefused(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(n *discoveryv1.Node)
		code   codes.Code
		fields []string
	}{
		{"no address", func(n *discoveryv1.Node) { n.Registration.Address = "" }, codes.InvalidArgument, []string{"node.registration.address"}},
		{"not an IP", func(n *discoveryv1.Node) { n.Registration.Address = "web.example" }, codes.InvalidArgument, []string{"node.registration.address"}},
		{"unspecified address", func(n *discoveryv1.Node) { n.Registration.Address = "0.0.0.0" }, codes.InvalidArgument, []string{"node.registration.address"}},
		{"IPv6 zone", func(n *discoveryv1.Node) { n.Registration.Address = "fe80::1%eth0" }, codes.InvalidArgument, []string{"node.registration.address"}},
		{"port 0 and too large", func(n *discoveryv1.Node) {
			n.Registration.Ports = []*discoveryv1.WorkloadPort{{Port: 0}, {Port: 70000}}
		}, codes.InvalidArgument, []string{"node.registration.ports[0].port", "node.registration.ports[1].port"}},
		{"port twice", func(n *discoveryv1.Node) {
			n.Registration.Ports = append(n.Registration.Ports, &discoveryv1.WorkloadPort{Name: "other", Port: 8080})
		}, codes.InvalidArgument, []string{"node.registration.ports[1].port"}},
		{"name twice", func(n *discoveryv1.Node) {
			n.Registration.Ports = append(n.Registration.Ports, &discoveryv1.WorkloadPort{Name: "http", Port: 8081})
		}, codes.InvalidArgument, []string{"node.registration.ports[1].name"}},
		{"bad port name", func(n *discoveryv1.Node) { n.Registration.Ports[0].Name = "HTTP_port" }, codes.InvalidArgument, []string{"node.registration.ports[0].name"}},
		{"unknown protocol", func(n *discoveryv1.Node) { n.Registration.Ports[0].Protocol = "http3" }, codes.InvalidArgument, []string{"node.registration.ports[0].protocol"}},
		{"the proxy's inbound port", func(n *discoveryv1.Node) { n.Registration.Ports[0].Port = 4143 }, codes.InvalidArgument, []string{"node.registration.ports[0].port"}},
		{"inbound port too large", func(n *discoveryv1.Node) { n.Registration.ProxyInboundPort = 65536 }, codes.InvalidArgument, []string{"node.registration.proxy_inbound_port"}},
		{"bad label key and value", func(n *discoveryv1.Node) {
			n.Registration.Labels = map[string]string{"-bad": "ok", "good": "not ok!"}
		}, codes.InvalidArgument, []string{`node.registration.labels["-bad"]`, `node.registration.labels["good"]`}},
		{"node id not a name", func(n *discoveryv1.Node) { n.Id = "Web_1" }, codes.InvalidArgument, []string{"node.id"}},
		{"identity without namespace and service account", func(n *discoveryv1.Node) { n.Identity = "spiffe://weft.local/web" }, codes.InvalidArgument, []string{"node.identity"}},
		{"a file workload's name", func(n *discoveryv1.Node) { n.Id = "file-1" }, codes.AlreadyExists, []string{"shop/file-1", "another of the control plane's sources"}},
		{"registered by another identity", func(n *discoveryv1.Node) { n.Id = "taken"; n.Identity = identity("api") }, codes.AlreadyExists, []string{"shop/taken", identity("web")}},
	}
	h := start(t, "", clocktest.New())
	h.connect(node("taken", "10.0.0.7"), healthy)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := node("web-1", "10.0.0.1")
			tc.edit(n)
			err := h.reg.Connect(context.Background(), n, first(healthy))
			if status.Code(err) != tc.code {
				t.Fatalf("Connect: %v, want code %v", err, tc.code)
			}
			for _, f := range tc.fields {
				if !strings.Contains(status.Convert(err).Message(), f) {
					t.Errorf("error %q does not name %s", err, f)
				}
			}
			if h.registered("web-1") {
				t.Error("a refused registration was applied")
			}
			// The refused stream's later messages and end change nothing.
			h.reg.Request(n, &discoveryv1.DiscoveryRequest{Deregister: true})
			h.reg.Disconnect(n)
			if got := h.state("taken"); got != "ready" {
				t.Errorf("the holder of the name is %s, want ready", got)
			}
		})
	}
}

// TestNameFreedAfterExpiry: once the grace period of a lost registration
// ran out, a proxy of another identity may take the name.
func TestNameFreedAfterExpiry(t *testing.T) {
	h := start(t, "", clocktest.New())
	a := node("web-1", "10.0.0.1")
	h.connect(a, healthy)
	h.reg.Disconnect(a)
	other := node("web-1", "10.0.0.1")
	other.Identity = identity("api")
	if err := h.reg.Connect(context.Background(), other, first(healthy)); status.Code(err) != codes.AlreadyExists || !strings.Contains(err.Error(), "may come back until") {
		t.Fatalf("within the grace period: %v, want AlreadyExists saying until when", err)
	}
	h.clk.Advance(grace)
	h.waitState("web-1", "absent")
	h.connect(other, healthy)
	if w := h.store.Snapshot().Workloads[webRef1()]; w == nil || w.ServiceAccount != "api" {
		t.Fatalf("after expiry: workload %+v, want service account api", w)
	}
}

func TestNoRegistration(t *testing.T) {
	h := start(t, "", clocktest.New())
	n := &discoveryv1.Node{Identity: identity("web"), Id: "web-1"}
	if err := h.reg.Connect(context.Background(), n, first(healthy)); err != nil {
		t.Fatalf("a node without registration: %v", err)
	}
	h.reg.Request(n, &discoveryv1.DiscoveryRequest{Health: unhealthy})
	h.reg.Disconnect(n)
	if h.registered("web-1") || len(h.reg.entries) != 0 {
		t.Fatal("a node without registration registered something")
	}
}
