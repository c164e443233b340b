// Package configclient is the proxy's end of the config stream: it keeps the
// proxy's ProxyConfig current from the control plane's Discovery service and
// never loses the last good one.
//
// A Client (New) runs one stream at a time (Client.Run): it connects, sends
// the proxy's node, hands every snapshot to Options.Apply and answers with an
// ACK, or with a NACK carrying Apply's error when the snapshot is rejected;
// the proxy then keeps its previous config. When the stream fails the client
// reconnects with exponential back-off and full jitter, reset once a stream
// has been healthy; the running config stays as it is meanwhile. A snapshot
// of the version already running (resent after a reconnect) is acknowledged
// without calling Apply again, and one already rejected is rejected again.
//
// Updates may be incremental (base_version set): the client keeps the
// config it last applied and, when the update builds on that version,
// rebuilds the whole config from it (the update's non-service fields, its
// services upserted and removed by name, sorted by name) and checks that it
// hashes to the update's version (configversion) before handing it to
// Apply, which only ever sees whole configs. An update on another base, or
// one whose rebuilt config does not hash right, is answered with
// full_resync, not a NACK: the control plane then sends the whole config.
//
// Client.Watch asks the control plane for more services (on-demand
// discovery); the set is re-sent, as the node's watched_services, on every
// reconnect. Client.State reports the stream and config state for /ready and
// /config_dump.
//
// A proxy that registers its workload puts the registration in its node
// (sent on every stream's first message) and reports the workload's health
// with Client.SetHealth: a change is sent at once, and the current health
// rides on the first message of every new stream. Client.Deregister, when
// the proxy starts draining, sends deregister and closes the stream; from
// then on the client applies no config and does not reconnect.
//
// Run is a method rather than a package function so that Watch and State
// have a value to hang on.
package configclient
