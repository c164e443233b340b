package kube_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/source/kube"
	policyapi "github.com/weft-mesh/weft/pkg/apis/policy/v1alpha1"
)

// serviceParent is a parentRef to a Service (GAMMA).
func serviceParent(name string, port int32) gwv1.ParentReference {
	p := gwv1.ParentReference{Group: ptr.To(gwv1.Group("")), Kind: ptr.To(gwv1.Kind("Service")), Name: gwv1.ObjectName(name)}
	if port != 0 {
		p.Port = ptr.To(gwv1.PortNumber(port))
	}
	return p
}

// backend is a backendRef to a Service port.
func backend(ns, name string, port int32) gwv1.HTTPBackendRef {
	b := gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
		Name: gwv1.ObjectName(name), Port: ptr.To(gwv1.PortNumber(port))}}}
	if ns != "" {
		b.Namespace = ptr.To(gwv1.Namespace(ns))
	}
	return b
}

func httpRoute(name string, parents []gwv1.ParentReference, backends ...gwv1.HTTPBackendRef) *gwv1.HTTPRoute {
	return &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: parents},
			Rules:           []gwv1.HTTPRouteRule{{BackendRefs: backends}},
		},
	}
}

// conditions renders weft's conditions as a user reads them: "Type=Status
// Reason", with the message when withMessage.
func conditions(cs []metav1.Condition, generation int64, withMessage bool) string {
	var out []string
	for _, c := range cs {
		s := fmt.Sprintf("%s=%s %s", c.Type, c.Status, c.Reason)
		if withMessage {
			s += " (" + c.Message + ")"
		}
		if c.ObservedGeneration != generation {
			s += fmt.Sprintf(" [observedGeneration %d, want %d]", c.ObservedGeneration, generation)
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

// routeParents renders the status.parents of a route written by weft:
// "<parent name>: conditions" per line.
func routeParents(c *cluster, obj client.Object) string {
	if err := c.c.Get(c.t.Context(), client.ObjectKeyFromObject(obj), obj); err != nil {
		return err.Error()
	}
	var parents []gwv1.RouteParentStatus
	switch r := obj.(type) {
	case *gwv1.HTTPRoute:
		parents = r.Status.Parents
	case *gwv1.GRPCRoute:
		parents = r.Status.Parents
	}
	var lines []string
	for _, p := range parents {
		if p.ControllerName == kube.ControllerName {
			lines = append(lines, string(p.ParentRef.Name)+": "+conditions(p.Conditions, obj.GetGeneration(), false))
		}
	}
	return strings.Join(lines, "\n")
}

// TestRouteStatus: weft writes Accepted and ResolvedRefs on each Service
// parent of a route, with Gateway API's reasons.
func TestRouteStatus(t *testing.T) {
	startSource(t, kube.Options{})
	c := newCluster(t, nil, nil)
	other := newCluster(t, nil, nil)
	c.service("web", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)})
	c.service("canary", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)})
	other.service("remote", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)})
	invalidKind := backend("", "bucket", 80)
	invalidKind.Group = ptr.To(gwv1.Group("storage.example.com"))
	invalidKind.Kind = ptr.To(gwv1.Kind("Bucket"))
	grpc := &gwv1.GRPCRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "grpc-good"},
		Spec: gwv1.GRPCRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{serviceParent("web", 80)}},
			Rules:           []gwv1.GRPCRouteRule{{BackendRefs: []gwv1.GRPCBackendRef{{BackendRef: backend("", "canary", 80).BackendRef}}}},
		},
	}
	for _, tc := range []struct {
		name  string
		route client.Object
		want  string
	}{
		{"good", httpRoute("good", []gwv1.ParentReference{serviceParent("web", 0)}, backend("", "web", 80), backend("", "canary", 80)),
			"web: Accepted=True Accepted, ResolvedRefs=True ResolvedRefs"},
		{"bad backend", httpRoute("bad-backend", []gwv1.ParentReference{serviceParent("web", 80)}, backend("", "web", 80), backend("", "nope", 80)),
			"web: Accepted=True Accepted, ResolvedRefs=False BackendNotFound"},
		{"backend port missing", httpRoute("bad-port", []gwv1.ParentReference{serviceParent("web", 80)}, backend("", "canary", 81)),
			"web: Accepted=True Accepted, ResolvedRefs=False BackendNotFound"},
		{"parent missing", httpRoute("no-parent", []gwv1.ParentReference{serviceParent("ghost", 0), serviceParent("web", 0)}, backend("", "web", 80)),
			"ghost: Accepted=False NoMatchingParent, ResolvedRefs=True ResolvedRefs\nweb: Accepted=True Accepted, ResolvedRefs=True ResolvedRefs"},
		{"parent port missing", httpRoute("no-parent-port", []gwv1.ParentReference{serviceParent("web", 81)}, backend("", "web", 80)),
			"web: Accepted=False NoMatchingParent, ResolvedRefs=True ResolvedRefs"},
		{"backend of another kind", httpRoute("invalid-kind", []gwv1.ParentReference{serviceParent("web", 0)}, invalidKind),
			"web: Accepted=False UnsupportedValue, ResolvedRefs=False InvalidKind"},
		{"another namespace, no ReferenceGrant", httpRoute("cross-ns", []gwv1.ParentReference{serviceParent("web", 0)}, backend(other.ns, "remote", 80)),
			"web: Accepted=True Accepted, ResolvedRefs=False RefNotPermitted"},
		{"GRPCRoute", grpc, "web: Accepted=True Accepted, ResolvedRefs=True ResolvedRefs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.create(tc.route)
			waitFor(t, "the route's status", func() string {
				if got := routeParents(c, tc.route); got != tc.want {
					return fmt.Sprintf("status.parents:\n%s\nwant:\n%s", got, tc.want)
				}
				return ""
			})
		})
	}
}

// TestStatusMessages: the messages of the conditions say what is wrong,
// by field, as universal mode reports it.
func TestStatusMessages(t *testing.T) {
	startSource(t, kube.Options{})
	c := newCluster(t, nil, nil)
	c.service("web", corev1.ServicePort{Name: "http", Port: 80})
	allConditions := func(obj client.Object) string {
		if err := c.c.Get(t.Context(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err.Error()
		}
		switch o := obj.(type) {
		case *gwv1.HTTPRoute:
			var out []string
			for _, p := range o.Status.Parents {
				out = append(out, conditions(p.Conditions, o.Generation, true))
			}
			return strings.Join(out, "\n")
		case *policyapi.AuthorizationPolicy:
			return conditions(o.Status.Conditions, o.Generation, true)
		case *policyapi.CircuitBreaker:
			return conditions(o.Status.Conditions, o.Generation, true)
		}
		return ""
	}
	breaker := func(name string) *policyapi.CircuitBreaker {
		return &policyapi.CircuitBreaker{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: policyapi.CircuitBreakerSpec{TargetRef: policyapi.ServiceTargetReference{Kind: "Service", Name: "web"}, MaxRequests: 10}}
	}
	for _, tc := range []struct {
		name string
		objs []client.Object // the last one is checked
		want string
	}{
		{"backend not found", []client.Object{httpRoute("bad-backend", []gwv1.ParentReference{serviceParent("web", 0)}, backend("", "nope", 80))},
			"ResolvedRefs=False BackendNotFound (spec.rules[0].backendRefs[0]: service " + c.ns + "/nope does not exist; the backend gets weight 0)"},
		{"parent not found", []client.Object{httpRoute("bad-parent", []gwv1.ParentReference{serviceParent("ghost", 0)}, backend("", "web", 80))},
			"Accepted=False NoMatchingParent (service " + c.ns + "/ghost does not exist; the route does not attach there)"},
		{"target not found", []client.Object{&policyapi.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "authz"},
			Spec: policyapi.AuthorizationPolicySpec{TargetRefs: []policyapi.TargetReference{{Kind: "Service", Name: "ghost"}}, Action: "Deny"}}},
			"Accepted=False TargetNotFound (no targetRef resolves: spec.targetRefs[0]: service " + c.ns + "/ghost does not exist; this targetRef selects nothing until it exists)"},
		{"conflict", []client.Object{breaker("cb-a"), breaker("cb-b")},
			"Accepted=False Conflicted (spec.targetRef: conflicts with the older CircuitBreakerPolicy " + c.ns + "/cb-a, which applies to service " + c.ns + "/web)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, o := range tc.objs {
				c.create(o)
			}
			last := tc.objs[len(tc.objs)-1]
			waitFor(t, "the conditions", func() string {
				if got := allConditions(last); !strings.Contains(got, tc.want) {
					return fmt.Sprintf("conditions:\n%s\nwant one:\n%s", got, tc.want)
				}
				return ""
			})
		})
	}
}

// TestRouteStatusLeavesOtherControllers: weft touches only its own
// entries of status.parents; a spec change updates observedGeneration and
// the conditions; a ReferenceGrant makes a cross-namespace backend
// resolve.
func TestRouteStatusLeavesOtherControllers(t *testing.T) {
	src, st := startSource(t, kube.Options{})
	c := newCluster(t, nil, nil)
	other := newCluster(t, nil, nil)
	c.service("web", corev1.ServicePort{Name: "http", Port: 80})
	other.service("remote", corev1.ServicePort{Name: "http", Port: 80})
	gateway := gwv1.ParentReference{Name: "gw"}
	// Another implementation's route, attached to its Gateway only.
	ingress := httpRoute("ingress", []gwv1.ParentReference{gateway}, backend("", "web", 80))
	c.create(ingress)
	route := httpRoute("shared", []gwv1.ParentReference{gateway, serviceParent("web", 0)}, backend(other.ns, "remote", 80))
	c.create(route)
	waitFor(t, "weft's status", func() string {
		if got, want := routeParents(c, route), "web: Accepted=True Accepted, ResolvedRefs=False RefNotPermitted"; got != want {
			return fmt.Sprintf("got %q, want %q", got, want)
		}
		return ""
	})
	weight := func() string {
		r := st.Snapshot().Routes[model.RouteRef{Kind: model.RouteHTTP, Namespace: c.ns, Name: "shared"}]
		if r == nil || len(r.Rules) != 1 || len(r.Rules[0].Backends) != 1 {
			return fmt.Sprintf("route %+v", r)
		}
		return fmt.Sprint(r.Rules[0].Backends[0].Weight)
	}
	if w := weight(); w != "0" {
		t.Errorf("the backend in another namespace without a ReferenceGrant has weight %s in the model, want 0", w)
	}
	// Another controller, a Gateway's, writes its entry.
	foreign := gwv1.RouteParentStatus{ParentRef: route.Spec.ParentRefs[0], ControllerName: "example.com/gateway-controller",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: metav1.Now(), ObservedGeneration: route.Generation}}}
	for {
		route.Status.Parents = append(route.Status.Parents, foreign)
		err := c.c.Status().Update(t.Context(), route)
		if err == nil {
			break
		}
		if err := c.c.Get(t.Context(), client.ObjectKeyFromObject(route), route); err != nil {
			t.Fatal(err)
		}
	}
	writes := src.StatusWrites()

	// A grant from the other namespace, then a spec change.
	other.create(&gwv1beta1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Name: "allow-" + c.ns},
		Spec: gwv1beta1.ReferenceGrantSpec{
			From: []gwv1beta1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: gwv1.Namespace(c.ns)}},
			To:   []gwv1beta1.ReferenceGrantTo{{Group: "", Kind: "Service"}},
		}})
	waitFor(t, "the grant resolves the backend", func() string {
		if got, want := routeParents(c, route), "web: Accepted=True Accepted, ResolvedRefs=True ResolvedRefs"; got != want {
			return fmt.Sprintf("got %q, want %q", got, want)
		}
		return ""
	})
	waitFor(t, "the backend permitted by a ReferenceGrant gets its weight back in the model", func() string {
		if w := weight(); w != "1" {
			return "weight " + w
		}
		return ""
	})
	c.update(route, func() { route.Spec.Rules[0].BackendRefs = []gwv1.HTTPBackendRef{backend("", "missing", 80)} })
	waitFor(t, "the new generation's conditions", func() string {
		if got, want := routeParents(c, route), "web: Accepted=True Accepted, ResolvedRefs=False BackendNotFound"; got != want {
			return fmt.Sprintf("got %q, want %q", got, want)
		}
		return ""
	})
	if err := c.c.Get(t.Context(), client.ObjectKeyFromObject(route), route); err != nil {
		t.Fatal(err)
	}
	var kept bool
	for _, p := range route.Status.Parents {
		if p.ControllerName == foreign.ControllerName && p.ParentRef.Name == "gw" && len(p.Conditions) == 1 {
			kept = true
		}
	}
	if !kept {
		t.Errorf("the gateway controller's entry is gone or changed: %+v", route.Status.Parents)
	}
	if src.StatusWrites() <= writes {
		t.Errorf("status writes %d, then %d: weft wrote nothing after the changes", writes, src.StatusWrites())
	}
	if err := c.c.Get(t.Context(), client.ObjectKeyFromObject(ingress), ingress); err != nil {
		t.Fatal(err)
	}
	if len(ingress.Status.Parents) != 0 {
		t.Errorf("weft wrote the status of a route attached to a Gateway only: %+v", ingress.Status.Parents)
	}
	if r := st.Snapshot().Routes[model.RouteRef{Kind: model.RouteHTTP, Namespace: c.ns, Name: "ingress"}]; r != nil {
		t.Errorf("a route attached to a Gateway only is in the model: %+v", r)
	}
	// Nothing changes: nothing is written.
	settled := src.StatusWrites()
	time.Sleep(2 * time.Second)
	if n := src.StatusWrites(); n != settled {
		t.Errorf("%d status writes while nothing changed", n-settled)
	}
}

// policyStatus renders a policy's conditions.
func policyStatus(c *cluster, obj client.Object) string {
	if err := c.c.Get(c.t.Context(), client.ObjectKeyFromObject(obj), obj); err != nil {
		return err.Error()
	}
	var cs []metav1.Condition
	switch p := obj.(type) {
	case *policyapi.AuthorizationPolicy:
		cs = p.Status.Conditions
	case *policyapi.MutualTLSPolicy:
		cs = p.Status.Conditions
	case *policyapi.RetryBudget:
		cs = p.Status.Conditions
	case *policyapi.CircuitBreaker:
		cs = p.Status.Conditions
	}
	return conditions(cs, obj.GetGeneration(), false)
}

// TestPolicyStatus: weft's policies get Accepted and ResolvedRefs, with
// policy attachment's reasons.
func TestPolicyStatus(t *testing.T) {
	startSource(t, kube.Options{})
	c := newCluster(t, nil, nil)
	c.service("web", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")})
	c.pod(podSpec{name: "web-1", sa: "web", ip: "10.1.0.1", labels: map[string]string{"app": "web", kube.InjectKey: "enabled"}, ready: true})
	svc := func(name string) policyapi.TargetReference {
		return policyapi.TargetReference{Kind: "Service", Name: name}
	}
	authz := func(name string, targets ...policyapi.TargetReference) *policyapi.AuthorizationPolicy {
		return &policyapi.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: policyapi.AuthorizationPolicySpec{TargetRefs: targets, Action: policyapi.AuthorizationAction("Allow")}}
	}
	mtls := func(name string) *policyapi.MutualTLSPolicy {
		return &policyapi.MutualTLSPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: policyapi.MutualTLSPolicySpec{Mode: "Strict"}}
	}
	breaker := func(name, target string) *policyapi.CircuitBreaker {
		return &policyapi.CircuitBreaker{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: policyapi.CircuitBreakerSpec{TargetRef: policyapi.ServiceTargetReference{Kind: "Service", Name: target}, MaxRequests: 100}}
	}
	badBreaker := breaker("cb-limits", "web")
	badBreaker.Spec.MaxRequests = 0
	badBreaker.Spec.AdaptiveConcurrency = &policyapi.AdaptiveConcurrency{Enabled: true, MinLimit: 50, MaxLimit: 10}
	for _, tc := range []struct {
		name     string
		policies []client.Object // the last one is checked
		want     string
	}{
		{"authorization, target exists", []client.Object{authz("authz-good", svc("web"))},
			"Accepted=True Accepted, ResolvedRefs=True ResolvedRefs"},
		{"authorization, target missing", []client.Object{authz("authz-missing", svc("ghost"))},
			"Accepted=False TargetNotFound, ResolvedRefs=False TargetNotFound"},
		{"authorization, one target of two missing", []client.Object{authz("authz-half", svc("web"), svc("ghost"))},
			"Accepted=True Accepted, ResolvedRefs=False TargetNotFound"},
		{"authorization, workload target missing", []client.Object{authz("authz-workload", policyapi.TargetReference{Group: "weft.dev", Kind: "Workload", Name: "vm-9"})},
			"Accepted=False TargetNotFound, ResolvedRefs=False TargetNotFound"},
		{"retry budget, service missing", []client.Object{&policyapi.RetryBudget{ObjectMeta: metav1.ObjectMeta{Name: "rb-missing"},
			Spec: policyapi.RetryBudgetSpec{TargetRef: policyapi.ServiceTargetReference{Kind: "Service", Name: "ghost"}, RetryRatio: 0.2}}},
			"Accepted=False TargetNotFound, ResolvedRefs=False TargetNotFound"},
		{"circuit breakers in conflict: the younger one", []client.Object{breaker("cb-a", "web"), breaker("cb-b", "web")},
			"Accepted=False Conflicted, ResolvedRefs=True ResolvedRefs"},
		{"circuit breaker the proxy would refuse", []client.Object{badBreaker},
			"Accepted=False Invalid, ResolvedRefs=True ResolvedRefs"},
		{"namespace mTLS policies in conflict: the younger one", []client.Object{mtls("mtls-a"), mtls("mtls-b")},
			"Accepted=False Conflicted, ResolvedRefs=True ResolvedRefs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range tc.policies {
				c.create(p)
			}
			last := tc.policies[len(tc.policies)-1]
			waitFor(t, "the policy's status", func() string {
				if got := policyStatus(c, last); got != tc.want {
					return fmt.Sprintf("conditions %q, want %q", got, tc.want)
				}
				return ""
			})
		})
	}
}
