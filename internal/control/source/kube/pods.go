package kube

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/source/convert"
)

// Labels and annotations of pods and namespaces the source reads.
const (
	// InjectKey (a label, as the injection webhook selects by, or an
	// annotation) set to "enabled" on a pod or its namespace says the
	// pod runs a weft-proxy; "disabled" on a pod says it does not,
	// whatever its namespace says.
	InjectKey = "weft.io/inject"
	// ProxyContainer is the name of weft's sidecar container: a pod with
	// one runs a weft-proxy.
	ProxyContainer = "weft-proxy"
	// AnnotationOpaquePorts on a pod (or, for the pods that do not set it,
	// its namespace) lists the workload ports relayed as opaque TCP,
	// without protocol detection: "3306,5432" or ranges "8000-8010".
	AnnotationOpaquePorts = "config.weft.io/opaque-ports"
)

// maxOpaqueRange bounds the ports one range of AnnotationOpaquePorts may
// span, so that a typo ("1-65535") cannot blow a workload up.
const maxOpaqueRange = 1024

// setting returns the value of key among a pod's or namespace's
// annotations, else labels.
func setting(labels, annotations map[string]string, key string) string {
	if v, ok := annotations[key]; ok {
		return v
	}
	return labels[key]
}

// meshed reports whether a pod runs a weft-proxy: it has the proxy
// container, or injection is enabled on it or (unless disabled on it) on
// its namespace (nil when unknown). As the injector decides: the pod's
// annotation wins over its label, the pod over its namespace, where a
// label or an annotation enables it.
func meshed(pod *corev1.Pod, ns *corev1.Namespace) bool {
	for _, c := range slices.Concat(pod.Spec.Containers, pod.Spec.InitContainers) {
		if c.Name == ProxyContainer {
			return true
		}
	}
	switch setting(pod.Labels, pod.Annotations, InjectKey) {
	case "enabled":
		return true
	case "disabled":
		return false
	}
	return ns != nil && (ns.Labels[InjectKey] == "enabled" || ns.Annotations[InjectKey] == "enabled")
}

// terminal reports whether a pod's containers have all stopped for good.
func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// podWorkload converts a pod to the model's Workload: its identity comes
// from its ServiceAccount, its ports from its containers (the proxy's
// excepted) and AnnotationOpaquePorts. It returns the problems met, as
// field: message.
func podWorkload(pod *corev1.Pod, ns *corev1.Namespace) (*model.Workload, []convert.Problem) {
	w := &model.Workload{
		Namespace: pod.Namespace, Name: pod.Name, Labels: pod.Labels,
		ServiceAccount: cmp.Or(pod.Spec.ServiceAccountName, "default"),
		Meshed:         meshed(pod, ns),
	}
	var problems []convert.Problem
	if a, err := netip.ParseAddr(pod.Status.PodIP); err == nil {
		w.Address = a.Unmap()
	}
	policy, p := convert.DefaultInboundPolicy(&pod.ObjectMeta, "the namespace's default applies")
	w.DefaultInboundPolicy = policy
	if p != nil {
		problems = append(problems, *p)
	}
	seen := map[uint16]bool{}
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if c.Name == ProxyContainer {
			continue
		}
		for _, cp := range c.Ports {
			if cp.Protocol != "" && cp.Protocol != corev1.ProtocolTCP || cp.ContainerPort < 1 || cp.ContainerPort > 65535 {
				continue
			}
			port := uint16(cp.ContainerPort)
			if seen[port] {
				continue
			}
			seen[port] = true
			w.Ports = append(w.Ports, model.WorkloadPort{Name: cp.Name, Port: port})
		}
	}
	field := convert.MapPath("metadata.annotations", AnnotationOpaquePorts)
	spec, ok := pod.Annotations[AnnotationOpaquePorts]
	if !ok && ns != nil {
		spec, ok = ns.Annotations[AnnotationOpaquePorts]
		field = "the namespace's " + field
	}
	if ok {
		singles, ranges, errs := parseOpaquePorts(spec)
		for _, e := range errs {
			problems = append(problems, convert.Problem{Field: field, Message: e + "; the entry is ignored"})
		}
		for i := range w.Ports {
			if inRanges(w.Ports[i].Port, singles, ranges) {
				w.Ports[i].Opaque, w.Ports[i].Protocol = true, "opaque"
			}
		}
		for _, port := range singles {
			if !seen[port] {
				seen[port] = true
				w.Ports = append(w.Ports, model.WorkloadPort{Port: port, Protocol: "opaque", Opaque: true})
			}
		}
	}
	slices.SortFunc(w.Ports, func(a, b model.WorkloadPort) int { return cmp.Compare(a.Port, b.Port) })
	return w, problems
}

// parseOpaquePorts reads "3306, 5432, 8000-8010": single ports, and
// ranges (which mark the declared ports they hold, adding none).
func parseOpaquePorts(s string) (singles []uint16, ranges [][2]uint16, errs []string) {
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, errA := parsePort(lo)
		if !isRange {
			if errA != nil {
				errs = append(errs, fmt.Sprintf("%q is not a port (1-65535)", part))
				continue
			}
			singles = append(singles, a)
			continue
		}
		b, errB := parsePort(hi)
		switch {
		case errA != nil || errB != nil || b < a:
			errs = append(errs, fmt.Sprintf("%q is not a range of ports (low-high, 1-65535)", part))
		case int(b)-int(a) >= maxOpaqueRange:
			errs = append(errs, fmt.Sprintf("%q spans more than %d ports", part, maxOpaqueRange))
		default:
			ranges = append(ranges, [2]uint16{a, b})
		}
	}
	return singles, ranges, errs
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("not a port: %q", s)
	}
	return uint16(n), nil
}

func inRanges(p uint16, singles []uint16, ranges [][2]uint16) bool {
	if slices.Contains(singles, p) {
		return true
	}
	for _, r := range ranges {
		if p >= r[0] && p <= r[1] {
			return true
		}
	}
	return false
}

// identityOf returns the SPIFFE ID of a meshed pod's proxy, "" for a pod
// that is not meshed (called in plaintext).
func identityOf(pod *corev1.Pod, ns *corev1.Namespace, td spiffeid.TrustDomain) string {
	if !meshed(pod, ns) {
		return ""
	}
	id, err := spiffeid.FromSegments(td, "ns", pod.Namespace, "sa", cmp.Or(pod.Spec.ServiceAccountName, "default"))
	if err != nil {
		return ""
	}
	return id.String()
}

// sliceEndpoints merges the EndpointSlices of a Service into its endpoints:
// one per address and port, ready while serving (also when terminating),
// with the zone, and the identity and name of the pod behind it (an
// endpoint whose pod is not known is left out). svc is
// the caller's copy: the TargetPort of an unnamed port whose target port
// has a name (targetNames) is set to the number the slices give it.
// podOf finds a pod and its namespace by name (nil when unknown).
func sliceEndpoints(svc *model.Service, targetNames []string, slices_ []*discoveryv1.EndpointSlice,
	podOf func(ns, name string) (*corev1.Pod, *corev1.Namespace), td spiffeid.TrustDomain) ([]model.Endpoint, []convert.Problem) {
	var problems []convert.Problem
	type key struct {
		addr netip.AddrPort
		port string
	}
	found := map[key]model.Endpoint{}
	slices.SortFunc(slices_, func(a, b *discoveryv1.EndpointSlice) int { return cmp.Compare(a.Name, b.Name) })
	for _, s := range slices_ {
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		for _, sp := range s.Ports {
			if sp.Port == nil || *sp.Port < 1 || *sp.Port > 65535 || sp.Protocol != nil && *sp.Protocol != corev1.ProtocolTCP {
				continue
			}
			name := ""
			if sp.Name != nil {
				name = *sp.Name
			}
			i := slices.IndexFunc(svc.Ports, func(p model.ServicePort) bool { return p.Name == name })
			if i < 0 {
				continue // a port the Service no longer has
			}
			number := uint16(*sp.Port)
			if name == "" && i < len(targetNames) && targetNames[i] != "" {
				switch p := &svc.Ports[i]; {
				case p.TargetPort == 0:
					p.TargetPort = number
				case p.TargetPort != number:
					problems = append(problems, convert.Problem{Field: fmt.Sprintf("spec.ports[%d].targetPort", i),
						Message: fmt.Sprintf("%q is port %d on some endpoints and %d on others (EndpointSlice %s); name the service port so each pod may use its own number; those endpoints are left out", targetNames[i], p.TargetPort, number, s.Name)})
					continue
				}
			}
			for _, e := range s.Endpoints {
				ep := model.Endpoint{Service: svc.Ref(), PortName: name, Ready: true}
				c := e.Conditions
				switch {
				case c.Serving != nil:
					ep.Ready = *c.Serving
				case c.Ready != nil:
					ep.Ready = *c.Ready
				}
				ep.Terminating = c.Terminating != nil && *c.Terminating
				if e.Zone != nil {
					ep.Zone = *e.Zone
				}
				if r := e.TargetRef; r != nil && r.Kind == "Pod" && (r.Namespace == "" || r.Namespace == svc.Namespace) {
					pod, ns := podOf(svc.Namespace, r.Name)
					if pod == nil {
						// Gone, or not seen yet: without the pod its identity
						// is unknown, and the endpoint must not be called in
						// plaintext for want of it. Its event brings it back.
						continue
					}
					ep.Workload = r.Name
					ep.Identity = identityOf(pod, ns, td)
				}
				for _, a := range e.Addresses {
					addr, err := netip.ParseAddr(a)
					if err != nil {
						continue
					}
					ep.Address = netip.AddrPortFrom(addr.Unmap(), number)
					k := key{ep.Address, name}
					// An endpoint moving between slices may be in two for a
					// moment: the ready copy wins.
					if prev, dup := found[k]; !dup || !prev.Ready && ep.Ready {
						found[k] = ep
					}
				}
			}
		}
	}
	out := slices.Collect(maps.Values(found))
	slices.SortFunc(out, func(a, b model.Endpoint) int {
		return cmp.Or(a.Address.Compare(b.Address), cmp.Compare(a.PortName, b.PortName))
	})
	return out, problems
}
