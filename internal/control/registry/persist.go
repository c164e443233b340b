package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	"github.com/weft-mesh/weft/internal/atomicfile"
)

// Files of the registry in the data directory.
const (
	FileName = "registrations.json"
	lockName = "registrations.lock"
)

// fileData is the content of registrations.json.
type fileData struct {
	Registrations []record `json:"registrations"`
}

// record is one persisted registration: the node fields it came from, so
// that loading checks it exactly as Connect did.
type record struct {
	Namespace        string            `json:"namespace"`
	Name             string            `json:"name"`
	Identity         string            `json:"identity"`
	Address          string            `json:"address"`
	Ports            []recordPort      `json:"ports,omitempty"`
	Labels           map[string]string `json:"labels,omitempty"`
	ProxyInboundPort uint32            `json:"proxy_inbound_port,omitempty"`
	// Health is "healthy", "unhealthy" or "" (never reported).
	Health       string    `json:"health,omitempty"`
	HealthDetail string    `json:"health_detail,omitempty"`
	Lost         bool      `json:"lost,omitempty"`
	Registered   time.Time `json:"registered"`
}

type recordPort struct {
	Name     string `json:"name,omitempty"`
	Port     uint32 `json:"port"`
	Protocol string `json:"protocol,omitempty"`
}

func (r *Registry) path() string { return filepath.Join(r.o.DataDir, FileName) }

// load reads the persisted registrations. A record that no longer passes
// the checks is logged and dropped.
func (r *Registry) load() error {
	if err := atomicfile.EnsureDir(r.o.DataDir); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	unlock, err := atomicfile.Lock(filepath.Join(r.o.DataDir, lockName))
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	defer unlock()
	b, err := os.ReadFile(r.path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("registry: reading %s: %w", r.path(), err)
	}
	var f fileData
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("registry: %s is corrupted: %w; remove it (registered workloads then come back as their proxies reconnect)", r.path(), err)
	}
	for i, rec := range f.Registrations {
		node := rec.node()
		w, err := Workload(node)
		if err == nil && (w.Namespace != rec.Namespace || w.Name != rec.Name) {
			err = fmt.Errorf("the identity and name give workload %s, not %s/%s", w.Ref(), rec.Namespace, rec.Name)
		}
		if err == nil && r.entries[w.Ref()] != nil {
			err = fmt.Errorf("workload %s is listed twice", w.Ref())
		}
		if err != nil {
			r.log.Warn("persisted registration dropped", "file", r.path(), "index", i, "error", err)
			continue
		}
		e := &entry{workload: w, identity: rec.Identity, detail: rec.HealthDetail, lost: rec.Lost, registered: rec.Registered}
		switch rec.Health {
		case "healthy":
			e.health = discoveryv1.Health_HEALTH_HEALTHY
		case "unhealthy":
			e.health = discoveryv1.Health_HEALTH_UNHEALTHY
		}
		r.entries[w.Ref()] = e
	}
	return nil
}

// node rebuilds the node a record was registered with.
func (rec record) node() *discoveryv1.Node {
	reg := &discoveryv1.WorkloadRegistration{Address: rec.Address, Labels: rec.Labels, ProxyInboundPort: rec.ProxyInboundPort}
	for _, p := range rec.Ports {
		reg.Ports = append(reg.Ports, &discoveryv1.WorkloadPort{Name: p.Name, Port: p.Port, Protocol: p.Protocol})
	}
	return &discoveryv1.Node{Identity: rec.Identity, Id: rec.Name, Registration: reg}
}

// records returns the registrations to persist, in name order. r.mu is held.
func (r *Registry) records() fileData {
	f := fileData{Registrations: []record{}}
	for _, ref := range slices.SortedFunc(maps.Keys(r.entries), compareRefs) {
		e := r.entries[ref]
		w := e.workload
		rec := record{Namespace: w.Namespace, Name: w.Name, Identity: e.identity, Address: w.Address.String(), Labels: w.Labels,
			ProxyInboundPort: uint32(w.ProxyInbound), HealthDetail: e.detail, Lost: e.lost, Registered: e.registered.UTC()}
		if e.health != discoveryv1.Health_HEALTH_UNKNOWN {
			rec.Health = healthName(e.health)
		}
		for _, p := range w.Ports {
			rec.Ports = append(rec.Ports, recordPort{Name: p.Name, Port: uint32(p.Port), Protocol: p.Protocol})
		}
		f.Registrations = append(f.Registrations, rec)
	}
	return f
}

// persistLoop writes the registrations after every change (coalesced),
// and once more when ctx ends if a change is pending.
func (r *Registry) persistLoop(ctx context.Context) {
	if r.o.DataDir == "" {
		return
	}
	for {
		select {
		case <-ctx.Done():
			select {
			case <-r.dirty:
				r.persist()
			default:
			}
			return
		case <-r.dirty:
			r.persist()
		}
	}
}

// persist writes the current registrations; a failure is logged (the next
// change tries again: the proxies re-register after a restart anyway).
func (r *Registry) persist() {
	r.mu.Lock()
	f := r.records()
	r.mu.Unlock()
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		r.log.Error("cannot encode the registrations", "error", err)
		return
	}
	if err := r.write(append(b, '\n')); err != nil {
		r.log.Error("cannot persist the registrations; they are lost if the control plane restarts before the next change is written", "error", err)
	}
}

func (r *Registry) write(b []byte) error {
	unlock, err := atomicfile.Lock(filepath.Join(r.o.DataDir, lockName))
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	defer unlock()
	if err := atomicfile.Write(r.path(), b, 0o600); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	return nil
}
