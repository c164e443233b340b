package install

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

func fromUnstructured[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	var out T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &out); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return &out
}

// TestManifestPolicies checks every rendered manifest against the policies
// a cluster's admission (Pod Security "restricted", kube-score-like checks)
// would apply, and the RBAC against least privilege.
func TestManifestPolicies(t *testing.T) {
	for name, o := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			m, err := Render(o)
			if err != nil {
				t.Fatal(err)
			}
			pods := 0
			for _, u := range m.Objects {
				if (u.GetKind() != "Namespace" && !strings.HasPrefix(u.GetName(), "weft")) || u.GetLabels()[labelPartOf] != "weft" {
					t.Errorf("%s %s: not named weft-* or not labelled part-of weft", u.GetKind(), u.GetName())
				}
				switch u.GetKind() {
				case "Deployment":
					pods++
					d := fromUnstructured[appsv1.Deployment](t, u)
					checkPodSpec(t, u.GetName(), &d.Spec.Template.Spec)
					if *d.Spec.Replicas < MinReplicas {
						t.Errorf("replicas %d", *d.Spec.Replicas)
					}
				case "ClusterRole":
					checkRules(t, "ClusterRole", fromUnstructured[rbacv1.ClusterRole](t, u).Rules)
				case "Role":
					checkRules(t, "Role", fromUnstructured[rbacv1.Role](t, u).Rules)
				}
			}
			if pods != 1 {
				t.Errorf("%d Deployments, want 1", pods)
			}
		})
	}
}

func checkPodSpec(t *testing.T, name string, spec *corev1.PodSpec) {
	t.Helper()
	errorf := func(format string, args ...any) { t.Errorf("%s: "+format, append([]any{name}, args...)...) }
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		errorf("shares a host namespace")
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		errorf("pod may run as root: %+v", psc)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		errorf("pod seccomp profile is not RuntimeDefault")
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			errorf("hostPath volume %s", v.Name)
		}
	}
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			errorf("container %s has no securityContext", c.Name)
			continue
		case sc.Privileged != nil && *sc.Privileged:
			errorf("container %s is privileged", c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			errorf("container %s allows privilege escalation", c.Name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			errorf("container %s has a writable root filesystem", c.Name)
		case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
			errorf("container %s may run as root", c.Name)
		case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
			errorf("container %s does not drop all capabilities (or adds some)", c.Name)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			if !hasReq || !hasLim || req.IsZero() || lim.Cmp(req) < 0 {
				errorf("container %s: %s request %v and limit %v must be set, limit >= request", c.Name, r, req.String(), lim.String())
			}
		}
		if c.ReadinessProbe == nil || c.LivenessProbe == nil {
			errorf("container %s lacks a readiness or liveness probe", c.Name)
		}
		if tag := c.Image[strings.LastIndex(c.Image, ":")+1:]; tag == "" || strings.Contains(tag, "/") {
			errorf("container %s image %q has no tag", c.Name, c.Image)
		}
	}
}

// checkRules refuses what a control plane must never be granted.
func checkRules(t *testing.T, what string, rules []rbacv1.PolicyRule) {
	t.Helper()
	for _, r := range rules {
		desc := fmt.Sprintf("%s rule %v %v %v", what, r.APIGroups, r.Resources, r.Verbs)
		for _, list := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames} {
			if slices.Contains(list, "*") {
				t.Errorf("%s: a wildcard", desc)
			}
		}
		for _, v := range r.Verbs {
			if slices.Contains([]string{"escalate", "bind", "impersonate", "delete", "deletecollection"}, v) {
				t.Errorf("%s: grants %s", desc, v)
			}
		}
		for _, res := range r.Resources {
			switch {
			case res == "secrets" && (len(r.ResourceNames) == 0 || slices.ContainsFunc(r.Verbs, func(v string) bool { return v != "get" && v != "watch" })):
				t.Errorf("%s: secrets beyond get/watch of named ones", desc)
			case slices.Contains([]string{"pods", "services", "endpointslices", "namespaces", "httproutes", "grpcroutes", "referencegrants"}, res) &&
				slices.ContainsFunc(r.Verbs, func(v string) bool { return !slices.Contains(read(), v) }):
				t.Errorf("%s: writes %s (only their status may be written)", desc, res)
			case res == "configmaps" && !slices.Equal(r.ResourceNames, []string{AnchorsConfigMapName}) && !slices.Equal(r.Verbs, []string{"create"}):
				t.Errorf("%s: configmaps beyond creating any and reading and updating %s", desc, AnchorsConfigMapName)
			case res == "configmaps":
			case strings.Contains(res, "webhookconfigurations") && !slices.Equal(r.ResourceNames, []string{WebhookName}):
				t.Errorf("%s: webhook configurations other than its own", desc)
			case slices.Contains([]string{"clusterroles", "clusterrolebindings", "roles", "rolebindings", "serviceaccounts", "serviceaccounts/token", "configmaps", "nodes", "customresourcedefinitions"}, res):
				t.Errorf("%s: the control plane has no business with %s", desc, res)
			}
		}
	}
}

// TestRBACCoversCRDs fails when a CRD is added to deploy/crds without the
// control plane being allowed to read it (and write its status, if it has
// one): the RBAC is an explicit list, so it must be kept up to date.
func TestRBACCoversCRDs(t *testing.T) {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	allows := func(group, resource, verb string) bool {
		for _, r := range clusterRules() {
			if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) && len(r.ResourceNames) == 0 {
				return true
			}
		}
		return false
	}
	for _, crd := range crds {
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
		for _, v := range read() {
			if !allows(group, plural, v) {
				t.Errorf("the ClusterRole does not allow %s %s.%s", v, plural, group)
			}
		}
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		for _, ver := range versions {
			if _, hasStatus, _ := unstructured.NestedMap(ver.(map[string]any), "subresources", "status"); hasStatus {
				for _, v := range writeStatus() {
					if !allows(group, plural+"/status", v) {
						t.Errorf("the ClusterRole does not allow %s %s/status.%s", v, plural, group)
					}
				}
			}
		}
	}
}
