package inject

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// serveTLS serves h over TLS on a loopback port with a certificate for
// 127.0.0.1 from a CA it makes, and returns the URL and the CA's PEM.
func serveTLS(t *testing.T, h http.Handler) (string, []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "inject test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, h)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("webhook server: %v", err)
		}
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return "https://" + ln.Addr().String() + Path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}

// TestKubeWebhook registers the handler with a real kube-apiserver and
// creates pods through it.
func TestKubeWebhook(t *testing.T) {
	cs := kube.Get(t).Clientset
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	url, caPEM := serveTLS(t, NewHandler(testOptions(), NamespacesFromClient(cs.CoreV1()), nil))
	const nsName = "meshed"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: nsName, Labels: map[string]string{AnnotationInject: Enabled},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// As internal/install registers it, with a URL instead of the Service.
	hook := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "weft-inject-test"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         "namespace.inject.weft.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caPEM},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: AnnotationInject, Operator: metav1.LabelSelectorOpIn, Values: []string{Enabled}},
			}},
			ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: AnnotationInject, Operator: metav1.LabelSelectorOpNotIn, Values: []string{Disabled}},
			}},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			TimeoutSeconds:          ptr.To[int32](5),
			AdmissionReviewVersions: []string{"v1"},
			ReinvocationPolicy:      ptr.To(admissionregistrationv1.NeverReinvocationPolicy),
		}},
	}
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, hook, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), hook.Name, metav1.DeleteOptions{})
	})
	waitForWebhook(ctx, t, cs, nsName)

	create := func(p *corev1.Pod) (*corev1.Pod, error) {
		p.Namespace = nsName
		return cs.CoreV1().Pods(nsName).Create(ctx, p, metav1.CreateOptions{})
	}
	app := func(name string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app", Image: "example.test/app:1",
				Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intOrString("http")}}},
			}}},
		}
	}

	t.Run("injected", func(t *testing.T) {
		got, err := create(app("web"))
		if err != nil {
			t.Fatal(err)
		}
		if names := containerNames(got.Spec.InitContainers); !slices.Equal(names, []string{InitContainerName, ProxyContainerName}) {
			t.Fatalf("init containers %v", names)
		}
		proxy := got.Spec.InitContainers[1]
		if proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Error("the proxy is not a native sidecar")
		}
		if got.Annotations[AnnotationInjected] != "v0.0.0-test" || got.Annotations[AnnotationProbePortsSkipped] != "8080" {
			t.Errorf("annotations %v", got.Annotations)
		}
		if !slices.Contains(got.Spec.InitContainers[0].Args, "--skip-inbound-ports=8080") {
			t.Errorf("weft-init args %v", got.Spec.InitContainers[0].Args)
		}

		// Re-applying the injected pod (as a new object) changes nothing.
		again := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-again", Annotations: got.Annotations}, Spec: *got.Spec.DeepCopy()}
		again.Spec.NodeName = ""
		stored, err := create(again)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(containerNames(stored.Spec.InitContainers), containerNames(got.Spec.InitContainers)) ||
			!slices.Equal(containerNames(stored.Spec.Containers), containerNames(got.Spec.Containers)) ||
			len(stored.Spec.Volumes) != len(got.Spec.Volumes) {
			t.Errorf("re-injection changed the pod: init %v containers %v volumes %d",
				containerNames(stored.Spec.InitContainers), containerNames(stored.Spec.Containers), len(stored.Spec.Volumes))
		}
	})
	t.Run("bad annotation refused", func(t *testing.T) {
		p := app("bad")
		p.Annotations = map[string]string{"traffic.weft.io/skip-outbound-cidrs": "10.300.0.0/16"}
		_, err := create(p)
		if err == nil || !strings.Contains(err.Error(), `annotation traffic.weft.io/skip-outbound-cidrs: "10.300.0.0/16"`) {
			t.Fatalf("created, or refused for another reason: %v", err)
		}
	})
	t.Run("disabled untouched", func(t *testing.T) {
		for _, p := range []*corev1.Pod{
			withAnnotations(app("off-annotation"), map[string]string{AnnotationInject: Disabled}),
			withLabels(app("off-label"), map[string]string{AnnotationInject: Disabled}),
		} {
			got, err := create(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Spec.InitContainers) != 0 || got.Annotations[AnnotationInjected] != "" {
				t.Errorf("%s was injected", p.Name)
			}
		}
	})
	t.Run("host network untouched", func(t *testing.T) {
		p := app("host")
		p.Spec.HostNetwork = true
		got, err := create(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Spec.InitContainers) != 0 {
			t.Error("a host-network pod was injected")
		}
	})
}

// waitForWebhook creates pods until the apiserver calls the new webhook
// (its configuration reaches the admission chain asynchronously).
func waitForWebhook(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	for i := 0; ; i++ {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("warmup-%d", i)},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.test/app:1"}}},
		}
		got, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err == nil && got.Annotations[AnnotationInjected] != "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the webhook was never called: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func containerNames(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func withAnnotations(p *corev1.Pod, a map[string]string) *corev1.Pod { p.Annotations = a; return p }
func withLabels(p *corev1.Pod, l map[string]string) *corev1.Pod      { p.Labels = l; return p }

func intOrString(name string) intstr.IntOrString { return intstr.FromString(name) }
