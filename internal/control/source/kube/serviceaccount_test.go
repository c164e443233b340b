package kube_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weft-mesh/weft/internal/cli"
	"github.com/weft-mesh/weft/internal/control/inject"
	"github.com/weft-mesh/weft/internal/control/source/kube"
	"github.com/weft-mesh/weft/internal/control/webhookca"
	"github.com/weft-mesh/weft/internal/install"
)

// installWeft renders weft's manifests for namespace ns (without the CRDs:
// the package's apiserver has them) and applies them as `weft install`
// does. The webhook fails open in a second, so that no other test's pod
// waits on a webhook no one serves, and the cluster-scoped objects are
// deleted when the test ends.
func installWeft(t *testing.T, cfg *rest.Config, ns string) install.Manifest {
	t.Helper()
	material, err := install.GenerateCA(install.DefaultTrustDomain)
	if err != nil {
		t.Fatal(err)
	}
	v := install.DefaultValues()
	v.Webhook.FailurePolicy = "Ignore"
	v.Webhook.TimeoutSeconds = 1
	o := install.Options{Namespace: ns, Values: v, CA: material}
	m, err := install.Render(o)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := install.NewCluster(cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Apply(t.Context(), m, install.ApplyOptions{}); err != nil {
		t.Fatalf("installing weft: %v", err)
	}
	t.Cleanup(func() {
		um, err := install.UninstallManifest(o)
		if err != nil {
			t.Error(err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cl.Delete(ctx, um, install.DeleteOptions{}); err != nil {
			t.Errorf("uninstalling weft: %v", err)
		}
	})
	return m
}

// controlContainer is the control plane's container of the rendered
// Deployment.
func controlContainer(t *testing.T, m install.Manifest) corev1.Container {
	t.Helper()
	dep := m.Find("Deployment", install.ControlPlaneName)
	if dep == nil {
		t.Fatal("the manifests have no control plane Deployment")
	}
	cs, _, err := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	if err != nil || len(cs) != 1 {
		t.Fatalf("the Deployment's containers: %v (%d)", err, len(cs))
	}
	obj, ok := cs[0].(map[string]any)
	if !ok {
		t.Fatalf("the Deployment's container is a %T", cs[0])
	}
	var c corev1.Container
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &c); err != nil {
		t.Fatal(err)
	}
	if sa, _, _ := unstructured.NestedString(dep.Object, "spec", "template", "spec", "serviceAccountName"); sa != install.ControlPlaneName {
		t.Fatalf("the Deployment runs as ServiceAccount %q, want %q", sa, install.ControlPlaneName)
	}
	return c
}

// localArgs are the Deployment's args with the addresses and directories
// of a pod replaced by this machine's: each replaced flag must be in args
// (a drift between the manifests and the command fails here or in the
// command's flag parsing). Nothing else is changed.
func localArgs(t *testing.T, args []string, local map[string]string) []string {
	t.Helper()
	out := append([]string(nil), args...)
	seen := map[string]int{}
	for i := 0; i < len(out); i++ {
		name, _, inline := strings.Cut(out[i], "=")
		v, ok := local[name]
		if !ok {
			continue
		}
		seen[name]++
		switch {
		case inline:
			out[i] = name + "=" + v
		case i+1 < len(out):
			out[i+1] = v
			i++
		default:
			t.Fatalf("the Deployment's %s has no value: %q", name, args)
		}
	}
	for name := range local {
		if seen[name] != 1 {
			t.Fatalf("the Deployment's args pass %s %d times, want once: %q", name, seen[name], args)
		}
	}
	return out
}

// writeSecretDir writes the data of the rendered Secret as the kubelet
// mounts it: one file per key.
func writeSecretDir(t *testing.T, secret *unstructured.Unstructured, dir string) []*x509.Certificate {
	t.Helper()
	data, _, err := unstructured.NestedStringMap(secret.Object, "data")
	if err != nil || len(data) == 0 {
		t.Fatalf("the rendered %s Secret has no data: %v", secret.GetName(), err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for k, v := range data {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatalf("key %s of the Secret: %v", k, err)
		}
		if err := os.WriteFile(filepath.Join(dir, k), b, 0o400); err != nil {
			t.Fatal(err)
		}
	}
	var anchors []*x509.Certificate
	pemData, _ := base64.StdEncoding.DecodeString(data["ca.crt"])
	for {
		var blk *pem.Block
		if blk, pemData = pem.Decode(pemData); blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		anchors = append(anchors, c)
	}
	if len(anchors) == 0 {
		t.Fatal("the rendered Secret's ca.crt holds no certificate")
	}
	return anchors
}

// serviceAccountKubeconfig writes a kubeconfig of the apiserver of cfg
// (its CA) that authenticates with token alone.
func serviceAccountKubeconfig(t *testing.T, cfg *rest.Config, token string) string {
	t.Helper()
	caData := cfg.CAData
	if len(caData) == 0 && cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		caData = b
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: caData}
	kc.AuthInfos["weft-control"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["weft-control"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "weft-control"}
	kc.CurrentContext = "weft-control"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestControlPlaneWithItsServiceAccount runs `weft control` as the install
// runs it on Kubernetes: weft's manifests applied to the apiserver, the
// Deployment's own args, and no credential but a token of the installed
// weft-control ServiceAccount (the RBAC of the manifests). Everything it
// does must work with those permissions: it becomes ready, takes its
// Lease, writes route status, publishes the anchors ConfigMap, patches
// its webhook's caBundle, serves a proxy its config, and logs nothing
// forbidden. That the permissions are no broader than needed is
// internal/install's TestKubeRBAC (access reviews of what is needed and of
// what must be denied); a few denials are checked here with real calls.
func TestControlPlaneWithItsServiceAccount(t *testing.T) {
	env := k8s.Get(t)
	ctx := t.Context()
	control := newCluster(t, nil, nil)
	// The application, in a namespace that enables injection: a meshed
	// pod behind a Service, and a route with a bad backend. Created before
	// the install: no kube-apiserver here reaches the webhook's Service.
	app := newCluster(t, map[string]string{kube.InjectKey: "enabled"}, nil)
	app.service("web", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")})
	app.pod(podSpec{name: "web-1", sa: "web", ip: "10.1.0.1", labels: map[string]string{"app": "web"}, ready: true})
	route := httpRoute("web", []gwv1.ParentReference{serviceParent("web", 0)}, backend("", "nope", 80))
	app.create(route)
	m := installWeft(t, env.Config, control.ns)

	tr, err := env.Clientset.CoreV1().ServiceAccounts(control.ns).CreateToken(ctx, install.ControlPlaneName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for the installed ServiceAccount: %v", err)
	}
	kubeconfig := serviceAccountKubeconfig(t, env.Config, tr.Status.Token)

	container := controlContainer(t, m)
	caDir := filepath.Join(t.TempDir(), "ca")
	anchors := writeSecretDir(t, m.Find("Secret", install.CASecretName), caDir)
	addr, admin, webhook := freeAddr(t), freeAddr(t), freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	args := localArgs(t, container.Args, map[string]string{
		"--listen":       "0.0.0.0:" + port,
		"--admin-listen": admin,
		"--data-dir":     t.TempDir(),
		"--ca-dir":       caDir,
	})
	// The webhook's port is the command's default (install.WebhookPort):
	// on this shared machine it gets a free one.
	args = append(args, "--webhook-listen", webhook)

	// The pod's environment: its name and namespace (the downward API),
	// the values the manifests set, and the ServiceAccount's credentials.
	t.Setenv("KUBECONFIG", kubeconfig)
	t.Setenv("POD_NAME", "weft-control-7d9f-abcde")
	t.Setenv("POD_NAMESPACE", control.ns)
	for _, e := range container.Env {
		if e.ValueFrom == nil {
			t.Setenv(e.Name, e.Value)
		}
	}

	var logs lockedBuffer
	root := cli.New()
	root.SetOut(io.Discard)
	root.SetErr(&logs)
	root.SetArgs(args)
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("weft control: %v", err)
		}
		var denied []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(strings.ToLower(l), "forbidden") {
				denied = append(denied, l)
			}
		}
		if len(denied) > 0 {
			t.Errorf("weft control was refused with its ServiceAccount's permissions:\n%s", strings.Join(denied, "\n"))
		}
		if t.Failed() {
			t.Logf("weft control %q; its logs:\n%s", args, logs.String())
		}
	}()

	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	waitFor(t, "weft control is ready", func() string {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("weft control exited: %v", err)
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

	waitFor(t, "it takes the leader-election Lease", func() string {
		lease, err := control.cs.CoordinationV1().Leases(control.ns).Get(ctx, install.LeaseName, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if h := lease.Spec.HolderIdentity; h == nil || *h != "weft-control-7d9f-abcde" {
			return fmt.Sprintf("holder %v, want $POD_NAME", h)
		}
		return ""
	})
	waitFor(t, "it writes the route's status", func() string {
		if got, want := routeParents(app, route), "web: Accepted=True Accepted, ResolvedRefs=False BackendNotFound"; got != want {
			return fmt.Sprintf("got %q, want %q", got, want)
		}
		return ""
	})
	waitFor(t, "it publishes the trust anchors in the injection-enabled namespace", func() string {
		cm, err := app.cs.CoreV1().ConfigMaps(app.ns).Get(ctx, inject.TrustAnchorsConfigMap, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if got, want := cm.Data[inject.TrustAnchorsKey], string(webhookca.AnchorsPEM(anchors)); got != want {
			return fmt.Sprintf("%s is %q, want %q", inject.TrustAnchorsKey, got, want)
		}
		return ""
	})
	waitFor(t, "it patches its webhook's caBundle", func() string {
		w, err := control.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, install.WebhookName, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		for _, h := range w.Webhooks {
			if got, want := string(h.ClientConfig.CABundle), string(webhookca.AnchorsPEM(anchors)); got != want {
				return fmt.Sprintf("webhook %s caBundle %q, want %q", h.Name, got, want)
			}
		}
		return ""
	})
	checkWebhook(t, webhook, anchors, control.ns, app.ns)

	// A proxy with a certificate for its ServiceAccount token (the
	// TokenReview is the control plane's) gets web's endpoints.
	stream := connectProxy(t, addr, anchors, app, "client", "client-1", app.ns+"/web")
	want := "10.1.0.1:8080 spiffe://weft.local/ns/" + app.ns + "/sa/web"
	waitFor(t, "the proxy gets web's endpoints", func() string {
		if got := proxyEndpoints(stream.config(), "web."+app.ns+":80"); got != want {
			return fmt.Sprintf("endpoints %q, want %q", got, want)
		}
		return ""
	})

	// No broader than needed: a few real calls it must not be able to make
	// (the full list is internal/install's TestKubeRBAC).
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{
		"listing the Secrets of kube-system": func() error {
			_, err := sa.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
			return err
		}(),
		"deleting a pod": sa.CoreV1().Pods(app.ns).Delete(ctx, "web-1", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}),
		"reading a ConfigMap other than " + inject.TrustAnchorsConfigMap: func() error {
			_, err := sa.CoreV1().ConfigMaps(app.ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
			return err
		}(),
		"reading a Secret other than " + install.CASecretName: func() error {
			_, err := sa.CoreV1().Secrets(control.ns).Get(ctx, "someone-elses", metav1.GetOptions{})
			return err
		}(),
	} {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s with the ServiceAccount's token: err = %v, want Forbidden", what, err)
		}
	}
}
