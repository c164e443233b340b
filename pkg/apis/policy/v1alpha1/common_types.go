package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// ServiceTargetReference names the Service of the policy's namespace that a
// RetryBudget or CircuitBreaker applies to (Gateway API's
// LocalPolicyTargetReference, limited to Services).
type ServiceTargetReference struct {
	// Group is the target's API group: "" (the core group), which is also
	// what an unset group means.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == \"\"",message="must be \"\": a policy targets a Service (group: \"\", kind: Service)"
	Group string `json:"group"`

	// Kind is the target's kind: Service.
	//
	// +required
	// +kubebuilder:validation:Enum=Service
	Kind string `json:"kind"`

	// Name is the Service's name.
	//
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// TargetReference names a Service or a Workload of the policy's namespace
// that an AuthorizationPolicy or MutualTLSPolicy attaches to (Gateway API's
// LocalPolicyTargetReferenceWithSectionName). A Service selects every
// workload that is one of its endpoints; sectionName narrows it to one of
// its ports.
//
// +kubebuilder:validation:XValidation:rule="!(self.kind in ['Service', 'Workload']) || (self.kind == 'Service' ? (!has(self.group) || self.group == \"\") : (has(self.group) && self.group == 'weft.dev'))",message="a policy targets a Service (group: \"\", kind: Service) or a Workload (group: weft.dev, kind: Workload)",fieldPath=".group"
// +kubebuilder:validation:XValidation:rule="!has(self.sectionName) || self.kind == 'Service'",message="sectionName applies to a Service target only; to limit a policy to some of a Workload's ports, use rules[].to.ports (AuthorizationPolicy) or spec.ports (MutualTLSPolicy)",fieldPath=".sectionName"
type TargetReference struct {
	// Group is the target's API group: "" (unset) for a Service, weft.dev
	// for a Workload.
	//
	// +optional
	// +kubebuilder:validation:Enum="";weft.dev
	Group string `json:"group"`

	// Kind is the target's kind.
	//
	// +required
	// +kubebuilder:validation:Enum=Service;Workload
	Kind string `json:"kind"`

	// Name is the target's name.
	//
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// SectionName narrows a Service target to one of its ports: the port's
	// name or number (a number may be written as a string). Only for a
	// Service.
	//
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? (self >= 1 && self <= 65535) : (self.matches('^[-+]?[0-9]+$') ? (int(self) >= 1 && int(self) <= 65535) : (size(self) <= 15 && self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && self.matches('[a-z]') && !self.contains('--')))",message="must be a Service port: a number from 1 to 65535, or a port name (at most 15 lowercase letters, digits and '-', with at least one letter, not starting or ending with '-' and without '--')"
	SectionName *intstr.IntOrString `json:"sectionName,omitempty"`
}

// Duration is a Go duration (time.ParseDuration): decimal numbers, each
// with an optional fraction and a unit (ns, us, µs, ms, s, m, h), such as
// 500ms, 10s or 1m30s; not negative. Empty means unset.
//
// +kubebuilder:validation:MaxLength=64
// +kubebuilder:validation:XValidation:rule="self == \"\" || (self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') && duration(self) >= duration('0s'))",message="must be a duration such as 500ms, 10s or 1m30s (decimal numbers with the units ns, us, ms, s, m, h), not negative"
type Duration string

// PolicyStatus is what the control plane reports about a policy.
type PolicyStatus struct {
	// Conditions are the policy's conditions: Accepted (valid, and in
	// use) and ResolvedRefs (every targetRef names an object that exists).
	//
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Condition types of a policy's status.
const (
	// ConditionAccepted is True when the policy is valid and in use; False
	// with the reason when it is not (invalid, or in conflict with an
	// older policy).
	ConditionAccepted = "Accepted"
	// ConditionResolvedRefs is True when every targetRef names an object
	// that exists (and every sectionName a port of its Service).
	ConditionResolvedRefs = "ResolvedRefs"
)
