// Package translate turns a model snapshot into the configuration of one
// proxy: Config(snapshot, proxy) returns the weftv1.ProxyConfig that proxy
// runs, and the problems found on the way. It is a pure function: the same
// inputs give the same bytes and the same version, and nothing is kept
// between calls.
//
// # What a proxy receives
//
// Only what it needs: the service ports it watches (on-demand discovery),
// plus, transitively, the service ports their routes send to (backends and
// mirror targets). A service in the config is complete (addresses, routes,
// policies) whether it is there because it is watched or because a route
// sends to it, so an application that calls a backend directly gets the same
// behavior as one that watches it. A proxy that watches nothing has no
// services: in transparent mode its outbound listener passes unknown
// destinations through until the proxy asks for them.
//
// # Naming
//
// The proxy's unit is one port of a service: each (service, port) becomes
// one weftv1.Service named "<name>.<namespace>:<port>", e.g.
// "web.shop:80" (ServiceName). The name is unique in the mesh, readable in
// metrics and logs, and the ":port" keeps a multi-port service's ports
// apart. Route backends and mirrors, and explicit listeners, use these names.
//
// # Services
//
// addresses are every VIP with the port (none for a headless service);
// protocol comes from the port's appProtocol ("http" -> http1, "http2" and
// "kubernetes.io/h2c" -> http2, "grpc" -> grpc, "tcp" and "opaque" -> opaque,
// anything else detects). Endpoints are the ready ones; terminating
// endpoints are dropped while any endpoint is ready and used, when still
// serving, if none is (kube-proxy's rule), so draining a whole service does
// not fail requests early. An endpoint serves the service port named like
// its PortName, else the port whose target port is its address's port.
//
// # Routes (GAMMA)
//
// The rules of the HTTPRoutes and GRPCRoutes whose parentRef is the service
// (with no port, or this port) become the service's routes, as GEP-1294
// defines them: a producer route (same namespace as the service) applies to
// every client; a consumer route (another namespace) only to clients of its
// own namespace, and for those it replaces the producer routes. The client's
// namespace is its workload's, else the one in its SPIFFE ID.
//
// A backendRef or mirror that names no service or port never stops the
// route: the backend keeps its place with weight 0 and names the parent
// service (a name the proxy knows, never picked at weight 0), a mirror is
// dropped, and a Problem says why. A route the proxy's own validation would
// reject (a bad regular expression, an unknown status range) is left out on
// its own, with a Problem, so one bad route never stops the others. Policies
// (retry budget, circuit breaker) apply to a service of their own namespace;
// when several target the same service the oldest wins, as Gateway API's
// policy attachment says, and the others are reported.
//
// # Listeners
//
// A proxy with a workload gets an inbound listener: 0.0.0.0:4143, or
// 0.0.0.0:<ProxyInbound> for an explicit-mode workload, with one port entry
// per workload port (protocol override, opaque). Transparent mode has the
// outbound listener 127.0.0.1:4140. Explicit mode maps each watched service
// port to a local port 127.0.0.1:<n>, n from ExplicitBase (15000) up,
// skipping the proxy's and the application's own ports.
//
// Explicit mappings are what the application is configured with, so they
// must not move. A first config assigns them in name order; after that, pass
// the config last sent to the proxy as Proxy.Previous: its assignments are
// kept for every service still watched, and a new service takes the lowest
// free port. A removed service frees its port for later ones.
//
// # Authorization and mTLS
//
// A proxy's inbound listener gets the authorization and mTLS policies that
// apply to its workload, and no other (docs/policies.md). A policy applies
// through its targetRefs (a Workload; a Service, standing for the
// workloads its endpoints name, by workload name or else by address; a
// Service port by sectionName, standing for the workload port behind it),
// else to its namespace's workloads, or, in the root namespace
// (Mesh.RootNamespace), to every workload. Authorization policies all take
// part; the proxy's ports are per policy, so a policy's rules are grouped
// by the ports they apply to (the target's, narrowed by to.ports), one
// proxy policy per group, each named namespace/name, rules keeping their
// names ("rule-<index>" when unnamed). The default policy is the
// workload's annotation, else its namespace's, else Mesh's; an unknown
// value is a Problem and the level above applies. No policy and allow-all
// leave the authorization out, as the proxy's default.
//
// mTLS is decided per port: targeted policies, then the namespace's, then
// the root namespace's, then Permissive; within a level the oldest wins
// and the others are Problems. inbound.require_mtls carries the mode of
// every port no narrower policy decides, and ports[].mtls the ports whose
// mode differs (ports a policy names but the workload does not list get an
// entry of their own).
//
// An authorization policy the model's Validate or the proxy would refuse
// fails closed: enforced, it becomes a Deny of every request on its ports;
// in dry run, it is left out. An invalid mTLS policy is ignored.
//
// # Version
//
// The version is a hash of the config's content (deterministic protobuf
// encoding, SHA-256, 16 hex digits): identical inputs give identical
// versions, and a change in anything the proxy sees gives a new one, so the
// discovery server can skip sending what the proxy already runs.
//
// # Problems and errors
//
// Problems (a backend or parent that does not exist, a conflicting policy,
// an endpoint with a malformed identity) are returned beside the config,
// which leaves out only what they affect. Config returns an error only for
// impossible inputs: an unknown mode, invalid Mesh settings, a malformed
// proxy identity, a proxy
// that needs a certificate (an inbound listener, a meshed endpoint) and has
// none, an explicit-mode proxy with nothing to listen on, an inbound port
// that collides with the proxy's own. Check reports the problems of the
// whole model at once (for status conditions), whichever proxies they reach.
package translate
