package check_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/weft-mesh/weft/internal/check"
	"github.com/weft-mesh/weft/internal/cli"
	"github.com/weft-mesh/weft/internal/install"
	"github.com/weft-mesh/weft/internal/k8stest"
)

// runChecks runs checks and returns the results by name, the text output
// and the error.
func runChecks(t *testing.T, checks []check.Check) (map[string]check.Result, string, error) {
	t.Helper()
	var out bytes.Buffer
	rep, err := check.Run(t.Context(), &out, checks, check.Options{Timeout: 20 * time.Second})
	if err != nil && !errors.Is(err, check.ErrFailed) {
		t.Fatalf("run: %v", err)
	}
	t.Logf("weft check:\n%s", out.String())
	byName := map[string]check.Result{}
	for _, r := range rep.Checks {
		byName[r.Name] = r
	}
	return byName, out.String(), err
}

// expect is what one check should say.
type expect struct {
	name    string
	status  check.Status
	message string // contained in the message
	hint    string // contained in the hint
}

func assertResults(t *testing.T, got map[string]check.Result, want []expect) {
	t.Helper()
	for _, w := range want {
		r, ok := got[w.name]
		if !ok {
			t.Errorf("check %q did not run", w.name)
			continue
		}
		if r.Status != w.status || !strings.Contains(r.Message, w.message) || !strings.Contains(r.Hint, w.hint) {
			t.Errorf("check %q: %v %q, hint %q; want %v with message containing %q and hint containing %q",
				w.name, r.Status, r.Message, r.Hint, w.status, w.message, w.hint)
		}
	}
}

func allOK(t *testing.T, got map[string]check.Result, err error, except ...string) {
	t.Helper()
	if err != nil {
		t.Errorf("the run failed: %v", err)
	}
	for name, r := range got {
		skip := false
		for _, e := range except {
			skip = skip || e == name
		}
		if !skip && r.Status != check.OK {
			t.Errorf("check %q: %v %q (hint %q), want OK", name, r.Status, r.Message, r.Hint)
		}
	}
}

func newCluster(t *testing.T, cfg *rest.Config, ns string) *check.Cluster {
	t.Helper()
	cl, err := check.NewCluster(rest.CopyConfig(cfg), ns)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// weftCheck runs `weft check` through the CLI.
func weftCheck(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := cli.New()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetArgs(append([]string{"check"}, args...))
	err := root.ExecuteContext(t.Context())
	t.Logf("weft check %s:\n%s", strings.Join(args, " "), out.String())
	return out.String(), err
}

func TestKubePreInstall(t *testing.T) {
	env := check.SharedKube(t)
	cl := newCluster(t, env.Config, "")

	t.Run("fresh cluster", func(t *testing.T) {
		got, _, err := runChecks(t, cl.PreInstall())
		allOK(t, got, err)
		if len(got) < 8 {
			t.Errorf("%d checks ran, want the API, version, 5 permissions, CRDs and Gateway API ones", len(got))
		}
	})

	t.Run("a user who may not install", func(t *testing.T) {
		cfg := rest.CopyConfig(env.Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "jane", Groups: []string{"system:authenticated"}}
		got, _, err := runChecks(t, newCluster(t, cfg, "").PreInstall())
		if !errors.Is(err, check.ErrFailed) {
			t.Errorf("err = %v, want a failure", err)
		}
		assertResults(t, got, []expect{
			{"can reach the Kubernetes API server", check.OK, "", ""},
			{"can create Namespaces", check.Error, "may not create Namespaces", "kubectl auth can-i create namespaces"},
			{"can create CustomResourceDefinitions", check.Error, "may not create", "cluster-admin"},
			{"can create MutatingWebhookConfigurations", check.Error, "may not create", "mutatingwebhookconfigurations.admissionregistration.k8s.io"},
		})
	})

	t.Run("through the CLI, as JSON", func(t *testing.T) {
		out, err := weftCheck(t, "--pre", "--kubeconfig", env.KubeconfigPath, "-o", "json")
		var rep check.Report
		if err != nil || json.Unmarshal([]byte(out), &rep) != nil || !rep.Success || len(rep.Checks) == 0 {
			t.Errorf("weft check --pre -o json: %v, %+v", err, rep)
		}
	})

	t.Run("no kubeconfig and --pre", func(t *testing.T) {
		if _, err := weftCheck(t, "--pre", "--kubeconfig", t.TempDir()+"/none"); err == nil || !strings.Contains(err.Error(), "kubeconfig") {
			t.Errorf("err = %v, want one about the kubeconfig", err)
		}
	})
}

// installed is an install of weft in the test cluster.
type installed struct {
	ns       string
	client   kubernetes.Interface
	manifest install.Manifest
	apply    *install.Cluster
}

func installWeft(t *testing.T, env *k8stest.Env) installed {
	t.Helper()
	ns := "weft-" + rand.String(6)
	material, err := install.GenerateCA("weft.local")
	if err != nil {
		t.Fatal(err)
	}
	m, err := install.Render(install.Options{Namespace: ns, Values: install.DefaultValues(), CRDs: true, CA: material})
	if err != nil {
		t.Fatal(err)
	}
	ac, err := install.NewCluster(env.Config, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := ac.Apply(t.Context(), m, install.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	return installed{ns: ns, client: env.Clientset, manifest: m, apply: ac}
}

// runControlPlane does what the kubelet, the Deployment and EndpointSlice
// controllers and the control plane would: two ready pods of the
// Deployment, its status, the Service's EndpointSlice and the webhook's
// caBundle.
func (in installed) runControlPlane(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	c := in.client
	d, err := c.AppsV1().Deployments(in.ns).Get(ctx, install.ControlPlaneName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var endpoints []discoveryv1.Endpoint
	for i := range 2 {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", install.ControlPlaneName, i), Namespace: in.ns, Labels: d.Spec.Template.Labels},
			Spec:       d.Spec.Template.Spec,
		}
		p, err := c.CoreV1().Pods(in.ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ip := fmt.Sprintf("10.1.0.%d", i+10)
		p.Status = corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		}
		if _, err := c.CoreV1().Pods(in.ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		endpoints = append(endpoints, discoveryv1.Endpoint{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: in.ns, Name: p.Name, UID: p.UID},
		})
	}
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: *d.Spec.Replicas, UpdatedReplicas: *d.Spec.Replicas,
		ReadyReplicas: *d.Spec.Replicas, AvailableReplicas: *d.Spec.Replicas,
	}
	if _, err := c.AppsV1().Deployments(in.ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := c.CoreV1().Services(in.ns).Get(ctx, install.ControlPlaneName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: install.ControlPlaneName + "-x", Namespace: in.ns,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   endpoints,
	}
	for _, p := range svc.Spec.Ports {
		var target int32
		for _, cp := range d.Spec.Template.Spec.Containers[0].Ports {
			if cp.Name == p.TargetPort.String() {
				target = cp.ContainerPort
			}
		}
		slice.Ports = append(slice.Ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(target), Protocol: ptr.To(p.Protocol)})
	}
	if _, err := c.DiscoveryV1().EndpointSlices(in.ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := c.CoreV1().Secrets(in.ns).Get(ctx, install.CASecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in.setCABundle(t, s.Data["ca.crt"])
}

func (in installed) setCABundle(t *testing.T, bundle []byte) {
	t.Helper()
	w, err := in.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(t.Context(), install.WebhookName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range w.Webhooks {
		w.Webhooks[i].ClientConfig.CABundle = bundle
	}
	if _, err := in.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(t.Context(), w, metav1.UpdateOptions{FieldManager: "weft-control"}); err != nil {
		t.Fatal(err)
	}
}

// setEndpointsReady marks every endpoint of the control plane's
// EndpointSlice ready or not.
func (in installed) setEndpointsReady(t *testing.T, ready bool) {
	t.Helper()
	s, err := in.client.DiscoveryV1().EndpointSlices(in.ns).Get(t.Context(), install.ControlPlaneName+"-x", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.Endpoints {
		s.Endpoints[i].Conditions.Ready = ptr.To(ready)
	}
	if _, err := in.client.DiscoveryV1().EndpointSlices(in.ns).Update(t.Context(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// meshedPod creates a pod with a native weft-proxy sidecar in a namespace
// the webhook does not select, with the proxy ready or not.
func meshedPod(t *testing.T, c kubernetes.Interface, ready bool) *corev1.Pod {
	t.Helper()
	ctx := t.Context()
	ns := "app-" + rand.String(6)
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "weft-proxy", Image: "weft-proxy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}},
			Containers:     []corev1.Container{{Name: "app", Image: "app"}},
		},
	}
	p, err := c.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status = corev1.PodStatus{
		Phase:                 corev1.PodRunning,
		InitContainerStatuses: []corev1.ContainerStatus{{Name: "weft-proxy", Ready: ready, Image: "weft-proxy", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}},
	}
	p, err = c.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKubePostInstall installs weft into the test cluster and checks it as
// it starts, runs, and breaks in the ways `weft check` must see.
func TestKubePostInstall(t *testing.T) {
	env := check.SharedKube(t)
	ctx := t.Context()
	in := installWeft(t, env)
	cl := newCluster(t, env.Config, in.ns)
	describe := "kubectl -n " + in.ns + " describe deployment weft-control"

	t.Run("installed, nothing runs", func(t *testing.T) {
		got, _, err := runChecks(t, cl.PostInstall())
		if !errors.Is(err, check.ErrFailed) {
			t.Errorf("err = %v, want a failure", err)
		}
		assertResults(t, got, []expect{
			{"the control plane namespace exists", check.OK, "", ""},
			{"the control plane Deployment is available", check.Error, "no replica of deployment " + in.ns + "/weft-control is ready (0 of 2)", describe},
			{"the control plane pods are ready", check.Error, "no pods", describe},
			{"the control plane Service has ready endpoints", check.Error, "no ready endpoints", "check the control plane pods"},
			{"the injection webhook is registered", check.OK, "", ""},
			{"the webhook's caBundle holds the trust anchors", check.Error, "is empty", "kubectl -n " + in.ns + " get pods,lease"},
			{"the injection webhook is reachable", check.Error, "no ready endpoints", "check the control plane pods"},
			{"weft's CRDs are installed and current", check.OK, "", ""},
			{"the trust anchors and issuer are not near expiry", check.OK, "", ""},
		})
	})

	in.runControlPlane(t)
	meshedPod(t, in.client, true)

	t.Run("all green", func(t *testing.T) {
		got, text, err := runChecks(t, cl.PostInstall())
		allOK(t, got, err)
		if strings.Contains(text, "×") || !strings.Contains(text, "Status check results are √") {
			t.Errorf("text output is not green:\n%s", text)
		}
		assertResults(t, got, []expect{{"meshed pods have a ready weft-proxy", check.OK, "needs a status API", ""}})
		if out, err := weftCheck(t, "--kubeconfig", env.KubeconfigPath, "-n", in.ns); err != nil || strings.Contains(out, "×") {
			t.Errorf("weft check through the CLI: %v", err)
		}
	})

	t.Run("the webhook is down", func(t *testing.T) {
		in.setEndpointsReady(t, false)
		defer in.setEndpointsReady(t, true)
		out, err := weftCheck(t, "--kubeconfig", env.KubeconfigPath, "-n", in.ns)
		if err == nil || !errors.Is(err, check.ErrFailed) {
			t.Errorf("weft check with the webhook down: err = %v, want a failure", err)
		}
		for _, want := range []string{
			"× the injection webhook is reachable\n",
			"the API server cannot call the injection webhook: service " + in.ns + "/weft-control:443 has no ready endpoints; pods to inject cannot be created meanwhile (failurePolicy Fail)",
			"hint: check the control plane pods, which serve the webhook: see why: " + describe,
			"Status check results are ×",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("the output lacks %q", want)
			}
		}
	})

	t.Run("caBundle of another CA", func(t *testing.T) {
		other, err := install.GenerateCA("weft.local")
		if err != nil {
			t.Fatal(err)
		}
		s, err := in.client.CoreV1().Secrets(in.ns).Get(ctx, install.CASecretName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		in.setCABundle(t, other.Anchors)
		defer in.setCABundle(t, s.Data["ca.crt"])
		got, _, err := runChecks(t, cl.PostInstall())
		if !errors.Is(err, check.ErrFailed) {
			t.Errorf("err = %v, want a failure", err)
		}
		assertResults(t, got, []expect{{"the webhook's caBundle holds the trust anchors", check.Error,
			"is not the trust anchors of secret " + in.ns + "/weft-ca", "something else writes caBundle"}})
	})

	t.Run("a proxy not ready", func(t *testing.T) {
		p := meshedPod(t, in.client, false)
		defer func() {
			if err := in.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
				t.Error(err)
			}
		}()
		got, _, err := runChecks(t, cl.PostInstall())
		if !errors.Is(err, check.ErrFailed) {
			t.Errorf("err = %v, want a failure", err)
		}
		assertResults(t, got, []expect{{"meshed pods have a ready weft-proxy", check.Error,
			"1 of 2 meshed pods have no ready proxy:\n" + p.Namespace + "/web: weft-proxy is not ready", "logs POD -c weft-proxy"}})
	})

	t.Run("CRD drift", func(t *testing.T) {
		crds, err := install.CRDs()
		if err != nil {
			t.Fatal(err)
		}
		name := crds[0].GetName()
		patch := `[{"op":"add","path":"/spec/versions/0/schema/openAPIV3Schema/description","value":"edited by hand"}]`
		if _, err := env.Clientset.Discovery().RESTClient().Patch(types.JSONPatchType).
			AbsPath("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", name).Body([]byte(patch)).DoRaw(ctx); err != nil {
			t.Fatal(err)
		}
		got, _, err := runChecks(t, cl.PostInstall())
		if !errors.Is(err, check.ErrFailed) {
			t.Errorf("err = %v, want a failure", err)
		}
		assertResults(t, got, []expect{{"weft's CRDs are installed and current", check.Error, "CRD " + name + ": version", "run weft install"}})

		// What the hint says fixes it.
		if err := in.apply.Apply(ctx, install.Manifest{Objects: crds}, install.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
		got, _, err = runChecks(t, cl.PostInstall())
		allOK(t, got, err)
	})

	t.Run("certificates", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			mod    func(*check.Cluster)
			status check.Status
			msg    string
			hint   string
		}{
			{"issuer within its warning", func(c *check.Cluster) { c.IssuerWarning = 100 * 365 * 24 * time.Hour }, check.Warning, "issuer", "renew the issuer"},
			{"everything expired", func(c *check.Cluster) { c.Now = func() time.Time { return time.Now().AddDate(200, 0, 0) } }, check.Error, "expired", "roll in a new trust anchor"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := newCluster(t, env.Config, in.ns)
				tc.mod(c)
				got, _, _ := runChecks(t, c.PostInstall())
				assertResults(t, got, []expect{{"the trust anchors and issuer are not near expiry", tc.status, tc.msg, tc.hint}})
			})
		}
	})
}

// TestKubeGatewayAPIMissing removes the Gateway API route CRDs: a warning,
// which does not fail the run. It runs last: the others do not need them.
func TestKubeGatewayAPIMissing(t *testing.T) {
	env := check.SharedKube(t)
	cl := newCluster(t, env.Config, "")
	ext := cl.APIExtensions.ApiextensionsV1().CustomResourceDefinitions()
	for _, name := range []string{"httproutes.gateway.networking.k8s.io", "grpcroutes.gateway.networking.k8s.io"} {
		if err := ext.Delete(t.Context(), name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var got map[string]check.Result
	var runErr error
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, _, runErr = runChecks(t, cl.PreInstall())
		r := got["the Gateway API route CRDs are installed"]
		// Both: deletion takes a moment (the CRDs' finalizer).
		return r.Status == check.Warning && strings.Contains(r.Message, "httproutes") && strings.Contains(r.Message, "grpcroutes"), nil
	})
	if err != nil {
		t.Fatalf("the Gateway API check never warned: %v", err)
	}
	if runErr != nil {
		t.Errorf("a warning failed the run: %v", runErr)
	}
	assertResults(t, got, []expect{{"the Gateway API route CRDs are installed", check.Warning,
		"not installed: httproutes.gateway.networking.k8s.io, grpcroutes.gateway.networking.k8s.io; HTTPRoutes and GRPCRoutes will not work",
		"standard-install.yaml"}})
}
