// Package v1alpha1 is the policy.weft.dev/v1alpha1 API: the traffic
// policies RetryBudget, CircuitBreaker and LoadBalancer, which apply to a Service, and
// the security policies AuthorizationPolicy and MutualTLSPolicy, which
// attach to Services, Workloads or a whole namespace, and the route filters
// RateLimit and FaultInjection, which HTTPRoute and GRPCRoute rules
// reference with ExtensionRef filters (see docs/policies.md).
//
// The universal-mode file source (internal/control/source/file) decodes
// these types; deploy/crds holds the CustomResourceDefinitions generated
// from them. Each policy has a status with standard conditions, which the
// Kubernetes source writes.
//
// +kubebuilder:object:generate=true
// +groupName=policy.weft.dev
package v1alpha1
