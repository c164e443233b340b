package inject

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// Path is where the webhook is served: the path of the installed
// MutatingWebhookConfiguration (internal/install).
const Path = "/inject"

// maxReviewBytes bounds an AdmissionReview's body: the API server's own
// request limit is 3 MiB.
const maxReviewBytes = 4 << 20

// NamespaceGetter reads a namespace's labels and annotations.
type NamespaceGetter interface {
	GetNamespace(ctx context.Context, name string) (Namespace, error)
}

// NamespaceGetterFunc adapts a function to NamespaceGetter.
type NamespaceGetterFunc func(ctx context.Context, name string) (Namespace, error)

// GetNamespace calls f.
func (f NamespaceGetterFunc) GetNamespace(ctx context.Context, name string) (Namespace, error) {
	return f(ctx, name)
}

// NamespacesFromClient reads namespaces through a client (for a cache, pass
// a NamespaceGetterFunc over a lister instead).
func NamespacesFromClient(c corev1client.NamespacesGetter) NamespaceGetter {
	return NamespaceGetterFunc(func(ctx context.Context, name string) (Namespace, error) {
		ns, err := c.Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return Namespace{}, fmt.Errorf("getting namespace %s: %w", name, err)
		}
		return Namespace{Name: ns.Name, Labels: ns.Labels, Annotations: ns.Annotations}, nil
	})
}

type handler struct {
	o   Options
	ns  NamespaceGetter
	log *slog.Logger
}

// NewHandler returns the injection webhook: AdmissionReview v1 on POST
// /inject. It answers pods to inject with a JSONPatch, pods with a bad
// annotation with a denial naming it, anything else allowed unchanged.
// Serving it is the caller's: mount it on the control plane's webhook port
// (install.WebhookPort, 8443) over TLS with a certificate for
// weft-control.<namespace>.svc whose CA is the webhook configuration's
// caBundle:
//
//	mux := http.NewServeMux()
//	mux.Handle(inject.Path, inject.NewHandler(opts, inject.NamespacesFromClient(cs.CoreV1()), log))
//	srv := &http.Server{Addr: ":8443", Handler: mux, TLSConfig: tlsConfig, ReadHeaderTimeout: 5 * time.Second}
//	srv.ListenAndServeTLS("", "")
func NewHandler(o Options, ns NamespaceGetter, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &handler{o: o.withDefaults(), ns: ns, log: log}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "the injection webhook accepts POST of an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReviewBytes+1))
	if err != nil {
		http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > maxReviewBytes {
		http.Error(w, "the AdmissionReview is too large", http.StatusRequestEntityTooLarge)
		return
	}
	review, err := decodeReview(body)
	if err != nil {
		h.log.Warn("bad admission review", "error", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp := h.review(r.Context(), review.Request)
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	b, err := json.Marshal(out)
	if err != nil {
		http.Error(w, "encoding the response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// decodeReview reads an AdmissionReview v1 with a request.
func decodeReview(body []byte) (*admissionv1.AdmissionReview, error) {
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		return nil, fmt.Errorf("decoding the AdmissionReview: %w", err)
	}
	if review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("expected an admission.k8s.io/v1 AdmissionReview, got %s %q", review.APIVersion, review.Kind)
	}
	if review.Request == nil {
		return nil, errors.New("the AdmissionReview has no request")
	}
	return &review, nil
}

// review answers one request.
func (h *handler) review(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	allow := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.Operation != admissionv1.Create || req.SubResource != "" {
		return allow
	}
	deny := func(code int32, msg string) *admissionv1.AdmissionResponse {
		return &admissionv1.AdmissionResponse{UID: req.UID, Allowed: false, Result: &metav1.Status{
			Status: metav1.StatusFailure, Code: code, Message: msg, Reason: metav1.StatusReasonInvalid,
		}}
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return deny(http.StatusBadRequest, "weft injection: decoding the pod: "+err.Error())
	}
	namespace := req.Namespace
	if namespace == "" {
		namespace = pod.Namespace
	}
	if pod.Namespace == "" {
		pod.Namespace = namespace
	}
	ns, err := h.ns.GetNamespace(ctx, namespace)
	if err != nil {
		h.log.Error("namespace lookup failed", "namespace", namespace, "error", err)
		return deny(http.StatusInternalServerError, "weft injection: "+err.Error())
	}
	if ns.Name == "" {
		ns.Name = namespace
	}
	res, err := Inject(h.o, pod.ObjectMeta, pod.Spec, ns)
	name := pod.Name
	if name == "" {
		name = pod.GenerateName
	}
	if err != nil {
		h.log.Info("pod refused", "namespace", namespace, "pod", name, "error", err)
		return deny(http.StatusUnprocessableEntity, "weft injection refused the pod: "+err.Error())
	}
	if !res.Injected {
		h.log.Debug("pod not injected", "namespace", namespace, "pod", name, "reason", res.Reason)
		return allow
	}
	// The injector's own namespace default is not part of the patch.
	res.Meta.Namespace = pod.ObjectMeta.Namespace
	patch, err := jsonPatch(pod, res)
	if err != nil {
		return deny(http.StatusInternalServerError, "weft injection: "+err.Error())
	}
	h.log.Info("pod injected", "namespace", namespace, "pod", name)
	pt := admissionv1.PatchTypeJSONPatch
	allow.Patch, allow.PatchType = patch, &pt
	return allow
}

// patchOp is one RFC 6902 operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// jsonPatch replaces each changed top-level field the injector touches as a
// whole ("add" replaces an existing member): simple, and exactly the
// injector's result.
func jsonPatch(pod corev1.Pod, res Result) ([]byte, error) {
	var ops []patchOp
	add := func(path string, before, after any) {
		if !apiequality.Semantic.DeepEqual(before, after) {
			ops = append(ops, patchOp{Op: "add", Path: path, Value: after})
		}
	}
	add("/metadata/annotations", pod.Annotations, res.Meta.Annotations)
	add("/spec/initContainers", pod.Spec.InitContainers, res.Spec.InitContainers)
	add("/spec/containers", pod.Spec.Containers, res.Spec.Containers)
	add("/spec/volumes", pod.Spec.Volumes, res.Spec.Volumes)
	add("/spec/serviceAccountName", pod.Spec.ServiceAccountName, res.Spec.ServiceAccountName)
	b, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("encoding the patch: %w", err)
	}
	return b, nil
}
