// Package model is the control plane's in-memory model of the mesh: services
// and their ports, endpoints, workloads, routes (Gateway API HTTPRoute and
// GRPCRoute attached to Services, the GAMMA pattern) and weft's own policies.
//
// The model is plain Go. It knows nothing of Kubernetes and nothing of how
// the proxy names things: sources (Kubernetes informers, a directory of YAML
// files, a test fixture) fill it, the translate package turns it into proxy
// configs.
//
// # Store, sources and snapshots
//
// A Store holds the model. Every source implements Source and applies
// changes with Store.Apply (one object at a time, or a batch) or Store.Replace
// (the source's whole state, for an initial list or a re-list). Each object
// is owned by the source that applied it: two sources may hold an object of
// the same Key, and the snapshot shows the one of the source whose name sorts
// first, so the outcome never depends on arrival order. Deleting an object
// removes only the deleting source's copy.
//
// Consumers read immutable Snapshots and learn of changes with
// Store.Subscribe, which delivers the latest revision (coalesced: a slow
// reader sees fewer, never stale, revisions, and never slows Apply down).
//
// Snapshots are copy-on-write: an Apply after a Snapshot was taken copies
// only the maps it touches (never the objects), and an Apply while nobody has
// taken the current snapshot writes in place, so a burst of changes (an
// initial list) costs no copies at all. Objects handed to Apply are deep
// copied; objects read from a Snapshot are shared and must not be modified.
//
// # Routes
//
// A RouteRule reuses the proxy's own messages (weftv1.RouteMatch,
// RouteFilters, RouteTimeouts, RetryPolicy, RateLimit, Fault, HeaderModifier)
// for everything that names no other object: those are Gateway-API-shaped
// already, and translating them twice would add nothing but bugs. Everything
// that refers to another object (parents, backends, mirror targets, policy
// targets) is a model reference (ServiceRef, ServicePortRef), never a proxy
// service name: the translate package resolves references and reports the
// ones that resolve to nothing.
//
// # Security policies
//
// AuthorizationPolicy and MutualTLSPolicy attach to workloads: through
// TargetRefs (a Workload, or a Service, whole or one port, standing for the
// workloads behind it: EndpointsOf), else to every workload of their
// namespace, or of the mesh in the root namespace. Their rules reuse the
// proxy's AuthorizationSource and AuthorizationTarget messages. A Store
// takes them as written: sources check them with the policies' Validate
// methods to report problems where they were written, and the translate
// package checks them again (with the default inbound policy of a
// Namespace or Workload) whatever the source.
package model
