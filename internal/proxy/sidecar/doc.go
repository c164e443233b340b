// Package sidecar runs a weft-proxy: it loads the config, opens the admin,
// inbound and outbound listeners, dispatches each accepted connection by
// detected protocol to the HTTP proxy or the TCP relay, swaps in new configs
// (and certificates) as their files change, and drains on shutdown.
//
// The running state is one immutable value behind an atomic pointer: a
// connection reads it once when it is accepted, so a config swap never
// changes the ground under a connection, and a bad config is never swapped
// in at all.
package sidecar
