package kube_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/source/kube"
	policyapi "github.com/weft-mesh/weft/pkg/apis/policy/v1alpha1"
	weftapi "github.com/weft-mesh/weft/pkg/apis/weft/v1alpha1"
)

// cluster is one test's corner of the package's control plane: a node of
// its own (no kubelet runs it: the test plays its part) and a namespace.
type cluster struct {
	t    *testing.T
	cfg  *rest.Config
	cs   *kubernetes.Clientset
	c    client.Client
	node string
	ns   string
}

// newCluster creates a node (in zone zone-a) and a namespace with labels
// and annotations.
func newCluster(t *testing.T, nsLabels, nsAnnotations map[string]string) *cluster {
	t.Helper()
	env := k8s.Get(t)
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, gwv1.Install, gwv1beta1.Install, policyapi.AddToScheme, weftapi.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	hc, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := client.New(env.Config, client.Options{Scheme: s, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	cl := &cluster{t: t, cfg: env.Config, cs: env.Clientset, c: c}
	prefix := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()))
	if len(prefix) > 40 {
		prefix = prefix[:40]
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: strings.Trim(prefix, "-") + "-", Labels: nsLabels, Annotations: nsAnnotations}}
	cl.create(ns)
	cl.ns = ns.Name
	cl.node = "node-" + ns.Name
	cl.create(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: cl.node, Labels: map[string]string{corev1.LabelTopologyZone: "zone-a"}}})
	return cl
}

func (c *cluster) create(obj client.Object) {
	c.t.Helper()
	if obj.GetNamespace() == "" && c.ns != "" && !clusterScoped(obj) {
		obj.SetNamespace(c.ns)
	}
	if err := c.c.Create(c.t.Context(), obj); err != nil {
		c.t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func clusterScoped(obj client.Object) bool {
	switch obj.(type) {
	case *corev1.Node, *corev1.Namespace:
		return true
	}
	return false
}

// podSpec describes a pod a test runs.
type podSpec struct {
	name, sa, ip string
	labels       map[string]string
	annotations  map[string]string
	containers   []corev1.Container
	ready        bool
}

// pod creates a pod on the test's node and plays its kubelet: the pod
// runs, with its IP, ready or not.
func (c *cluster) pod(p podSpec) *corev1.Pod {
	c.t.Helper()
	containers := p.containers
	if containers == nil {
		containers = []corev1.Container{{Name: "app", Image: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: c.ns, Labels: p.labels, Annotations: p.annotations},
		Spec: corev1.PodSpec{
			NodeName: c.node, ServiceAccountName: p.sa, Containers: containers,
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		},
	}
	c.create(pod)
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: p.ip, PodIPs: []corev1.PodIP{{IP: p.ip}},
		Conditions: []corev1.PodCondition{readyCondition(p.ready)},
	}
	if err := c.c.Status().Update(c.t.Context(), pod); err != nil {
		c.t.Fatalf("setting the status of pod %s: %v", p.name, err)
	}
	return pod
}

func readyCondition(ready bool) corev1.PodCondition {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return corev1.PodCondition{Type: corev1.PodReady, Status: st, LastTransitionTime: metav1.Now()}
}

// update reads obj again, changes it with edit and writes it, until no
// one else wrote it in between.
func (c *cluster) update(obj client.Object, edit func()) {
	c.t.Helper()
	for range 10 {
		if err := c.c.Get(c.t.Context(), client.ObjectKeyFromObject(obj), obj); err != nil {
			c.t.Fatal(err)
		}
		edit()
		err := c.c.Update(c.t.Context(), obj)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			c.t.Fatalf("updating %T %s: %v", obj, obj.GetName(), err)
		}
	}
	c.t.Fatalf("updating %T %s: conflicts every time", obj, obj.GetName())
}

// setReady sets a pod's Ready condition, as its kubelet would.
func (c *cluster) setReady(name string, ready bool) {
	c.t.Helper()
	pod := &corev1.Pod{}
	if err := c.c.Get(c.t.Context(), client.ObjectKey{Namespace: c.ns, Name: name}, pod); err != nil {
		c.t.Fatal(err)
	}
	pod.Status.Conditions = []corev1.PodCondition{readyCondition(ready)}
	if err := c.c.Status().Update(c.t.Context(), pod); err != nil {
		c.t.Fatalf("setting pod %s ready=%v: %v", name, ready, err)
	}
}

// service creates a Service selecting app=<name>, with ports.
func (c *cluster) service(name string, ports ...corev1.ServicePort) *corev1.Service {
	c.t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: ports},
	}
	c.create(svc)
	return svc
}

// startSource runs a kube source on a store of its own until the test
// ends, and waits for its first sync.
func startSource(t *testing.T, o kube.Options) (*kube.Source, *model.Store) {
	t.Helper()
	st := model.NewStore()
	src, _ := runSource(t, st, o)
	return src, st
}

// runSource runs a kube source on st until the test ends or stop is
// called (which waits for it), and waits for its first sync.
func runSource(t *testing.T, st *model.Store, o kube.Options) (src *kube.Source, stop func()) {
	t.Helper()
	if o.Config == nil {
		o.Config = k8s.Get(t).Config
	}
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	src, err := kube.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, st) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("source %s: %v", src.Name(), err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-src.Synced():
	case err := <-done:
		t.Fatalf("source stopped before its first sync: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("source not synced after a minute")
	}
	return src, stop
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// waitFor polls cond until it returns "" or the deadline, and fails with
// cond's last answer.
func waitFor(t *testing.T, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	last := ""
	for {
		if last = cond(); last == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s: %s", what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// endpointsOf renders the endpoints of a Service in the model, one line
// each: "address port-name identity zone ready|not-ready[ terminating] workload".
func endpointsOf(st *model.Store, ns, name string) string {
	eps, ok := st.Snapshot().Endpoints[model.ServiceRef{Namespace: ns, Name: name}]
	if !ok {
		return "(no endpoints)"
	}
	var lines []string
	for _, e := range eps {
		ready := "ready"
		if !e.Ready {
			ready = "not-ready"
		}
		if e.Terminating {
			ready += " terminating"
		}
		lines = append(lines, strings.Join([]string{e.Address.String(), or(e.PortName, "-"), or(e.Identity, "plaintext"), or(e.Zone, "-"), ready, or(e.Workload, "-")}, " "))
	}
	return strings.Join(lines, "\n")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
