package translate

import (
	"fmt"
	"maps"
	"slices"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
)

// inboundRateLimits returns the rate limit of each port of workload w that
// a RateLimit's targetRefs select (the same resolution as the security
// policies'). Where several select a port, the oldest (then the first by
// name) applies and the others are reported.
func (b *builder) inboundRateLimits(w *model.Workload, backs backing) map[uint16]*model.RateLimitPolicy {
	var selected []applied[*model.RateLimitPolicy]
	for _, p := range b.snap.TargetedRateLimitsIn(w.Namespace) {
		if !b.rateLimitOK(p) {
			continue
		}
		if sc := b.targetScope(p.Namespace, p.TargetRefs, w, backs); !sc.empty() {
			selected = append(selected, applied[*model.RateLimitPolicy]{p, sc})
		}
	}
	if len(selected) == 0 {
		return nil
	}
	candidates := map[uint16]bool{}
	for _, wp := range w.Ports {
		if wp.Port != 0 {
			candidates[wp.Port] = true
		}
	}
	for _, a := range selected {
		for _, port := range a.scope.ports {
			candidates[port] = true
		}
	}
	out := map[uint16]*model.RateLimitPolicy{}
	for _, port := range slices.Sorted(maps.Keys(candidates)) {
		for _, a := range selected {
			switch {
			case !a.scope.has(port):
			case out[port] == nil:
				out[port] = a.p
			default:
				b.problem(a.p.Key().String(), "targetRefs", "conflicts with the older %s on port %d of workload %s; the older one applies there",
					out[port].Key(), port, w.Ref())
			}
		}
	}
	return out
}

// rateLimits sets the rate limit of the inbound ports of workload w that
// RateLimits select; a selected port beyond the workload's gets an entry
// of its own, unless reserved for the proxy.
func (b *builder) rateLimits(w *model.Workload, backs backing, in *weftv1.Inbound, reserved map[uint16]bool) {
	limits := b.inboundRateLimits(w, backs)
	for _, p := range slices.Sorted(maps.Keys(limits)) {
		if reserved[p] {
			continue
		}
		i := slices.IndexFunc(in.Ports, func(ip *weftv1.InboundPort) bool { return ip.Port == uint32(p) })
		if i < 0 {
			in.Ports = append(in.Ports, &weftv1.InboundPort{Port: uint32(p)})
			i = len(in.Ports) - 1
		}
		in.Ports[i].RateLimit = limits[p].Inbound()
	}
}

// rateLimitOK reports, once, what makes a targeted RateLimit invalid, and
// says whether it is valid.
func (b *builder) rateLimitOK(p *model.RateLimitPolicy) bool {
	obj := p.Key().String()
	err, done := b.checked[obj]
	if !done {
		if fe := p.Validate(); len(fe) > 0 {
			for _, e := range fe {
				b.problem(obj, e.Field, "%s; the RateLimit is ignored", e.Message)
			}
			err = fmt.Errorf("%d problems", len(fe))
		}
		b.checked[obj] = err
	}
	return err == nil
}

// checkRateLimits is Check's share of rate limits: every workload's
// conflicts, every targeted RateLimit's targets.
func (b *builder) checkRateLimits() {
	for _, ref := range sortedKeys(b.snap.Workloads, compareObjectRef) {
		w := b.snap.Workloads[ref]
		b.inboundRateLimits(w, b.backing(w))
	}
	for _, ref := range sortedKeys(b.snap.RateLimits, compareObjectRef) {
		if p := b.snap.RateLimits[ref]; len(p.TargetRefs) > 0 {
			b.rateLimitOK(p)
			b.checkTargets(p.Key().String(), p.Namespace, p.TargetRefs)
		}
	}
}
