// Package registry keeps the workloads that proxies register with the
// control plane (weft-proxy run --register): the universal-mode way for a
// workload to join the mesh without a Workload file, as Consul agents and
// Kuma dataplanes do.
//
// A proxy's Discovery stream carries its registration on its first message
// (node.registration: address, ports, labels, the proxy's inbound port) and
// the workload's health on later ones. The workload is named after node.id;
// its namespace and service account are those of the proxy's SPIFFE ID,
// which the control plane has verified against the proxy's certificate, so
// a proxy can only register workloads of its own identity.
//
// A Registry is a model.Source: it applies each registered workload to the
// Store as a model.Workload, the type the file source produces, under the
// source name SourceName (which sorts after the file source's "file:<dir>",
// so a Workload written in a file always wins). The model holds one
// EndpointSet per Service, owned by the source that derives it, so a
// registered workload cannot join a file Service's endpoints through the
// Store: Overlay adds the endpoints of the registered workloads to the
// Services of their namespace whose selector matches their labels, and the
// control plane translates that overlaid snapshot. Subscribe tells it when
// an overlay changed without the Store changing (health).
//
// # Lifecycle of a registration
//
//   - Connect (the stream's first message): the registration is checked and
//     the workload applied. Invalid fields are refused with
//     codes.InvalidArgument naming each field; a name that another source
//     defines in the namespace (a file Workload), or that a proxy of another
//     identity registered and may still come back to, with
//     codes.AlreadyExists. The refusal ends the proxy's stream: the proxy
//     logs it and retries with back-off, and gets no config until the
//     conflict is resolved. A new stream of the same identity and name
//     takes the registration over (a restarted proxy); the older stream's
//     reports are ignored from then on.
//   - Health (HEALTH_HEALTHY, HEALTH_UNHEALTHY): an unhealthy workload stays
//     registered, but its endpoints are not ready (model.Endpoint.Ready is
//     false), so the translation leaves them out of every load balancer.
//     HEALTH_UNKNOWN means no news; a workload never reported counts as
//     healthy.
//   - Deregister (a draining proxy): the workload is removed at once.
//   - Disconnect without deregister (crash, network): the endpoints are not
//     ready at once, and the workload is removed after Options.Grace
//     (DefaultGrace) unless a stream of the same identity registers it
//     again.
//
// # Persistence
//
// With Options.DataDir, registrations are written to
// <DataDir>/registrations.json (0600, atomically, under an advisory lock on
// registrations.lock) after every change. A control plane that starts again
// serves them at once with their last health, not yet confirmed by any
// stream: each is removed unless its proxy reconnects within the grace
// period. Streams that end because the control plane itself stops do not
// mark their workloads lost.
package registry
