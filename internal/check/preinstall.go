package check

import (
	"context"
	"fmt"
	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// permission is one resource `weft install` creates.
type permission struct {
	what, group, resource string
}

// installPermissions are the cluster-scoped resources `weft install`
// creates: who cannot create them cannot install weft. (Creating a
// ClusterRole that grants permissions also needs those permissions, or
// escalate: the API server says so when applying.)
func installPermissions() []permission {
	return []permission{
		{"Namespaces", "", "namespaces"},
		{"CustomResourceDefinitions", "apiextensions.k8s.io", "customresourcedefinitions"},
		{"ClusterRoles", "rbac.authorization.k8s.io", "clusterroles"},
		{"ClusterRoleBindings", "rbac.authorization.k8s.io", "clusterrolebindings"},
		{"MutatingWebhookConfigurations", "admissionregistration.k8s.io", "mutatingwebhookconfigurations"},
	}
}

// checkCanCreate asks the API server whether the kubeconfig's user may
// create p (a SelfSubjectAccessReview).
func (c *Cluster) checkCanCreate(p permission) func(context.Context) Outcome {
	return func(ctx context.Context) Outcome {
		r, err := c.Client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: "create", Group: p.group, Resource: p.resource,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			return Fail("check the connection to the API server", "asking the API server whether %s may be created: %v", p.what, err)
		}
		if !r.Status.Allowed {
			reason := r.Status.Reason
			if reason == "" {
				reason = "no RBAC rule allows it"
			}
			return Fail(fmt.Sprintf("install weft as a cluster administrator (a user bound to the cluster-admin ClusterRole), "+
				"or ask one for create on %s: kubectl auth can-i create %s", p.resource, qualified(p)),
				"the kubeconfig's user may not create %s: %s", p.what, reason)
		}
		return Pass("")
	}
}

// qualified is a resource as kubectl names it: "clusterroles.rbac.authorization.k8s.io".
func qualified(p permission) string {
	if p.group == "" {
		return p.resource
	}
	return p.resource + "." + p.group
}

// checkCRDsCompatible checks each of weft's CRDs the cluster already has:
// weft's must be able to replace it. The API server refuses a CRD that
// changes the group, kind or scope, or that drops a version objects are
// still stored in (status.storedVersions).
func (c *Cluster) checkCRDsCompatible(ctx context.Context) Outcome {
	ours, err := embeddedCRDs()
	if err != nil {
		return Fail("this weft binary is broken: reinstall it", "%v", err)
	}
	var problems, present []string
	for _, want := range ours {
		got, err := c.APIExtensions.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return Fail("check the connection to the API server and that the kubeconfig's user may read CRDs",
				"reading CRD %s: %v", want.Name, err)
		}
		present = append(present, want.Name)
		problems = append(problems, incompatibilities(got, want)...)
	}
	if len(problems) > 0 {
		return Fail("these CRDs are not weft's, or are of a weft version this one cannot upgrade: "+
			"migrate the objects to a version this weft serves and remove the old one from status.storedVersions, "+
			"or delete the CRDs (and their objects) if nothing uses them",
			"%s", strings.Join(problems, "\n"))
	}
	if len(present) > 0 {
		return Pass("%d of %d already installed, compatible", len(present), len(ours))
	}
	return Pass("")
}

// incompatibilities says why want (this weft's CRD) cannot replace got
// (the cluster's).
func incompatibilities(got, want *apiextensionsv1.CustomResourceDefinition) []string {
	var out []string
	if got.Spec.Group != want.Spec.Group {
		out = append(out, fmt.Sprintf("CRD %s has group %s, weft's %s", want.Name, got.Spec.Group, want.Spec.Group))
	}
	if got.Spec.Names.Kind != want.Spec.Names.Kind {
		out = append(out, fmt.Sprintf("CRD %s has kind %s, weft's %s", want.Name, got.Spec.Names.Kind, want.Spec.Names.Kind))
	}
	if got.Spec.Scope != want.Spec.Scope {
		out = append(out, fmt.Sprintf("CRD %s is %s, weft's is %s", want.Name, got.Spec.Scope, want.Spec.Scope))
	}
	var served []string
	for _, v := range want.Spec.Versions {
		served = append(served, v.Name)
	}
	for _, s := range got.Status.StoredVersions {
		if !slices.Contains(served, s) {
			out = append(out, fmt.Sprintf("CRD %s stores objects as %s/%s, which this weft does not serve (it serves %s)",
				want.Name, want.Spec.Group, s, strings.Join(served, ", ")))
		}
	}
	return out
}

// gatewayAPICRDs are the Gateway API CRDs weft's routes need.
func gatewayAPICRDs() []string {
	return []string{"httproutes.gateway.networking.k8s.io", "grpcroutes.gateway.networking.k8s.io"}
}

// checkGatewayAPI warns when the Gateway API's route CRDs are missing:
// weft runs without them, but routes do nothing until they are installed.
func (c *Cluster) checkGatewayAPI(ctx context.Context) Outcome {
	var missing []string
	for _, name := range gatewayAPICRDs() {
		_, err := c.APIExtensions.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			missing = append(missing, name)
			continue
		}
		if err != nil {
			return Warn("check that the kubeconfig's user may read CRDs", "reading CRD %s: %v", name, err)
		}
	}
	if len(missing) == 0 {
		return Pass("")
	}
	v := gatewayAPIVersion()
	if v == "" {
		v = "<version>" // see docs/install.md
	}
	return Warn("install the Gateway API standard channel, the version weft is built with (see docs/install.md):\n"+
		"kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/"+v+"/standard-install.yaml",
		"not installed: %s; HTTPRoutes and GRPCRoutes will not work until they are", strings.Join(missing, ", "))
}
