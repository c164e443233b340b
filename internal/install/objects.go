package install

import (
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Labels common to every object, and the control plane's pod selector.
const (
	labelName      = "app.kubernetes.io/name"
	labelPartOf    = "app.kubernetes.io/part-of"
	labelComponent = "app.kubernetes.io/component"
	componentCP    = "control-plane"
	containerName  = "control"
	nonRootID      = 65532 // distroless's "nonroot" user and group
)

// labels are the labels of every object weft installs.
func labels() map[string]string {
	return map[string]string{labelName: "weft", labelPartOf: "weft", labelComponent: componentCP}
}

// selector selects the control plane's pods. It is part of the Deployment's
// immutable spec.selector: never change it, or upgrades fail.
func selector() map[string]string {
	return map[string]string{labelName: "weft", labelComponent: componentCP}
}

func meta(name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels()}
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// namespace is the control plane's namespace. Pod Security Admission
// enforces the restricted profile there: the control plane meets it, and
// nothing else belongs in it.
func namespace(o Options) *corev1.Namespace {
	ns := &corev1.Namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: meta(o.Namespace, "")}
	ns.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	return ns
}

func serviceAccount(o Options) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: meta(ControlPlaneName, o.Namespace)}
}

// caSecret is the weft-ca Secret in cert-manager's layout: what the control
// plane reads from CADir (internal/control/ca's supplied layout).
func caSecret(o Options) *corev1.Secret {
	s := &corev1.Secret{
		TypeMeta:   typeMeta("v1", "Secret"),
		ObjectMeta: meta(CASecretName, o.Namespace),
		Type:       corev1.SecretTypeTLS,
	}
	if o.CA != nil {
		s.Data = map[string][]byte{
			corev1.TLSCertKey:       o.CA.IssuerCert,
			corev1.TLSPrivateKeyKey: o.CA.IssuerKey,
			"ca.crt":                o.CA.Anchors,
		}
	}
	return s
}

// service exposes the gRPC APIs (Discovery, Identity) and the webhook.
func service(o Options) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   typeMeta("v1", "Service"),
		ObjectMeta: meta(ControlPlaneName, o.Namespace),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: selector(),
			Ports: []corev1.ServicePort{
				{Name: "grpc", Port: GRPCPort, TargetPort: intstr.FromString("grpc"), Protocol: corev1.ProtocolTCP},
				{Name: "webhook", Port: WebhookServicePort, TargetPort: intstr.FromString("webhook"), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

// controlArgs are the arguments of the control plane's container.
func controlArgs(o Options) []string {
	return []string{
		"control",
		"--kubernetes",
		"--listen", fmt.Sprintf("0.0.0.0:%d", GRPCPort),
		"--admin-listen", fmt.Sprintf("0.0.0.0:%d", AdminPort),
		"--data-dir", DataDir,
		"--ca-dir", CADir,
		"--trust-domain", o.Values.TrustDomain,
		"--log-level", o.Values.LogLevel,
		"--log-format", "json",
	}
}

func quantity(s string) resource.Quantity {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		// Validated before rendering; the chart generator's placeholders
		// are valid quantities too.
		return resource.Quantity{}
	}
	return q
}

// deployment runs the control plane: replicas that all serve, one of which
// leads (Lease LeaseName) for the singleton work, locked down to what
// Pod Security's restricted profile asks and more.
func deployment(o Options) *appsv1.Deployment {
	v := o.Values
	image := ImageRef(v.Image.Registry, ControlPlaneImageName, v.Image.Tag)
	spread := func(key string) corev1.TopologySpreadConstraint {
		return corev1.TopologySpreadConstraint{
			MaxSkew:     1,
			TopologyKey: key,
			// ScheduleAnyway: a one-node (or one-zone) cluster still runs
			// every replica, and a rolling update's surge pod is not stuck.
			WhenUnsatisfiable: corev1.ScheduleAnyway,
			LabelSelector:     &metav1.LabelSelector{MatchLabels: selector()},
			MatchLabelKeys:    []string{"pod-template-hash"},
		}
	}
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("admin")}},
			PeriodSeconds:    period,
			TimeoutSeconds:   2,
			FailureThreshold: failures,
		}
	}
	podLabels := labels()
	return &appsv1.Deployment{
		TypeMeta:   typeMeta("apps/v1", "Deployment"),
		ObjectMeta: meta(ControlPlaneName, o.Namespace),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(v.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: selector()},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				// One new pod at a time, and never fewer ready than asked.
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromInt32(0)),
					MaxSurge:       ptr.To(intstr.FromInt32(1)),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      podLabels,
					Annotations: map[string]string{"kubectl.kubernetes.io/default-container": containerName},
				},
				Spec: corev1.PodSpec{
					ServiceAccountName: ControlPlaneName,
					// It talks to the API server: it needs its token.
					AutomountServiceAccountToken: ptr.To(true),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](nonRootID),
						RunAsGroup:     ptr.To[int64](nonRootID),
						FSGroup:        ptr.To[int64](nonRootID),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{
						spread("kubernetes.io/hostname"),
						spread("topology.kubernetes.io/zone"),
					},
					Containers: []corev1.Container{{
						Name:            containerName,
						Image:           image,
						ImagePullPolicy: corev1.PullPolicy(v.Image.PullPolicy),
						Args:            controlArgs(o),
						Env: []corev1.EnvVar{
							{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
							{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
							// The Go runtime collects harder near the memory
							// limit instead of being killed at it.
							{Name: "GOMEMLIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: containerName, Resource: "limits.memory", Divisor: resource.MustParse("1")}}},
							// The image the injector gives pods (issue 7):
							// named here, in the one place images are.
							{Name: "WEFT_PROXY_IMAGE", Value: ImageRef(v.Image.Registry, ProxyImageName, v.Image.Tag)},
						},
						Ports: []corev1.ContainerPort{
							{Name: "grpc", ContainerPort: GRPCPort, Protocol: corev1.ProtocolTCP},
							{Name: "webhook", ContainerPort: WebhookPort, Protocol: corev1.ProtocolTCP},
							{Name: "admin", ContainerPort: AdminPort, Protocol: corev1.ProtocolTCP},
						},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{
								corev1.ResourceCPU:    quantity(v.Resources.Requests.CPU),
								corev1.ResourceMemory: quantity(v.Resources.Requests.Memory),
							},
							Limits: corev1.ResourceList{
								corev1.ResourceCPU:    quantity(v.Resources.Limits.CPU),
								corev1.ResourceMemory: quantity(v.Resources.Limits.Memory),
							},
						},
						ReadinessProbe: probe("/ready", 5, 3),
						LivenessProbe:  probe("/live", 10, 6),
						// Up to 2 minutes to start (informers' first sync on a
						// large cluster) before liveness counts.
						StartupProbe: probe("/live", 2, 60),
						SecurityContext: &corev1.SecurityContext{
							RunAsNonRoot:             ptr.To(true),
							Privileged:               ptr.To(false),
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
						},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "data", MountPath: DataDir},
							{Name: "ca", MountPath: CADir, ReadOnly: true},
						},
					}},
					Volumes: []corev1.Volume{
						// The data directory holds nothing another replica
						// needs: Kubernetes is the source of truth.
						{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("64Mi"))}}},
						// tls.crt, tls.key, ca.crt: the issuer and anchors,
						// readable by the group (fsGroup) only.
						{Name: "ca", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: CASecretName, DefaultMode: ptr.To[int32](0o440)}}},
					},
				},
			},
		},
	}
}

// podDisruptionBudget keeps one control plane pod through voluntary
// disruptions (node drains); Values.Validate requires at least 2 replicas,
// so a drain is never blocked.
func podDisruptionBudget(o Options) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   typeMeta("policy/v1", "PodDisruptionBudget"),
		ObjectMeta: meta(ControlPlaneName, o.Namespace),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr.To(intstr.FromInt32(1)),
			Selector:     &metav1.LabelSelector{MatchLabels: selector()},
			// A pod that is not ready protects nothing: evicting it must
			// not wait.
			UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
		},
	}
}

// webhook registers sidecar injection (served by the control plane,
// issue 7). Two webhooks of one configuration, because a selector can only
// AND namespace and pod labels:
//   - namespaces labelled weft.io/inject=enabled, except pods labelled
//     weft.io/inject=disabled;
//   - pods labelled weft.io/inject=enabled in the other namespaces.
//
// kube-system and weft's own namespace are never selected. The caBundle is
// left empty: the control plane patches it at run time (its field manager
// owns it, so re-applying these manifests keeps it), or cert-manager's CA
// injector fills it from the weft-ca Certificate.
func webhook(o Options) *admissionregistrationv1.MutatingWebhookConfiguration {
	v := o.Values
	notSystem := metav1.LabelSelectorRequirement{
		Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", o.Namespace},
	}
	hook := func(name string, ns, pod []metav1.LabelSelectorRequirement) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name: name,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service: &admissionregistrationv1.ServiceReference{
					Namespace: o.Namespace, Name: ControlPlaneName, Path: ptr.To("/inject"), Port: ptr.To[int32](WebhookServicePort),
				},
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
					Scope: ptr.To(admissionregistrationv1.NamespacedScope),
				},
			}},
			FailurePolicy:           ptr.To(admissionregistrationv1.FailurePolicyType(v.Webhook.FailurePolicy)),
			MatchPolicy:             ptr.To(admissionregistrationv1.Equivalent),
			NamespaceSelector:       &metav1.LabelSelector{MatchExpressions: append(ns, notSystem)},
			ObjectSelector:          &metav1.LabelSelector{MatchExpressions: pod},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			TimeoutSeconds:          ptr.To(v.Webhook.TimeoutSeconds),
			AdmissionReviewVersions: []string{"v1"},
			ReinvocationPolicy:      ptr.To(admissionregistrationv1.NeverReinvocationPolicy),
		}
	}
	in := func(op metav1.LabelSelectorOperator, value string) []metav1.LabelSelectorRequirement {
		return []metav1.LabelSelectorRequirement{{Key: InjectLabel, Operator: op, Values: []string{value}}}
	}
	w := &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   typeMeta("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
		ObjectMeta: meta(WebhookName, ""),
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			hook("namespace.inject.weft.io", in(metav1.LabelSelectorOpIn, "enabled"), in(metav1.LabelSelectorOpNotIn, "disabled")),
			hook("pod.inject.weft.io", in(metav1.LabelSelectorOpNotIn, "enabled"), in(metav1.LabelSelectorOpIn, "enabled")),
		},
	}
	if v.CertManager.Enabled {
		w.Annotations = map[string]string{"cert-manager.io/inject-ca-from": o.Namespace + "/" + CASecretName}
	}
	return w
}
