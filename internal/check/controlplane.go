package check

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/weft-mesh/weft/internal/install"
)

func (c *Cluster) checkNamespace(ctx context.Context) Outcome {
	ns := c.namespace()
	_, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Fail("install weft: weft install --apply (or pass --namespace if it is installed in another namespace)",
			"namespace %s does not exist: weft is not installed there", ns)
	}
	if err != nil {
		return Fail("check that the kubeconfig's user may read namespaces", "reading namespace %s: %v", ns, err)
	}
	return Pass("")
}

// describeHint is the first thing to look at when the control plane does
// not run.
func (c *Cluster) describeHint() string {
	ns := c.namespace()
	return fmt.Sprintf("see why: kubectl -n %s describe deployment %s; kubectl -n %s get pods; kubectl -n %s logs deployment/%s",
		ns, install.ControlPlaneName, ns, ns, install.ControlPlaneName)
}

func (c *Cluster) checkDeployment(ctx context.Context) Outcome {
	ns := c.namespace()
	d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, install.ControlPlaneName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Fail("install weft: weft install --apply", "deployment %s/%s does not exist", ns, install.ControlPlaneName)
	}
	if err != nil {
		return Fail("check that the kubeconfig's user may read Deployments", "reading deployment %s/%s: %v", ns, install.ControlPlaneName, err)
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	switch {
	case st.ReadyReplicas < 1:
		return Fail(c.describeHint(), "no replica of deployment %s/%s is ready (%d of %d)", ns, d.Name, st.ReadyReplicas, want)
	case st.ObservedGeneration < d.Generation || st.UpdatedReplicas < want:
		return Fail(fmt.Sprintf("a rollout is in progress or stuck: kubectl -n %s rollout status deployment/%s; %s", ns, d.Name, c.describeHint()),
			"%d of %d replicas of deployment %s/%s run the current spec (%d ready)", st.UpdatedReplicas, want, ns, d.Name, st.ReadyReplicas)
	}
	return Pass("")
}

// controlPlanePods lists the pods of the control plane's Deployment (by
// its selector, as the cluster has it).
func (c *Cluster) controlPlanePods(ctx context.Context) ([]corev1.Pod, error) {
	ns := c.namespace()
	d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, install.ControlPlaneName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading deployment %s/%s: %w", ns, install.ControlPlaneName, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s: its selector: %w", ns, d.Name, err)
	}
	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("listing the control plane's pods: %w", err)
	}
	return pods.Items, nil
}

// podReady reports the pod's Ready condition.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// checkControlPlanePods checks the pods' Ready condition: the kubelet's
// readiness probe of the admin endpoint's /ready (a port-forward to it is
// not needed).
func (c *Cluster) checkControlPlanePods(ctx context.Context) Outcome {
	pods, err := c.controlPlanePods(ctx)
	if err != nil {
		return Fail(c.describeHint(), "%v", err)
	}
	var notReady []string
	for i := range pods {
		if pods[i].DeletionTimestamp == nil && !podReady(&pods[i]) {
			notReady = append(notReady, pods[i].Name)
		}
	}
	switch {
	case len(pods) == 0:
		return Fail(c.describeHint(), "the control plane has no pods")
	case len(notReady) == len(pods):
		return Fail(c.describeHint()+" (/ready answers once the cluster's resources are loaded)",
			"no control plane pod is ready: %s", strings.Join(notReady, ", "))
	case len(notReady) > 0:
		return Warn(c.describeHint(), "%d of %d control plane pods are not ready: %s", len(notReady), len(pods), strings.Join(notReady, ", "))
	}
	return Pass("")
}

// readyEndpoints counts the ready endpoints of a Service's port (by its
// port number), from its EndpointSlices.
func (c *Cluster) readyEndpoints(ctx context.Context, ns, name string, port int32) (int, error) {
	svc, err := c.Client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("reading service %s/%s: %w", ns, name, err)
	}
	portName, found := "", false
	for _, p := range svc.Spec.Ports {
		if p.Port == port {
			portName, found = p.Name, true
		}
	}
	if !found {
		return 0, fmt.Errorf("service %s/%s has no port %d", ns, name, port)
	}
	slices, err := c.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name}).String(),
	})
	if err != nil {
		return 0, fmt.Errorf("listing the EndpointSlices of service %s/%s: %w", ns, name, err)
	}
	n := 0
	for _, s := range slices.Items {
		hasPort := false
		for _, p := range s.Ports {
			if p.Name != nil && *p.Name == portName {
				hasPort = true
			}
		}
		if !hasPort {
			continue
		}
		for _, e := range s.Endpoints {
			// A nil ready means ready (discovery.k8s.io/v1).
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				n++
			}
		}
	}
	return n, nil
}

func (c *Cluster) checkControlPlaneService(ctx context.Context) Outcome {
	ns := c.namespace()
	n, err := c.readyEndpoints(ctx, ns, install.ControlPlaneName, install.GRPCPort)
	if err != nil {
		return Fail("install weft: weft install --apply; "+c.describeHint(), "%v", err)
	}
	if n == 0 {
		return Fail("proxies cannot reach the control plane: check the control plane pods; "+c.describeHint(),
			"service %s/%s has no ready endpoints for its port %d", ns, install.ControlPlaneName, install.GRPCPort)
	}
	return Pass("")
}
