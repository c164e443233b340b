package convert

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/weft-mesh/weft/internal/control/model"
	weftapi "github.com/weft-mesh/weft/pkg/apis/weft/v1alpha1"
)

func (c *conv) service(s *corev1.Service) (*model.Service, []string, []string) {
	ns, name := c.meta(&s.ObjectMeta, validation.IsDNS1035Label)
	out := &model.Service{Namespace: ns, Name: name, Labels: s.Labels}
	if len(s.Spec.Selector) > 0 {
		out.Selector = s.Spec.Selector
		c.labels("spec.selector", s.Spec.Selector)
	}
	if s.Spec.Type == corev1.ServiceTypeExternalName {
		c.fail("spec.type", "ExternalName services are not supported; describe the external host as a Workload and select it")
	}
	var targetNames []string
	var targetFields []string
	names := map[string]bool{}
	numbers := map[uint16]bool{}
	for i, p := range s.Spec.Ports {
		f := fmt.Sprintf("spec.ports[%d]", i)
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			c.warn(f+".protocol", "protocol %s is not supported (weft carries TCP); the port is ignored", p.Protocol)
			continue
		}
		sp := model.ServicePort{Name: p.Name, Port: c.port(f+".port", p.Port)}
		switch {
		case p.Name == "" && len(s.Spec.Ports) > 1:
			c.fail(f+".name", "a service with several ports must name each one")
		case p.Name != "" && names[p.Name]:
			c.fail(f+".name", "port name %q is used twice", p.Name)
		case p.Name != "":
			if errs := validation.IsDNS1123Label(p.Name); len(errs) > 0 {
				c.fail(f+".name", "%q is not a valid port name: %s", p.Name, strings.Join(errs, "; "))
			}
		}
		names[p.Name] = true
		if numbers[sp.Port] {
			c.fail(f+".port", "port %d is listed twice", sp.Port)
		}
		numbers[sp.Port] = true
		targetName := ""
		switch p.TargetPort.Type {
		case intstr.Int:
			if p.TargetPort.IntVal != 0 {
				sp.TargetPort = c.port(f+".targetPort", p.TargetPort.IntVal)
			}
		case intstr.String:
			targetName = p.TargetPort.StrVal
			if errs := validation.IsValidPortName(targetName); len(errs) > 0 {
				c.fail(f+".targetPort", "%q is neither a port number nor a valid port name: %s", targetName, strings.Join(errs, "; "))
			}
		}
		if p.AppProtocol != nil {
			sp.AppProtocol = *p.AppProtocol
		}
		out.Ports = append(out.Ports, sp)
		targetNames = append(targetNames, targetName)
		targetFields = append(targetFields, f+".targetPort")
	}
	ips := s.Spec.ClusterIPs
	if len(ips) == 0 && s.Spec.ClusterIP != "" {
		ips = []string{s.Spec.ClusterIP}
	} else if s.Spec.ClusterIP != "" && s.Spec.ClusterIP != ips[0] {
		c.fail("spec.clusterIP", "%s differs from clusterIPs[0] %s; they must agree", s.Spec.ClusterIP, ips[0])
	}
	for i, ip := range ips {
		f := "spec.clusterIP"
		if len(s.Spec.ClusterIPs) > 0 {
			f = fmt.Sprintf("spec.clusterIPs[%d]", i)
		}
		if ip == corev1.ClusterIPNone {
			if len(ips) > 1 {
				c.fail(f, "None (headless) cannot be listed with addresses")
			}
			continue
		}
		a, err := netip.ParseAddr(ip)
		if err != nil || a.Zone() != "" {
			c.fail(f, "%q is not an IP address", ip)
			continue
		}
		out.VIPs = append(out.VIPs, a.Unmap())
	}
	return out, targetNames, targetFields
}

func (c *conv) workload(w *weftapi.Workload) *model.Workload {
	ns, name := c.meta(&w.ObjectMeta, validation.IsDNS1123Subdomain)
	out := &model.Workload{Namespace: ns, Name: name, Labels: w.Labels, Meshed: true,
		ServiceAccount:       cmp.Or(w.Spec.ServiceAccount, "default"),
		DefaultInboundPolicy: c.defaultInbound(&w.ObjectMeta, "the namespace's default applies")}
	if errs := validation.IsDNS1123Subdomain(out.ServiceAccount); len(errs) > 0 {
		c.fail("spec.serviceAccount", "%q is not a valid service account name: %s", out.ServiceAccount, strings.Join(errs, "; "))
	}
	a, err := netip.ParseAddr(w.Spec.Address)
	switch {
	case w.Spec.Address == "":
		c.fail("spec.address", "the workload's IP address is required")
	case err != nil || a.Zone() != "" || a.IsUnspecified():
		c.fail("spec.address", "%q is not an IP address of a host", w.Spec.Address)
	default:
		out.Address = a.Unmap()
	}
	if w.Spec.Meshed != nil {
		out.Meshed = *w.Spec.Meshed
	}
	if w.Spec.Proxy != nil && w.Spec.Proxy.InboundPort != 0 {
		out.ProxyInbound = c.port("spec.proxy.inboundPort", w.Spec.Proxy.InboundPort)
	}
	names := map[string]bool{}
	numbers := map[uint16]bool{}
	for i, p := range w.Spec.Ports {
		f := fmt.Sprintf("spec.ports[%d]", i)
		wp := model.WorkloadPort{Name: p.Name, Port: c.port(f+".port", p.Port), Protocol: string(p.Protocol), Opaque: p.Protocol == weftapi.ProtocolOpaque}
		if p.Name != "" {
			if errs := validation.IsValidPortName(p.Name); len(errs) > 0 {
				c.fail(f+".name", "%q is not a valid port name: %s", p.Name, strings.Join(errs, "; "))
			}
			if names[p.Name] {
				c.fail(f+".name", "port name %q is used twice", p.Name)
			}
			names[p.Name] = true
		}
		if numbers[wp.Port] {
			c.fail(f+".port", "port %d is listed twice", wp.Port)
		}
		numbers[wp.Port] = true
		if protocols := []string{"opaque", "http1", "http2", "grpc"}; p.Protocol != "" && !slices.Contains(protocols, string(p.Protocol)) {
			c.fail(f+".protocol", "unknown protocol %q; use %s, or leave it out to detect", p.Protocol, strings.Join(protocols, ", "))
		}
		out.Ports = append(out.Ports, wp)
	}
	return out
}
