// Package apis holds weft's Kubernetes API types, one package per group and
// version: weft/v1alpha1 (weft.dev: Workload) and policy/v1alpha1
// (policy.weft.dev: RetryBudget, CircuitBreaker, LoadBalancer,
// AuthorizationPolicy, MutualTLSPolicy, RateLimit, FaultInjection). The universal-mode file source decodes the same types,
// so a resource means the same in a directory of files and in a cluster.
//
// The CustomResourceDefinitions in deploy/crds are generated from these
// types by controller-gen (`make gen`), with the deep-copy methods
// (zz_generated.deepcopy.go). Their OpenAPI schemas and CEL rules make the
// API server refuse what the file source refuses wherever a schema can
// say it; this package's tests install them in a real kube-apiserver and
// check that the two agree, document by document.
package apis
