package install

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
)

// certManagerStandInCRDs stand in for cert-manager's Issuer and Certificate
// CRDs (with an open schema: cert-manager is no Go module weft requires), so
// that applying the cert-manager objects is tested through the apiserver.
func certManagerStandInCRDs() []*apiextensionsv1.CustomResourceDefinition {
	crd := func(kind, plural string) *apiextensionsv1.CustomResourceDefinition {
		return &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: plural + ".cert-manager.io"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: "cert-manager.io",
				Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: kind, ListKind: kind + "List", Plural: plural, Singular: strings.ToLower(kind)},
				Scope: apiextensionsv1.NamespaceScoped,
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
					Name: "v1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
						Type: "object", XPreserveUnknownFields: ptr.To(true),
					}},
				}},
			},
		}
	}
	return []*apiextensionsv1.CustomResourceDefinition{crd("Issuer", "issuers"), crd("Certificate", "certificates")}
}

// reportWriter keeps a Cluster's report, and logs it.
type reportWriter struct {
	t     *testing.T
	lines []string
}

func (w *reportWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.lines = append(w.lines, l)
		w.t.Log(l)
	}
	return len(p), nil
}

func (w *reportWriter) has(sub string) bool {
	return slices.ContainsFunc(w.lines, func(l string) bool { return strings.Contains(l, sub) })
}

// uniqueNamespace is a namespace of its own for one test run: without
// kube-controller-manager a deleted namespace stays Terminating.
func uniqueNamespace(t *testing.T, prefix string) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

func resourceFor(dyn dynamic.Interface, o *unstructured.Unstructured) dynamic.ResourceInterface {
	gv, _ := schema.ParseGroupVersion(o.GetAPIVersion())
	r := dyn.Resource(gv.WithResource(resources()[o.GetKind()]))
	if o.GetNamespace() != "" {
		return r.Namespace(o.GetNamespace())
	}
	return r
}

func exists(t *testing.T, dyn dynamic.Interface, o *unstructured.Unstructured) bool {
	t.Helper()
	got, err := resourceFor(dyn, o).Get(t.Context(), o.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatalf("getting %s: %v", ref(o), err)
	}
	return got.GetDeletionTimestamp() == nil
}

// TestKubeInstallLifecycle applies the install manifests to a real
// apiserver: a server-side dry run, the install, an upgrade to another
// version over it, and the uninstall.
func TestKubeInstallLifecycle(t *testing.T) {
	env := kube.Get(t)
	ctx := t.Context()
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ns := uniqueNamespace(t, "weft")
	material, err := GenerateCA("weft.local")
	if err != nil {
		t.Fatal(err)
	}
	v1 := pinned()
	o := Options{Namespace: ns, Values: v1, CRDs: true, CA: material}
	old, err := Render(o)
	if err != nil {
		t.Fatal(err)
	}
	// The "older version" also set a field the newer one no longer does.
	dep := old.Find("Deployment", ControlPlaneName)
	cs, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	c0 := cs[0].(map[string]any)
	c0["env"] = append(c0["env"].([]any), map[string]any{"name": "OLD_ONLY", "value": "1"})
	if err := unstructured.SetNestedSlice(dep.Object, cs, "spec", "template", "spec", "containers"); err != nil {
		t.Fatal(err)
	}

	report := &reportWriter{t: t}
	cl, err := NewCluster(env.Config, report)
	if err != nil {
		t.Fatal(err)
	}
	crdsBefore := map[string]bool{}
	for _, obj := range old.Objects {
		if obj.GetKind() == "CustomResourceDefinition" {
			crdsBefore[obj.GetName()] = exists(t, dyn, obj)
		}
	}

	t.Run("dry run before the namespace exists", func(t *testing.T) {
		if err := cl.Apply(ctx, old, ApplyOptions{DryRun: true}); err != nil {
			t.Fatal(err)
		}
		if !report.has("deployment/weft-control not checked: namespace " + ns + " does not exist yet") {
			t.Error("the namespaced objects were not reported as unchecked")
		}
		for _, obj := range old.Objects {
			if obj.GetKind() != "CustomResourceDefinition" || !crdsBefore[obj.GetName()] {
				if exists(t, dyn, obj) {
					t.Errorf("a dry run created %s", ref(obj))
				}
			}
		}
	})

	t.Run("dry run of every object", func(t *testing.T) {
		// The namespace for real, then everything else dry.
		if err := cl.Apply(ctx, Manifest{Objects: old.Objects[:1]}, ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		report.lines = nil
		if err := cl.Apply(ctx, old, ApplyOptions{DryRun: true}); err != nil {
			t.Fatal(err)
		}
		for _, obj := range old.Objects {
			if !report.has(ref(obj) + " applied (server dry run)") {
				t.Errorf("%s was not checked by the apiserver", ref(obj))
			}
			if obj.GetKind() != "Namespace" && !crdsBefore[obj.GetName()] && exists(t, dyn, obj) {
				t.Errorf("a dry run created %s", ref(obj))
			}
		}
	})

	t.Run("install", func(t *testing.T) {
		if err := cl.Apply(ctx, old, ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, obj := range old.Objects {
			if !exists(t, dyn, obj) {
				t.Errorf("%s was not created", ref(obj))
			}
		}
		d, err := env.Clientset.AppsV1().Deployments(ns).Get(ctx, ControlPlaneName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Spec.Template.Spec.Containers[0].Image; got != "ghcr.io/weft-mesh/weft:v0.1.0" {
			t.Errorf("image %s", got)
		}
		s, err := env.Clientset.CoreV1().Secrets(ns).Get(ctx, CASecretName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(s.Data["ca.crt"]) != string(material.Anchors) {
			t.Error("the weft-ca Secret does not hold the generated anchors")
		}
	})

	// The control plane writes its webhook's caBundle with a field manager
	// of its own, as it will at run time (it may only get and patch).
	bundle := []byte("-----BEGIN CERTIFICATE-----\nwritten by the control plane\n-----END CERTIFICATE-----\n")
	patch := fmt.Sprintf(`[{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":%q},{"op":"add","path":"/webhooks/1/clientConfig/caBundle","value":%q}]`,
		base64.StdEncoding.EncodeToString(bundle), base64.StdEncoding.EncodeToString(bundle))
	if _, err := env.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, WebhookName, types.JSONPatchType, []byte(patch),
		metav1.PatchOptions{FieldManager: "weft-control"}); err != nil {
		t.Fatalf("patching the caBundle as the control plane would: %v", err)
	}
	// Someone scales the Deployment by hand (another field manager).
	if _, err := env.Clientset.AppsV1().Deployments(ns).Patch(ctx, ControlPlaneName, types.MergePatchType, []byte(`{"spec":{"replicas":7}}`),
		metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}

	t.Run("upgrade", func(t *testing.T) {
		before, err := env.Clientset.AppsV1().Deployments(ns).Get(ctx, ControlPlaneName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		newer := pinned()
		newer.Image.Tag = "v0.2.0"
		newer.Replicas = 3
		newer.Webhook.FailurePolicy = "Ignore"
		otherCA, err := GenerateCA("weft.local")
		if err != nil {
			t.Fatal(err)
		}
		m, err := Render(Options{Namespace: ns, Values: newer, CRDs: true, CA: otherCA})
		if err != nil {
			t.Fatal(err)
		}
		report.lines = nil
		if err := cl.Apply(ctx, m, ApplyOptions{}); err != nil {
			t.Fatalf("applying the newer version over the older: %v", err)
		}
		d, err := env.Clientset.AppsV1().Deployments(ns).Get(ctx, ControlPlaneName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkUpgradedDeployment(t, before, d)

		w, err := env.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, WebhookName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range w.Webhooks {
			if *h.FailurePolicy != "Ignore" {
				t.Errorf("webhook %s failurePolicy %s after the upgrade", h.Name, *h.FailurePolicy)
			}
			if string(h.ClientConfig.CABundle) != string(bundle) {
				t.Errorf("webhook %s: the upgrade replaced the caBundle the control plane wrote", h.Name)
			}
		}
		s, err := env.Clientset.CoreV1().Secrets(ns).Get(ctx, CASecretName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(s.Data["ca.crt"]) != string(material.Anchors) {
			t.Error("the upgrade replaced the trust anchor")
		}
		if !report.has("secret/weft-ca kept") {
			t.Error("keeping the CA Secret was not reported")
		}
	})

	t.Run("uninstall", func(t *testing.T) {
		rb := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "policy.weft.dev/v1alpha1", "kind": "RetryBudget",
			"metadata": map[string]any{"name": "web", "namespace": ns},
			"spec":     map[string]any{"targetRef": map[string]any{"kind": "Service", "name": "web"}},
		}}
		rbRes := dyn.Resource(schema.GroupVersionResource{Group: "policy.weft.dev", Version: "v1alpha1", Resource: "retrybudgets"}).Namespace(ns)
		if _, err := rbRes.Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating a RetryBudget: %v", err)
		}
		um, err := UninstallManifest(Options{Namespace: ns, Values: pinned(), CRDs: true})
		if err != nil {
			t.Fatal(err)
		}
		err = cl.Delete(ctx, um, DeleteOptions{})
		if !errors.Is(err, ErrCustomResourcesExist) || !strings.Contains(err.Error(), "1 RetryBudget") {
			t.Fatalf("deleting CRDs with a RetryBudget in the cluster: err = %v, want ErrCustomResourcesExist naming it", err)
		}
		if !exists(t, dyn, um.Objects[0]) {
			t.Fatal("a refused uninstall deleted the webhook configuration")
		}
		if err := cl.Delete(ctx, um, DeleteOptions{DryRun: true, DeleteCustomResources: true}); err != nil {
			t.Fatal(err)
		}
		if !exists(t, dyn, um.Objects[0]) {
			t.Fatal("a dry-run uninstall deleted the webhook configuration")
		}
		if err := cl.Delete(ctx, um, DeleteOptions{DeleteCustomResources: true}); err != nil {
			t.Fatal(err)
		}
		for _, obj := range um.Objects {
			if exists(t, dyn, obj) {
				t.Errorf("%s is still there", ref(obj))
			}
		}
		// Again: everything is reported missing, nothing fails.
		report.lines = nil
		if err := cl.Delete(ctx, um, DeleteOptions{DeleteCustomResources: true}); err != nil {
			t.Fatalf("a second uninstall: %v", err)
		}
		if !report.has("mutatingwebhookconfiguration/weft-inject not found") {
			t.Error("a second uninstall did not report the webhook missing")
		}
	})
}

func checkUpgradedDeployment(t *testing.T, before, d *appsv1.Deployment) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "ghcr.io/weft-mesh/weft:v0.2.0" {
		t.Errorf("image %s after the upgrade", c.Image)
	}
	if *d.Spec.Replicas != 3 {
		t.Errorf("replicas %d after the upgrade (the forced apply takes the field back)", *d.Spec.Replicas)
	}
	if slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "OLD_ONLY" }) {
		t.Error("an env var only the older version set survived the upgrade")
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "WEFT_PROXY_IMAGE" && e.Value == "ghcr.io/weft-mesh/weft-proxy:v0.2.0"
	}) {
		t.Error("the proxy image was not upgraded")
	}
	if fmt.Sprint(d.Spec.Selector) != fmt.Sprint(before.Spec.Selector) {
		t.Errorf("selector changed: %v -> %v", before.Spec.Selector, d.Spec.Selector)
	}
	if d.Generation == before.Generation {
		t.Error("the upgrade did not change the Deployment")
	}
}

// TestKubeCertManagerInstall applies an install with cert-manager (its
// CRDs stood in for): the Issuers and Certificates are created, weft makes
// no weft-ca Secret, and the webhook asks cert-manager's CA injector for its
// caBundle.
func TestKubeCertManagerInstall(t *testing.T) {
	env := kube.Get(t)
	ctx := t.Context()
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ns := uniqueNamespace(t, "weft-cm")
	v := pinned()
	v.CertManager.Enabled = true
	m, err := Render(Options{Namespace: ns, Values: v})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := NewCluster(env.Config, &reportWriter{t: t})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Apply(ctx, m, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Issuer/weft-selfsigned", "Certificate/weft-trust-anchor", "Issuer/weft-trust-anchor", "Certificate/weft-ca"} {
		kind, name, _ := strings.Cut(k, "/")
		obj := m.Find(kind, name)
		if obj == nil || !exists(t, dyn, obj) {
			t.Errorf("%s was not applied", k)
		}
	}
	if _, err := env.Clientset.CoreV1().Secrets(ns).Get(ctx, CASecretName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("weft created the weft-ca Secret cert-manager should write: %v", err)
	}
	w, err := env.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, WebhookName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Annotations["cert-manager.io/inject-ca-from"]; got != ns+"/"+CASecretName {
		t.Errorf("inject-ca-from = %q", got)
	}

	// A cluster without cert-manager: the error says what to do.
	missing := m.Find("Issuer", selfSignedIssuerName).DeepCopy()
	missing.SetAPIVersion("cert-manager.io/v0")
	err = cl.Apply(ctx, Manifest{Objects: []*unstructured.Unstructured{missing}}, ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "install cert-manager first") {
		t.Errorf("applying a kind the cluster does not serve: %v", err)
	}
}
