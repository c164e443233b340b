package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/weft-mesh/weft/internal/control/inject"
)

func injectTestOptions() inject.Options {
	return inject.Options{ProxyImage: "registry.test/weft-proxy:v0.0.0-test", Version: "v0.0.0-test"}
}

func TestInjectGolden(t *testing.T) {
	enabled := inject.Namespace{Labels: map[string]string{inject.AnnotationInject: inject.Enabled}}
	tests := []struct {
		name string
		ns   inject.Namespace
	}{
		{"workloads", enabled},
		{"list", inject.Namespace{}},
		{"bad", enabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata/inject", tt.name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			got := ""
			if err := injectManifests(injectTestOptions(), tt.ns, in, &out); err != nil {
				got = "error: " + err.Error() + "\n"
			} else {
				got = out.String()
				// Idempotent: injecting the output changes nothing.
				var again bytes.Buffer
				if err := injectManifests(injectTestOptions(), tt.ns, out.Bytes(), &again); err != nil {
					t.Fatalf("injecting the output: %v", err)
				}
				if again.String() != got {
					t.Errorf("injecting the output again changed it:\n%s", again.String())
				}
			}
			golden := filepath.Join("testdata/inject", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -run TestInjectGolden -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs (go test -run TestInjectGolden -update rewrites it):\n%s", golden, got)
			}
		})
	}
}

func TestInjectCommand(t *testing.T) {
	out, err := run(t, "inject", "-f", "testdata/inject/workloads.yaml", "-f", "testdata/inject/list.yaml",
		"--namespace-labels", "weft.io/inject=enabled", "--proxy-image", "registry.test/p:1")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out, "image: registry.test/p:1"); n != 2*5 { // init + proxy, 5 injected workloads
		t.Errorf("%d proxy images in the output, want 10:\n%s", n, out)
	}
	if _, err := run(t, "inject"); err == nil || !strings.Contains(err.Error(), "-f FILE") {
		t.Errorf("no -f: %v", err)
	}
	if _, err := run(t, "inject", "-f", "testdata/inject/bad.yaml", "--namespace-labels", "weft.io/inject=enabled"); err == nil ||
		!strings.Contains(err.Error(), "document 2 (Deployment shop/web): annotation traffic.weft.io/skip-inbound-ports") {
		t.Errorf("bad annotation: %v", err)
	}
}

// TestInjectMatchesWebhook sends the same pods through `weft inject` and
// through the webhook (its JSONPatch applied) and compares the results.
func TestInjectMatchesWebhook(t *testing.T) {
	nsLabels := map[string]string{inject.AnnotationInject: inject.Enabled}
	h := inject.NewHandler(injectTestOptions(), inject.NamespaceGetterFunc(func(_ context.Context, name string) (inject.Namespace, error) {
		return inject.Namespace{Name: name, Labels: nsLabels}, nil
	}), nil)
	for _, file := range []string{"probes", "plain", "legacy"} {
		t.Run(file, func(t *testing.T) {
			pod := webhookPod(file)
			manifest, err := yaml.Marshal(pod)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := injectManifests(injectTestOptions(), inject.Namespace{Labels: nsLabels}, manifest, &out); err != nil {
				t.Fatal(err)
			}
			var viaCLI corev1.Pod
			if err := yaml.UnmarshalStrict(out.Bytes(), &viaCLI); err != nil {
				t.Fatal(err)
			}
			viaWebhook := admit(t, h, pod)
			if !apiequality.Semantic.DeepEqual(viaCLI.Spec, viaWebhook.Spec) {
				a, _ := yaml.Marshal(viaCLI.Spec)
				b, _ := yaml.Marshal(viaWebhook.Spec)
				t.Errorf("specs differ:\n--- weft inject\n%s\n--- webhook\n%s", a, b)
			}
			if !apiequality.Semantic.DeepEqual(viaCLI.ObjectMeta, viaWebhook.ObjectMeta) {
				t.Errorf("metadata differs: %+v vs %+v", viaCLI.ObjectMeta, viaWebhook.ObjectMeta)
			}
		})
	}
}

func webhookPod(shape string) *corev1.Pod {
	p := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "example.test/web:1"}}},
	}
	switch shape {
	case "probes":
		p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
		p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intOrName("http")}}}
		p.Annotations = map[string]string{"traffic.weft.io/skip-outbound-cidrs": "10.0.0.0/8"}
	case "legacy":
		p.Annotations = map[string]string{inject.AnnotationSidecarMode: inject.ModeLegacy}
	}
	return p
}

// admit sends pod through the webhook handler and applies its patch.
func admit(t *testing.T, h http.Handler, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	raw, _ := json.Marshal(pod)
	body, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: pod.Namespace,
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
		},
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, inject.Path, bytes.NewReader(body)))
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil || review.Response == nil || !review.Response.Allowed {
		t.Fatalf("webhook: %v %s", err, rec.Body.String())
	}
	var ops []struct {
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(review.Response.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		parts := strings.Split(strings.TrimPrefix(op.Path, "/"), "/")
		parent, _ := doc[parts[0]].(map[string]any)
		var v any
		if len(parts) != 2 || parent == nil || json.Unmarshal(op.Value, &v) != nil {
			t.Fatalf("cannot apply %s", op.Path)
		}
		parent[parts[1]] = v
	}
	patched, _ := json.Marshal(doc)
	var out corev1.Pod
	if err := json.Unmarshal(patched, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func FuzzInjectManifests(f *testing.F) {
	for _, name := range []string{"workloads", "list", "bad"} {
		if b, err := os.ReadFile(filepath.Join("testdata/inject", name+".yaml")); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("---\n- a\n---\nkind: List\nitems: [1, {kind: Pod, spec: 3}]\n"))
	f.Add([]byte("kind: CronJob\nspec: {jobTemplate: {spec: {template: []}}}\n"))
	ns := inject.Namespace{Labels: map[string]string{inject.AnnotationInject: inject.Enabled}}
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		if err := injectManifests(injectTestOptions(), ns, data, &out); err != nil {
			return
		}
		// What was written reads back, and injecting it again changes nothing.
		var again bytes.Buffer
		if err := injectManifests(injectTestOptions(), ns, out.Bytes(), &again); err != nil {
			t.Fatalf("the output does not read back: %v\n%s", err, out.String())
		}
	})
}

func intOrName(name string) intstr.IntOrString { return intstr.FromString(name) }
