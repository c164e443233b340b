// Package mirror shadows a route's traffic: a copy of a selected request is
// sent to another backend, fire and forget, so a new version of a service can
// be tried on live traffic. The mirror never affects the response the client
// gets: its response is read and discarded, its errors are only counted, and
// the client's request never waits for it.
//
// [Mirror.Tee] is called on the request path, after the proxy has rewritten
// the request for its upstream (hop-by-hop headers removed, forwarding
// headers set): the copy carries the method, URL path and query, headers and
// body as they are then. Like Envoy's request mirror policy (and so Istio's
// mirror), the copy's Host gets "-shadow" appended to the host name, before
// any port ("web.prod:8080" becomes "web.prod-shadow:8080"), so the shadow
// backend and its logs can tell mirrored traffic apart.
//
// Bodies: a request whose Content-Length is at most Config.MaxBodyBytes is
// read into memory by Tee and both the original (returned by Tee) and the
// copy replay those bytes; the mirror starts at once. A request of unknown
// length (chunked, or HTTP/2 without content-length, as most gRPC is) is not
// read ahead, since a streaming call would then wait for the client forever:
// its bytes are kept as the original's body is forwarded, and the mirror
// starts when that body has ended within MaxBodyBytes; beyond that the mirror
// is abandoned. Larger bodies are never mirrored.
//
// Load: at most Config.MaxInFlight mirrors are outstanding; a new one beyond
// that is dropped (and counted), never queued. Each mirror runs with its own
// context: it keeps the request context's values but not its cancellation (a
// client that gives up does not cut the copy short, so the shadow sees what
// the primary saw), and it is bounded by Config.Timeout, counted from when it
// starts, so no mirror outlives its timeout as long as send honours its
// context.
package mirror
