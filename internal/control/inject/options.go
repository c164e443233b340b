package inject

import (
	"strconv"

	"github.com/weft-mesh/weft/internal/install"
	"github.com/weft-mesh/weft/internal/proxy/capture"
)

// Annotations and labels read from pods and namespaces.
const (
	// AnnotationInject opts a pod (annotation or label) or a namespace
	// (label or annotation) in ("enabled") or out ("disabled"). The pod's
	// setting wins over its namespace's.
	AnnotationInject = install.InjectLabel
	// AnnotationSidecarMode is "native" (the default: an init container with
	// restartPolicy Always, Kubernetes 1.29+) or "legacy" (a first regular
	// container).
	AnnotationSidecarMode = "weft.io/sidecar-mode"

	AnnotationProxyCPURequest    = "config.weft.io/proxy-cpu-request"
	AnnotationProxyCPULimit      = "config.weft.io/proxy-cpu-limit"
	AnnotationProxyMemoryRequest = "config.weft.io/proxy-memory-request"
	AnnotationProxyMemoryLimit   = "config.weft.io/proxy-memory-limit"
	AnnotationProxyLogLevel      = "config.weft.io/proxy-log-level"
)

// Annotations the injector writes.
const (
	// AnnotationInjected marks an injected pod with the injector's version:
	// a pod carrying it is never injected again.
	AnnotationInjected = "weft.io/injected"
	// AnnotationProbePortsSkipped lists the ports of HTTP and gRPC probes
	// that were added to the skipped inbound ports, so kubelet's plaintext
	// probes reach the application (see docs/injection.md).
	AnnotationProbePortsSkipped = "weft.io/probe-ports-skipped"
	// AnnotationBootstrap holds the proxy's bootstrap config, given to it
	// as a file through a downward API volume.
	AnnotationBootstrap = "weft.io/proxy-bootstrap"
)

// Values of AnnotationInject and AnnotationSidecarMode.
const (
	Enabled  = "enabled"
	Disabled = "disabled"

	ModeNative = "native"
	ModeLegacy = "legacy"
)

// Names of what is injected.
const (
	ProxyContainerName = "weft-proxy"
	InitContainerName  = "weft-init"

	TokenVolumeName     = "weft-token"
	AnchorsVolumeName   = "weft-anchors"
	BootstrapVolumeName = "weft-bootstrap"
	XtablesVolumeName   = "weft-xtables-lock"

	// TrustAnchorsConfigMap is the ConfigMap, in the pod's namespace, whose
	// key ca.crt holds the mesh's trust anchors (PEM). The control plane's
	// leader publishes it in every namespace with injection enabled and
	// keeps it current through anchor rotations (internal/control/webhookca).
	TrustAnchorsConfigMap = "weft-ca-anchors"
	TrustAnchorsKey       = "ca.crt"

	TokenDir     = "/var/run/secrets/weft"
	TokenPath    = TokenDir + "/token"
	AnchorsDir   = "/var/run/weft/anchors"
	AnchorsPath  = AnchorsDir + "/" + TrustAnchorsKey
	BootstrapDir = "/etc/weft"
	// BootstrapPath is weft-proxy run's default --config.
	BootstrapPath = BootstrapDir + "/proxy.yaml"

	// TokenAudience is the audience of the projected ServiceAccount token,
	// the one the Identity API's TokenReview asks for.
	TokenAudience          = "weft"
	TokenExpirationSeconds = 3600
)

// Default proxy resources, overridden by the config.weft.io annotations.
const (
	DefaultCPURequest    = "100m"
	DefaultCPULimit      = "1"
	DefaultMemoryRequest = "64Mi"
	DefaultMemoryLimit   = "256Mi"
	DefaultLogLevel      = "info"
)

// Options are what the injector needs to know of the installation. The
// webhook and `weft inject` must use the same values to agree.
type Options struct {
	// ProxyImage is the weft-proxy image (install.ImageRef).
	ProxyImage string
	// Version is written into AnnotationInjected.
	Version string
	// ControlPlaneAddress is host:port of the Discovery and Identity APIs.
	ControlPlaneAddress string
	// ControlPlaneNamespace is the control plane's namespace: its pods are
	// never injected.
	ControlPlaneNamespace string
	// ProxyUID is the UID and GID the proxy runs as, excluded from capture.
	ProxyUID int64
}

// DefaultOptions are the options of a default `weft install`.
func DefaultOptions() Options {
	ns := "weft-system"
	return Options{
		ProxyImage:            install.ImageRef(install.DefaultRegistry(), install.ProxyImageName, install.DefaultTag()),
		Version:               install.DefaultTag(),
		ControlPlaneAddress:   ControlPlaneAddress(ns),
		ControlPlaneNamespace: ns,
		ProxyUID:              int64(capture.DefaultProxyUID),
	}
}

// ControlPlaneAddress is the address of the control plane installed in
// namespace ns: its Service's DNS name and gRPC port.
func ControlPlaneAddress(ns string) string {
	return install.ControlPlaneName + "." + ns + ".svc:" + strconv.Itoa(install.GRPCPort)
}

// withDefaults fills the empty fields from DefaultOptions.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.ProxyImage == "" {
		o.ProxyImage = d.ProxyImage
	}
	if o.Version == "" {
		o.Version = d.Version
	}
	if o.ControlPlaneNamespace == "" {
		o.ControlPlaneNamespace = d.ControlPlaneNamespace
	}
	if o.ControlPlaneAddress == "" {
		o.ControlPlaneAddress = ControlPlaneAddress(o.ControlPlaneNamespace)
	}
	if o.ProxyUID == 0 {
		o.ProxyUID = d.ProxyUID
	}
	return o
}
