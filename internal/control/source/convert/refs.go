package convert

import (
	"fmt"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weft-mesh/weft/internal/control/model"
)

// CheckRef returns what is wrong with a reference, "" if it resolves:
// services are the Services that exist, workloads the Workloads (for a
// security policy's Workload target).
func CheckRef(services map[model.ServiceRef]*model.Service, workloads func(model.ObjectRef) bool, ref Reference) string {
	consequence := map[Role]string{
		RoleParent:   "the route does not attach there",
		RoleBackend:  "the backend gets weight 0",
		RoleMirror:   "nothing is mirrored there",
		RolePolicy:   "the policy applies to nothing",
		RoleSecurity: "this targetRef selects nothing until it exists",
	}[ref.Role]
	if ref.Role == RoleSecurity && ref.Target.Kind == model.TargetWorkload {
		if w := (model.ObjectRef{Namespace: ref.To.Namespace, Name: ref.To.Name}); !workloads(w) {
			return fmt.Sprintf("workload %s does not exist; %s", w, consequence)
		}
		return ""
	}
	svc := services[ref.To.ServiceRef]
	if section := ref.Target.SectionName; svc != nil && section != "" {
		for _, p := range svc.Ports {
			if p.Name == section || strconv.Itoa(int(p.Port)) == section {
				return ""
			}
		}
		return fmt.Sprintf("service %s has no port named or numbered %q (it has %s); %s", ref.To.ServiceRef, section, portNames(svc), consequence)
	}
	switch {
	case svc == nil:
		return fmt.Sprintf("service %s does not exist; %s", ref.To.ServiceRef, consequence)
	case ref.To.Port != 0:
		if _, ok := svc.PortByNumber(ref.To.Port); !ok {
			return fmt.Sprintf("service %s has no port %d (it has %s); %s", ref.To.ServiceRef, ref.To.Port, portList(svc), consequence)
		}
	case (ref.Role == RoleBackend || ref.Role == RoleMirror) && len(svc.Ports) != 1:
		return fmt.Sprintf("service %s has %d ports; set port to one of %s; %s", ref.To.ServiceRef, len(svc.Ports), portList(svc), consequence)
	}
	return ""
}

// portNames lists a service's ports as "http 80, admin 9000".
func portNames(svc *model.Service) string {
	if len(svc.Ports) == 0 {
		return "no port"
	}
	var s []string
	for _, p := range svc.Ports {
		s = append(s, strings.TrimSpace(p.Name+" "+strconv.Itoa(int(p.Port))))
	}
	return strings.Join(s, ", ")
}

func portList(svc *model.Service) string {
	if len(svc.Ports) == 0 {
		return "none"
	}
	var s []string
	for _, p := range svc.Ports {
		s = append(s, strconv.Itoa(int(p.Port)))
	}
	return strings.Join(s, ", ")
}

// DefaultInboundPolicy returns the default inbound authorization policy
// the model.AnnotationDefaultInboundPolicy annotation of m sets ("" when
// unset), and a problem when the value is not one: then "" is returned,
// and above (e.g. "the namespace's default applies") says what decides
// instead.
func DefaultInboundPolicy(m *metav1.ObjectMeta, above string) (string, *Problem) {
	c := &conv{}
	v := c.defaultInbound(m, above)
	if len(c.problems) > 0 {
		return v, &c.problems[0]
	}
	return v, nil
}
