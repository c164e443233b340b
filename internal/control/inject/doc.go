// Package inject adds weft to pods: the capture init container (weft-init,
// `weft-proxy init`), the proxy as a native sidecar (or, in legacy mode, a
// first regular container), its projected ServiceAccount token, trust
// anchors, resources and the capture exceptions kubelet probes need.
//
// Inject is a pure, deterministic function of a pod's metadata and spec,
// its namespace's labels and annotations, and Options: the admission
// webhook (NewHandler, served at /inject) and `weft inject` (internal/cli)
// both call it, so a pod gets the same spec either way. A bad configuration
// annotation is an *AnnotationError naming the annotation and the fix; the
// webhook refuses the pod with it rather than admit a pod that cannot start.
//
// See docs/injection.md.
package inject
