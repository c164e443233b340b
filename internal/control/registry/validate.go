package registry

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"k8s.io/apimachinery/pkg/util/validation"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	"github.com/weft-mesh/weft/internal/control/model"
)

// FieldError is what is wrong with one field of a registration, its path
// in the Discovery API's spelling, e.g. "node.registration.ports[1].port".
type FieldError struct {
	Field, Message string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// FieldErrors are every problem of one registration.
type FieldErrors []FieldError

func (e FieldErrors) Error() string {
	s := make([]string, len(e))
	for i, fe := range e {
		s[i] = fe.Error()
	}
	return "invalid workload registration: " + strings.Join(s, "; ")
}

func (e *FieldErrors) add(field, format string, args ...any) {
	*e = append(*e, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// identityOf reads the namespace and service account of a SPIFFE ID of the
// form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
func identityOf(id string) (ns, sa string, err error) {
	sid, err := spiffeid.FromString(id)
	if err != nil {
		return "", "", fmt.Errorf("%q is not a SPIFFE ID: %w", id, err)
	}
	segs := strings.Split(strings.TrimPrefix(sid.Path(), "/"), "/")
	if len(segs) != 4 || segs[0] != "ns" || segs[2] != "sa" || segs[1] == "" || segs[3] == "" {
		return "", "", fmt.Errorf("%s is not of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>, which a registered workload's namespace and service account are read from", id)
	}
	return segs[1], segs[3], nil
}

// Workload checks the registration a node carries and returns the workload
// it describes: named node.id, in the namespace and with the service account
// of node.identity (which the caller has verified). The error is a
// FieldErrors naming every invalid field.
func Workload(node *discoveryv1.Node) (*model.Workload, error) {
	var errs FieldErrors
	reg := node.GetRegistration()
	if reg == nil {
		errs.add("node.registration", "is not set")
		return nil, errs
	}
	ns, sa, err := identityOf(node.GetIdentity())
	if err != nil {
		errs.add("node.identity", "%v", err)
	} else if msgs := validation.IsDNS1123Subdomain(sa); len(msgs) > 0 {
		errs.add("node.identity", "service account %q is not a valid name: %s", sa, strings.Join(msgs, "; "))
	} else if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		errs.add("node.identity", "namespace %q is not a valid name: %s", ns, strings.Join(msgs, "; "))
	}
	name := node.GetId()
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		errs.add("node.id", "%q is not a valid workload name (the registered workload is named after the node id; weft-proxy --node-id): %s", name, strings.Join(msgs, "; "))
	}
	w := &model.Workload{Namespace: ns, Name: name, ServiceAccount: sa, Meshed: true}

	a, err := netip.ParseAddr(reg.GetAddress())
	switch {
	case reg.GetAddress() == "":
		errs.add("node.registration.address", "the workload's IP address is required")
	case err != nil || a.Zone() != "":
		errs.add("node.registration.address", "%q is not an IP address (e.g. 10.1.0.7)", reg.GetAddress())
	case a.IsUnspecified() || a.IsMulticast():
		errs.add("node.registration.address", "%s is not the address of one host", a)
	default:
		w.Address = a.Unmap()
	}

	inbound := reg.GetProxyInboundPort()
	if inbound > 65535 {
		errs.add("node.registration.proxy_inbound_port", "%d is not a TCP port (1-65535, or 0 for transparent mode)", inbound)
	} else {
		w.ProxyInbound = uint16(inbound)
	}

	// WorkloadPort.protocol, spelt as a file Workload's ports; "" detects.
	protocols := []string{"http1", "http2", "grpc", "opaque"}
	names := map[string]int{}
	numbers := map[uint32]int{}
	for i, p := range reg.GetPorts() {
		f := fmt.Sprintf("node.registration.ports[%d]", i)
		switch n := p.GetPort(); {
		case n == 0 || n > 65535:
			errs.add(f+".port", "%d is not a TCP port (1-65535)", n)
		case n == inbound:
			errs.add(f+".port", "%d is the proxy's inbound port (node.registration.proxy_inbound_port); the application needs a port of its own", n)
		default:
			if j, dup := numbers[n]; dup {
				errs.add(f+".port", "port %d is also node.registration.ports[%d]", n, j)
			}
			numbers[n] = i
		}
		if p.GetName() != "" {
			if msgs := validation.IsValidPortName(p.GetName()); len(msgs) > 0 {
				errs.add(f+".name", "%q is not a port name: %s", p.GetName(), strings.Join(msgs, "; "))
			} else if j, dup := names[p.GetName()]; dup {
				errs.add(f+".name", "port name %q is also the name of node.registration.ports[%d]", p.GetName(), j)
			}
			names[p.GetName()] = i
		}
		if pr := p.GetProtocol(); pr != "" && !slices.Contains(protocols, pr) {
			errs.add(f+".protocol", "unknown protocol %q; use %s, or leave it empty to detect", pr, strings.Join(protocols, ", "))
		}
		w.Ports = append(w.Ports, model.WorkloadPort{Name: p.GetName(), Port: uint16(p.GetPort()), Protocol: p.GetProtocol(), Opaque: p.GetProtocol() == "opaque"})
	}

	keys := make([]string, 0, len(reg.GetLabels()))
	for k := range reg.GetLabels() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := reg.GetLabels()[k]
		f := fmt.Sprintf("node.registration.labels[%q]", k)
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			errs.add(f, "%q is not a label key: %s", k, strings.Join(msgs, "; "))
		}
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
			errs.add(f, "%q is not a label value: %s", v, strings.Join(msgs, "; "))
		}
	}
	if len(keys) > 0 {
		w.Labels = make(map[string]string, len(keys))
		for _, k := range keys {
			w.Labels[k] = reg.GetLabels()[k]
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return w, nil
}
