package k8stest_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weft-mesh/weft/internal/k8stest"
)

func TestAPIServerServes(t *testing.T) {
	env := kube.Get(t)
	v, err := env.Clientset.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("reading the server version: %v", err)
	}
	if v.GitVersion != k8stest.KubernetesVersion {
		t.Errorf("kube-apiserver reports %s, want %s (rebuild with make k8s-env)", v.GitVersion, k8stest.KubernetesVersion)
	}

	ctx := t.Context()
	ns, err := env.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "k8stest-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: ns.Name},
		Data:       map[string]string{"k": "v"},
	}
	if _, err := env.Clientset.CoreV1().ConfigMaps(ns.Name).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a ConfigMap: %v", err)
	}
	got, err := env.Clientset.CoreV1().ConfigMaps(ns.Name).Get(ctx, "c", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading the ConfigMap back: %v", err)
	}
	if got.Data["k"] != "v" {
		t.Errorf("ConfigMap data = %v, want k=v", got.Data)
	}
}

func TestMissingBinariesFailWithAHint(t *testing.T) {
	dir := t.TempDir()
	env, err := k8stest.New(t.Context(), k8stest.Options{AssetsDir: dir})
	if err == nil {
		_ = env.Stop()
		t.Fatal("New started with no binaries")
	}
	for _, want := range []string{dir, "etcd", "kube-apiserver", "make k8s-env", "hack/k8s-env.sh"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
