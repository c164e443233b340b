// Package config loads, validates and resolves a weft-proxy configuration.
//
// The model is the protobuf message weft.v1.ProxyConfig (api/proto), so a file
// on disk and a control-plane stream carry the very same thing. The life of a
// config is parse -> validate -> resolve defaults -> swap in: Parse turns YAML
// or JSON into the message, Compile checks every field (errors name the field
// path and the fix) and returns a Compiled value with defaults applied and
// addresses parsed, which is what the running proxy reads. A config that fails
// any step is never swapped in: the proxy keeps its last good one.
package config
