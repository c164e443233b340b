package registry

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/weft-mesh/weft/internal/control/model"
)

// overlayCache keeps the last overlay: every proxy's render asks for the
// overlay of the same snapshot.
type overlayCache struct {
	base *model.Snapshot
	gen  uint64
	out  *model.Snapshot
}

// Overlay returns snap with the endpoints of the registered workloads added
// to every Service of their namespace whose selector matches their labels,
// as the file source derives the endpoints of file Workloads: one endpoint
// per service port, at the target port, carrying the workload's identity
// and, in explicit mode, its proxy's inbound address. Endpoints are ready
// while the workload is healthy (or never reported) and its proxy
// connected. A registered workload that another source's workload of the
// same name shadows in snap adds nothing.
//
// The model keeps the name of a named targetPort nowhere: a service port
// without a numeric targetPort goes to the registered workload's port named
// like the service port, else to the service port's number.
//
// It returns snap itself when no registered workload is selected. The
// result must not be modified.
func (r *Registry) Overlay(snap *model.Snapshot) *model.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cache.base == snap && r.cache.gen == r.gen {
		return r.cache.out
	}
	added := map[model.ServiceRef][]model.Endpoint{}
	services := slices.SortedFunc(maps.Values(snap.Services), func(a, b *model.Service) int {
		return compareRefs(model.ObjectRef(a.Ref()), model.ObjectRef(b.Ref()))
	})
	for _, ref := range slices.SortedFunc(maps.Keys(r.entries), compareRefs) {
		e := r.entries[ref]
		if sw := snap.Workloads[ref]; sw == nil || !sameWorkload(sw, e.workload) {
			continue // shadowed, or applied after snap was taken
		}
		for _, svc := range services {
			if svc.Namespace != ref.Namespace || len(svc.Selector) == 0 || !selects(svc.Selector, e.workload.Labels) {
				continue
			}
			added[svc.Ref()] = append(added[svc.Ref()], endpointsOf(svc, e)...)
		}
	}
	out := snap
	if len(added) > 0 {
		out = withEndpoints(snap, added)
	}
	r.cache = overlayCache{base: snap, gen: r.gen, out: out}
	return out
}

// endpointsOf returns the endpoints of a registered workload for each port
// of svc.
func endpointsOf(svc *model.Service, e *entry) []model.Endpoint {
	w := e.workload
	out := make([]model.Endpoint, 0, len(svc.Ports))
	for _, sp := range svc.Ports {
		target := sp.TargetPort
		if target == 0 {
			target = sp.Port
			if i := slices.IndexFunc(w.Ports, func(p model.WorkloadPort) bool { return sp.Name != "" && p.Name == sp.Name }); i >= 0 {
				target = w.Ports[i].Port
			}
		}
		ep := model.Endpoint{
			Service:  svc.Ref(),
			Address:  netip.AddrPortFrom(w.Address, target),
			PortName: sp.Name,
			Identity: e.identity,
			Ready:    e.ready(),
			Workload: w.Name,
		}
		if w.ProxyInbound != 0 {
			ep.ProxyAddress = netip.AddrPortFrom(w.Address, w.ProxyInbound)
		}
		out = append(out, ep)
	}
	return out
}

// withEndpoints returns a copy of snap whose Endpoints have added appended.
// Every other field is shared with snap.
func withEndpoints(snap *model.Snapshot, added map[model.ServiceRef][]model.Endpoint) *model.Snapshot {
	eps := maps.Clone(snap.Endpoints)
	if eps == nil {
		eps = map[model.ServiceRef][]model.Endpoint{}
	}
	for svc, more := range added {
		// A new slice: snap's are shared with other readers.
		eps[svc] = slices.Concat(snap.Endpoints[svc], more)
	}
	return snap.WithEndpoints(eps)
}

// selects reports whether a label selector matches labels.
func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if l, ok := labels[k]; !ok || l != v {
			return false
		}
	}
	return true
}
