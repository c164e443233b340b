// Package file is the universal-mode source of the control plane: it reads
// the mesh's resources from a directory of YAML files and keeps the model
// current as the files change.
//
// # Files
//
// Every *.yaml and *.yml file under the directory, at any depth, is read in
// lexical path order; hidden files and directories (editors' swap files,
// .git, a ConfigMap volume's ..data) and backups ending in ~ are skipped.
// Symbolic links to files are followed. A file holds any number of
// documents separated by ---, each a resource written exactly as for
// Kubernetes (apiVersion, kind, metadata, spec), so manifests can be
// shared between a cluster and universal mode:
//
//   - v1 Service: ports (name, port, targetPort as a number or a port name,
//     appProtocol), selector, clusterIP/clusterIPs (the VIPs; none for a
//     Service called in explicit mode only). Non-TCP ports are ignored.
//   - weft.dev/v1alpha1 Workload: a host without Kubernetes. spec.address
//     (its IP), serviceAccount (default "default"; the identity is
//     spiffe://<trust-domain>/ns/<namespace>/sa/<serviceAccount>), ports
//     (name, port, protocol: opaque, http1, http2 or grpc), proxy.inboundPort
//     (the proxy's inbound listener in explicit mode), meshed (default
//     true).
//   - gateway.networking.k8s.io/v1 HTTPRoute and GRPCRoute attached to
//     Services (parentRefs with group "" and kind Service: GAMMA): matches,
//     filters (header modifiers, RequestRedirect, URLRewrite,
//     RequestMirror), backendRefs to Services with weights and header
//     modifier filters, HTTPRoute timeouts and retry (attempts 0 disables
//     retries), ExtensionRef filters to a RateLimit or FaultInjection of
//     the route's namespace. Parents of other kinds are ignored; CORS and
//     sessionPersistence are not supported. metadata.creationTimestamp, else
//     the file's modification time, is the route's creation time.
//   - policy.weft.dev/v1alpha1 RetryBudget, CircuitBreaker and LoadBalancer:
//     a targetRef to a Service of the policy's namespace (group "", kind
//     Service) and the fields of weftv1.RetryBudget, weftv1.CircuitBreaker
//     and weftv1.LoadBalancer in camelCase, durations as Go durations ("10s").
//   - policy.weft.dev/v1alpha1 RateLimit and FaultInjection: what route
//     rules' ExtensionRef filters name. A rule whose filter names one that
//     does not exist answers every request with 500 (the translation
//     reports it).
//   - policy.weft.dev/v1alpha1 AuthorizationPolicy and MutualTLSPolicy:
//     targetRefs to Services (group "", kind Service; sectionName, a port's
//     name or number, narrows to one port) or Workloads (group weft.dev,
//     kind Workload) of the policy's namespace; none: the namespace (the
//     mesh in the root namespace). See docs/policies.md. What the
//     translation or the proxy would refuse (translate.ValidateAuthorization)
//     is refused here, with the field: SPIFFE IDs and trust domains that do
//     not parse, regular expressions that do not compile (RE2), methods and
//     header names that are not tokens, unknown actions, modes and match
//     types, and the proxy's own rules on paths, headers and gRPC names.
//   - v1 Namespace: only its metadata; the annotation
//     weft.dev/default-inbound-policy (allow-all, deny-all,
//     allow-same-namespace, allow-authenticated) sets the namespace's
//     default inbound authorization, and on a Workload the workload's. A
//     bad value is a Problem and the level above applies.
//
// The namespace defaults to "default". Fields Kubernetes sets (status,
// uid, managedFields, ...) are accepted and ignored.
//
// weft's own resources decode into the public API types of
// pkg/apis/weft/v1alpha1 and pkg/apis/policy/v1alpha1, from which the
// CustomResourceDefinitions in deploy/crds are generated, so a document
// means the same here and in a cluster; the API server refuses by itself
// what this package refuses wherever a schema can say it (pkg/apis tests
// that they agree). The conversion to model objects is source/convert's,
// which the Kubernetes source (source/kube) shares.
//
// # Endpoints
//
// Endpoints are derived as the Kubernetes endpoints controller derives
// them from pods: each Service with a selector gets an EndpointSet of
// every Workload of its namespace whose labels match, one endpoint per
// service port at the target port (a named target port resolves to the
// workload's port of that name; a workload without it is left out). The
// endpoints of meshed workloads carry their identity, and their proxy's
// address when the workload sets proxy.inboundPort. A Service without a
// selector gets no EndpointSet.
//
// # Problems
//
// Decoding is strict, as the Kubernetes API server's: unknown kinds,
// unknown or duplicate fields, wrong types and invalid values are Problems
// with the file, the line and path of the field and what to do. An invalid
// document is ignored and everything else served; a Source keeps the
// objects a broken file last produced until it is fixed or deleted, so a
// typo never takes a service down. The same object (kind, namespace, name)
// in two places: the first in path order wins, the other is a Problem.
// References that resolve to nothing (a parent, backend, mirror or policy
// target that names no Service or port) are Problems too, but the object is
// served: the translation gives such a backend weight 0, and the reference
// resolves as soon as the Service appears.
//
// Limits keep a broken or hostile file from hurting the control plane: a
// file is at most 4 MiB, a document expands to at most 100,000 YAML nodes
// (aliases included), and at most 10 problems are reported per document.
//
// # Watching
//
// Source watches the directory tree with fsnotify (new subdirectories
// included), reads it again once events have settled for 100ms, and also
// polls (Options.Poll), for file systems without notifications. A reload
// that changes nothing (same paths, modification times and contents) is
// not applied; otherwise the whole state is applied with model.Store's
// Replace, which works out what changed. Atomic writes (a temporary file
// renamed over the old one) are seen as one change.
package file
