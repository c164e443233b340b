package server

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/discovery"
	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/translate"
)

// TestMeshSettings: Run refuses bad mesh settings before serving, and the
// settings reach every proxy's translation.
func TestMeshSettings(t *testing.T) {
	err := Run(context.Background(), Options{Mesh: translate.Mesh{DefaultInboundPolicy: "deny"}})
	if err == nil || !strings.Contains(err.Error(), `mesh default inbound policy "deny" is unknown`) {
		t.Errorf("Run with a bad default inbound policy = %v", err)
	}

	const id = "spiffe://weft.local/ns/shop/sa/web"
	tests := []struct {
		mesh translate.Mesh
		// The web-0 proxy's default inbound policy ("": no authorization)
		// and its number of policies (the one of namespace mesh is
		// mesh-wide when mesh is the root namespace).
		wantDefault  string
		wantPolicies int
	}{
		{translate.Mesh{}, "", 0},
		{translate.Mesh{DefaultInboundPolicy: model.DefaultInboundDenyAll}, model.DefaultInboundDenyAll, 0},
		{translate.Mesh{RootNamespace: "mesh"}, model.DefaultInboundAllowAll, 1},
	}
	for _, tt := range tests {
		store := model.NewStore()
		if err := store.Apply("test",
			model.Change{Upsert: &model.Workload{Namespace: "shop", Name: "web-0", ServiceAccount: "web", Meshed: true, Address: netip.MustParseAddr("10.0.0.1")}},
			model.Change{Upsert: &model.AuthorizationPolicy{Namespace: "mesh", Name: "deny-plaintext", Action: model.AuthorizationDeny}},
		); err != nil {
			t.Fatal(err)
		}
		r := &reconciler{store: store, cache: discovery.NewCache(), log: slog.New(slog.DiscardHandler), mesh: tt.mesh,
			proxies: map[string]*proxyState{id: {node: &discoveryv1.Node{Identity: id, Id: "web-0",
				Tls: &weftv1.TLS{CertFile: "c", KeyFile: "k", TrustBundleFile: "b"}}, watched: map[model.ServicePortRef]bool{}}}}
		r.render(id)
		a := r.proxies[id].last.GetInbound().GetAuthorization()
		if a.GetDefaultPolicy() != tt.wantDefault || len(a.GetPolicies()) != tt.wantPolicies {
			t.Errorf("mesh %+v: authorization %v, want default %q and %d policies", tt.mesh, a, tt.wantDefault, tt.wantPolicies)
		}
	}
}
