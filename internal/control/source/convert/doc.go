// Package convert turns Kubernetes-shaped resources into the control plane's
// model objects: core v1 Services and Namespaces, Gateway API HTTPRoutes and
// GRPCRoutes attached to Services (GAMMA), and weft's own resources
// (pkg/apis/weft/v1alpha1 Workload, pkg/apis/policy/v1alpha1 RetryBudget,
// CircuitBreaker, LoadBalancer, AuthorizationPolicy, MutualTLSPolicy, and the route filters
// RateLimit and FaultInjection).
//
// Both sources of the control plane use it, so a resource means the same in
// a directory of YAML files (source/file) and in a cluster (source/kube).
// A conversion reports what is wrong as Problems at fields of the resource
// ("spec.rules[0].backendRefs[1]"); a source adds where the resource came
// from (a file and line, or the object's status). A resource with a Problem
// marked Invalid gives no object: a source serves nothing of it.
//
// References to other objects (parents, backends, mirrors, policy targets)
// are returned as References and checked against what exists with
// CheckRef. A route rule's ExtensionRef filters to a RateLimit or a
// FaultInjection are kept in the model's rule by name and resolved by the
// translation, which reports one that names nothing. WorkloadEndpoints derives the endpoints of a Service from the
// Workloads its selector matches, as the Kubernetes endpoints controller
// does from pods.
package convert
