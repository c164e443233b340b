package check

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weft-mesh/weft/internal/control/inject"
	"github.com/weft-mesh/weft/internal/install"
)

// syncNote is said with the proxies' check: what it cannot see.
const syncNote = "not checked: whether each proxy is connected to the control plane and has its latest config " +
	"(that needs a status API on the control plane, which it does not have yet)"

// maxListed bounds the pods a result names.
const maxListed = 10

// setting is a pod's or namespace's value of key: the annotation, else the
// label.
func setting(labels, annotations map[string]string, key string) string {
	if v, ok := annotations[key]; ok {
		return v
	}
	return labels[key]
}

// hasProxy reports whether the pod has a weft-proxy container (a native
// sidecar among its init containers, or a container).
func hasProxy(pod *corev1.Pod) bool {
	return slices.ContainsFunc(slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers), func(c corev1.Container) bool {
		return c.Name == inject.ProxyContainerName
	})
}

// meshed reports whether a pod should run a weft-proxy, as the injector
// decides: it has one, or injection is enabled on it or (unless disabled on
// it) on its namespace, by a label or an annotation.
func meshed(pod *corev1.Pod, ns *corev1.Namespace) bool {
	if hasProxy(pod) {
		return true
	}
	switch setting(pod.Labels, pod.Annotations, install.InjectLabel) {
	case inject.Enabled:
		return true
	case inject.Disabled:
		return false
	}
	return ns != nil && setting(ns.Labels, ns.Annotations, install.InjectLabel) == inject.Enabled
}

// proxyProblem says what is wrong with the proxy of a meshed pod, or "".
func proxyProblem(pod *corev1.Pod) string {
	if !hasProxy(pod) {
		return "no weft-proxy: created before injection was enabled, or the webhook was down"
	}
	statuses := slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses)
	i := slices.IndexFunc(statuses, func(s corev1.ContainerStatus) bool { return s.Name == inject.ProxyContainerName })
	if i < 0 {
		return "weft-proxy has not started (pod " + strings.ToLower(string(pod.Status.Phase)) + ")"
	}
	s := statuses[i]
	switch {
	case s.Ready:
		return ""
	case s.State.Waiting != nil:
		return "weft-proxy is waiting: " + s.State.Waiting.Reason
	case s.State.Terminated != nil:
		return "weft-proxy terminated: " + s.State.Terminated.Reason
	default:
		return "weft-proxy is not ready"
	}
}

// checkProxies checks that every meshed pod has a ready weft-proxy. The
// proxy is ready once it has its certificate and config from the control
// plane.
func (c *Cluster) checkProxies(ctx context.Context) Outcome {
	nsList, err := c.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return Fail("check that the kubeconfig's user may list namespaces", "listing namespaces: %v", err)
	}
	namespaces := map[string]*corev1.Namespace{}
	for i := range nsList.Items {
		namespaces[nsList.Items[i].Name] = &nsList.Items[i]
	}
	var problems []string
	meshedPods, missing, cont := 0, 0, ""
	for {
		pods, err := c.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{Limit: 500, Continue: cont})
		if err != nil {
			return Fail("check that the kubeconfig's user may list pods", "listing pods: %v", err)
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			if !meshed(p, namespaces[p.Namespace]) {
				continue
			}
			meshedPods++
			if pr := proxyProblem(p); pr != "" {
				if !hasProxy(p) {
					missing++
				}
				problems = append(problems, fmt.Sprintf("%s/%s: %s", p.Namespace, p.Name, pr))
			}
		}
		if cont = pods.GetContinue(); cont == "" {
			break
		}
	}
	if len(problems) == 0 {
		return Pass("%d meshed pods, each with a ready proxy; %s", meshedPods, syncNote)
	}
	slices.Sort(problems)
	listed := problems
	if len(listed) > maxListed {
		listed = append(slices.Clone(listed[:maxListed]), fmt.Sprintf("and %d more", len(problems)-maxListed))
	}
	var hints []string
	if missing > 0 {
		hints = append(hints, "restart the workloads of pods without a proxy (kubectl rollout restart) so that the webhook injects it")
	}
	if missing < len(problems) {
		hints = append(hints, "see why a proxy is not ready: kubectl -n NAMESPACE logs POD -c "+inject.ProxyContainerName+
			" (a proxy that cannot reach the control plane or get its certificate stays not ready)")
	}
	return Fail(strings.Join(hints, "\n"), "%d of %d meshed pods have no ready proxy:\n%s\n%s",
		len(problems), meshedPods, strings.Join(listed, "\n"), syncNote)
}
