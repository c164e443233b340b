package translate

import "github.com/weft-mesh/weft/internal/control/model"

// Where a workload's default inbound policy is set (DefaultInbound).
const (
	// SetByWorkload: the workload's weft.dev/default-inbound-policy
	// annotation.
	SetByWorkload = "workload"
	// SetByNamespace: the annotation on the workload's Namespace.
	SetByNamespace = "namespace"
	// SetByMesh: the control plane's setting, Mesh.DefaultInboundPolicy.
	SetByMesh = "mesh"
)

// DefaultInbound returns the default inbound authorization policy Config
// gives workload w's proxy under mesh (the policy that decides requests no
// authorization policy applies to), and where it is set: SetByWorkload,
// SetByNamespace or SetByMesh. An annotation with an unknown value is passed
// over, as Config passes it over. It is for explaining a config, not for
// building one: problems are not reported.
func DefaultInbound(snap *model.Snapshot, w *model.Workload, mesh Mesh) (policy, setBy string) {
	policy = newBuilder(snap, "", mesh).defaultInbound(w)
	switch {
	case w.DefaultInboundPolicy == policy:
		return policy, SetByWorkload
	case snap.Namespaces[w.Namespace] != nil && snap.Namespaces[w.Namespace].DefaultInboundPolicy == policy:
		return policy, SetByNamespace
	}
	return policy, SetByMesh
}

// PortMTLS is the mTLS mode of one port of a workload and what decided it.
type PortMTLS struct {
	Mode model.MTLSMode
	// Policy is the MutualTLSPolicy that decides the port; nil when none
	// applies to it (the control plane's default, Permissive).
	Policy *model.MutualTLSPolicy
	// PortEntry is set when the mode is the policy's spec.ports entry for
	// the port rather than its spec.mode.
	PortEntry bool
}

// WorkloadPortMTLS returns the mTLS mode Config gives port of workload w
// under mesh (docs/policies.md: targeted policies, then the namespace's,
// then the root namespace's; within a level the oldest), and the policy
// that decides it. It runs the precedence Config runs, so it names the
// policy behind the proxy's inbound require_mtls or ports[].mtls. Problems
// are not reported.
func WorkloadPortMTLS(snap *model.Snapshot, w *model.Workload, port uint16, mesh Mesh) PortMTLS {
	b := newBuilder(snap, "", mesh)
	d := b.mtlsDecide(w, b.backing(w))
	p, ok := d.by[port]
	if !ok {
		// A port neither the workload nor any policy names: the base
		// mode (no policy has a ports entry for it).
		p = d.baseBy
	}
	mode, entry := policyPortMode(p, port)
	return PortMTLS{Mode: mode, Policy: p, PortEntry: entry}
}
