package install

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/weft-mesh/weft/internal/control/ca"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testCA is stand-in CA material: the goldens must not change each run.
func testCA() *CAMaterial {
	return &CAMaterial{
		IssuerCert: []byte("-----BEGIN CERTIFICATE-----\nissuer\n-----END CERTIFICATE-----\n"),
		IssuerKey:  []byte("-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n"),
		Anchors:    []byte("-----BEGIN CERTIFICATE-----\nanchor\n-----END CERTIFICATE-----\n"),
	}
}

// pinned are the default values with the image pinned, so that a build
// linked with another tag renders the same goldens.
func pinned() Values {
	v := DefaultValues()
	v.Image.Registry = "ghcr.io/weft-mesh"
	v.Image.Tag = "v0.1.0"
	return v
}

// goldenCases are the installs whose manifests are golden-tested. The CRDs
// are left out: they are generated elsewhere and tested on their own
// (TestRenderCRDs); here they would only churn the goldens.
func goldenCases() map[string]Options {
	cm := pinned()
	cm.CertManager.Enabled = true
	custom := pinned()
	custom.Image.Registry = "registry.example.com:5000/mesh"
	custom.Image.Tag = "v9.8.7"
	custom.Image.PullPolicy = "Always"
	custom.Replicas = 3
	custom.TrustDomain = "prod.example.com"
	custom.LogLevel = "debug"
	custom.Resources.Limits.Memory = "1Gi"
	custom.Webhook.FailurePolicy = "Ignore"
	custom.Webhook.TimeoutSeconds = 10
	return map[string]Options{
		"default":      {Values: pinned(), CA: testCA()},
		"cert-manager": {Values: cm},
		"custom":       {Namespace: "mesh", Values: custom, CA: testCA()},
	}
}

func TestRenderGolden(t *testing.T) {
	for name, o := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			m, err := Render(o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.YAML()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", name+".yaml"), got)
			// What is printed reads back as what was rendered.
			back, err := DecodeYAML(got)
			if err != nil {
				t.Fatalf("the rendered YAML does not decode: %v", err)
			}
			if len(back) != len(m.Objects) {
				t.Fatalf("decoded %d objects, rendered %d", len(back), len(m.Objects))
			}
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendering (run with -update to accept):\n%s", path, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the first differing lines of want and got.
func lineDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + w + "\n  got:  " + g
		}
	}
	return "(no line differs)"
}

func kinds(m Manifest) []string {
	var out []string
	for _, o := range m.Objects {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	return out
}

func TestRenderOrderAndModes(t *testing.T) {
	m, err := Render(Options{Values: pinned(), CA: testCA()})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Namespace/weft-system", "ServiceAccount/weft-control", "ClusterRole/weft-control", "ClusterRoleBinding/weft-control",
		"Role/weft-control", "RoleBinding/weft-control", "Secret/weft-ca", "Service/weft-control", "Deployment/weft-control",
		"PodDisruptionBudget/weft-control", "MutatingWebhookConfiguration/weft-inject",
	}
	if got := kinds(m); !slices.Equal(got, want) {
		t.Errorf("objects:\n got %v\nwant %v", got, want)
	}

	skip, err := Render(Options{Values: pinned(), CASecret: CASecretSkip})
	if err != nil {
		t.Fatal(err)
	}
	if skip.Find("Secret", CASecretName) != nil || len(skip.Objects) != len(want)-1 {
		t.Errorf("--ca-secret=skip rendered %v", kinds(skip))
	}
	only, err := Render(Options{Namespace: "mesh", Values: pinned(), CASecret: CASecretOnly, CA: testCA()})
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(only); !slices.Equal(got, []string{"Namespace/mesh", "Secret/weft-ca"}) {
		t.Errorf("--ca-secret=only rendered %v", got)
	}

	cm := pinned()
	cm.CertManager.Enabled = true
	withCM, err := Render(Options{Values: cm})
	if err != nil {
		t.Fatal(err)
	}
	if withCM.Find("Secret", CASecretName) != nil || withCM.Find("Certificate", CASecretName) == nil {
		t.Errorf("with cert-manager: %v", kinds(withCM))
	}
	hook := withCM.Find("MutatingWebhookConfiguration", WebhookName)
	if got := hook.GetAnnotations()["cert-manager.io/inject-ca-from"]; got != "weft-system/weft-ca" {
		t.Errorf("webhook inject-ca-from = %q", got)
	}
}

func TestRenderCRDs(t *testing.T) {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(crds) == 0 {
		t.Fatal("no CRDs embedded from deploy/crds")
	}
	m, err := Render(Options{Values: pinned(), CA: testCA(), CRDs: true})
	if err != nil {
		t.Fatal(err)
	}
	// Right after the namespace, in file order, each once.
	for i, crd := range crds {
		got := m.Objects[1+i]
		if got.GetKind() != "CustomResourceDefinition" || got.GetName() != crd.GetName() {
			t.Errorf("object %d is %s %s, want CRD %s", 1+i, got.GetKind(), got.GetName(), crd.GetName())
		}
	}
	for _, o := range m.Objects[1+len(crds):] {
		if o.GetKind() == "CustomResourceDefinition" {
			t.Errorf("CRD %s rendered twice or out of place", o.GetName())
		}
	}
	for _, crd := range crds {
		if g, _, _ := unstructured.NestedString(crd.Object, "spec", "group"); g == "gateway.networking.k8s.io" {
			t.Errorf("weft installs the Gateway API CRD %s; users install those themselves", crd.GetName())
		}
	}
}

func TestOptionsErrors(t *testing.T) {
	bad := func(mut func(*Options)) Options {
		o := Options{Values: pinned(), CA: testCA()}
		mut(&o)
		return o
	}
	for name, tc := range map[string]struct {
		o    Options
		want []string
	}{
		"namespace not a label": {bad(func(o *Options) { o.Namespace = "Weft_System" }), []string{`namespace "Weft_System"`}},
		"reserved namespace":    {bad(func(o *Options) { o.Namespace = "kube-system" }), []string{"namespace of its own"}},
		"one replica":           {bad(func(o *Options) { o.Values.Replicas = 1 }), []string{"replicas: 1", "at least 2"}},
		"bad tag":               {bad(func(o *Options) { o.Values.Image.Tag = "v1:2" }), []string{"image.tag"}},
		"registry with tag":     {bad(func(o *Options) { o.Values.Image.Registry = "ghcr.io/weft:v1" }), []string{"image.registry"}},
		"registry with port":    {bad(func(o *Options) { o.Values.Image.Registry = "localhost:5000" }), nil},
		"bad policy":            {bad(func(o *Options) { o.Values.Webhook.FailurePolicy = "ignore" }), []string{"webhook.failurePolicy", "Ignore, Fail"}},
		"bad timeout":           {bad(func(o *Options) { o.Values.Webhook.TimeoutSeconds = 31 }), []string{"webhook.timeoutSeconds"}},
		"bad quantity":          {bad(func(o *Options) { o.Values.Resources.Limits.Memory = "lots" }), []string{"resources.limits.memory"}},
		"bad trust domain":      {bad(func(o *Options) { o.Values.TrustDomain = "spiffe://Weft" }), []string{"trustDomain"}},
		"bad log level":         {bad(func(o *Options) { o.Values.LogLevel = "loud" }), []string{"logLevel"}},
		"no CA":                 {bad(func(o *Options) { o.CA = nil }), []string{"no CA material"}},
		"bad CA mode":           {bad(func(o *Options) { o.CASecret = "maybe" }), []string{`"maybe"`}},
		"only with cert-manager": {bad(func(o *Options) {
			o.Values.CertManager.Enabled = true
			o.CASecret = CASecretOnly
		}), []string{"cert-manager"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Render(tc.o)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("rendered, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	v, err := ParseValues([]byte("image:\n  tag: v2.0.0\nreplicas: 3\ncertManager: {enabled: true}\n"), pinned())
	if err != nil {
		t.Fatal(err)
	}
	want := pinned()
	want.Image.Tag = "v2.0.0"
	want.Replicas = 3
	want.CertManager.Enabled = true
	if v != want {
		t.Errorf("got %+v\nwant %+v", v, want)
	}
	if _, err := ParseValues([]byte("replica: 3\n"), pinned()); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Errorf("a misspelt key: err = %v, want it named", err)
	}
	if v, err := ParseValues(nil, pinned()); err != nil || v != pinned() {
		t.Errorf("empty file: %+v, %v", v, err)
	}
}

func TestDefaultTag(t *testing.T) {
	for v, want := range map[string]bool{
		"v1.2.3": true, "v0.10.0": true, "(devel)": false, "v1.2.3-rc.1": false, "v1.2": false,
		"v0.0.0-20260101120000-abcdef123456": false, "v1.2.3+dirty": false, "1.2.3": false, "v01.2.3": false,
	} {
		if got := isRelease(v); got != want {
			t.Errorf("isRelease(%q) = %v, want %v", v, got, want)
		}
	}
	if !validTag(DefaultTag()) {
		t.Errorf("DefaultTag() = %q is no valid tag", DefaultTag())
	}
	if got := ImageRef("r.io/x", ProxyImageName, "v1"); got != "r.io/x/weft-proxy:v1" {
		t.Errorf("ImageRef = %q", got)
	}
}

func TestUninstallManifest(t *testing.T) {
	m, err := UninstallManifest(Options{Values: pinned(), CRDs: true})
	if err != nil {
		t.Fatal(err)
	}
	got := kinds(m)
	if got[0] != "MutatingWebhookConfiguration/weft-inject" {
		t.Errorf("the webhook is not deleted first: %v", got)
	}
	nsAt := slices.Index(got, "Namespace/weft-system")
	for i, k := range got {
		isCRD := strings.HasPrefix(k, "CustomResourceDefinition/")
		if isCRD != (i > nsAt) {
			t.Errorf("%s at %d: CRDs go last, after the namespace (%d): %v", k, i, nsAt, got)
		}
	}
	for _, o := range m.Objects {
		if len(o.Object) != 3 {
			t.Errorf("%s carries more than its kind and name: %v", o.GetName(), o.Object)
		}
	}
	noCRDs, err := UninstallManifest(Options{Values: pinned()})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kinds(noCRDs) {
		if strings.HasPrefix(k, "CustomResourceDefinition/") {
			t.Errorf("CRDs deleted without being asked: %s", k)
		}
	}
	cm := pinned()
	cm.CertManager.Enabled = true
	withCM, err := UninstallManifest(Options{Values: cm})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Certificate/weft-ca", "Issuer/weft-trust-anchor", "Secret/weft-ca", "Secret/weft-trust-anchor"} {
		if !slices.Contains(kinds(withCM), k) {
			t.Errorf("uninstall with cert-manager lacks %s: %v", k, kinds(withCM))
		}
	}
}

func TestCAMaterialLoadsAsSuppliedCA(t *testing.T) {
	m, err := GenerateCA("mesh.example")
	if err != nil {
		t.Fatal(err)
	}
	// Mounted as the Secret would be, the control plane loads it.
	dir := t.TempDir()
	for name, data := range map[string][]byte{ca.SuppliedCertFile: m.IssuerCert, ca.SuppliedKeyFile: m.IssuerKey, ca.SuppliedCAFile: m.Anchors} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	auth, err := ca.Load(dir, ca.Options{TrustDomain: "mesh.example"})
	if err != nil {
		t.Fatalf("the generated weft-ca material does not load as a supplied CA: %v", err)
	}
	if !auth.Supplied() || auth.TrustDomain().Name() != "mesh.example" {
		t.Errorf("loaded %v (supplied %v)", auth.TrustDomain(), auth.Supplied())
	}
	if strings.Contains(string(m.IssuerKey)+string(m.IssuerCert)+string(m.Anchors), "anchor.key") {
		t.Error("material mentions the anchor key")
	}

	// A kept directory gives the same material each time; one in
	// cert-manager's layout is read as such.
	keep := filepath.Join(t.TempDir(), "ca")
	a, err := CAFromDir(keep, "weft.local")
	if err != nil {
		t.Fatal(err)
	}
	b, err := CAFromDir(keep, "weft.local")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.IssuerKey, b.IssuerKey) || !bytes.Equal(a.Anchors, b.Anchors) {
		t.Error("a kept CA directory gave different material twice")
	}
	if _, err := os.Stat(filepath.Join(keep, ca.AnchorKeyFile)); err != nil {
		t.Errorf("the anchor key is not kept in --ca-dir: %v", err)
	}
	c, err := CAFromDir(dir, "mesh.example")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.IssuerKey, m.IssuerKey) {
		t.Error("a cert-manager layout directory was not read as such")
	}
	if _, err := CAFromDir(dir, "other.example"); err == nil {
		t.Error("a CA of another trust domain was accepted")
	}
}
