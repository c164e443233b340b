// Package server runs weft's control plane: it keeps the mesh model current
// from its sources, renders each connected proxy's configuration with
// translate (only what that proxy needs) and streams it over the Discovery
// API. A proxy that asks for another service (on-demand discovery) gets a
// new config that includes it.
package server
