package configclient_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/discovery"
	"github.com/weft-mesh/weft/internal/proxy/configclient"
	"github.com/weft-mesh/weft/internal/proxy/configversion"
)

// scriptedServer is a Discovery server driven by the test: it sends what
// the test gives it and hands over what the proxy sends.
type scriptedServer struct {
	discoveryv1.UnimplementedDiscoveryServer
	resps chan *discoveryv1.DiscoveryResponse
	reqs  chan *discoveryv1.DiscoveryRequest
}

func (s *scriptedServer) Stream(stream discoveryv1.Discovery_StreamServer) error {
	ctx := stream.Context()
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			select {
			case s.reqs <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-s.resps:
			if err := stream.Send(r); err != nil {
				return fmt.Errorf("sending: %w", err)
			}
		}
	}
}

func startScripted(t *testing.T) (*scriptedServer, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedServer{resps: make(chan *discoveryv1.DiscoveryResponse), reqs: make(chan *discoveryv1.DiscoveryRequest, 100)}
	g := grpc.NewServer()
	discoveryv1.RegisterDiscoveryServer(g, s)
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	t.Cleanup(func() {
		g.Stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// configRecorder is an Apply that keeps every config it accepts and
// refuses those labelled "bad".
type configRecorder struct {
	mu      sync.Mutex
	calls   int
	applied []*weftv1.ProxyConfig
}

func (r *configRecorder) apply(_ context.Context, c *weftv1.ProxyConfig, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if c.GetVersion() == "bad" {
		return errors.New(`version: "bad" is refused`)
	}
	r.applied = append(r.applied, c)
	return nil
}

func (r *configRecorder) get() (calls int, applied []*weftv1.ProxyConfig) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, append([]*weftv1.ProxyConfig(nil), r.applied...)
}

func svc(name, endpoint string) *weftv1.Service {
	return &weftv1.Service{Name: name, Protocol: "http1", Endpoints: []*weftv1.Endpoint{{Address: endpoint}}}
}

func withServices(label string, services ...*weftv1.Service) *weftv1.ProxyConfig {
	c := cfg(label)
	c.Services = services
	return c
}

func version(t *testing.T, c *weftv1.ProxyConfig) string {
	t.Helper()
	v, err := configversion.Of(c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestIncrementalAnswers: what the client answers to incremental
// responses, and what it hands to Apply (always whole configs).
func TestIncrementalAnswers(t *testing.T) {
	a, b, c := svc("a", "10.0.0.1:80"), svc("b", "10.0.0.2:80"), svc("c", "10.0.0.3:80")
	v1cfg := withServices("v1", a, b, c)
	full := func(want *weftv1.ProxyConfig) *discoveryv1.DiscoveryResponse {
		return &discoveryv1.DiscoveryResponse{Version: version(t, want), Config: want}
	}
	// inc is the incremental response from base to want.
	inc := func(base, want *weftv1.ProxyConfig, updated []*weftv1.Service, removed ...string) *discoveryv1.DiscoveryResponse {
		rest := proto.Clone(want).(*weftv1.ProxyConfig)
		rest.Services = nil
		return &discoveryv1.DiscoveryResponse{Version: version(t, want), BaseVersion: version(t, base), Config: rest,
			ServicesUpdated: updated, ServicesRemoved: removed}
	}
	b2, b3, d := svc("b", "10.0.0.22:80"), svc("b", "10.0.0.23:80"), svc("d", "10.0.0.4:80")
	v2cfg, v3cfg := withServices("v1", a, b2, c), withServices("v1", a, b3, c)
	bad := withServices("bad", a, b2, c)
	type step struct {
		resp *discoveryv1.DiscoveryResponse
		// answer: "ack <label>", "nack <label>", "resync <label of the running config>"
		answer  string
		applied *weftv1.ProxyConfig // the config Apply must get, if any
	}
	labels := map[string]*weftv1.ProxyConfig{"v1": v1cfg, "v2": v2cfg, "v3": v3cfg, "bad": bad, "none": nil}
	cases := []struct {
		name  string
		steps []step
	}{
		{"one service changed", []step{
			{full(v1cfg), "ack v1", v1cfg},
			{inc(v1cfg, v2cfg, []*weftv1.Service{b2}), "ack v2", v2cfg},
			{inc(v2cfg, v3cfg, []*weftv1.Service{b3}), "ack v3", v3cfg},
		}},
		{"added and removed", []step{
			{full(v1cfg), "ack v1", v1cfg},
			{inc(v1cfg, withServices("v1", b, c, d), []*weftv1.Service{d}, "a"), "ack v2", withServices("v1", b, c, d)},
		}},
		{"another base: full_resync, not a NACK", []step{
			{full(v1cfg), "ack v1", v1cfg},
			{inc(v2cfg, v3cfg, []*weftv1.Service{b3}), "resync v1", nil},
			{full(v3cfg), "ack v3", v3cfg},
		}},
		{"no config yet: full_resync", []step{
			{inc(v1cfg, v2cfg, []*weftv1.Service{b2}), "resync none", nil},
			{full(v2cfg), "ack v2", v2cfg},
		}},
		{"a rebuilt config of another version: full_resync", []step{
			{full(v1cfg), "ack v1", v1cfg},
			{func() *discoveryv1.DiscoveryResponse {
				r := inc(v1cfg, v2cfg, []*weftv1.Service{b2})
				r.Version = version(t, v3cfg)
				return r
			}(), "resync v1", nil},
		}},
		{"NACK, then an update on the last applied config", []step{
			{full(v1cfg), "ack v1", v1cfg},
			{inc(v1cfg, bad, []*weftv1.Service{b2}), "nack bad", nil},
			{inc(v1cfg, v3cfg, []*weftv1.Service{b3}), "ack v3", v3cfg},
			{inc(bad, v2cfg, nil), "resync v3", nil},
		}},
		{"the running version on another base: ACK without Apply", []step{
			{full(v1cfg), "ack v1", v1cfg},
			{inc(v2cfg, v1cfg, []*weftv1.Service{b}), "ack v1", nil},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, addr := startScripted(t)
			r := &configRecorder{}
			startClient(t, addr, &discoveryv1.Node{Identity: idWeb}, &recorder{}, func(o *configclient.Options) { o.Apply = r.apply })
			select {
			case hello := <-srv.reqs:
				if hello.GetNode().GetIdentity() != idWeb || !hello.GetNode().GetSupportsIncremental() {
					t.Fatalf("first request %v, want the node with supports_incremental", hello)
				}
			case <-time.After(waitTimeout):
				t.Fatal("the client did not connect")
			}
			applied := 0
			for i, st := range tc.steps {
				st.resp.Nonce = strconv.Itoa(i)
				srv.resps <- st.resp
				var req *discoveryv1.DiscoveryRequest
				select {
				case req = <-srv.reqs:
				case <-time.After(waitTimeout):
					t.Fatalf("step %d: no answer", i)
				}
				var kind, label string
				fmt.Sscan(st.answer, &kind, &label)
				wantVersion := st.resp.GetVersion()
				if kind == "resync" {
					wantVersion = ""
					if c := labels[label]; c != nil {
						wantVersion = version(t, c)
					}
				}
				got := "ack"
				switch {
				case req.GetFullResync():
					got = "resync"
				case req.GetErrorDetail() != "":
					got = "nack"
				}
				if got != kind || req.GetVersion() != wantVersion || req.GetResponseNonce() != st.resp.GetNonce() {
					t.Fatalf("step %d: answer %v, want %s of version %s, nonce %s", i, req, kind, wantVersion, st.resp.GetNonce())
				}
				_, configs := r.get()
				if st.applied != nil {
					applied++
					if len(configs) != applied || !proto.Equal(configs[applied-1], st.applied) {
						t.Fatalf("step %d: Apply got %d configs, the last %v; want %v", i, len(configs), configs[len(configs)-1], st.applied)
					}
				} else if len(configs) != applied {
					t.Fatalf("step %d: Apply accepted a config: %v", i, configs[len(configs)-1])
				}
			}
		})
	}
}

// recordingServer wraps a discovery server's stream to keep every response
// it sends.
type recordingServer struct {
	mu    sync.Mutex
	resps []*discoveryv1.DiscoveryResponse
}

type sendRecorder struct {
	grpc.ServerStream
	r *recordingServer
}

func (s *sendRecorder) SendMsg(m any) error {
	if resp, ok := m.(*discoveryv1.DiscoveryResponse); ok {
		s.r.mu.Lock()
		s.r.resps = append(s.r.resps, proto.Clone(resp).(*discoveryv1.DiscoveryResponse))
		s.r.mu.Unlock()
	}
	return s.ServerStream.SendMsg(m)
}

func (r *recordingServer) interceptor(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, &sendRecorder{ServerStream: ss, r: r})
}

func (r *recordingServer) last() *discoveryv1.DiscoveryResponse {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.resps) == 0 {
		return nil
	}
	return r.resps[len(r.resps)-1]
}

// TestIncrementalWithServer: the discovery server and the client together:
// changes of one service of several travel as incremental responses, a
// NACKed one included, and the proxy applies exactly the configs set.
func TestIncrementalWithServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingServer{}
	cache := discovery.NewCache()
	g := grpc.NewServer(grpc.StreamInterceptor(rec.interceptor))
	discovery.NewServer(cache, discovery.Options{Debounce: 10 * time.Millisecond, Logger: quietLogger()}).Register(g)
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	t.Cleanup(func() {
		g.Stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	r := &configRecorder{}
	node := &discoveryv1.Node{Identity: idWeb, Id: "web-1"}
	c := startClient(t, ln.Addr().String(), node, &recorder{}, func(o *configclient.Options) { o.Apply = r.apply })

	mk := func(label string, bEndpoint string, more ...*weftv1.Service) *weftv1.ProxyConfig {
		ss := []*weftv1.Service{svc("a", "10.0.0.1:80"), svc("b", bEndpoint)}
		for i := range 20 {
			ss = append(ss, svc(fmt.Sprintf("s%02d", i), fmt.Sprintf("10.1.0.%d:80", i+1)))
		}
		return withServices(label, append(ss, more...)...)
	}
	steps := []struct {
		cfg         *weftv1.ProxyConfig
		incremental bool
		accepted    bool
		changes     int // services updated and removed, since the last acknowledged
	}{
		{mk("v", "10.0.0.2:80"), false, true, 0},
		{mk("v", "10.0.0.3:80"), true, true, 1},
		{mk("bad", "10.0.0.4:80"), true, false, 1},
		// On the last acknowledged: b changed and z added.
		{mk("v", "10.0.0.5:80", svc("z", "10.0.0.26:80")), true, true, 2},
		{mk("v", "10.0.0.5:80"), true, true, 1},
	}
	var lastGood string // the version last acknowledged
	for i, st := range steps {
		v := cache.Set(discovery.NodeKey(node), st.cfg)
		base := lastGood
		if st.accepted {
			lastGood = v
			// Acknowledged as the server sees it: the base of the next step.
			waitFor(t, fmt.Sprintf("step %d acknowledged", i), func() bool {
				sts := streamsOf(cache, idWeb)
				return len(sts) == 1 && sts[0].AckedVersion == v
			})
			if _, configs := r.get(); !proto.Equal(configs[len(configs)-1], st.cfg) {
				t.Fatalf("step %d: Apply got %v, want %v", i, configs[len(configs)-1], st.cfg)
			}
		} else {
			waitFor(t, fmt.Sprintf("step %d rejected", i), func() bool { sts := streamsOf(cache, idWeb); return len(sts) == 1 && sts[0].RejectedVersion == v })
		}
		resp := rec.last()
		if resp.GetVersion() != v || (resp.GetBaseVersion() != "") != st.incremental {
			t.Fatalf("step %d: sent version %s on base %q; want %s, incremental %v", i, resp.GetVersion(), resp.GetBaseVersion(), v, st.incremental)
		}
		if st.incremental && resp.GetBaseVersion() != base {
			t.Fatalf("step %d: base %s, want the last acknowledged %s", i, resp.GetBaseVersion(), base)
		}
		if n := len(resp.GetServicesUpdated()) + len(resp.GetServicesRemoved()); st.incremental && n != st.changes {
			t.Errorf("step %d: %d services updated and %d removed, want %d changes", i, len(resp.GetServicesUpdated()), len(resp.GetServicesRemoved()), st.changes)
		}
	}
	if st := c.State(); st.LastVersion != lastGood || st.LastError != "" {
		t.Errorf("client state %+v", st)
	}
}

// streamsOf returns the status of every stream of identity.
func streamsOf(c *discovery.Cache, identity string) []discovery.ProxyStatus {
	var out []discovery.ProxyStatus
	for _, st := range c.Status() {
		if st.Node.GetIdentity() == identity {
			out = append(out, st)
		}
	}
	return out
}
