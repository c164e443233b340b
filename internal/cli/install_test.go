package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/install"
	"github.com/weft-mesh/weft/internal/k8stest"
)

// installRun runs the weft command with args and returns what it wrote to
// stdout and stderr.
func installRun(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := New()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	root.SetContext(t.Context())
	err = root.Execute()
	return out.String(), errOut.String(), err
}

func decode(t *testing.T, y string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := install.DecodeYAML([]byte(y))
	if err != nil {
		t.Fatalf("the output does not decode: %v\n%s", err, y)
	}
	return objs
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func typed[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	if u == nil {
		t.Fatal("object missing")
	}
	var out T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestInstallPrints(t *testing.T) {
	out, stderr, err := installRun(t, "install", "-n", "mesh", "--tag", "v1.2.3", "--registry", "registry.example.com/weft", "--trust-domain", "example.org")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "# weft ") || !strings.Contains(out, "kubectl apply --server-side --field-manager=weft -f -") {
		t.Errorf("no header saying how to apply:\n%.300s", out)
	}
	if !strings.Contains(stderr, "anchor's key is not kept") {
		t.Errorf("stderr does not say the anchor key is discarded: %q", stderr)
	}
	objs := decode(t, out)
	if objs[0].GetKind() != "Namespace" || objs[0].GetName() != "mesh" {
		t.Errorf("first object %s %s", objs[0].GetKind(), objs[0].GetName())
	}
	crds := 0
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds++
		}
	}
	if crds == 0 {
		t.Error("no CRDs printed")
	}
	d := typed[struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}](t, find(objs, "Deployment", install.ControlPlaneName))
	if got := d.Spec.Template.Spec.Containers[0].Image; got != "registry.example.com/weft/weft:v1.2.3" {
		t.Errorf("image %q", got)
	}

	// The Secret is a CA the control plane loads, of the trust domain asked.
	s := typed[corev1.Secret](t, find(objs, "Secret", install.CASecretName))
	dir := t.TempDir()
	for name, data := range s.Data {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	auth, err := ca.Load(dir, ca.Options{TrustDomain: "example.org"})
	if err != nil {
		t.Fatalf("the printed weft-ca Secret does not load as the control plane's CA: %v", err)
	}
	if !auth.Supplied() {
		t.Error("the Secret is not in cert-manager's layout")
	}
}

func TestInstallValuesAndFlags(t *testing.T) {
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte("image: {tag: v2.0.0}\nreplicas: 4\nwebhook: {failurePolicy: Ignore}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := installRun(t, "install", "--values", values, "--replicas", "3", "--ca-secret=skip", "--crds=false")
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, out)
	if find(objs, "Secret", install.CASecretName) != nil {
		t.Error("--ca-secret=skip printed the Secret")
	}
	if slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == "CustomResourceDefinition" }) {
		t.Error("--crds=false printed CRDs")
	}
	dep := find(objs, "Deployment", install.ControlPlaneName)
	replicas, _, _ := unstructured.NestedInt64(dep.Object, "spec", "replicas")
	if replicas != 3 {
		t.Errorf("replicas %d: the flag wins over the values file", replicas)
	}
	if !strings.Contains(out, "ghcr.io/weft-mesh/weft:v2.0.0") || !strings.Contains(out, "failurePolicy: Ignore") {
		t.Error("the values file was not applied")
	}

	// A kept CA directory makes the Secret the same every run.
	caDir := filepath.Join(t.TempDir(), "ca")
	a, _, err := installRun(t, "install", "--ca-secret=only", "--ca-dir", caDir)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := installRun(t, "install", "--ca-secret=only", "--ca-dir", caDir)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("two renderings from one --ca-dir differ")
	}
	if got := decode(t, a); len(got) != 2 || got[1].GetKind() != "Secret" {
		t.Errorf("--ca-secret=only printed %d objects", len(got))
	}

	out, _, err = installRun(t, "install", "--cert-manager")
	if err != nil {
		t.Fatal(err)
	}
	objs = decode(t, out)
	if find(objs, "Certificate", install.CASecretName) == nil || find(objs, "Secret", install.CASecretName) != nil {
		t.Error("--cert-manager: no Certificate, or a Secret")
	}
}

func TestInstallErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("replica: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"install", "--dry-run"}, "needs --apply"},
		{[]string{"install", "--kubeconfig", "x"}, "are for --apply"},
		{[]string{"install", "--replicas", "1"}, "at least 2"},
		{[]string{"install", "--tag", "a b"}, "image.tag"},
		{[]string{"install", "-n", "kube-system"}, "namespace of its own"},
		{[]string{"install", "--values", bad}, "replica"},
		{[]string{"install", "--values", filepath.Join(t.TempDir(), "missing.yaml")}, "--values"},
		{[]string{"install", "--cert-manager", "--ca-dir", t.TempDir()}, "--ca-dir and --cert-manager"},
		{[]string{"install", "--cert-manager", "--ca-secret=only"}, "cert-manager"},
		{[]string{"install", "--ca-secret=sometimes"}, "sometimes"},
		{[]string{"uninstall", "--delete-custom-resources"}, "goes with --crds"},
		{[]string{"uninstall", "--dry-run"}, "needs --apply"},
	} {
		_, _, err := installRun(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("weft %s: err = %v, want it to mention %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

func TestUninstallPrints(t *testing.T) {
	out, _, err := installRun(t, "uninstall", "-n", "mesh")
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, out)
	if objs[0].GetKind() != "MutatingWebhookConfiguration" {
		t.Errorf("the webhook is not deleted first: %s", objs[0].GetKind())
	}
	if last := objs[len(objs)-1]; last.GetKind() != "Namespace" || last.GetName() != "mesh" {
		t.Errorf("last %s %s, want the namespace", last.GetKind(), last.GetName())
	}
	if strings.Contains(out, "CustomResourceDefinition") || strings.Contains(out, "WARNING") {
		t.Error("CRDs printed without --crds")
	}
	if slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == "Certificate" }) {
		t.Error("cert-manager objects printed without --cert-manager")
	}

	out, _, err = installRun(t, "uninstall", "--crds", "--cert-manager")
	if err != nil {
		t.Fatal(err)
	}
	warn := strings.Index(out, "WARNING: deleting the CRDs")
	first := strings.Index(out, "kind: CustomResourceDefinition")
	if warn < 0 || first < warn {
		t.Errorf("no warning before the CRDs:\n%s", out)
	}
	if last := decode(t, out); last[len(last)-1].GetKind() != "CustomResourceDefinition" {
		t.Error("the CRDs are not deleted last")
	}
	if !strings.Contains(out, "kind: Certificate") {
		t.Error("--cert-manager: no Certificates to delete")
	}
}

// TestInstallApplyCLI runs weft install --apply, an upgrade and weft
// uninstall --apply against a real apiserver through a kubeconfig.
func TestInstallApplyCLI(t *testing.T) {
	env := k8stest.Start(t, k8stest.Options{})
	ctx := t.Context()
	kc := env.KubeconfigPath
	out, _, err := installRun(t, "install", "--apply", "--kubeconfig", kc, "-n", "mesh", "--tag", "v1.0.0", "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "(server dry run)") {
		t.Errorf("no dry-run report:\n%s", out)
	}
	if _, err := env.Clientset.CoreV1().Namespaces().Get(ctx, "mesh", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a dry run created the namespace: %v", err)
	}
	if _, _, err := installRun(t, "install", "--apply", "--kubeconfig", kc, "-n", "mesh", "--tag", "v1.0.0"); err != nil {
		t.Fatal(err)
	}
	s1, err := env.Clientset.CoreV1().Secrets("mesh").Get(ctx, install.CASecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, _, err = installRun(t, "install", "--apply", "--kubeconfig", kc, "-n", "mesh", "--tag", "v1.1.0", "--replicas", "3")
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if !strings.Contains(out, "secret/weft-ca kept") {
		t.Errorf("the upgrade did not keep the CA Secret:\n%s", out)
	}
	d, err := env.Clientset.AppsV1().Deployments("mesh").Get(ctx, install.ControlPlaneName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.Template.Spec.Containers[0].Image != "ghcr.io/weft-mesh/weft:v1.1.0" || *d.Spec.Replicas != 3 {
		t.Errorf("after the upgrade: image %s, replicas %d", d.Spec.Template.Spec.Containers[0].Image, *d.Spec.Replicas)
	}
	s2, err := env.Clientset.CoreV1().Secrets("mesh").Get(ctx, install.CASecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s1.Data["ca.crt"], s2.Data["ca.crt"]) {
		t.Error("the upgrade replaced the trust anchor")
	}

	out, _, err = installRun(t, "uninstall", "--apply", "--kubeconfig", kc, "-n", "mesh", "--crds")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "mutatingwebhookconfiguration/weft-inject deleted") {
		t.Errorf("the webhook was not deleted first:\n%s", out)
	}
	if _, err := env.Clientset.AppsV1().Deployments("mesh").Get(ctx, install.ControlPlaneName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Deployment is still there: %v", err)
	}
	if _, err := env.Clientset.RbacV1().ClusterRoles().Get(ctx, install.ControlPlaneName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the ClusterRole is still there: %v", err)
	}
}
