package kube_test

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/weft-mesh/weft/internal/control/source/kube"
)

// TestEndpointsFromSlicesAndPods: a Service and its ready pods become the
// model's endpoints, from the EndpointSlices kube-controller-manager makes:
// the pod's address and port, its node's zone, and, for a pod that runs a
// weft-proxy, the SPIFFE ID of its ServiceAccount (others are called in
// plaintext).
func TestEndpointsFromSlicesAndPods(t *testing.T) {
	_, st := startSource(t, kube.Options{})
	proxy := []corev1.Container{
		{Name: "app", Image: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}},
		{Name: kube.ProxyContainer, Image: "weft-proxy"},
	}
	for _, tc := range []struct {
		name                 string
		nsLabels, nsAnnots   map[string]string
		podLabels, podAnnots map[string]string
		containers           []corev1.Container
		ready                bool
		want                 string // the endpoint, %s the namespace
	}{
		{name: "plain pod", ready: true,
			want: "10.1.0.1:8080 http plaintext zone-a ready web-1"},
		{name: "injected by pod label", podLabels: map[string]string{kube.InjectKey: "enabled"}, ready: true,
			want: "10.1.0.1:8080 http spiffe://weft.local/ns/%s/sa/web zone-a ready web-1"},
		{name: "injected by pod annotation", podAnnots: map[string]string{kube.InjectKey: "enabled"}, ready: true,
			want: "10.1.0.1:8080 http spiffe://weft.local/ns/%s/sa/web zone-a ready web-1"},
		{name: "injected by namespace annotation", nsAnnots: map[string]string{kube.InjectKey: "enabled"}, ready: true,
			want: "10.1.0.1:8080 http spiffe://weft.local/ns/%s/sa/web zone-a ready web-1"},
		{name: "namespace injected, pod opted out", nsLabels: map[string]string{kube.InjectKey: "enabled"},
			podLabels: map[string]string{kube.InjectKey: "disabled"}, ready: true,
			want: "10.1.0.1:8080 http plaintext zone-a ready web-1"},
		{name: "proxy container", containers: proxy, ready: true,
			want: "10.1.0.1:8080 http spiffe://weft.local/ns/%s/sa/web zone-a ready web-1"},
		{name: "not ready", containers: proxy,
			want: "10.1.0.1:8080 http spiffe://weft.local/ns/%s/sa/web zone-a not-ready web-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, tc.nsLabels, tc.nsAnnots)
			c.service("web", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), AppProtocol: ptr.To("http")})
			labels := map[string]string{"app": "web"}
			for k, v := range tc.podLabels {
				labels[k] = v
			}
			c.pod(podSpec{name: "web-1", sa: "web", ip: "10.1.0.1", labels: labels, annotations: tc.podAnnots, containers: tc.containers, ready: tc.ready})
			want := tc.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, c.ns)
			}
			waitFor(t, "the model has the pod's endpoint", func() string {
				if got := endpointsOf(st, c.ns, "web"); got != want {
					return fmt.Sprintf("endpoints:\n%s\nwant:\n%s", got, want)
				}
				return ""
			})
		})
	}
}
