package install

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// Names of what weft installs. The cluster-scoped ones (ClusterRole,
// ClusterRoleBinding, the webhook configuration, the CRDs) are one per
// cluster: weft is installed once per cluster.
const (
	// ControlPlaneName names the control plane's ServiceAccount, Deployment,
	// Service, PodDisruptionBudget, RBAC objects and leader-election Lease.
	ControlPlaneName = "weft-control"
	// CASecretName is the Secret of the issuer and trust anchors, in
	// cert-manager's layout (tls.crt, tls.key, ca.crt).
	CASecretName = "weft-ca"
	// WebhookName is the MutatingWebhookConfiguration of sidecar injection.
	WebhookName = "weft-inject"
	// LeaseName is the coordination.k8s.io Lease of leader election.
	LeaseName = ControlPlaneName
	// FieldManager is the server-side apply field manager of weft install.
	FieldManager = "weft"
	// InjectLabel selects namespaces and pods for sidecar injection
	// (value "enabled"; "disabled" on a pod opts it out).
	InjectLabel = "weft.io/inject"
)

// Ports of the control plane.
const (
	GRPCPort           = 8086 // Discovery and Identity APIs (TLS)
	WebhookPort        = 8443 // the injection webhook (HTTPS), behind Service port 443
	WebhookServicePort = 443
	AdminPort          = 9990 // /ready, /live, /metrics (plain HTTP, for the kubelet and Prometheus)
)

// Paths inside the control plane's container.
const (
	DataDir = "/var/lib/weft"
	CADir   = "/var/run/weft/ca"
)

// CASecretMode says whether the rendered manifests hold the weft-ca Secret.
type CASecretMode string

// CASecretModes.
const (
	// CASecretInclude renders the Secret with the install (the default).
	CASecretInclude CASecretMode = "include"
	// CASecretSkip leaves it out: an upgrade with kubectl keeps the
	// cluster's Secret, and with it the trust anchor every proxy trusts.
	CASecretSkip CASecretMode = "skip"
	// CASecretOnly renders the namespace and the Secret alone: what the
	// Helm chart expects to exist (Helm cannot run weft's CA code).
	CASecretOnly CASecretMode = "only"
)

// CASecretModes lists the modes, for flag help.
func CASecretModes() []string {
	return []string{string(CASecretInclude), string(CASecretSkip), string(CASecretOnly)}
}

// Options configure Render.
type Options struct {
	// Namespace of the control plane; empty means DefaultNamespace.
	Namespace string
	// Values of the install.
	Values Values
	// CRDs includes weft's CustomResourceDefinitions.
	CRDs bool
	// CASecret says whether the weft-ca Secret is rendered; empty means
	// CASecretInclude. Ignored (no Secret) with cert-manager.
	CASecret CASecretMode
	// CA is the material of the weft-ca Secret; required when the Secret
	// is rendered.
	CA *CAMaterial
}

// reservedNamespaces are refused as the install namespace: uninstall
// deletes the namespace.
func reservedNamespaces() []string {
	return []string{"default", "kube-system", "kube-public", "kube-node-lease"}
}

// withDefaults validates o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.CASecret == "" {
		o.CASecret = CASecretInclude
	}
	var errs []error
	if msgs := validation.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("namespace %q: %s", o.Namespace, msgs[0]))
	} else if slices.Contains(reservedNamespaces(), o.Namespace) {
		errs = append(errs, fmt.Errorf("namespace %q: weft needs a namespace of its own (uninstall deletes it); use %s", o.Namespace, DefaultNamespace))
	}
	if !slices.Contains(CASecretModes(), string(o.CASecret)) {
		errs = append(errs, fmt.Errorf("CA secret mode %q is not one of %v", o.CASecret, CASecretModes()))
	}
	if err := o.Values.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.Values.CertManager.Enabled && o.CASecret == CASecretOnly {
		errs = append(errs, errors.New("the CA Secret alone was asked for, but with cert-manager it is cert-manager that writes it"))
	}
	if o.rendersCASecret() && o.CA == nil {
		errs = append(errs, errors.New("the weft-ca Secret is rendered but no CA material was given"))
	}
	return o, errors.Join(errs...)
}

// rendersCASecret reports whether the weft-ca Secret is part of the output.
func (o Options) rendersCASecret() bool {
	return !o.Values.CertManager.Enabled && o.CASecret != CASecretSkip
}

// Manifest is a rendered install: Kubernetes objects in the order they are
// applied.
type Manifest struct {
	Objects []*unstructured.Unstructured
}

// Render renders the install manifests of o, in apply order: the namespace,
// the CRDs, identities and permissions, the CA, the control plane, and the
// webhook last (so that it is registered once what serves it exists).
func Render(o Options) (Manifest, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Manifest{}, fmt.Errorf("rendering the install manifests: %w", err)
	}
	return render(o)
}

// render is Render without validation: the chart generator renders
// placeholders that are no valid values.
func render(o Options) (Manifest, error) {
	var typed []runtime.Object
	var objs []*unstructured.Unstructured
	typed = append(typed, namespace(o))
	if o.CASecret == CASecretOnly {
		typed = append(typed, caSecret(o))
		return toManifest(typed, nil)
	}
	if o.CRDs {
		crds, err := CRDs()
		if err != nil {
			return Manifest{}, err
		}
		objs = append(objs, crds...)
	}
	typed = append(typed, serviceAccount(o), clusterRole(o), clusterRoleBinding(o), role(o), roleBinding(o))
	if o.rendersCASecret() {
		typed = append(typed, caSecret(o))
	}
	m, err := toManifest(typed, objs)
	if err != nil {
		return Manifest{}, err
	}
	if o.Values.CertManager.Enabled {
		m.Objects = append(m.Objects, certManagerObjects(o)...)
	}
	rest, err := toManifest([]runtime.Object{service(o), deployment(o), podDisruptionBudget(o), webhook(o)}, nil)
	if err != nil {
		return Manifest{}, err
	}
	m.Objects = append(m.Objects, rest.Objects...)
	return m, nil
}

// toManifest converts typed objects to unstructured ones (dropping the
// empty fields the Go types always marshal, such as creationTimestamp) and
// inserts the already unstructured extra after the first (the namespace).
func toManifest(typed []runtime.Object, extra []*unstructured.Unstructured) (Manifest, error) {
	var m Manifest
	for i, t := range typed {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(t)
		if err != nil {
			return Manifest{}, fmt.Errorf("converting %T to unstructured: %w", t, err)
		}
		prune(u)
		// A manifest states what is wanted: status is the cluster's to write.
		delete(u, "status")
		if sp, ok := u["spec"].(map[string]any); ok && len(sp) == 0 {
			delete(u, "spec") // a Namespace's
		}
		m.Objects = append(m.Objects, &unstructured.Unstructured{Object: u})
		if i == 0 {
			m.Objects = append(m.Objects, extra...)
		}
	}
	return m, nil
}

// prune removes null values (creationTimestamp, for one), recursively.
func prune(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			prune(v)
		case []any:
			for _, e := range v {
				if em, ok := e.(map[string]any); ok {
					prune(em)
				}
			}
		}
	}
}

// YAML is the manifest as a YAML stream, documents separated by "---".
func (m Manifest) YAML() ([]byte, error) {
	var b bytes.Buffer
	for _, o := range m.Objects {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("marshalling %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.Bytes(), nil
}

// Find returns the object of kind and name, or nil.
func (m Manifest) Find(kind, name string) *unstructured.Unstructured {
	for _, o := range m.Objects {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}
