package kube

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/source/convert"
	"github.com/weft-mesh/weft/internal/control/translate"
	policyapi "github.com/weft-mesh/weft/pkg/apis/policy/v1alpha1"
)

// Reasons of the policies' conditions: Gateway API's policy attachment
// reasons (GEP-713).
const (
	ReasonAccepted       = string(gwv1.PolicyReasonAccepted)
	ReasonInvalid        = string(gwv1.PolicyReasonInvalid)
	ReasonConflicted     = string(gwv1.PolicyReasonConflicted)
	ReasonTargetNotFound = string(gwv1.PolicyReasonTargetNotFound)
	ReasonResolvedRefs   = "ResolvedRefs"
)

// maxMessage bounds a condition's message (the API allows 32768 bytes;
// people read the first lines).
const maxMessage = 2048

// condition is the outcome of one condition type.
type condition struct {
	ok              bool
	reason, message string
}

func (c condition) metav1(typ string, generation int64) metav1.Condition {
	st := metav1.ConditionTrue
	if !c.ok {
		st = metav1.ConditionFalse
	}
	msg := c.message
	if len(msg) > maxMessage {
		msg = msg[:maxMessage-3] + "..."
	}
	return metav1.Condition{Type: typ, Status: st, Reason: c.reason, Message: msg, ObservedGeneration: generation}
}

// checker computes conditions against one snapshot of the model and the
// translation's problems with it.
type checker struct {
	snap *model.Snapshot
	// problems are translate.CheckMesh's, by object ("HTTPRoute ns/name").
	problems map[string][]translate.Problem
	// permitted says whether a route may send to a Service of another
	// namespace (ReferenceGrants).
	permitted func(from, fromNS string, to model.ServiceRef) bool
}

func newChecker(snap *model.Snapshot, problems []translate.Problem, permitted func(string, string, model.ServiceRef) bool) *checker {
	c := &checker{snap: snap, problems: map[string][]translate.Problem{}, permitted: permitted}
	for _, p := range problems {
		c.problems[p.Object] = append(c.problems[p.Object], p)
	}
	return c
}

func (c *checker) workloadExists(r model.ObjectRef) bool { return c.snap.Workloads[r] != nil }

// isServiceParent reports whether a parentRef names a Service (GAMMA):
// the parents weft is the controller of.
func isServiceParent(p gwv1.ParentReference) bool {
	return p.Group != nil && *p.Group == "" && p.Kind != nil && *p.Kind == "Service"
}

// routeConditions returns the Accepted condition of each of a route's
// parentRefs (nil for the parents that are not Services: not weft's), and
// its ResolvedRefs condition. from is HTTPRoute or GRPCRoute.
func (c *checker) routeConditions(from string, key model.Key, r convert.Result, parents []gwv1.ParentReference) ([]*condition, condition) {
	// What keeps the whole route from being served.
	var refused []string
	for _, p := range r.Problems {
		if p.Invalid {
			refused = append(refused, fieldMessage(p.Field, p.Message))
		}
	}
	for _, p := range c.problems[key.String()] {
		if !strings.HasPrefix(p.Field, "parentRefs") && !isRefField(p.Field) {
			refused = append(refused, fieldMessage("spec."+p.Field, p.Message))
		}
	}
	accepted := make([]*condition, len(parents))
	for i, p := range parents {
		if !isServiceParent(p) {
			continue
		}
		field := fmt.Sprintf("spec.parentRefs[%d]", i)
		var warned []string
		for _, pr := range r.Problems {
			if !pr.Invalid && (pr.Field == field || strings.HasPrefix(pr.Field, field+".")) {
				warned = append(warned, fieldMessage(pr.Field, pr.Message))
			}
		}
		ref := model.ServicePortRef{ServiceRef: model.ServiceRef{Namespace: key.Namespace, Name: string(p.Name)}}
		if p.Namespace != nil && *p.Namespace != "" {
			ref.Namespace = string(*p.Namespace)
		}
		if p.Port != nil {
			ref.Port = uint16(*p.Port)
		}
		var cond condition
		switch {
		case len(refused) > 0:
			cond = condition{false, string(gwv1.RouteReasonUnsupportedValue), "the route is not served: " + strings.Join(refused, "; ")}
		case len(warned) > 0:
			cond = condition{false, string(gwv1.RouteReasonUnsupportedValue), strings.Join(warned, "; ")}
		default:
			if msg := convert.CheckRef(c.snap.Services, c.workloadExists, convert.Reference{Field: field, Role: convert.RoleParent, To: ref}); msg != "" {
				cond = condition{false, string(gwv1.RouteReasonNoMatchingParent), msg}
			} else {
				what := "service " + ref.ServiceRef.String()
				if ref.Port != 0 {
					what += fmt.Sprintf(" port %d", ref.Port)
				}
				cond = condition{true, string(gwv1.RouteReasonAccepted), "attached to " + what}
			}
		}
		accepted[i] = &cond
	}
	return accepted, c.resolvedRefs(from, key.Namespace, r)
}

// isRefField reports whether a translation problem's field is a backendRef
// or a mirror, which ResolvedRefs reports.
func isRefField(f string) bool {
	return strings.HasPrefix(f, "rules[") && (strings.Contains(f, "].backendRefs[") || strings.Contains(f, "].mirrors["))
}

// resolvedRefs checks a route's backends and mirrors: of a kind weft
// supports, permitted across namespaces, and existing.
func (c *checker) resolvedRefs(from, ns string, r convert.Result) condition {
	var invalidKind, notPermitted, notFound []string
	for _, p := range r.Problems {
		if p.Reason == convert.ReasonInvalidKind {
			invalidKind = append(invalidKind, fieldMessage(p.Field, p.Message))
		}
	}
	for _, ref := range r.Refs {
		if ref.Role != convert.RoleBackend && ref.Role != convert.RoleMirror {
			continue
		}
		if !c.permitted(from, ns, ref.To.ServiceRef) {
			notPermitted = append(notPermitted, fieldMessage(ref.Field, fmt.Sprintf(
				"no ReferenceGrant in namespace %s permits %ss of namespace %s to refer to service %s; %s",
				ref.To.Namespace, from, ns, ref.To.ServiceRef, map[convert.Role]string{convert.RoleBackend: "the backend gets weight 0", convert.RoleMirror: "nothing is mirrored there"}[ref.Role])))
			continue
		}
		if msg := convert.CheckRef(c.snap.Services, c.workloadExists, ref); msg != "" {
			notFound = append(notFound, fieldMessage(ref.Field, msg))
		}
	}
	all := strings.Join(slices.Concat(invalidKind, notPermitted, notFound), "; ")
	switch {
	case len(invalidKind) > 0:
		return condition{false, string(gwv1.RouteReasonInvalidKind), all}
	case len(notPermitted) > 0:
		return condition{false, string(gwv1.RouteReasonRefNotPermitted), all}
	case len(notFound) > 0:
		return condition{false, string(gwv1.RouteReasonBackendNotFound), all}
	}
	return condition{true, string(gwv1.RouteReasonResolvedRefs), "every backendRef resolves"}
}

// policyConditions returns a policy's Accepted and ResolvedRefs
// conditions.
func (c *checker) policyConditions(key model.Key, r convert.Result) (accepted, resolved condition) {
	var invalid, conflicts, unresolved []string
	targets := 0
	for _, p := range r.Problems {
		if p.Invalid {
			invalid = append(invalid, fieldMessage(p.Field, p.Message))
		}
	}
	for _, ref := range r.Refs {
		if ref.Role != convert.RolePolicy && ref.Role != convert.RoleSecurity {
			continue
		}
		targets++
		if msg := convert.CheckRef(c.snap.Services, c.workloadExists, ref); msg != "" {
			unresolved = append(unresolved, fieldMessage(ref.Field, msg))
		}
	}
	for _, p := range c.problems[key.String()] {
		switch {
		case strings.Contains(p.Message, "conflicts with the older"):
			conflicts = append(conflicts, fieldMessage("spec."+p.Field, p.Message))
		case strings.HasPrefix(p.Field, "targetRef"):
			// A target that resolves to nothing: the References say so.
		default:
			invalid = append(invalid, fieldMessage("spec."+p.Field, p.Message))
		}
	}
	resolved = condition{true, ReasonResolvedRefs, "every targetRef resolves"}
	if len(unresolved) > 0 {
		resolved = condition{false, ReasonTargetNotFound, strings.Join(unresolved, "; ")}
	}
	switch {
	case len(invalid) > 0:
		accepted = condition{false, ReasonInvalid, strings.Join(invalid, "; ")}
	case targets > 0 && len(unresolved) == targets:
		accepted = condition{false, ReasonTargetNotFound, "no targetRef resolves: " + strings.Join(unresolved, "; ")}
	case len(conflicts) > 0:
		accepted = condition{false, ReasonConflicted, strings.Join(conflicts, "; ")}
	default:
		accepted = condition{true, ReasonAccepted, "the policy is in use"}
	}
	return accepted, resolved
}

func fieldMessage(field, msg string) string {
	if field == "" {
		return msg
	}
	return field + ": " + msg
}

// setCondition returns c with the LastTransitionTime of the condition of
// its type in existing when the status is the same, else now.
func setCondition(existing []metav1.Condition, c metav1.Condition, now metav1.Time) metav1.Condition {
	c.LastTransitionTime = now
	for _, e := range existing {
		if e.Type == c.Type && e.Status == c.Status {
			c.LastTransitionTime = e.LastTransitionTime
		}
	}
	return c
}

// policyConditionTypes are the condition types weft owns on its policies.
func policyConditionTypes() []string {
	return []string{policyapi.ConditionAccepted, policyapi.ConditionResolvedRefs}
}
