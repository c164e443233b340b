package kube_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/source/kube"
	"github.com/weft-mesh/weft/internal/k8stest"
	weftapi "github.com/weft-mesh/weft/pkg/apis/weft/v1alpha1"
)

// serviceOf renders a Service of the model: "ports <name> <port>-><target>
// <appProtocol>, ...; vips <n>", or "(none)".
func serviceOf(st *model.Store, ns, name string) string {
	svc := st.Snapshot().Services[model.ServiceRef{Namespace: ns, Name: name}]
	if svc == nil {
		return "(none)"
	}
	var ports []string
	for _, p := range svc.Ports {
		ports = append(ports, fmt.Sprintf("%s %d->%d %s", or(p.Name, "-"), p.Port, p.Target(), or(p.AppProtocol, "-")))
	}
	return fmt.Sprintf("ports %s; vips %d", strings.Join(ports, ", "), len(svc.VIPs))
}

// TestServices: what of a Service reaches the model, and the endpoints
// its EndpointSlices give, for the shapes Services take.
func TestServices(t *testing.T) {
	_, st := startSource(t, kube.Options{})
	for _, tc := range []struct {
		name          string
		svc           corev1.ServiceSpec
		wantService   string
		wantEndpoints string
	}{
		{name: "cluster IP, appProtocol",
			svc:           corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "grpc", Port: 9090, TargetPort: intstr.FromInt32(8080), AppProtocol: ptr.To("grpc")}}},
			wantService:   "ports grpc 9090->8080 grpc; vips 1",
			wantEndpoints: "10.1.0.1:8080 grpc plaintext zone-a ready web-1"},
		{name: "headless",
			svc:           corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}},
			wantService:   "ports http 8080->8080 -; vips 0",
			wantEndpoints: "10.1.0.1:8080 http plaintext zone-a ready web-1"},
		{name: "unnamed port, named target port resolved from the slices",
			svc:           corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}},
			wantService:   "ports - 80->8080 -; vips 1",
			wantEndpoints: "10.1.0.1:8080 - plaintext zone-a ready web-1"},
		{name: "several ports, UDP ignored",
			svc: corev1.ServiceSpec{Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), AppProtocol: ptr.To("kubernetes.io/h2c")},
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
				{Name: "admin", Port: 9000, TargetPort: intstr.FromInt32(9001)},
			}},
			wantService:   "ports http 80->80 kubernetes.io/h2c, admin 9000->9001 -; vips 1",
			wantEndpoints: "10.1.0.1:8080 http plaintext zone-a ready web-1\n10.1.0.1:9001 admin plaintext zone-a ready web-1"},
		{name: "ExternalName is not served",
			svc:           corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"},
			wantService:   "(none)",
			wantEndpoints: "(no endpoints)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, nil, nil)
			c.pod(podSpec{name: "web-1", sa: "web", ip: "10.1.0.1", labels: map[string]string{"app": "web"}, ready: true})
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: tc.svc}
			if svc.Spec.Type != corev1.ServiceTypeExternalName {
				svc.Spec.Selector = map[string]string{"app": "web"}
			}
			c.create(svc)
			// A Service created after web: when it is served, web's state
			// is final.
			c.service("marker", corev1.ServicePort{Name: "http", Port: 80})
			waitFor(t, "the model has the Service and its endpoints", func() string {
				if serviceOf(st, c.ns, "marker") == "(none)" {
					return "the marker Service is not served yet"
				}
				got, gotEps := serviceOf(st, c.ns, "web"), endpointsOf(st, c.ns, "web")
				if got != tc.wantService || gotEps != tc.wantEndpoints {
					return fmt.Sprintf("service %q, endpoints:\n%s\nwant %q, endpoints:\n%s", got, gotEps, tc.wantService, tc.wantEndpoints)
				}
				return ""
			})
		})
	}
}

// TestReadinessFollowsPods: an endpoint follows its pod through the
// EndpointSlices: ready, not ready, ready again, terminating (still
// serving), gone.
func TestReadinessFollowsPods(t *testing.T) {
	_, st := startSource(t, kube.Options{})
	c := newCluster(t, map[string]string{kube.InjectKey: "enabled"}, nil)
	c.service("web", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")})
	pod := c.pod(podSpec{name: "web-1", sa: "web", ip: "10.1.0.1", labels: map[string]string{"app": "web"}, ready: true})
	id := "spiffe://weft.local/ns/" + c.ns + "/sa/web"
	expect := func(what, want string) {
		t.Helper()
		waitFor(t, what, func() string {
			if got := endpointsOf(st, c.ns, "web"); got != want {
				return fmt.Sprintf("endpoints:\n%s\nwant:\n%s", got, want)
			}
			return ""
		})
	}
	for _, step := range []struct {
		name string
		do   func()
		want string
	}{
		{"ready", func() {}, "10.1.0.1:8080 http " + id + " zone-a ready web-1"},
		{"not ready", func() { c.setReady("web-1", false) }, "10.1.0.1:8080 http " + id + " zone-a not-ready web-1"},
		{"ready again", func() { c.setReady("web-1", true) }, "10.1.0.1:8080 http " + id + " zone-a ready web-1"},
		{"terminating", func() {
			// Deleted gracefully, the pod stays, terminating, until its
			// kubelet says its containers stopped.
			if err := c.c.Delete(t.Context(), pod); err != nil {
				t.Fatal(err)
			}
		}, "10.1.0.1:8080 http " + id + " zone-a ready terminating web-1"},
		{"gone", func() {
			// The kubelet's part: the containers stopped.
			if err := c.c.Delete(t.Context(), pod, client.GracePeriodSeconds(0)); err != nil {
				t.Fatal(err)
			}
		}, ""},
	} {
		step.do()
		expect(step.name, step.want)
	}
	waitFor(t, "the pod's workload is gone", func() string {
		if w := st.Snapshot().Workloads[model.ObjectRef{Namespace: c.ns, Name: "web-1"}]; w != nil {
			return "workload web-1 is still in the model"
		}
		return ""
	})
}

// TestWorkloads: pods and weft Workloads (VMs) become the model's
// Workloads, with their identity, ports (opaque ones from the annotation)
// and default inbound policy; a Service selects VMs beside its pods.
func TestWorkloads(t *testing.T) {
	_, st := startSource(t, kube.Options{})
	c := newCluster(t, nil, map[string]string{kube.AnnotationOpaquePorts: "5432", model.AnnotationDefaultInboundPolicy: "deny-all"})
	c.service("web", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")})
	c.pod(podSpec{name: "web-1", sa: "web", ip: "10.1.0.1", labels: map[string]string{"app": "web", kube.InjectKey: "enabled"}, ready: true,
		annotations: map[string]string{kube.AnnotationOpaquePorts: "3306, 9000-9010, banana", model.AnnotationDefaultInboundPolicy: "allow-same-namespace"},
		containers: []corev1.Container{{Name: "app", Image: "app", Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9001}, {Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP}}}}})
	c.pod(podSpec{name: "db-1", ip: "10.1.0.2", labels: map[string]string{"app": "db"}, ready: true,
		containers: []corev1.Container{{Name: "db", Image: "db", Ports: []corev1.ContainerPort{{ContainerPort: 5432}}}}})
	c.create(&weftapi.Workload{ObjectMeta: metav1.ObjectMeta{Name: "vm-1", Labels: map[string]string{"app": "web"}},
		Spec: weftapi.WorkloadSpec{Address: "192.168.1.10", ServiceAccount: "web", Ports: []weftapi.WorkloadPort{{Name: "http", Port: 8080}},
			Proxy: &weftapi.WorkloadProxy{InboundPort: 4143}}})

	render := func(w *model.Workload) string {
		if w == nil {
			return "(none)"
		}
		var ports []string
		for _, p := range w.Ports {
			ports = append(ports, fmt.Sprintf("%s:%d/%s", or(p.Name, "-"), p.Port, or(p.Protocol, "detect")))
		}
		return fmt.Sprintf("%s sa=%s meshed=%v inbound=%s proxy=%d ports=%s", w.Address, w.ServiceAccount, w.Meshed, or(w.DefaultInboundPolicy, "-"), w.ProxyInbound, strings.Join(ports, ","))
	}
	want := map[string]string{
		"web-1": "10.1.0.1 sa=web meshed=true inbound=allow-same-namespace proxy=0 ports=-:3306/opaque,http:8080/detect,metrics:9001/opaque",
		"db-1":  "10.1.0.2 sa=default meshed=false inbound=- proxy=0 ports=-:5432/opaque",
		"vm-1":  "192.168.1.10 sa=web meshed=true inbound=- proxy=4143 ports=http:8080/detect",
	}
	waitFor(t, "the model has the workloads", func() string {
		snap := st.Snapshot()
		var diffs []string
		for name, w := range want {
			if got := render(snap.Workloads[model.ObjectRef{Namespace: c.ns, Name: name}]); got != w {
				diffs = append(diffs, fmt.Sprintf("%s: %s\n want %s", name, got, w))
			}
		}
		if ns := snap.Namespaces[c.ns]; ns == nil || ns.DefaultInboundPolicy != "deny-all" {
			diffs = append(diffs, fmt.Sprintf("namespace %s: %+v, want default inbound policy deny-all", c.ns, ns))
		}
		return strings.Join(diffs, "\n")
	})
	wantEps := "10.1.0.1:8080 http spiffe://weft.local/ns/" + c.ns + "/sa/web zone-a ready web-1\n" +
		"192.168.1.10:8080 http spiffe://weft.local/ns/" + c.ns + "/sa/web - ready vm-1"
	waitFor(t, "web's endpoints are its pod and its VM", func() string {
		if got := endpointsOf(st, c.ns, "web"); got != wantEps {
			return fmt.Sprintf("endpoints:\n%s\nwant:\n%s", got, wantEps)
		}
		return ""
	})
	if eps := st.Snapshot().Endpoints[model.ServiceRef{Namespace: c.ns, Name: "web"}]; len(eps) == 2 && eps[1].ProxyAddress.String() != "192.168.1.10:4143" {
		t.Errorf("the VM's endpoint is reached through %v, want its proxy at 192.168.1.10:4143", eps[1].ProxyAddress)
	}
}

// TestWithoutCRDs: in a cluster without the Gateway API's CRDs and weft's,
// the source serves Services at once rather than waiting for resources
// that cannot be listed.
func TestWithoutCRDs(t *testing.T) {
	env := k8stest.Start(t, k8stest.Options{})
	ctx := t.Context()
	if _, err := env.Clientset.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, st := startSource(t, kube.Options{Config: env.Config, SyncTimeout: 40 * time.Second})
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the first sync took %v: the source waited for resources that are not installed", d)
	}
	if got := serviceOf(st, "default", "web"); got != "ports http 80->80 -; vips 1" {
		t.Errorf("service web: %s", got)
	}
}
