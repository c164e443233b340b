package kube_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weft-mesh/weft/internal/cli"
	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/control/inject"
	"github.com/weft-mesh/weft/internal/control/source/kube"
	"github.com/weft-mesh/weft/internal/control/webhookca"
	"github.com/weft-mesh/weft/internal/install"
)

// lockedBuffer is a bytes.Buffer safe for the control plane's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// certManagerCA writes a CA in the layout of cert-manager's Secret of a CA
// Certificate (tls.crt: the issuer, tls.key: its key, ca.crt: the root),
// as the install mounts it, and returns the root.
func certManagerCA(t *testing.T, dir string) []*x509.Certificate {
	t.Helper()
	now := time.Now()
	mk := func(cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, key
	}
	root, rootKey := mk("weft root", nil, nil)
	issuer, issuerKey := mk("weft issuer", root, rootKey)
	keyDER, err := x509.MarshalPKCS8PrivateKey(issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		ca.SuppliedCertFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuer.Raw}),
		ca.SuppliedKeyFile:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		ca.SuppliedCAFile:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return []*x509.Certificate{root}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestControlCommandOnKubernetes runs `weft control` as the install
// manifests run it (--kubernetes --listen --data-dir --ca-dir, the CA a
// mounted cert-manager Secret, the cluster from the environment): it
// becomes ready, a pod's proxy gets a certificate for its ServiceAccount
// token and its config, and the replica elected writes route status.
func TestControlCommandOnKubernetes(t *testing.T) {
	env := k8s.Get(t)
	c := newCluster(t, map[string]string{kube.InjectKey: "enabled"}, nil)
	c.service("web", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")})
	c.pod(podSpec{name: "web-1", sa: "web", ip: "10.1.0.1", labels: map[string]string{"app": "web"}, ready: true})
	caDir := filepath.Join(t.TempDir(), "ca")
	anchors := certManagerCA(t, caDir)
	t.Setenv("KUBECONFIG", env.KubeconfigPath)
	t.Setenv("POD_NAMESPACE", c.ns)
	t.Setenv("POD_NAME", "weft-control-0")

	// The install's --listen 0.0.0.0:8086, on a free port.
	addr, admin, webhook := freeAddr(t), freeAddr(t), freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	var logs lockedBuffer
	root := cli.New()
	root.SetOut(io.Discard)
	root.SetErr(&logs)
	root.SetArgs([]string{"control", "--kubernetes", "--listen", "0.0.0.0:" + port, "--data-dir", t.TempDir(), "--ca-dir", caDir,
		"--admin-listen", admin, "--webhook-listen", webhook, "--log-level", "debug"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("weft control: %v", err)
		}
		if t.Failed() {
			t.Logf("weft control's logs:\n%s", logs.String())
		}
	}()
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	waitFor(t, "weft control is ready", func() string {
		select {
		case err := <-done:
			t.Fatalf("weft control exited: %v\n%s", err, logs.String())
		default:
		}
		resp, err := hc.Get("http://" + admin + "/ready")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Sprintf("/ready: %s %s", resp.Status, body)
		}
		return ""
	})

	stream := connectProxy(t, addr, anchors, c, "client", "client-1", c.ns+"/web")
	want := "10.1.0.1:8080 spiffe://weft.local/ns/" + c.ns + "/sa/web"
	waitFor(t, "the proxy gets web's endpoints", func() string {
		if got := proxyEndpoints(stream.config(), "web."+c.ns+":80"); got != want {
			return fmt.Sprintf("endpoints %q, want %q", got, want)
		}
		return ""
	})

	route := httpRoute("web", []gwv1.ParentReference{serviceParent("web", 0)}, backend("", "nope", 80))
	c.create(route)
	waitFor(t, "the elected replica writes the route's status", func() string {
		if got, want := routeParents(c, route), "web: Accepted=True Accepted, ResolvedRefs=False BackendNotFound"; got != want {
			return fmt.Sprintf("got %q, want %q", got, want)
		}
		return ""
	})
	// An application namespace (the control plane's own pods are never
	// injected).
	app := newCluster(t, map[string]string{kube.InjectKey: "enabled"}, nil)
	checkWebhook(t, webhook, anchors, c.ns, app.ns)
	waitFor(t, "the leader publishes the trust anchors ConfigMap in the enabled namespace", func() string {
		cm, err := c.cs.CoreV1().ConfigMaps(app.ns).Get(t.Context(), inject.TrustAnchorsConfigMap, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if got, want := cm.Data[inject.TrustAnchorsKey], string(webhookca.AnchorsPEM(anchors)); got != want {
			return fmt.Sprintf("%s is %q, want the anchors %q", inject.TrustAnchorsKey, got, want)
		}
		return ""
	})
	lease, err := c.cs.CoordinationV1().Leases(c.ns).Get(t.Context(), "weft-control", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the leader-election Lease: %v", err)
	}
	if h := lease.Spec.HolderIdentity; h == nil || *h != "weft-control-0" {
		t.Errorf("lease holder %v, want weft-control-0 ($POD_NAME)", h)
	}
}

// checkWebhook posts an AdmissionReview of a pod of the enabled namespace
// ns to the injection webhook at addr as the API server does: over TLS
// verified with the trust anchors (the caBundle) for the name of the
// control plane's Service in controlNS. The pod must come back allowed
// with a JSONPatch.
func checkWebhook(t *testing.T, addr string, anchors []*x509.Certificate, controlNS, ns string) {
	t.Helper()
	pool := x509.NewCertPool()
	for _, c := range anchors {
		pool.AddCert(c)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, ServerName: install.ControlPlaneName + "." + controlNS + ".svc", MinVersion: tls.VersionTLS12,
	}}}
	defer hc.CloseIdleConnections()
	pod, err := json.Marshal(&corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	review, err := json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID("review-1"), Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: ns,
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: pod},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Post("https://"+addr+inject.Path, "application/json", bytes.NewReader(review))
	if err != nil {
		t.Fatalf("the injection webhook over TLS verified with the anchors: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the injection webhook: %s %s", resp.Status, body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("the webhook's answer: %v: %s", err, body)
	}
	if r := out.Response; r == nil || r.UID != "review-1" || !r.Allowed || r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch || !bytes.Contains(r.Patch, []byte(inject.ProxyContainerName)) {
		t.Errorf("the webhook's answer for a pod of an enabled namespace is not an injection: %s", body)
	}
}
