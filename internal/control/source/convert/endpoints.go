package convert

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/control/model"
)

// EndpointProblem is a problem met deriving a Service's endpoints.
type EndpointProblem struct {
	// Port is the index of the service port (in the model Service) whose
	// target port is at fault; -1 for a problem of the whole Service.
	Port int
	// Field is the path of the field at fault, e.g.
	// "spec.ports[0].targetPort"; empty for the whole Service.
	Field   string
	Message string
}

// WorkloadEndpoints derives the endpoints of a Service with a selector, as
// the Kubernetes endpoints controller does from pods: every workload of the
// service's namespace whose labels match, on each service port's target
// port (a number, or the name of one of the workload's ports, as
// targetNames, the Result.TargetPortNames of the Service, say). svc is the
// caller's copy: when an unnamed port has a named target port, its
// TargetPort is set to the number the name resolves to (endpoints of an
// unnamed port are matched by number). The endpoints of meshed workloads
// carry their identity in trust domain td.
func WorkloadEndpoints(svc *model.Service, targetNames []string, workloads []*model.Workload, td spiffeid.TrustDomain) (*model.EndpointSet, []EndpointProblem) {
	set := &model.EndpointSet{Service: svc.Ref(), Endpoints: []model.Endpoint{}}
	var problems []EndpointProblem
	for _, w := range workloads {
		if w.Namespace != svc.Namespace || !Selects(svc.Selector, w.Labels) {
			continue
		}
		identity := ""
		if w.Meshed {
			id, err := spiffeid.FromSegments(td, "ns", w.Namespace, "sa", w.ServiceAccount)
			if err != nil {
				problems = append(problems, EndpointProblem{Port: -1, Message: fmt.Sprintf("workload %s: no SPIFFE ID: %v; it is called in plaintext", w.Ref(), err)})
			} else {
				identity = id.String()
			}
		}
		for i := range svc.Ports {
			sp := &svc.Ports[i]
			target := sp.Target()
			if name := targetName(targetNames, i); name != "" {
				j := slices.IndexFunc(w.Ports, func(p model.WorkloadPort) bool { return p.Name == name })
				field := fmt.Sprintf("spec.ports[%d].targetPort", i)
				switch {
				case j < 0:
					problems = append(problems, EndpointProblem{Port: i, Field: field,
						Message: fmt.Sprintf("workload %s has no port named %q; it is not an endpoint of port %d", w.Ref(), name, sp.Port)})
					continue
				case sp.Name == "" && sp.TargetPort != 0 && sp.TargetPort != w.Ports[j].Port:
					problems = append(problems, EndpointProblem{Port: i, Field: field,
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

func targetName(names []string, i int) string {
	if i < len(names) {
		return names[i]
	}
	return ""
}

// Selects reports whether a label selector (a Service's) matches labels.
func Selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if l, ok := labels[k]; !ok || l != v {
			return false
		}
	}
	return true
}

// WorkloadIndex finds the workloads a selector may match without looking at
// every workload: by namespace, then by one label pair. With a thousand
// services and ten thousand workloads, scanning them all per service costs
// most of a reload.
type WorkloadIndex map[string]map[string][]*model.Workload // namespace -> "key=value" -> workloads, in order

// IndexWorkloads indexes ws, keeping their order.
func IndexWorkloads(ws []*model.Workload) WorkloadIndex {
	ix := WorkloadIndex{}
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

// Candidates returns, in order, the workloads of ns that carry the rarest
// label pair of selector: a superset of the ones it selects.
func (ix WorkloadIndex) Candidates(ns string, selector map[string]string) []*model.Workload {
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
