package convert_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/source/convert"
	policyapi "github.com/weft-mesh/weft/pkg/apis/policy/v1alpha1"
)

// render shows a Result: its object's key (or "invalid"), problems and
// references, one per line.
func render(r convert.Result) string {
	var lines []string
	if r.Object != nil {
		lines = append(lines, "object "+r.Object.Key().String())
	} else {
		lines = append(lines, "invalid")
	}
	for _, p := range r.Problems {
		l := fmt.Sprintf("problem %s: %s", p.Field, p.Message)
		if p.Invalid {
			l += " [invalid]"
		}
		if p.Reason != "" {
			l += " [" + p.Reason + "]"
		}
		lines = append(lines, l)
	}
	for _, ref := range r.Refs {
		lines = append(lines, fmt.Sprintf("ref %d %s -> %s:%d %s", ref.Role, ref.Field, ref.To.ServiceRef, ref.To.Port, ref.Target.Kind))
	}
	for i, n := range r.TargetPortNames {
		lines = append(lines, fmt.Sprintf("target %q at %s", n, r.TargetPortFields[i]))
	}
	return strings.Join(lines, "\n")
}

func TestObject(t *testing.T) {
	route := func(backends ...gwv1.HTTPBackendRef) *gwv1.HTTPRoute {
		return &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "shop"},
			Spec: gwv1.HTTPRouteSpec{
				CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{
					{Group: ptr.To(gwv1.Group("")), Kind: ptr.To(gwv1.Kind("Service")), Name: "web", Port: ptr.To(gwv1.PortNumber(80))},
					{Name: "gateway"}}},
				Rules: []gwv1.HTTPRouteRule{{BackendRefs: backends}}}}
	}
	be := func(group, kind, ns, name string) gwv1.HTTPBackendRef {
		b := gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(name), Port: ptr.To(gwv1.PortNumber(80))}}}
		if group != "" {
			b.Group = ptr.To(gwv1.Group(group))
		}
		if kind != "" {
			b.Kind = ptr.To(gwv1.Kind(kind))
		}
		if ns != "" {
			b.Namespace = ptr.To(gwv1.Namespace(ns))
		}
		return b
	}
	for _, tc := range []struct {
		name string
		obj  any
		want string
	}{
		{"a route: parents and backends", route(be("", "", "", "web"), be("", "Service", "other", "db")), `object HTTPRoute shop/r
problem spec.parentRefs[1]: weft attaches routes to Services only (group: "", kind: Service), not to Gateway of group gateway.networking.k8s.io; this parent is ignored
ref 0 spec.parentRefs[0] -> shop/web:80 
ref 1 spec.rules[0].backendRefs[0] -> shop/web:80 
ref 1 spec.rules[0].backendRefs[1] -> other/db:80 `},
		{"a backend of another kind", route(be("storage.example.com", "Bucket", "", "b")), `invalid
problem spec.parentRefs[1]: weft attaches routes to Services only (group: "", kind: Service), not to Gateway of group gateway.networking.k8s.io; this parent is ignored
problem spec.rules[0].backendRefs[0]: weft sends to Services only (group: "", kind: Service), not to Bucket of group storage.example.com [invalid] [InvalidKind]
ref 0 spec.parentRefs[0] -> shop/web:80 `},
		{"a service: named target ports, a UDP port skipped", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
				{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
				{Name: "admin", Port: 9000, TargetPort: intstr.FromInt32(9001)}}}}, `object Service shop/web
problem spec.ports[0].protocol: protocol UDP is not supported (weft carries TCP); the port is ignored
target "http" at spec.ports[1].targetPort
target "" at spec.ports[2].targetPort`},
		{"a namespace without one", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, "object Service default/web"},
		{"policy targets", &policyapi.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop"},
			Spec: policyapi.AuthorizationPolicySpec{Action: "Allow", TargetRefs: []policyapi.TargetReference{
				{Kind: "Service", Name: "web", SectionName: ptr.To(intstr.FromString("http"))},
				{Group: "weft.dev", Kind: "Workload", Name: "vm-1"}}}}, `object AuthorizationPolicy shop/p
ref 4 spec.targetRefs[0] -> shop/web:0 Service
ref 4 spec.targetRefs[1] -> shop/vm-1:0 Workload`},
		{"an invalid policy", &policyapi.MutualTLSPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop"},
			Spec: policyapi.MutualTLSPolicySpec{Mode: "Sometimes"}}, `invalid
problem spec.mode: unknown mode "Sometimes"; use Strict or Permissive [invalid]`},
		{"not a resource", &corev1.Pod{}, "invalid\nproblem : *v1.Pod is not a resource weft reads [invalid]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := render(convert.Object(tc.obj, convert.Options{})); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestCreated: the creation timestamp, else Options.Created.
func TestCreated(t *testing.T) {
	fallback := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	stamped := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		meta metav1.ObjectMeta
		want time.Time
	}{
		{"stamped", metav1.ObjectMeta{Name: "r", CreationTimestamp: metav1.NewTime(stamped)}, stamped},
		{"not stamped", metav1.ObjectMeta{Name: "r"}, fallback},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := convert.Object(&gwv1.GRPCRoute{ObjectMeta: tc.meta}, convert.Options{Created: fallback})
			if got := r.Object.(*model.Route).Created; !got.Equal(tc.want) {
				t.Errorf("created %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCheckRef(t *testing.T) {
	services := map[model.ServiceRef]*model.Service{
		{Namespace: "shop", Name: "web"}: {Namespace: "shop", Name: "web", Ports: []model.ServicePort{{Name: "http", Port: 80}, {Name: "admin", Port: 9000}}},
	}
	workloads := func(r model.ObjectRef) bool { return r == model.ObjectRef{Namespace: "shop", Name: "vm-1"} }
	ref := func(role convert.Role, name string, port uint16) convert.Reference {
		return convert.Reference{Role: role, To: model.ServicePortRef{ServiceRef: model.ServiceRef{Namespace: "shop", Name: name}, Port: port}}
	}
	section := ref(convert.RoleSecurity, "web", 0)
	section.Target = model.PolicyTargetRef{Kind: model.TargetService, Name: "web", SectionName: "grpc"}
	vm := ref(convert.RoleSecurity, "vm-2", 0)
	vm.Target = model.PolicyTargetRef{Kind: model.TargetWorkload, Name: "vm-2"}
	for _, tc := range []struct {
		name string
		ref  convert.Reference
		want string
	}{
		{"resolves", ref(convert.RoleBackend, "web", 80), ""},
		{"no service", ref(convert.RoleParent, "db", 0), "service shop/db does not exist; the route does not attach there"},
		{"no port", ref(convert.RoleBackend, "web", 81), "service shop/web has no port 81 (it has 80, 9000); the backend gets weight 0"},
		{"which port", ref(convert.RoleMirror, "web", 0), "service shop/web has 2 ports; set port to one of 80, 9000; nothing is mirrored there"},
		{"no section", section, `service shop/web has no port named or numbered "grpc" (it has http 80, admin 9000); this targetRef selects nothing until it exists`},
		{"no workload", vm, "workload shop/vm-2 does not exist; this targetRef selects nothing until it exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := convert.CheckRef(services, workloads, tc.ref); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDefaultInboundPolicy(t *testing.T) {
	for _, tc := range []struct {
		annotations map[string]string
		want        string
		problem     string
	}{
		{nil, "", ""},
		{map[string]string{model.AnnotationDefaultInboundPolicy: "deny-all"}, "deny-all", ""},
		{map[string]string{model.AnnotationDefaultInboundPolicy: "nobody"}, "",
			`metadata.annotations["weft.dev/default-inbound-policy"]: "nobody" is not a default inbound policy; use allow-all, deny-all, allow-same-namespace or allow-authenticated; above`},
	} {
		got, p := convert.DefaultInboundPolicy(&metav1.ObjectMeta{Annotations: tc.annotations}, "above")
		problem := ""
		if p != nil {
			problem = p.Field + ": " + p.Message
		}
		if got != tc.want || problem != tc.problem {
			t.Errorf("%v: got %q, %q; want %q, %q", tc.annotations, got, problem, tc.want, tc.problem)
		}
	}
}
