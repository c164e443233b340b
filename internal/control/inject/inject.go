package inject

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/weft-mesh/weft/internal/proxy/capture"
)

// Namespace is what the injector reads of a pod's namespace.
type Namespace struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
}

// Result is the outcome of Inject.
type Result struct {
	// Meta and Spec are the pod's, injected or (when Injected is false)
	// unchanged copies.
	Meta metav1.ObjectMeta
	Spec corev1.PodSpec
	// Injected says whether weft was added.
	Injected bool
	// Reason says why not, when Injected is false.
	Reason string
}

// Reasons a pod is not injected.
const (
	ReasonAlreadyInjected = "already injected"
	ReasonHostNetwork     = "host network: its traffic is the node's, which weft does not capture"
	ReasonControlPlane    = "the control plane's own pod"
	ReasonDisabled        = "disabled by its weft.io/inject annotation or label"
	ReasonNotEnabled      = "neither the pod nor its namespace has weft.io/inject: enabled"
)

// Inject adds weft to a pod: meta and spec are the pod's (or a pod
// template's), ns its namespace's. It never modifies its arguments. A pod
// that should not be injected is returned unchanged with the reason; a pod
// whose configuration annotations are bad gives an error joining one
// *AnnotationError per annotation.
func Inject(o Options, meta metav1.ObjectMeta, spec corev1.PodSpec, ns Namespace) (Result, error) {
	o = o.withDefaults()
	meta = *meta.DeepCopy()
	spec = *spec.DeepCopy()
	skip := func(reason string) (Result, error) {
		return Result{Meta: meta, Spec: spec, Reason: reason}, nil
	}
	namespace := meta.Namespace
	if namespace == "" {
		namespace = ns.Name
	}
	switch {
	case isInjected(meta, spec):
		return skip(ReasonAlreadyInjected)
	case spec.HostNetwork:
		return skip(ReasonHostNetwork)
	case namespace == o.ControlPlaneNamespace || isControlPlane(meta.Labels):
		return skip(ReasonControlPlane)
	}
	want, err := wanted(meta, ns)
	if err != nil {
		return Result{}, err
	}
	if want != "" {
		return skip(want)
	}
	c, err := readConfig(meta.Annotations, o.ProxyUID)
	if err != nil {
		return Result{}, err
	}

	probePorts := probePorts(spec)
	skipInbound := mergePorts(c.skipInbound, probePorts)
	if meta.Annotations == nil {
		meta.Annotations = map[string]string{}
	}
	meta.Annotations[AnnotationInjected] = o.Version
	meta.Annotations[AnnotationBootstrap] = bootstrapConfig()
	if len(probePorts) > 0 {
		meta.Annotations[AnnotationProbePortsSkipped] = formatPorts(probePorts)
	}

	proxy := proxyContainer(o, c)
	initC := initContainer(o, c, skipInbound)
	switch c.mode {
	case ModeLegacy:
		if _, ok := meta.Annotations["kubectl.kubernetes.io/default-container"]; !ok && len(spec.Containers) > 0 {
			meta.Annotations["kubectl.kubernetes.io/default-container"] = spec.Containers[0].Name
		}
		spec.InitContainers = slices.Insert(spec.InitContainers, 0, initC)
		spec.Containers = slices.Insert(spec.Containers, 0, proxy)
	default:
		proxy.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		spec.InitContainers = slices.Insert(spec.InitContainers, 0, initC, proxy)
	}
	spec.Volumes = append(spec.Volumes, volumes()...)
	// A projected token needs a named ServiceAccount; "default" is what the
	// API server's ServiceAccount admission would give the pod anyway.
	if spec.ServiceAccountName == "" {
		spec.ServiceAccountName = "default"
	}
	return Result{Meta: meta, Spec: spec, Injected: true}, nil
}

// isInjected reports whether the pod already has weft: the marker
// annotation or a weft-proxy container.
func isInjected(meta metav1.ObjectMeta, spec corev1.PodSpec) bool {
	if _, ok := meta.Annotations[AnnotationInjected]; ok {
		return true
	}
	has := func(cs []corev1.Container) bool {
		return slices.ContainsFunc(cs, func(c corev1.Container) bool { return c.Name == ProxyContainerName })
	}
	return has(spec.Containers) || has(spec.InitContainers)
}

// isControlPlane reports whether labels are those of weft's control plane
// pods (internal/install: app.kubernetes.io/name weft with component
// control-plane), or name it weft-control.
func isControlPlane(labels map[string]string) bool {
	name := labels["app.kubernetes.io/name"]
	return name == "weft-control" || name == "weft" && labels["app.kubernetes.io/component"] == "control-plane"
}

// wanted decides from weft.io/inject: "" to inject, else the reason not
// to. The pod's annotation wins over its label, the pod over its namespace.
func wanted(meta metav1.ObjectMeta, ns Namespace) (string, error) {
	check := func(where, v string) error {
		switch v {
		case Enabled, Disabled, "":
			return nil
		}
		return &AnnotationError{Annotation: AnnotationInject, Value: v, Msg: fmt.Sprintf("on the %s: use %q or %q", where, Enabled, Disabled)}
	}
	pod := meta.Annotations[AnnotationInject]
	if pod == "" {
		pod = meta.Labels[AnnotationInject]
	}
	if err := check("pod", pod); err != nil {
		return "", err
	}
	switch pod {
	case Enabled:
		return "", nil
	case Disabled:
		return ReasonDisabled, nil
	}
	if ns.Labels[AnnotationInject] == Enabled || ns.Annotations[AnnotationInject] == Enabled {
		return "", nil
	}
	return ReasonNotEnabled, nil
}

// bootstrapConfig is the proxy's --config file: the control plane streams
// everything else. The admin server listens on every address so that
// kubelet's probes of the proxy reach it.
func bootstrapConfig() string {
	return fmt.Sprintf("admin: {address: \"0.0.0.0:%d\"}\n", capture.DefaultAdminPort)
}

func proxyContainer(o Options, c podConfig) corev1.Container {
	admin := intstr.FromInt32(int32(capture.DefaultAdminPort))
	get := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: admin, Scheme: corev1.URISchemeHTTP}},
			PeriodSeconds:    period,
			FailureThreshold: failures,
			TimeoutSeconds:   1,
			SuccessThreshold: 1,
		}
	}
	return corev1.Container{
		Name:  ProxyContainerName,
		Image: o.ProxyImage,
		Args: []string{
			"run",
			"--config", BootstrapPath,
			"--control-plane", o.ControlPlaneAddress,
			"--token-file", TokenPath,
			"--trust-bundle", AnchorsPath,
			"--node-id", "$(POD_NAME)",
			"--log-level", c.logLevel,
			"--log-format", "json",
		},
		Env: []corev1.EnvVar{
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "GOMEMLIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
				ContainerName: ProxyContainerName, Resource: "limits.memory", Divisor: resource.MustParse("1"),
			}}},
		},
		Ports: []corev1.ContainerPort{
			{Name: "weft-inbound", ContainerPort: int32(capture.DefaultInboundPort), Protocol: corev1.ProtocolTCP},
			{Name: "weft-admin", ContainerPort: int32(capture.DefaultAdminPort), Protocol: corev1.ProtocolTCP},
		},
		Resources: c.resources,
		// The application starts once this succeeds (native sidecar): the
		// proxy has its certificate and its first config. Up to 2 minutes.
		StartupProbe:   get("/ready", 1, 120),
		ReadinessProbe: get("/ready", 5, 3),
		LivenessProbe:  get("/live", 10, 6),
		VolumeMounts: []corev1.VolumeMount{
			{Name: BootstrapVolumeName, MountPath: BootstrapDir, ReadOnly: true},
			{Name: TokenVolumeName, MountPath: TokenDir, ReadOnly: true},
			{Name: AnchorsVolumeName, MountPath: AnchorsDir, ReadOnly: true},
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To(o.ProxyUID),
			RunAsGroup:               ptr.To(o.ProxyUID),
			RunAsNonRoot:             ptr.To(true),
			Privileged:               ptr.To(false),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

// initContainer runs `weft-proxy init` with the flags the annotations gave
// (the others are weft-proxy init's defaults, which are the proxy's), and
// the probe ports added to the skipped inbound ports.
func initContainer(o Options, c podConfig, skipInbound []capture.PortRange) corev1.Container {
	args := []string{"init", "--" + capture.FlagProxyUID + "=" + strconv.FormatInt(o.ProxyUID, 10)}
	for _, m := range captureAnnotations() {
		v, ok := c.capture[m.flag]
		if m.flag == capture.FlagSkipInboundPorts {
			v, ok = formatPorts(skipInbound), len(skipInbound) > 0
		}
		if ok {
			args = append(args, "--"+m.flag+"="+v)
		}
	}
	args = append(args, "--log-format=json")
	return corev1.Container{
		Name:  InitContainerName,
		Image: o.ProxyImage,
		Args:  args,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
		// iptables takes its lock in /run: the root filesystem stays
		// read-only.
		VolumeMounts: []corev1.VolumeMount{{Name: XtablesVolumeName, MountPath: "/run"}},
		// Root with NET_ADMIN and NET_RAW, only here: the nat table of the
		// pod's network namespace is written once, before anything runs.
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To[int64](0),
			RunAsGroup:               ptr.To[int64](0),
			RunAsNonRoot:             ptr.To(false),
			Privileged:               ptr.To(false),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities: &corev1.Capabilities{
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
				Drop: []corev1.Capability{"ALL"},
			},
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

func volumes() []corev1.Volume {
	return []corev1.Volume{
		{Name: BootstrapVolumeName, VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			Items: []corev1.DownwardAPIVolumeFile{{
				Path:     "proxy.yaml",
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['" + AnnotationBootstrap + "']"},
			}},
		}}},
		{Name: TokenVolumeName, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: TokenAudience, ExpirationSeconds: ptr.To[int64](TokenExpirationSeconds), Path: "token",
			}}},
		}}},
		{Name: AnchorsVolumeName, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: TrustAnchorsConfigMap},
			Items:                []corev1.KeyToPath{{Key: TrustAnchorsKey, Path: TrustAnchorsKey}},
		}}},
		{Name: XtablesVolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("1Mi")),
		}}},
	}
}

// formatPorts writes ranges in the annotations' syntax: "8080,9000-9100".
func formatPorts(rs []capture.PortRange) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strconv.Itoa(int(r.First))
		if r.Last != r.First {
			parts[i] += "-" + strconv.Itoa(int(r.Last))
		}
	}
	return strings.Join(parts, ",")
}

// mergePorts is a and b, sorted and merged.
func mergePorts(a, b []capture.PortRange) []capture.PortRange {
	all := formatPorts(a) + "," + formatPorts(b)
	out, err := capture.ParsePorts(all)
	if err != nil { // cannot happen: both were parsed or built from ports
		return append(slices.Clone(a), b...)
	}
	return out
}
