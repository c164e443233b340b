package translate

import (
	"fmt"
	"maps"
	"slices"

	"github.com/weft-mesh/weft/internal/control/model"
)

// Levels of mTLS policies, most specific first.
const (
	levelTargeted = iota // targets the workload, or a service (port) it backs
	levelNamespace
	levelMesh
	levels
)

// mtls returns the mTLS mode of workload w's ports: base for every port
// not in ports, and ports where the mode differs from base.
//
// For each port, the policies of the most specific level that apply to it
// decide: targeted (a targetRef selects the workload, or the port through
// a Service), then the workload's namespace's without targetRefs, then the
// root namespace's without targetRefs; none: Permissive. Within a level the
// oldest policy wins and the others are reported. The winner's ports entry
// for the port, else its mode, is the port's mode.
func (b *builder) mtls(w *model.Workload, backs backing) (base model.MTLSMode, ports map[uint16]model.MTLSMode) {
	d := b.mtlsDecide(w, backs)
	return d.base, d.ports
}

// mtlsDecision is what mtls decides, with the policy that decided each
// port: baseBy for every port not in by; nil where no policy applies.
type mtlsDecision struct {
	base   model.MTLSMode
	ports  map[uint16]model.MTLSMode
	baseBy *model.MutualTLSPolicy
	by     map[uint16]*model.MutualTLSPolicy
}

// mtlsDecide is mtls, keeping the deciding policies.
func (b *builder) mtlsDecide(w *model.Workload, backs backing) mtlsDecision {
	var byLevel [levels][]applied[*model.MutualTLSPolicy]
	root := b.mesh.root()
	for _, p := range b.snap.MutualTLSPoliciesIn(w.Namespace) {
		if !b.mtlsOK(p) {
			continue
		}
		switch {
		case len(p.TargetRefs) > 0:
			if sc := b.targetScope(p.Namespace, p.TargetRefs, w, backs); !sc.empty() {
				byLevel[levelTargeted] = append(byLevel[levelTargeted], applied[*model.MutualTLSPolicy]{p, sc})
			}
		case w.Namespace != root:
			byLevel[levelNamespace] = append(byLevel[levelNamespace], applied[*model.MutualTLSPolicy]{p, scope{all: true}})
		}
	}
	for _, p := range b.snap.MutualTLSPoliciesIn(root) {
		if len(p.TargetRefs) == 0 && b.mtlsOK(p) {
			byLevel[levelMesh] = append(byLevel[levelMesh], applied[*model.MutualTLSPolicy]{p, scope{all: true}})
		}
	}

	// decide returns the policy deciding for the ports where applies
	// holds, reporting the ones it beats.
	decide := func(applies func(scope) bool) *model.MutualTLSPolicy {
		for _, level := range byLevel {
			var winner *model.MutualTLSPolicy
			for _, a := range level {
				switch {
				case !applies(a.scope):
				case winner == nil:
					winner = a.p
				default:
					b.problem(a.p.Key().String(), "targetRefs", "conflicts with the older %s, which applies to workload %s; the older one wins",
						winner.Key(), w.Ref())
				}
			}
			if winner != nil {
				return winner
			}
		}
		return nil
	}
	d := mtlsDecision{base: model.MTLSPermissive, by: map[uint16]*model.MutualTLSPolicy{}}
	if p := decide(func(sc scope) bool { return sc.all }); p != nil {
		d.base, d.baseBy = p.Mode, p
	}
	// The ports to decide: the workload's, and any a policy names.
	candidates := map[uint16]bool{}
	for _, wp := range w.Ports {
		if wp.Port != 0 {
			candidates[wp.Port] = true
		}
	}
	for _, level := range byLevel {
		for _, a := range level {
			for _, pm := range a.p.Ports {
				candidates[pm.Port] = true
			}
			for _, port := range a.scope.ports {
				candidates[port] = true
			}
		}
	}
	for _, port := range slices.Sorted(maps.Keys(candidates)) {
		p := decide(func(sc scope) bool { return sc.has(port) })
		d.by[port] = p
		mode, _ := policyPortMode(p, port)
		if mode != d.base {
			if d.ports == nil {
				d.ports = map[uint16]model.MTLSMode{}
			}
			d.ports[port] = mode
		}
	}
	return d
}

// policyPortMode is the mode policy p gives port: its ports entry for the
// port (entry set), else its mode; Permissive for no policy.
func policyPortMode(p *model.MutualTLSPolicy, port uint16) (mode model.MTLSMode, entry bool) {
	if p == nil {
		return model.MTLSPermissive, false
	}
	if i := slices.IndexFunc(p.Ports, func(pm model.PortMTLS) bool { return pm.Port == port }); i >= 0 {
		return p.Ports[i].Mode, true
	}
	return p.Mode, false
}

// mtlsOK reports, once, what makes an mTLS policy invalid, and says
// whether it is valid.
func (b *builder) mtlsOK(p *model.MutualTLSPolicy) bool {
	obj := p.Key().String()
	err, done := b.checked[obj]
	if !done {
		if fe := p.Validate(); len(fe) > 0 {
			for _, e := range fe {
				b.problem(obj, e.Field, "%s; the policy is ignored", e.Message)
			}
			err = fmt.Errorf("%d problems", len(fe))
		}
		b.checked[obj] = err
	}
	return err == nil
}
