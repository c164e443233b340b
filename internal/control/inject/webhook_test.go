package inject

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func namespaces(m map[string]Namespace) NamespaceGetter {
	return NamespaceGetterFunc(func(_ context.Context, name string) (Namespace, error) {
		ns, ok := m[name]
		if !ok {
			return Namespace{}, errors.New("namespace " + name + " not found")
		}
		return ns, nil
	})
}

func reviewOf(t testing.TB, pod *corev1.Pod, ns string) []byte {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "u-1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: ns,
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func post(t testing.TB, h http.Handler, body []byte) (*http.Response, *admissionv1.AdmissionResponse) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body)))
	res := rec.Result()
	if res.StatusCode != http.StatusOK {
		return res, nil
	}
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return res, out.Response
}

// applyPatch applies the webhook's patch (whole-member "add" operations)
// to a pod, as the API server would.
func applyPatch(t testing.TB, pod *corev1.Pod, patch []byte) *corev1.Pod {
	t.Helper()
	var ops []struct {
		Op    string          `json:"op"`
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(patch, &ops); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(pod)
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		parts := strings.Split(strings.TrimPrefix(op.Path, "/"), "/")
		if op.Op != "add" || len(parts) != 2 {
			t.Fatalf("unexpected operation %s %s", op.Op, op.Path)
		}
		parent, _ := doc[parts[0]].(map[string]any)
		if parent == nil {
			t.Fatalf("%s: no parent", op.Path)
		}
		var v any
		if err := json.Unmarshal(op.Value, &v); err != nil {
			t.Fatal(err)
		}
		parent[parts[1]] = v
	}
	raw, _ = json.Marshal(doc)
	var out corev1.Pod
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestHandler(t *testing.T) {
	h := NewHandler(testOptions(), namespaces(map[string]Namespace{
		"shop":  {Name: "shop", Labels: map[string]string{AnnotationInject: Enabled}},
		"other": {Name: "other"},
	}), nil)
	t.Run("injects and matches Inject", func(t *testing.T) {
		pod := probedPod()
		pod.Name = "web"
		_, resp := post(t, h, reviewOf(t, pod, "shop"))
		if resp == nil || !resp.Allowed || resp.UID != "u-1" || resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Fatalf("response %+v", resp)
		}
		got := applyPatch(t, pod, resp.Patch)
		pod.Namespace = "shop"
		want, err := Inject(testOptions(), pod.ObjectMeta, pod.Spec, Namespace{Name: "shop", Labels: map[string]string{AnnotationInject: Enabled}})
		if err != nil {
			t.Fatal(err)
		}
		if !apiequality.Semantic.DeepEqual(got.Spec, want.Spec) || !apiequality.Semantic.DeepEqual(got.Annotations, want.Meta.Annotations) {
			t.Errorf("patched pod differs from Inject's")
		}
	})
	t.Run("not enabled", func(t *testing.T) {
		_, resp := post(t, h, reviewOf(t, plainPod(), "other"))
		if resp == nil || !resp.Allowed || resp.Patch != nil {
			t.Fatalf("response %+v", resp)
		}
	})
	t.Run("bad annotation refused", func(t *testing.T) {
		pod := plainPod()
		pod.Annotations = map[string]string{"traffic.weft.io/skip-inbound-ports": "80x"}
		_, resp := post(t, h, reviewOf(t, pod, "shop"))
		if resp == nil || resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, "annotation traffic.weft.io/skip-inbound-ports") {
			t.Fatalf("response %+v", resp)
		}
	})
	t.Run("namespace lookup fails", func(t *testing.T) {
		_, resp := post(t, h, reviewOf(t, plainPod(), "gone"))
		if resp == nil || resp.Allowed || !strings.Contains(resp.Result.Message, "namespace gone not found") {
			t.Fatalf("response %+v", resp)
		}
	})
	for _, tt := range []struct {
		name, method, body string
		status             int
	}{
		{"GET", http.MethodGet, "", http.StatusMethodNotAllowed},
		{"not JSON", http.MethodPost, "{", http.StatusBadRequest},
		{"no request", http.MethodPost, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, http.StatusBadRequest},
		{"v1beta1", http.MethodPost, `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{}}`, http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, Path, strings.NewReader(tt.body)))
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d", rec.Code, tt.status)
			}
		})
	}
	t.Run("not a pod", func(t *testing.T) {
		body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","kind":{"group":"apps","version":"v1","kind":"Deployment"},"operation":"CREATE","object":{}}}`
		_, resp := post(t, h, []byte(body))
		if resp == nil || !resp.Allowed || resp.Patch != nil {
			t.Fatalf("response %+v", resp)
		}
	})
	t.Run("bad pod", func(t *testing.T) {
		body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"shop","object":{"spec":7}}}`
		_, resp := post(t, h, []byte(body))
		if resp == nil || resp.Allowed {
			t.Fatalf("response %+v", resp)
		}
	})
}

func FuzzHandler(f *testing.F) {
	f.Add(reviewOf(f, probedPod(), "shop"))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","object":{"metadata":{"annotations":{"traffic.weft.io/skip-outbound-cidrs":"1.2.3.4/99"}}}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`))
	f.Add([]byte(`[]`))
	h := NewHandler(testOptions(), NamespaceGetterFunc(func(_ context.Context, name string) (Namespace, error) {
		return Namespace{Name: name, Labels: map[string]string{AnnotationInject: Enabled}}, nil
	}), nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body)))
		if rec.Code == http.StatusOK {
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
				t.Fatalf("200 without a response: %v", err)
			}
			if out.Response.Patch != nil && !json.Valid(out.Response.Patch) {
				t.Fatal("invalid patch")
			}
		}
	})
}
