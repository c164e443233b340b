package check

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestMeshedAndProxyProblem(t *testing.T) {
	enabledNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"weft.io/inject": "enabled"}}}
	plainNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}}
	sidecar := corev1.Container{Name: "weft-proxy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}
	pod := func(mod func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
		mod(p)
		return p
	}
	withProxy := func(ready bool) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{sidecar}
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "weft-proxy", Ready: ready, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
		}
	}
	for _, tc := range []struct {
		name        string
		pod         *corev1.Pod
		ns          *corev1.Namespace
		wantMeshed  bool
		wantProblem string // "" means none
	}{
		{"plain pod", pod(func(*corev1.Pod) {}), plainNS, false, ""},
		{"ready native sidecar", pod(withProxy(true)), plainNS, true, ""},
		{"sidecar not ready", pod(withProxy(false)), plainNS, true, "weft-proxy is not ready"},
		{"sidecar waiting", pod(func(p *corev1.Pod) {
			withProxy(false)(p)
			p.Status.InitContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
		}), plainNS, true, "waiting: CrashLoopBackOff"},
		{"legacy sidecar ready", pod(func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "weft-proxy"})
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "weft-proxy", Ready: true}}
		}), plainNS, true, ""},
		{"not started", pod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{sidecar}
			p.Status.Phase = corev1.PodPending
		}), plainNS, true, "has not started (pod pending)"},
		{"enabled namespace, no proxy", pod(func(*corev1.Pod) {}), enabledNS, true, "no weft-proxy"},
		{"enabled namespace, pod opted out", pod(func(p *corev1.Pod) { p.Labels = map[string]string{"weft.io/inject": "disabled"} }), enabledNS, false, ""},
		{"annotation wins over label", pod(func(p *corev1.Pod) {
			p.Labels = map[string]string{"weft.io/inject": "enabled"}
			p.Annotations = map[string]string{"weft.io/inject": "disabled"}
		}), plainNS, false, ""},
		{"pod label enables", pod(func(p *corev1.Pod) { p.Labels = map[string]string{"weft.io/inject": "enabled"} }), plainNS, true, "no weft-proxy"},
		{"namespace annotation enables", pod(func(*corev1.Pod) {}), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"weft.io/inject": "enabled"}}}, true, "no weft-proxy"},
		{"unknown namespace", pod(func(*corev1.Pod) {}), nil, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := meshed(tc.pod, tc.ns); got != tc.wantMeshed {
				t.Fatalf("meshed = %v, want %v", got, tc.wantMeshed)
			}
			if !tc.wantMeshed {
				return
			}
			got := proxyProblem(tc.pod)
			if (got == "") != (tc.wantProblem == "") || !strings.Contains(got, tc.wantProblem) {
				t.Errorf("proxyProblem = %q, want %q", got, tc.wantProblem)
			}
		})
	}
}
