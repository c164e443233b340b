package server

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/configclient"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// liveSource applies whatever the test sends it.
type liveSource struct{ changes chan []model.Object }

func (s *liveSource) Name() string { return "test" }
func (s *liveSource) Run(ctx context.Context, st *model.Store) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case objs := <-s.changes:
			if err := st.Replace(s.Name(), objs); err != nil {
				return err
			}
		}
	}
}

func mesh(webEndpoints ...string) []model.Object {
	web := model.ServiceRef{Namespace: "default", Name: "web"}
	api := model.ServiceRef{Namespace: "default", Name: "api"}
	objs := []model.Object{
		&model.Service{Namespace: "default", Name: "web", Ports: []model.ServicePort{{Name: "http", Port: 80, TargetPort: 8080, AppProtocol: "http"}}},
		&model.Service{Namespace: "default", Name: "api", Ports: []model.ServicePort{{Name: "grpc", Port: 9090, AppProtocol: "grpc"}}},
		&model.EndpointSet{Service: api, Endpoints: []model.Endpoint{{Service: api, Address: netip.MustParseAddrPort("10.1.0.1:9090"), Ready: true}}},
	}
	set := &model.EndpointSet{Service: web}
	for _, e := range webEndpoints {
		set.Endpoints = append(set.Endpoints, model.Endpoint{Service: web, Address: netip.MustParseAddrPort(e), Ready: true})
	}
	return append(objs, set)
}

type applied struct {
	mu      sync.Mutex
	configs []*weftv1.ProxyConfig
}

func (a *applied) last() *weftv1.ProxyConfig {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.configs) == 0 {
		return nil
	}
	return a.configs[len(a.configs)-1]
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func services(cfg *weftv1.ProxyConfig) string {
	var names []string
	for _, s := range cfg.GetServices() {
		names = append(names, s.GetName())
	}
	return strings.Join(names, ",")
}

// TestProxyGetsOnlyWhatItWatchesAndUpdates: a proxy that watches web gets
// web only, sees endpoint changes live, and gets api once it asks for it;
// every config it receives passes the proxy's own validation.
func TestProxyGetsOnlyWhatItWatchesAndUpdates(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	src := &liveSource{changes: make(chan []model.Object, 4)}
	src.changes <- mesh("10.0.0.1:8080")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{Listener: ln, Sources: []model.Source{src}, Ready: ready}) }()
	<-ready

	var got applied
	client, err := configclient.New(configclient.Options{
		Address: ln.Addr().String(),
		Dial:    []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		Node: &discoveryv1.Node{
			Identity:        "spiffe://weft.local/ns/default/sa/client",
			Id:              "client-1",
			WatchedServices: []string{"default/web"},
			AdminAddress:    "127.0.0.1:14191",
			ExplicitBase:    16000,
		},
		Apply: func(_ context.Context, cfg *weftv1.ProxyConfig, _ string) error {
			if _, err := config.Compile(cfg); err != nil {
				return err
			}
			got.mu.Lock()
			got.configs = append(got.configs, cfg)
			got.mu.Unlock()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	cdone := make(chan error, 1)
	go func() { cdone <- client.Run(cctx) }()
	defer func() {
		ccancel()
		<-cdone
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	eventually(t, "the first config arrives", func() bool { return got.last() != nil })
	cfg := got.last()
	if services(cfg) != "web.default:80" {
		t.Fatalf("proxy got services %q, want only what it watches", services(cfg))
	}
	if cfg.GetAdmin().GetAddress() != "127.0.0.1:14191" || cfg.GetOutbound().GetExplicit()[0].GetAddress() != "127.0.0.1:16000" {
		t.Fatalf("local settings not used: admin %q, explicit %v", cfg.GetAdmin().GetAddress(), cfg.GetOutbound().GetExplicit())
	}

	src.changes <- mesh("10.0.0.1:8080", "10.0.0.2:8080")
	eventually(t, "the new endpoint arrives", func() bool {
		return len(got.last().GetServices()[0].GetEndpoints()) == 2
	})

	client.Watch("default/api")
	eventually(t, "api is discovered on demand", func() bool {
		return services(got.last()) == "api.default:9090,web.default:80"
	})
}

func TestParseServiceRef(t *testing.T) {
	cases := []struct {
		in   string
		want string
		ok   bool
	}{
		{"default/web", "default/web:0", true},
		{"shop/api:9090", "shop/api:9090", true},
		{"web", "", false},
		{"/web", "", false},
		{"default/web:x", "", false},
		{"default/web:0", "", false},
	}
	for _, tc := range cases {
		ref, err := ParseServiceRef(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%q: error %v", tc.in, err)
			continue
		}
		if tc.ok {
			if got := ref.Namespace + "/" + ref.Name + ":" + strconv.Itoa(int(ref.Port)); got != tc.want {
				t.Errorf("%q: got %s", tc.in, got)
			}
		}
	}
}
