package translate

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/model"
)

// annotationField is the path of the default inbound policy annotation,
// for problems.
var annotationField = `metadata.annotations["` + model.AnnotationDefaultInboundPolicy + `"]`

// scope is the set of a workload's ports a policy applies to.
type scope struct {
	all   bool
	ports []uint16 // sorted and unique when !all
}

func (s scope) empty() bool { return !s.all && len(s.ports) == 0 }

func (s scope) has(p uint16) bool { return s.all || slices.Contains(s.ports, p) }

// narrow returns the ports of s among ports (none: s itself).
func (s scope) narrow(ports []uint16) scope {
	if len(ports) == 0 {
		return s
	}
	ps := slices.Compact(slices.Sorted(slices.Values(ports)))
	if s.all {
		return scope{ports: ps}
	}
	return scope{ports: slices.DeleteFunc(ps, func(p uint16) bool { return !slices.Contains(s.ports, p) })}
}

func (s scope) proxyPorts() []uint32 {
	var out []uint32
	for _, p := range s.ports {
		out = append(out, uint32(p))
	}
	return out
}

func (s scope) String() string {
	if s.all {
		return "every port"
	}
	return fmt.Sprint(s.ports)
}

// backing maps each service port workload w backs to the workload port
// behind it: what a Service targetRef selects on w.
type backing map[model.ServiceRef]map[uint16]uint16

func (b *builder) backing(w *model.Workload) backing {
	out := backing{}
	for _, ep := range b.snap.EndpointsOf(w) {
		svc := b.snap.Services[ep.Service]
		if svc == nil {
			continue
		}
		for _, sp := range svc.Ports {
			if serves(ep, sp) {
				if out[svc.Ref()] == nil {
					out[svc.Ref()] = map[uint16]uint16{}
				}
				out[svc.Ref()][sp.Port] = ep.Address.Port()
			}
		}
	}
	return out
}

// targetScope returns the ports of workload w a policy of namespace ns
// with targetRefs refs (at least one) selects.
func (b *builder) targetScope(ns string, refs []model.PolicyTargetRef, w *model.Workload, backs backing) scope {
	if ns != w.Namespace {
		return scope{}
	}
	var ports []uint16
	for _, r := range refs {
		switch r.Kind {
		case model.TargetWorkload:
			if r.Name != w.Name {
				continue
			}
			if r.SectionName == "" {
				return scope{all: true}
			}
			if i := slices.IndexFunc(w.Ports, func(p model.WorkloadPort) bool { return sectionIs(r.SectionName, p.Name, p.Port) }); i >= 0 {
				ports = append(ports, w.Ports[i].Port)
			} else if n, err := strconv.ParseUint(r.SectionName, 10, 16); err == nil && n > 0 {
				ports = append(ports, uint16(n))
			}
		case model.TargetService:
			ref := model.ServiceRef{Namespace: ns, Name: r.Name}
			behind := backs[ref]
			if behind == nil {
				continue
			}
			if r.SectionName == "" {
				return scope{all: true}
			}
			if sp, ok := sectionPort(b.snap.Services[ref], r.SectionName); ok {
				if wp, ok := behind[sp.Port]; ok {
					ports = append(ports, wp)
				}
			}
		}
	}
	return scope{ports: slices.Compact(slices.Sorted(slices.Values(ports)))}
}

// sectionPort finds the port of a service a sectionName names: by name, or
// by number.
func sectionPort(svc *model.Service, section string) (model.ServicePort, bool) {
	if svc == nil {
		return model.ServicePort{}, false
	}
	for _, sp := range svc.Ports {
		if sectionIs(section, sp.Name, sp.Port) {
			return sp, true
		}
	}
	return model.ServicePort{}, false
}

func sectionIs(section, name string, number uint16) bool {
	return section == name && name != "" || section == strconv.Itoa(int(number))
}

// checkTargets reports the targetRefs of a policy that select nothing: a
// Service or Workload that does not exist, a port the Service lacks.
func (b *builder) checkTargets(obj, ns string, refs []model.PolicyTargetRef) {
	for i, r := range refs {
		field := fmt.Sprintf("targetRefs[%d]", i)
		switch r.Kind {
		case model.TargetService:
			ref := model.ServiceRef{Namespace: ns, Name: r.Name}
			svc := b.snap.Services[ref]
			switch {
			case svc == nil:
				b.problem(obj, field, "service %s does not exist; this targetRef selects nothing", ref)
			case r.SectionName != "":
				if _, ok := sectionPort(svc, r.SectionName); !ok {
					b.problem(obj, field+".sectionName", "service %s has no port named or numbered %q; this targetRef selects nothing", ref, r.SectionName)
				}
			}
		case model.TargetWorkload:
			ref := model.ObjectRef{Namespace: ns, Name: r.Name}
			if b.snap.Workloads[ref] == nil {
				b.problem(obj, field, "workload %s does not exist; this targetRef selects nothing", ref)
			}
		} // Validate reports other kinds.
	}
}

// defaultInbound returns the default inbound policy of workload w: its
// annotation's, else its namespace's, else the mesh's. A value that is
// not a policy is reported and passed over.
func (b *builder) defaultInbound(w *model.Workload) string {
	policy := b.namespaceDefault(w.Namespace)
	if w.DefaultInboundPolicy == "" {
		return policy
	}
	if !validDefaultInbound(w.DefaultInboundPolicy) {
		b.badDefaultInbound(w.Key().String(), w.DefaultInboundPolicy, "the namespace's default, "+policy+",")
		return policy
	}
	return w.DefaultInboundPolicy
}

// namespaceDefault returns the default inbound policy of namespace ns: its
// annotation's, else the mesh's.
func (b *builder) namespaceDefault(ns string) string {
	policy := b.mesh.defaultInbound()
	n := b.snap.Namespaces[ns]
	if n == nil || n.DefaultInboundPolicy == "" {
		return policy
	}
	if !validDefaultInbound(n.DefaultInboundPolicy) {
		b.badDefaultInbound(n.Key().String(), n.DefaultInboundPolicy, "the mesh's default, "+policy+",")
		return policy
	}
	return n.DefaultInboundPolicy
}

func (b *builder) badDefaultInbound(obj, value, instead string) {
	b.problem(obj, annotationField, "%q is not a default inbound policy; use %s; %s applies", value, defaultInboundList(), instead)
}

// security sets the authorization, the mTLS modes and the rate limits of
// a workload's inbound listener. Ports the policies name beyond the workload's get an
// entry of their own, unless reserved for the proxy.
func (b *builder) security(w *model.Workload, in *weftv1.Inbound, reserved map[uint16]bool) {
	backs := b.backing(w)
	in.Authorization = b.authorization(w, backs)
	base, ports := b.mtls(w, backs)
	in.RequireMtls = base == model.MTLSStrict
	for _, p := range slices.Sorted(maps.Keys(ports)) {
		if reserved[p] {
			continue
		}
		i := slices.IndexFunc(in.Ports, func(ip *weftv1.InboundPort) bool { return ip.Port == uint32(p) })
		if i < 0 {
			in.Ports = append(in.Ports, &weftv1.InboundPort{Port: uint32(p)})
			i = len(in.Ports) - 1
		}
		in.Ports[i].Mtls = proxyMTLS(ports[p])
	}
	b.rateLimits(w, backs, in, reserved)
	slices.SortFunc(in.Ports, func(a, b *weftv1.InboundPort) int { return cmp.Compare(a.Port, b.Port) })
}

// checkSecurity is Check's share of security: every workload's policies,
// every namespace's annotation, every policy's targets.
func (b *builder) checkSecurity() {
	for _, ref := range sortedKeys(b.snap.Workloads, compareObjectRef) {
		w := b.snap.Workloads[ref]
		backs := b.backing(w)
		b.authorization(w, backs)
		b.mtls(w, backs)
	}
	for _, name := range slices.Sorted(maps.Keys(b.snap.Namespaces)) {
		b.namespaceDefault(name)
	}
	for _, ref := range sortedKeys(b.snap.AuthorizationPolicies, compareObjectRef) {
		p := b.snap.AuthorizationPolicies[ref]
		b.checkAuthorization(p)
		b.checkTargets(p.Key().String(), p.Namespace, p.TargetRefs)
	}
	for _, ref := range sortedKeys(b.snap.MutualTLSPolicies, compareObjectRef) {
		p := b.snap.MutualTLSPolicies[ref]
		b.mtlsOK(p)
		b.checkTargets(p.Key().String(), p.Namespace, p.TargetRefs)
	}
}

func proxyMTLS(m model.MTLSMode) string {
	if m == model.MTLSStrict {
		return "strict"
	}
	return "permissive"
}
