package sidecar

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/weft-mesh/weft/internal/proxy/breaker"
)

// configDump is /config_dump: the running config as loaded, plus what the
// proxy made of it (identity, listeners, endpoints with balancer state).
// The config holds no secrets (key material is named by path, never
// inlined), so nothing needs redacting; key contents are never shown.
func (p *Proxy) configDump() ([]byte, error) {
	s := p.state.Load()
	if s == nil {
		return json.MarshalIndent(map[string]string{"status": "waiting for the first config from the control plane"}, "", "  ")
	}
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(s.cfg.Source)
	if err != nil {
		return nil, fmt.Errorf("encoding the running config: %w", err)
	}
	type endpoint struct {
		Address  string  `json:"address"`
		Weight   uint32  `json:"weight"`
		InFlight int64   `json:"in_flight"`
		EWMA     float64 `json:"ewma_latency_seconds"`
		Cost     float64 `json:"p2c_cost"`
	}
	type service struct {
		Name        string             `json:"name"`
		Policy      string             `json:"policy"`
		Endpoints   []endpoint         `json:"endpoints"`
		Ejected     []breaker.Ejection `json:"ejected,omitempty"`
		RetryBudget float64            `json:"retry_budget_available"`
		Routes      any                `json:"routes,omitempty"`
	}
	type identity struct {
		SPIFFEID string    `json:"spiffe_id"`
		NotAfter time.Time `json:"not_after"`
		CertFile string    `json:"cert_file"`
	}
	out := struct {
		Version   string          `json:"version"`
		LoadedAt  time.Time       `json:"loaded_at"`
		Identity  *identity       `json:"identity,omitempty"`
		Listeners []string        `json:"listeners"`
		Services  []service       `json:"services"`
		Config    json.RawMessage `json:"config"`
	}{Version: s.cfg.Version, LoadedAt: s.loadedAt, Config: raw}
	if src := p.tls.Load(); src != nil {
		out.Identity = &identity{SPIFFEID: src.ID().String(), NotAfter: src.NotAfter(), CertFile: src.Files().CertFile}
	}
	p.mu.Lock()
	for k, l := range p.listeners {
		out.Listeners = append(out.Listeners, k.kind.String()+" "+l.ln.Addr().String())
	}
	p.mu.Unlock()
	slices.Sort(out.Listeners)
	for name, b := range s.backends {
		svc := service{Name: name, Policy: b.Service.Policy, Endpoints: []endpoint{}, Ejected: b.Ejections(), RetryBudget: b.Budget().Available()}
		if len(b.Service.Policies) > 0 {
			svc.Routes = b.Service.Policies
		}
		for _, st := range b.Stats() {
			svc.Endpoints = append(svc.Endpoints, endpoint{Address: st.Addr, Weight: st.Weight, InFlight: st.InFlight, EWMA: st.EWMA.Seconds(), Cost: st.Cost})
		}
		out.Services = append(out.Services, svc)
	}
	slices.SortFunc(out.Services, func(a, b service) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return json.MarshalIndent(out, "", "  ")
}
