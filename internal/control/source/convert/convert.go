package convert

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weft-mesh/weft/internal/control/model"
	policyapi "github.com/weft-mesh/weft/pkg/apis/policy/v1alpha1"
	weftapi "github.com/weft-mesh/weft/pkg/apis/weft/v1alpha1"
)

// Problem is something wrong at a field of a resource.
type Problem struct {
	// Field is the path of the field within the resource, e.g.
	// "spec.ports[0].targetPort"; empty for the whole resource.
	Field string
	// Message says what is wrong and, for a problem that leaves the
	// resource valid, what was done about it.
	Message string
	// Invalid: the resource gives no object until it is fixed. The message
	// does not say so; the source does, in its own words.
	Invalid bool
	// Reason classifies the problem for status conditions when the
	// generic one does not fit: ReasonInvalidKind, or empty.
	Reason string
}

// ReasonInvalidKind is a Problem's Reason for a reference to an object of a
// kind weft does not support (a backendRef to something other than a
// Service), as Gateway API's ResolvedRefs condition names it.
const ReasonInvalidKind = "InvalidKind"

// Role says what a reference is for, which decides what happens while it
// resolves to nothing.
type Role int

// The roles of references.
const (
	// RoleParent is a route's parentRef to a Service.
	RoleParent Role = iota
	// RoleBackend is a route rule's backendRef.
	RoleBackend
	// RoleMirror is a RequestMirror filter's backendRef.
	RoleMirror
	// RolePolicy is a RetryBudget's, CircuitBreaker's or LoadBalancer's
	// targetRef.
	RolePolicy
	// RoleSecurity is a targetRef of an AuthorizationPolicy or
	// MutualTLSPolicy.
	RoleSecurity
)

// Reference is a reference from a resource to another object.
type Reference struct {
	// Field is the path of the reference within the resource.
	Field string
	Role  Role
	// To is the Service (and port) referred to; for RoleSecurity, its
	// namespace and name are the target's, whatever its kind.
	To model.ServicePortRef
	// Target is a RoleSecurity reference's targetRef.
	Target model.PolicyTargetRef
}

// Result is what converting one resource gives.
type Result struct {
	// Object is the model object; nil when a problem is Invalid.
	Object   model.Object
	Problems []Problem
	// Refs are the references the resource makes, in the order written
	// (also for an invalid resource, as far as they could be read).
	Refs []Reference
	// TargetPortNames holds, for a Service, per port of the model object,
	// its named target port ("" when the target port is a number), and
	// TargetPortFields the field of each.
	TargetPortNames  []string
	TargetPortFields []string
}

// Invalid reports whether a problem makes the resource invalid.
func (r Result) Invalid() bool {
	return slices.ContainsFunc(r.Problems, func(p Problem) bool { return p.Invalid })
}

// Options configure a conversion.
type Options struct {
	// Created is the creation time of an object whose
	// metadata.creationTimestamp is unset (in universal mode, its file's
	// modification time).
	Created time.Time
}

// Object converts one resource: a *corev1.Service, *corev1.Namespace,
// *gwv1.HTTPRoute, *gwv1.GRPCRoute, *weftapi.Workload,
// *policyapi.RetryBudget, *policyapi.CircuitBreaker, *policyapi.LoadBalancer,
// *policyapi.AuthorizationPolicy, *policyapi.MutualTLSPolicy,
// *policyapi.RateLimit or *policyapi.FaultInjection. The
// resource is not modified. A namespaced resource without a namespace is
// in "default". Any other type gives an Invalid problem.
func Object(obj any, o Options) Result {
	c := &conv{created: o.Created}
	var out model.Object
	switch v := obj.(type) {
	case *corev1.Service:
		var svc *model.Service
		svc, c.targetNames, c.targetFields = c.service(v)
		out = svc
	case *weftapi.Workload:
		out = c.workload(v)
	case *gwv1.HTTPRoute:
		out = c.httpRoute(v)
	case *gwv1.GRPCRoute:
		out = c.grpcRoute(v)
	case *policyapi.RetryBudget:
		out = c.retryBudget(v)
	case *policyapi.CircuitBreaker:
		out = c.circuitBreaker(v)
	case *policyapi.LoadBalancer:
		out = c.loadBalancer(v)
	case *corev1.Namespace:
		out = c.namespace(v)
	case *policyapi.AuthorizationPolicy:
		out = c.authorizationPolicy(v)
	case *policyapi.MutualTLSPolicy:
		out = c.mutualTLSPolicy(v)
	case *policyapi.RateLimit:
		out = c.rateLimit(v)
	case *policyapi.FaultInjection:
		out = c.faultInjection(v)
	default:
		c.fail("", "%T is not a resource weft reads", obj)
	}
	r := Result{Problems: c.problems, Refs: c.refs, TargetPortNames: c.targetNames, TargetPortFields: c.targetFields}
	if !c.invalid {
		r.Object = out
	}
	return r
}

// conv converts one resource, collecting its problems.
type conv struct {
	created      time.Time
	problems     []Problem
	invalid      bool
	refs         []Reference
	targetNames  []string
	targetFields []string
}

// fail records a problem that makes the resource invalid.
func (c *conv) fail(field, format string, args ...any) {
	c.invalid = true
	c.problems = append(c.problems, Problem{Field: field, Message: fmt.Sprintf(format, args...), Invalid: true})
}

// failReason is fail with a Reason.
func (c *conv) failReason(reason, field, format string, args ...any) {
	c.fail(field, format, args...)
	c.problems[len(c.problems)-1].Reason = reason
}

// warn records a problem that leaves the resource valid.
func (c *conv) warn(field, format string, args ...any) {
	c.problems = append(c.problems, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (c *conv) ref(field string, role Role, to model.ServicePortRef) {
	c.refs = append(c.refs, Reference{Field: field, Role: role, To: to})
}

// meta checks the name and namespace and returns them, the namespace
// defaulted. isName validates the name (Kubernetes' rule for the kind).
func (c *conv) meta(m *metav1.ObjectMeta, isName func(string) []string) (ns, name string) {
	ns = cmp.Or(m.Namespace, "default")
	if m.Name == "" {
		c.fail("metadata.name", "a name is required")
	} else if errs := isName(m.Name); len(errs) > 0 {
		c.fail("metadata.name", "%q is not a valid name: %s", m.Name, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		c.fail("metadata.namespace", "%q is not a valid namespace: %s", ns, strings.Join(errs, "; "))
	}
	c.labels("metadata.labels", m.Labels)
	return ns, m.Name
}

func (c *conv) labels(field string, labels map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			c.fail(MapPath(field, k), "%q is not a valid label key: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(labels[k]); len(errs) > 0 {
			c.fail(MapPath(field, k), "%q is not a valid label value: %s", labels[k], strings.Join(errs, "; "))
		}
	}
}

// createdAt is the creation timestamp, else Options.Created.
func (c *conv) createdAt(m *metav1.ObjectMeta) time.Time {
	if !m.CreationTimestamp.IsZero() {
		return m.CreationTimestamp.UTC()
	}
	return c.created.UTC()
}

func (c *conv) port(field string, p int32) uint16 {
	if p < 1 || p > 65535 {
		c.fail(field, "%d is not a TCP port (1-65535)", p)
		return 0
	}
	return uint16(p)
}

func (c *conv) duration(field, s string) *durationpb.Duration {
	if s == "" {
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		c.fail(field, "%q is not a duration; write e.g. 500ms, 10s or 1m", s)
		return nil
	}
	return durationpb.New(d)
}

// MapPath is the path of a map's entry: path.key, or path["key"] when the
// key holds more than letters, digits, - and _ (label keys such as
// app.kubernetes.io/name).
func MapPath(path, key string) string {
	if key == "" || strings.ContainsFunc(key, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// groupKind names a kind of a group, e.g. "Gateway of group
// gateway.networking.k8s.io", or "Pod" for the core group.
func groupKind(group, kind string) string {
	if group == "" {
		return kind
	}
	return kind + " of group " + group
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func derefAs[T ~string](p *T) T { return deref(p) }

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	if strings.HasPrefix(s, "URL") {
		return "url" + s[3:]
	}
	if s == "CORS" {
		return "cors"
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func joinTypes(ts []gwv1.HTTPRouteFilterType) string {
	var s []string
	for _, t := range ts {
		s = append(s, string(t))
	}
	return strings.Join(s, ", ")
}
