package k8stest_test

import (
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestControllerManagerRuns checks the controllers weft's tests rely on:
// EndpointSlices for a Service, a namespace's default ServiceAccount, and
// ServiceAccount token Secrets signed with the key the apiserver verifies.
func TestControllerManagerRuns(t *testing.T) {
	cs := kube.Get(t).Clientset
	ctx := t.Context()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "kcm-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	_, err = cs.CoreV1().Services(ns.Name).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a Service: %v", err)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		slices, err := cs.DiscoveryV1().EndpointSlices(ns.Name).List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=web",
		})
		if err != nil {
			t.Fatalf("listing EndpointSlices: %v", err)
		}
		_, saErr := cs.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		if len(slices.Items) > 0 && saErr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %d EndpointSlices for Service web, default ServiceAccount: %v; "+
				"is kube-controller-manager running its controllers?", len(slices.Items), saErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestControllerManagerSignsWithTheAPIServersKey(t *testing.T) {
	cs := kube.Get(t).Clientset
	ctx := t.Context()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "kcm-token-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a ServiceAccount: %v", err)
	}
	// A token Secret is filled in by kube-controller-manager, signed with
	// --service-account-private-key-file.
	if _, err := cs.CoreV1().Secrets(ns.Name).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "legacy-token",
			Annotations: map[string]string{corev1.ServiceAccountNameKey: "legacy"},
		},
		Type: corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a token Secret: %v", err)
	}
	var token []byte
	for deadline := time.Now().Add(30 * time.Second); len(token) == 0; time.Sleep(100 * time.Millisecond) {
		s, err := cs.CoreV1().Secrets(ns.Name).Get(ctx, "legacy-token", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("reading the token Secret: %v", err)
		}
		token = s.Data[corev1.ServiceAccountTokenKey]
		if len(token) == 0 && time.Now().After(deadline) {
			t.Fatal("kube-controller-manager did not fill the token Secret within 30s")
		}
	}
	review, err := cs.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: string(token)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("reviewing the token: %v", err)
	}
	want := "system:serviceaccount:" + ns.Name + ":legacy"
	if !review.Status.Authenticated || review.Status.User.Username != want {
		t.Errorf("TokenReview of kube-controller-manager's token = authenticated %v as %q (error %q), want %q",
			review.Status.Authenticated, review.Status.User.Username, review.Status.Error, want)
	}
}
