package inject

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weft-mesh/weft/internal/proxy/capture"
)

// probePorts are the ports of the HTTP and gRPC probes of the pod's
// containers and sidecars (init containers with restartPolicy Always).
// kubelet probes from the node in plaintext; under strict mTLS the proxy
// would refuse them, so these ports are skipped from inbound capture.
// TCP probes are left alone: the proxy's inbound listener accepts the
// connection, which is all a TCP probe checks. Named ports are resolved
// against the container's ports; a name that resolves to nothing is left
// to the API server's validation.
func probePorts(spec corev1.PodSpec) []capture.PortRange {
	var ports []uint16
	visit := func(c corev1.Container) {
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if p == nil {
				continue
			}
			switch {
			case p.HTTPGet != nil:
				if n, ok := resolvePort(c, p.HTTPGet.Port); ok {
					ports = append(ports, n)
				}
			case p.GRPC != nil:
				if p.GRPC.Port > 0 && p.GRPC.Port < 65536 {
					ports = append(ports, uint16(p.GRPC.Port))
				}
			}
		}
	}
	for _, c := range spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			visit(c)
		}
	}
	for _, c := range spec.Containers {
		visit(c)
	}
	slices.Sort(ports)
	ports = slices.Compact(ports)
	out := make([]capture.PortRange, 0, len(ports))
	for _, p := range ports {
		out = append(out, capture.PortRange{First: p, Last: p})
	}
	return mergePorts(nil, out)
}

func resolvePort(c corev1.Container, p intstr.IntOrString) (uint16, bool) {
	if p.Type == intstr.Int {
		if p.IntVal > 0 && p.IntVal < 65536 {
			return uint16(p.IntVal), true
		}
		return 0, false
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal && cp.ContainerPort > 0 && cp.ContainerPort < 65536 {
			return uint16(cp.ContainerPort), true
		}
	}
	return 0, false
}
