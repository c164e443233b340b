package install

import (
	"fmt"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// access is one permission asked of the apiserver.
type access struct {
	verb, group, resource, subresource, namespace, name string
}

func (a access) String() string {
	r := a.resource
	if a.subresource != "" {
		r += "/" + a.subresource
	}
	if a.group != "" {
		r += "." + a.group
	}
	where := "cluster-wide"
	if a.namespace != "" {
		where = "in " + a.namespace
	}
	if a.name != "" {
		r += " " + a.name
	}
	return a.verb + " " + r + " " + where
}

func (a access) attributes() *authorizationv1.ResourceAttributes {
	return &authorizationv1.ResourceAttributes{
		Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource, Namespace: a.namespace, Name: a.name,
	}
}

// needed is what the control plane does, by the reasons in rbac.go.
func needed(ns string) []access {
	var out []access
	for _, r := range []struct{ group, resource string }{
		{"", "services"}, {"", "pods"}, {"", "namespaces"}, {"discovery.k8s.io", "endpointslices"},
		{"gateway.networking.k8s.io", "httproutes"}, {"gateway.networking.k8s.io", "grpcroutes"},
		{"gateway.networking.k8s.io", "referencegrants"}, {"weft.dev", "workloads"},
	} {
		for _, v := range []string{"list", "watch", "get"} {
			out = append(out, access{verb: v, group: r.group, resource: r.resource})
		}
	}
	for _, r := range PolicyResources() {
		out = append(out,
			access{verb: "list", group: "policy.weft.dev", resource: r},
			access{verb: "watch", group: "policy.weft.dev", resource: r},
			access{verb: "patch", group: "policy.weft.dev", resource: r, subresource: "status", namespace: "shop", name: "x"},
			access{verb: "update", group: "policy.weft.dev", resource: r, subresource: "status", namespace: "shop", name: "x"})
	}
	for _, r := range []string{"httproutes", "grpcroutes"} {
		out = append(out,
			access{verb: "patch", group: "gateway.networking.k8s.io", resource: r, subresource: "status", namespace: "shop", name: "x"},
			access{verb: "update", group: "gateway.networking.k8s.io", resource: r, subresource: "status", namespace: "shop", name: "x"})
	}
	return append(out,
		access{verb: "create", group: "authentication.k8s.io", resource: "tokenreviews"},
		access{verb: "get", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", name: WebhookName},
		access{verb: "patch", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", name: WebhookName},
		access{verb: "list", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", name: WebhookName},
		access{verb: "watch", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", name: WebhookName},
		access{verb: "create", resource: "configmaps", namespace: "shop"},
		access{verb: "get", resource: "configmaps", namespace: "shop", name: AnchorsConfigMapName},
		access{verb: "update", resource: "configmaps", namespace: "shop", name: AnchorsConfigMapName},
		access{verb: "patch", resource: "configmaps", namespace: "shop", name: AnchorsConfigMapName},
		access{verb: "list", resource: "configmaps", name: AnchorsConfigMapName},
		access{verb: "watch", resource: "configmaps", name: AnchorsConfigMapName},
		access{verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: ns},
		access{verb: "get", group: "coordination.k8s.io", resource: "leases", namespace: ns, name: LeaseName},
		access{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: ns, name: LeaseName},
		access{verb: "get", resource: "secrets", namespace: ns, name: CASecretName},
		access{verb: "watch", resource: "secrets", namespace: ns, name: CASecretName},
		access{verb: "create", resource: "events", namespace: ns},
		access{verb: "patch", group: "events.k8s.io", resource: "events", namespace: ns, name: "x"},
	)
}

// forbidden is what the control plane must not be able to do.
func forbidden(ns string) []access {
	return []access{
		{verb: "list", resource: "secrets"},
		{verb: "list", resource: "secrets", namespace: ns},
		{verb: "get", resource: "secrets", namespace: ns, name: "someone-elses"},
		{verb: "get", resource: "secrets", namespace: "default", name: CASecretName},
		{verb: "update", resource: "secrets", namespace: ns, name: CASecretName},
		{verb: "delete", resource: "pods", namespace: "default", name: "web"},
		{verb: "create", resource: "pods", namespace: "default"},
		{verb: "create", resource: "pods", subresource: "exec", namespace: "default", name: "web"},
		{verb: "update", resource: "services", namespace: "default", name: "web"},
		{verb: "update", resource: "namespaces", name: "default"},
		{verb: "patch", group: "gateway.networking.k8s.io", resource: "httproutes", namespace: "shop", name: "x"},
		{verb: "patch", group: "gateway.networking.k8s.io", resource: "referencegrants", subresource: "status", namespace: "shop", name: "x"},
		{verb: "list", group: "gateway.networking.k8s.io", resource: "gateways"},
		{verb: "delete", group: "policy.weft.dev", resource: "authorizationpolicies", namespace: "shop", name: "x"},
		{verb: "update", group: "policy.weft.dev", resource: "authorizationpolicies", namespace: "shop", name: "x"},
		{verb: "get", resource: "configmaps", namespace: "default", name: "x"},
		{verb: "list", resource: "configmaps", namespace: ns},
		{verb: "list", resource: "configmaps"},
		{verb: "update", resource: "configmaps", namespace: "shop", name: "someone-elses"},
		{verb: "delete", resource: "configmaps", namespace: "shop", name: AnchorsConfigMapName},
		{verb: "list", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations"},
		{verb: "patch", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", name: "someone-elses"},
		{verb: "create", group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations"},
		{verb: "patch", group: "admissionregistration.k8s.io", resource: "validatingwebhookconfigurations", name: WebhookName},
		{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: ns, name: "someone-elses"},
		{verb: "get", group: "coordination.k8s.io", resource: "leases", namespace: "kube-system", name: LeaseName},
		{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: "default", name: "default"},
		{verb: "create", group: "rbac.authorization.k8s.io", resource: "clusterrolebindings"},
		{verb: "escalate", group: "rbac.authorization.k8s.io", resource: "clusterroles", name: ControlPlaneName},
		{verb: "impersonate", resource: "users", name: "admin"},
		{verb: "create", resource: "events", namespace: "default"},
		{verb: "delete", group: "apiextensions.k8s.io", resource: "customresourcedefinitions", name: "x"},
		{verb: "list", resource: "nodes"},
	}
}

// TestKubeRBAC installs weft into the real apiserver, takes a token of the
// weft-control ServiceAccount (TokenRequest) and asks the apiserver, as
// that ServiceAccount (SelfSubjectAccessReview) and about it
// (SubjectAccessReview, as an admin), whether each permission the control
// plane needs is granted and each it must not have is denied; then makes a
// few real calls with the token.
func TestKubeRBAC(t *testing.T) {
	env := kube.Get(t)
	ctx := t.Context()
	ns := uniqueNamespace(t, "weft-rbac")
	m, err := Render(Options{Namespace: ns, Values: pinned(), CRDs: true, CA: testCA()})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := NewCluster(env.Config, &reportWriter{t: t})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Apply(ctx, m, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}

	tr, err := env.Clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, ControlPlaneName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s/%s: %v", ns, ControlPlaneName, err)
	}
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = tr.Status.Token
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	user := fmt.Sprintf("system:serviceaccount:%s:%s", ns, ControlPlaneName)
	who, err := sa.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if who.Status.UserInfo.Username != user {
		t.Fatalf("the token authenticates as %q, want %q", who.Status.UserInfo.Username, user)
	}

	check := func(a access, want bool) {
		t.Helper()
		self, err := sa.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
			&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: a.attributes()}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("SelfSubjectAccessReview %v: %v", a, err)
		}
		other, err := env.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx,
			&authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: user, Groups: who.Status.UserInfo.Groups, ResourceAttributes: a.attributes(),
			}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("SubjectAccessReview %v: %v", a, err)
		}
		if self.Status.Allowed != want || other.Status.Allowed != want {
			verb := "denied"
			if want {
				verb = "allowed"
			}
			t.Errorf("weft-control should be %s to %v (self review: %v, review: %v %s)", verb, a, self.Status.Allowed, other.Status.Allowed, other.Status.Reason)
		}
	}
	for _, a := range needed(ns) {
		check(a, true)
	}
	for _, a := range forbidden(ns) {
		check(a, false)
	}

	// Real calls with the token.
	if _, err := sa.CoreV1().Pods("").List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		t.Errorf("listing pods in all namespaces: %v", err)
	}
	if _, err := sa.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		t.Errorf("listing EndpointSlices: %v", err)
	}
	if _, err := sa.CoreV1().Secrets(ns).Get(ctx, CASecretName, metav1.GetOptions{}); err != nil {
		t.Errorf("reading the CA Secret: %v", err)
	}
	if _, err := sa.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, WebhookName, metav1.GetOptions{}); err != nil {
		t.Errorf("reading its webhook configuration: %v", err)
	}
	// What the control plane's informers do: list by name through a
	// metadata.name field selector, which RBAC authorizes by that name.
	byName := func(n string) metav1.ListOptions { return metav1.ListOptions{FieldSelector: "metadata.name=" + n} }
	if _, err := sa.CoreV1().ConfigMaps("").List(ctx, byName(AnchorsConfigMapName)); err != nil {
		t.Errorf("listing the anchors ConfigMaps in all namespaces: %v", err)
	}
	if _, err := sa.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, byName(WebhookName)); err != nil {
		t.Errorf("listing its webhook configuration: %v", err)
	}
	if _, err := sa.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing all ConfigMaps: err = %v, want Forbidden", err)
	}
	if _, err := sa.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: "not-a-token"}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("creating a TokenReview: %v", err)
	}
	if _, err := sa.CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing all secrets: err = %v, want Forbidden", err)
	}
	if err := sa.CoreV1().Pods("default").Delete(ctx, "web", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("deleting a pod: err = %v, want Forbidden", err)
	}
	if _, err := sa.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("reading a ConfigMap in another namespace: err = %v, want Forbidden", err)
	}
}
