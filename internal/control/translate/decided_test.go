package translate

import (
	"testing"
	"time"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
)

// configPortMode is the mode the proxy config Config renders gives port:
// its ports[].mtls, else require_mtls.
func configPortMode(in *weftv1.Inbound, port uint16) model.MTLSMode {
	for _, p := range in.GetPorts() {
		if p.GetPort() == uint32(port) && p.GetMtls() != "" {
			if p.GetMtls() == "strict" {
				return model.MTLSStrict
			}
			return model.MTLSPermissive
		}
	}
	if in.GetRequireMtls() {
		return model.MTLSStrict
	}
	return model.MTLSPermissive
}

// TestWorkloadPortMTLS names the policy deciding each port of shop/web-0
// (8080 behind web:http, 9000 behind web:admin) and checks that the mode
// agrees with the config Config renders.
func TestWorkloadPortMTLS(t *testing.T) {
	mtls := func(ns, name string, age int, mode model.MTLSMode, targets []model.PolicyTargetRef, ports ...model.PortMTLS) *model.MutualTLSPolicy {
		return &model.MutualTLSPolicy{Namespace: ns, Name: name, Created: t0.Add(-time.Duration(age) * time.Hour), Mode: mode, TargetRefs: targets, Ports: ports}
	}
	strict, permissive := model.MTLSStrict, model.MTLSPermissive
	type want struct {
		mode   model.MTLSMode
		policy string // namespace/name, "" for none
		entry  bool
	}
	tests := []struct {
		name  string
		objs  []model.Object
		mesh  Mesh
		ports map[uint16]want
	}{
		{name: "no policy: permissive by default",
			ports: map[uint16]want{8080: {permissive, "", false}, 12345: {permissive, "", false}}},
		{name: "mesh-wide",
			objs:  []model.Object{mtls("weft-system", "m", 1, strict, nil)},
			ports: map[uint16]want{8080: {strict, "weft-system/m", false}, 9000: {strict, "weft-system/m", false}, 12345: {strict, "weft-system/m", false}}},
		{name: "mesh-wide in another root namespace", mesh: Mesh{RootNamespace: "ops"},
			objs:  []model.Object{mtls("weft-system", "m", 1, strict, nil)},
			ports: map[uint16]want{8080: {permissive, "", false}}},
		{name: "a service port beats the namespace",
			objs: []model.Object{mtls("shop", "n", 2, strict, nil), mtls("shop", "s", 1, permissive, []model.PolicyTargetRef{svcTarget("web", "admin")})},
			ports: map[uint16]want{8080: {strict, "shop/n", false}, 9000: {permissive, "shop/s", false},
				12345: {strict, "shop/n", false}}},
		{name: "a ports entry",
			objs:  []model.Object{mtls("shop", "n", 1, strict, nil, model.PortMTLS{Port: 9102, Mode: permissive})},
			ports: map[uint16]want{8080: {strict, "shop/n", false}, 9102: {permissive, "shop/n", true}}},
		{name: "same level: the oldest wins",
			objs:  []model.Object{mtls("shop", "new", 1, strict, nil), mtls("shop", "old", 2, permissive, nil)},
			ports: map[uint16]want{8080: {permissive, "shop/old", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := securitySnapshot(t, tt.objs...)
			w := snap.Workloads[model.ObjectRef{Namespace: "shop", Name: "web-0"}]
			in := mustConfig(t, snap, proxyOf(snap, "shop", "web-0", tt.mesh)).Config.GetInbound()
			for port, want := range tt.ports {
				got := WorkloadPortMTLS(snap, w, port, tt.mesh)
				name := ""
				if got.Policy != nil {
					name = got.Policy.Ref().String()
				}
				if got.Mode != want.mode || name != want.policy || got.PortEntry != want.entry {
					t.Errorf("port %d: got %s by %q (entry %v), want %s by %q (entry %v)", port, got.Mode, name, got.PortEntry, want.mode, want.policy, want.entry)
				}
				if cfg := configPortMode(in, port); cfg != got.Mode {
					t.Errorf("port %d: WorkloadPortMTLS says %s, the rendered config %s", port, got.Mode, cfg)
				}
			}
		})
	}
}

// TestDefaultInbound says which level sets a workload's default inbound
// policy, passing over unknown values as Config does.
func TestDefaultInbound(t *testing.T) {
	ns := func(v string) *model.Namespace { return &model.Namespace{Name: "shop", DefaultInboundPolicy: v} }
	web0 := func(v string) *model.Workload {
		w := *securityObjects()[2].(*model.Workload)
		w.DefaultInboundPolicy = v
		return &w
	}
	tests := []struct {
		name          string
		objs          []model.Object
		mesh          Mesh
		policy, setBy string
	}{
		{name: "defaults", policy: "allow-all", setBy: SetByMesh},
		{name: "mesh setting", mesh: Mesh{DefaultInboundPolicy: "deny-all"}, policy: "deny-all", setBy: SetByMesh},
		{name: "namespace", objs: []model.Object{ns("allow-same-namespace")}, mesh: Mesh{DefaultInboundPolicy: "deny-all"},
			policy: "allow-same-namespace", setBy: SetByNamespace},
		{name: "workload beats namespace", objs: []model.Object{ns("deny-all"), web0("allow-authenticated")},
			policy: "allow-authenticated", setBy: SetByWorkload},
		{name: "unknown workload value: the namespace's", objs: []model.Object{ns("deny-all"), web0("allow-some")},
			policy: "deny-all", setBy: SetByNamespace},
		{name: "unknown namespace value: the mesh's", objs: []model.Object{ns("nobody")}, mesh: Mesh{DefaultInboundPolicy: "allow-authenticated"},
			policy: "allow-authenticated", setBy: SetByMesh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := securitySnapshot(t, tt.objs...)
			w := snap.Workloads[model.ObjectRef{Namespace: "shop", Name: "web-0"}]
			policy, setBy := DefaultInbound(snap, w, tt.mesh)
			if policy != tt.policy || setBy != tt.setBy {
				t.Errorf("got %s set by %s, want %s set by %s", policy, setBy, tt.policy, tt.setBy)
			}
			// The config agrees (an authorization section appears once the
			// default is not allow-all).
			cfg := mustConfig(t, snap, proxyOf(snap, "shop", "web-0", tt.mesh)).Config
			if got := cfg.GetInbound().GetAuthorization().GetDefaultPolicy(); got != policy && !(got == "" && policy == "allow-all") {
				t.Errorf("the config's default policy is %q, DefaultInbound says %q", got, policy)
			}
		})
	}
}
