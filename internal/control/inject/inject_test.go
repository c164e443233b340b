package inject

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// testOptions are fixed so that golden files do not depend on the build.
func testOptions() Options {
	return Options{
		ProxyImage:            "registry.test/weft-proxy:v0.0.0-test",
		Version:               "v0.0.0-test",
		ControlPlaneNamespace: "weft-system",
	}
}

// goldenCase is the input of a golden test: a pod and its namespace.
type goldenCase struct {
	Namespace Namespace  `json:"namespace"`
	Pod       corev1.Pod `json:"pod"`
}

// goldenResult is what a golden file records.
type goldenResult struct {
	Injected bool        `json:"injected"`
	Reason   string      `json:"reason,omitempty"`
	Error    []string    `json:"error,omitempty"`
	Pod      *corev1.Pod `json:"pod,omitempty"`
}

func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/pods/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var c goldenCase
			if err := yaml.UnmarshalStrict(data, &c); err != nil {
				t.Fatalf("%s: %v", in, err)
			}
			res, err := Inject(testOptions(), c.Pod.ObjectMeta, c.Pod.Spec, c.Namespace)
			var out goldenResult
			if err != nil {
				for _, e := range flatten(err) {
					out.Error = append(out.Error, e.Error())
				}
			} else {
				pod := c.Pod.DeepCopy()
				pod.ObjectMeta, pod.Spec = res.Meta, res.Spec
				out = goldenResult{Injected: res.Injected, Reason: res.Reason, Pod: pod}
				if !res.Injected && !apiequality.Semantic.DeepEqual(pod, &c.Pod) {
					t.Errorf("not injected (%s), but the pod changed", res.Reason)
				}
				// Idempotent: injecting the result changes nothing.
				again, err := Inject(testOptions(), res.Meta, res.Spec, c.Namespace)
				if err != nil {
					t.Fatalf("injecting again: %v", err)
				}
				if again.Injected || !apiequality.Semantic.DeepEqual(again.Spec, res.Spec) || !apiequality.Semantic.DeepEqual(again.Meta, res.Meta) {
					t.Errorf("injecting again changed the pod (reason %q)", again.Reason)
				}
			}
			got, err := yaml.Marshal(out)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata/pods", name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s differs (go test -run TestGolden -update rewrites it):\n--- got\n%s", golden, got)
			}
		})
	}
}

func TestInjectDoesNotModifyItsInput(t *testing.T) {
	pod := probedPod()
	before := pod.DeepCopy()
	if _, err := Inject(testOptions(), pod.ObjectMeta, pod.Spec, Namespace{Name: "shop", Labels: map[string]string{AnnotationInject: Enabled}}); err != nil {
		t.Fatal(err)
	}
	if !apiequality.Semantic.DeepEqual(pod, before) {
		t.Error("Inject modified the pod it was given")
	}
}

func TestDecision(t *testing.T) {
	enabledNS := Namespace{Name: "shop", Labels: map[string]string{AnnotationInject: Enabled}}
	annotatedNS := Namespace{Name: "shop", Annotations: map[string]string{AnnotationInject: Enabled}}
	plainNS := Namespace{Name: "shop"}
	tests := []struct {
		name        string
		ns          Namespace
		annotations map[string]string
		labels      map[string]string
		hostNetwork bool
		namespace   string
		want        string // "" injects
	}{
		{"namespace label", enabledNS, nil, nil, false, "", ""},
		{"namespace annotation", annotatedNS, nil, nil, false, "", ""},
		{"nothing", plainNS, nil, nil, false, "", ReasonNotEnabled},
		{"pod annotation", plainNS, map[string]string{AnnotationInject: Enabled}, nil, false, "", ""},
		{"pod label", plainNS, nil, map[string]string{AnnotationInject: Enabled}, false, "", ""},
		{"pod disables", enabledNS, map[string]string{AnnotationInject: Disabled}, nil, false, "", ReasonDisabled},
		{"pod label disables", enabledNS, nil, map[string]string{AnnotationInject: Disabled}, false, "", ReasonDisabled},
		{"annotation wins over label", plainNS, map[string]string{AnnotationInject: Enabled}, map[string]string{AnnotationInject: Disabled}, false, "", ""},
		{"host network", enabledNS, map[string]string{AnnotationInject: Enabled}, nil, true, "", ReasonHostNetwork},
		{"control plane namespace", Namespace{Name: "weft-system", Labels: enabledNS.Labels}, map[string]string{AnnotationInject: Enabled}, nil, false, "weft-system", ReasonControlPlane},
		{"control plane labels", enabledNS, nil, map[string]string{"app.kubernetes.io/name": "weft", "app.kubernetes.io/component": "control-plane"}, false, "", ReasonControlPlane},
		{"weft-control label", enabledNS, nil, map[string]string{"app.kubernetes.io/name": "weft-control"}, false, "", ReasonControlPlane},
		{"marker", enabledNS, map[string]string{AnnotationInjected: "v0.1.0"}, nil, false, "", ReasonAlreadyInjected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := plainPod()
			pod.Annotations, pod.Labels, pod.Spec.HostNetwork, pod.Namespace = tt.annotations, tt.labels, tt.hostNetwork, tt.namespace
			res, err := Inject(testOptions(), pod.ObjectMeta, pod.Spec, tt.ns)
			if err != nil {
				t.Fatal(err)
			}
			if res.Injected != (tt.want == "") || res.Reason != tt.want {
				t.Errorf("injected %v, reason %q; want reason %q", res.Injected, res.Reason, tt.want)
			}
		})
	}
}

func TestBadAnnotations(t *testing.T) {
	tests := []struct {
		annotation, value, want string
	}{
		{"traffic.weft.io/skip-inbound-ports", "80x", `annotation traffic.weft.io/skip-inbound-ports: "80x": "80x" is not a port`},
		{"traffic.weft.io/skip-outbound-ports", "70000", `"70000" is not a port`},
		{"traffic.weft.io/include-inbound-ports", "http", `annotation traffic.weft.io/include-inbound-ports`},
		{"traffic.weft.io/skip-outbound-cidrs", "10.300.0.0/16", `annotation traffic.weft.io/skip-outbound-cidrs: "10.300.0.0/16": "10.300.0.0/16" is not a CIDR`},
		{"traffic.weft.io/ipv6", "maybe", `annotation traffic.weft.io/ipv6: "maybe": use auto`},
		{AnnotationSidecarMode, "sidecar", `annotation weft.io/sidecar-mode: "sidecar": unknown sidecar mode: use "native"`},
		{AnnotationProxyCPURequest, "lots", `annotation config.weft.io/proxy-cpu-request: "lots": not a resource quantity: give one such as 100m`},
		{AnnotationProxyMemoryLimit, "1GB!", `annotation config.weft.io/proxy-memory-limit: "1GB!": not a resource quantity: give one such as 64Mi`},
		{AnnotationProxyMemoryRequest, "1Gi", `annotation config.weft.io/proxy-memory-request: "1Gi": the memory request (1Gi) is above its limit (256Mi)`},
		{AnnotationProxyMemoryLimit, "0", `give a positive quantity`},
		{AnnotationProxyLogLevel, "loud", `annotation config.weft.io/proxy-log-level: "loud": unknown log level`},
		{AnnotationInject, "yes", `annotation weft.io/inject: "yes": on the pod: use "enabled" or "disabled"`},
	}
	for _, tt := range tests {
		t.Run(tt.annotation, func(t *testing.T) {
			pod := plainPod()
			pod.Annotations = map[string]string{tt.annotation: tt.value}
			_, err := Inject(testOptions(), pod.ObjectMeta, pod.Spec, Namespace{Name: "shop", Labels: map[string]string{AnnotationInject: Enabled}})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
			if ae := (*AnnotationError)(nil); !errors.As(err, &ae) || ae.Annotation != tt.annotation {
				t.Errorf("error %v is not an *AnnotationError naming %s", err, tt.annotation)
			}
		})
	}
}

func plainPod() *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metaType(),
		Spec:     corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.test/app:1"}}},
	}
}

func probedPod() *corev1.Pod {
	p := plainPod()
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	return p
}

func metaType() metav1.TypeMeta { return metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"} }
