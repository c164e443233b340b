// Package kube is the control plane's source of the mesh on Kubernetes: it
// watches the cluster's resources with client-go informers, turns them into
// the model's objects as universal mode does (the conversion is
// source/convert's, shared with source/file), applies them to the model
// store incrementally, and writes status conditions back on routes and
// weft's policies.
//
// # What it reads
//
//   - core v1 Services: ports (TCP; appProtocol is the port's protocol),
//     ClusterIPs (none for a headless Service), selector. ExternalName
//     Services are left out.
//   - discovery.k8s.io/v1 EndpointSlices: the endpoints of a Service are
//     those of all its slices (label kubernetes.io/service-name), one per
//     address and port, ready while serving (also while terminating), with
//     their zone and the pod of their targetRef.
//   - core v1 Pods: each becomes a model Workload (its name, labels, IP,
//     container ports, ServiceAccount), and gives the endpoints it backs
//     their identity: spiffe://<trust domain>/ns/<namespace>/sa/<service
//     account> when the pod runs a weft-proxy (a container named
//     weft-proxy, or InjectKey "enabled" as an annotation or label on the
//     pod or its namespace, "disabled" on the pod overriding its
//     namespace, as the injector decides); others are called in plaintext. AnnotationOpaquePorts
//     (on the pod, else its namespace) marks ports opaque and
//     model.AnnotationDefaultInboundPolicy sets the pod's default inbound
//     policy.
//   - core v1 Namespaces: their default inbound policy annotation.
//   - gateway.networking.k8s.io/v1 HTTPRoutes and GRPCRoutes with a
//     Service parentRef (GAMMA); routes attached to Gateways only are
//     another implementation's and left alone. A backendRef or mirror to
//     a Service of another namespace needs a v1beta1 ReferenceGrant of that
//     namespace: without one the backend gets weight 0 and the mirror is
//     dropped.
//   - weft.dev/v1alpha1 Workloads (VMs joining the mesh): model Workloads,
//     and endpoints of the Services whose selector matches them; a pod of
//     the same name wins.
//   - policy.weft.dev/v1alpha1 RetryBudgets, CircuitBreakers, LoadBalancers,
//     AuthorizationPolicies and MutualTLSPolicies, and the RateLimits and
//     FaultInjections that route rules' ExtensionRef filters name.
//
// A resource that cannot be listed (its CRD is not installed, or RBAC
// forbids it) is logged and retried; the rest is served meanwhile.
//
// # Incremental updates
//
// Informer events only queue the model keys they may change (a Service's
// EndpointSlice or one of its pods queues the Service; a namespace whose
// injection settings change queues its pods and Services; a ReferenceGrant
// queues the routes). One worker takes the queue a batch at a time,
// computes the queued objects from the informers' caches and applies the
// batch to the store in one revision, upserting or deleting only those
// objects (an upsert that changes nothing makes no revision). Nothing is
// applied before every informer has listed (or could not). Resync
// (Options.Resync) queues every object again now and then.
//
// # Status
//
// On each route's status.parents, one entry per Service parentRef with
// controllerName ControllerName: Accepted (True, Accepted; False,
// NoMatchingParent when the Service or its port does not exist, or
// UnsupportedValue when weft does not serve the route) and ResolvedRefs
// (True, ResolvedRefs; False, InvalidKind, RefNotPermitted or
// BackendNotFound), observedGeneration set; other controllers' entries are
// kept as they are. On weft's policies, status.conditions Accepted (True,
// Accepted; False, Invalid, TargetNotFound or Conflicted) and ResolvedRefs
// (True, ResolvedRefs; False, TargetNotFound). The conditions come from the
// conversion's problems, the references checked against the model, and
// translate.CheckMesh's problems. Status is written only when it changed,
// as a merge patch of the version read, and only by the replica that holds
// the leader-election Lease (Options.LeaderElection), every replica serving
// proxies.
package kube
