package file

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/control/model"
)

// endpoints derives the endpoints of a Service with a selector, as the
// Kubernetes endpoints controller does from pods: every workload of the
// service's namespace whose labels match, on each service port's target
// port (a number, or the name of one of the workload's ports). svc is the
// caller's copy: when an unnamed port has a named target port, its
// TargetPort is set to the number the name resolves to (endpoints of an
// unnamed port are matched by number).
func endpoints(svc *model.Service, res *resource, workloads []*model.Workload, td spiffeid.TrustDomain) (*model.EndpointSet, []Problem) {
	set := &model.EndpointSet{Service: svc.Ref(), Endpoints: []model.Endpoint{}}
	var problems []Problem
	for _, w := range workloads {
		if w.Namespace != svc.Namespace || !selects(svc.Selector, w.Labels) {
			continue
		}
		identity := ""
		if w.Meshed {
			id, err := spiffeid.FromSegments(td, "ns", w.Namespace, "sa", w.ServiceAccount)
			if err != nil {
				problems = append(problems, Problem{File: res.file, Line: res.line, Message: fmt.Sprintf("workload %s: no SPIFFE ID: %v; it is called in plaintext", w.Ref(), err)})
			} else {
				identity = id.String()
			}
		}
		for i := range svc.Ports {
			sp := &svc.Ports[i]
			target := sp.Target()
			if name := res.targetNames[i]; name != "" {
				j := slices.IndexFunc(w.Ports, func(p model.WorkloadPort) bool { return p.Name == name })
				field := fmt.Sprintf("spec.ports[%d].targetPort", i)
				switch {
				case j < 0:
					problems = append(problems, Problem{File: res.file, Line: res.targetLines[i], Field: field,
						Message: fmt.Sprintf("workload %s has no port named %q; it is not an endpoint of port %d", w.Ref(), name, sp.Port)})
					continue
				case sp.Name == "" && sp.TargetPort != 0 && sp.TargetPort != w.Ports[j].Port:
					problems = append(problems, Problem{File: res.file, Line: res.targetLines[i], Field: field,
						Message: fmt.Sprintf("%q is port %d on workload %s but %d on others; name the service port so each workload may use its own number; the workload is not an endpoint of port %d", name, w.Ports[j].Port, w.Ref(), sp.TargetPort, sp.Port)})
					continue
				case sp.Name == "":
					sp.TargetPort = w.Ports[j].Port
				}
				target = w.Ports[j].Port
			}
			ep := model.Endpoint{
				Service:  svc.Ref(),
				Address:  netip.AddrPortFrom(w.Address, target),
				PortName: sp.Name,
				Identity: identity,
				Ready:    true,
				Workload: w.Name,
			}
			if w.ProxyInbound != 0 && identity != "" {
				ep.ProxyAddress = netip.AddrPortFrom(w.Address, w.ProxyInbound)
			}
			set.Endpoints = append(set.Endpoints, ep)
		}
	}
	return set, problems
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

// workloadIndex finds the workloads a selector may match without looking at
// every workload: by namespace, then by one label pair. With a thousand
// services and ten thousand workloads, scanning them all per service costs
// most of a reload.
type workloadIndex map[string]map[string][]*model.Workload // namespace -> "key=value" -> workloads, in order

func indexWorkloads(ws []*model.Workload) workloadIndex {
	ix := workloadIndex{}
	for _, w := range ws {
		byLabel := ix[w.Namespace]
		if byLabel == nil {
			byLabel = map[string][]*model.Workload{}
			ix[w.Namespace] = byLabel
		}
		for k, v := range w.Labels {
			byLabel[k+"="+v] = append(byLabel[k+"="+v], w)
		}
	}
	return ix
}

// candidates returns, in order, the workloads of ns that carry the rarest
// label pair of selector: a superset of the ones it selects.
func (ix workloadIndex) candidates(ns string, selector map[string]string) []*model.Workload {
	var best []*model.Workload
	first := true
	for k, v := range selector {
		list := ix[ns][k+"="+v]
		if first || len(list) < len(best) {
			best, first = list, false
		}
	}
	return best
}
