package k8stest_test

import (
	"os/exec"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TestGatewayAPICRDs checks that the installed CRDs are those of the
// gateway-api module weft is built with, and that its Go types round-trip
// through the apiserver.
func TestGatewayAPICRDs(t *testing.T) {
	env := kube.Get(t)
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{gwv1.Install, apiextensionsv1.AddToScheme, corev1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("building a client: %v", err)
	}
	ctx := t.Context()

	want := moduleVersion(t, "sigs.k8s.io/gateway-api")
	for _, name := range []string{"httproutes", "grpcroutes", "gateways", "gatewayclasses", "referencegrants"} {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, client.ObjectKey{Name: name + ".gateway.networking.k8s.io"}, crd); err != nil {
			t.Errorf("CRD %s: %v", name, err)
			continue
		}
		if got := crd.Annotations["gateway.networking.k8s.io/bundle-version"]; got != want {
			t.Errorf("CRD %s is bundle version %q, want %q (the gateway-api module's)", name, got, want)
		}
		if got := crd.Annotations["gateway.networking.k8s.io/channel"]; got != "standard" {
			t.Errorf("CRD %s is channel %q, want standard", name, got)
		}
	}

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "gwapi-"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	route := &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns.Name},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{
				Group: ptr.To(gwv1.Group("")), Kind: ptr.To(gwv1.Kind("Service")), Name: "web",
			}}},
			Rules: []gwv1.HTTPRouteRule{{
				Matches: []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{
					Type: ptr.To(gwv1.PathMatchPathPrefix), Value: ptr.To("/api"),
				}}},
				BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
					Name: "web-v2", Port: ptr.To(gwv1.PortNumber(8080)),
				}}}},
			}},
		},
	}
	if err := c.Create(ctx, route); err != nil {
		t.Fatalf("creating an HTTPRoute: %v", err)
	}
	got := &gwv1.HTTPRoute{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(route), got); err != nil {
		t.Fatalf("reading the HTTPRoute back: %v", err)
	}
	if n := len(got.Spec.Rules); n != 1 || len(got.Spec.Rules[0].BackendRefs) != 1 ||
		got.Spec.Rules[0].BackendRefs[0].Name != "web-v2" {
		t.Errorf("HTTPRoute read back = %+v", got.Spec)
	}
	// A CRD default the apiserver applies, proof that the schema is in force.
	if w := got.Spec.Rules[0].BackendRefs[0].Weight; w == nil || *w != 1 {
		t.Errorf("backendRef weight = %v, want the CRD's default 1", w)
	}

	bad := route.DeepCopy()
	bad.Name = "bad"
	bad.Spec.Rules[0].Matches[0].Path.Value = ptr.To("no-leading-slash")
	if err := c.Create(ctx, bad); err == nil {
		t.Error("the apiserver accepted a path match without a leading slash; is the CRD's validation installed?")
	}
}

// moduleVersion returns the version of module the weft module requires
// (test binaries carry no dependency list in their build info).
func moduleVersion(t *testing.T, module string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "list", "-m", "-f", "{{.Version}}", module).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", module, err)
	}
	return strings.TrimSpace(string(out))
}
