// Package command holds the weft-proxy command line: `weft-proxy run` (the
// sidecar), `weft-proxy check-config` and `weft-proxy version`.
package command
