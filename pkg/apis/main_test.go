package apis_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/weft-mesh/weft/internal/k8stest"
	policyv1alpha1 "github.com/weft-mesh/weft/pkg/apis/policy/v1alpha1"
	weftv1alpha1 "github.com/weft-mesh/weft/pkg/apis/weft/v1alpha1"
)

// crdDir is where `make gen` writes the CRDs.
var crdDir = filepath.Join("..", "..", "deploy", "crds")

// kube is this package's control plane, with weft's CRDs installed from
// deploy/crds.
var kube = k8stest.Shared{Options: k8stest.Options{CRDPaths: []string{crdDir}}}

// namespaces the tests write into, created once.
var namespaces sync.Map

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m, &kube)) }

// newScheme is a scheme with the core types and weft's.
func newScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, weftv1alpha1.AddToScheme, policyv1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// newClient returns a controller-runtime client of the package's control
// plane with newScheme, and creates the namespaces given (once per test
// binary).
func newClient(t *testing.T, ns ...string) client.Client {
	t.Helper()
	env := kube.Get(t)
	hc, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := client.New(env.Config, client.Options{Scheme: newScheme(t), HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range ns {
		if _, done := namespaces.Load(name); done {
			continue
		}
		err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating namespace %s: %v", name, err)
		}
		namespaces.Store(name, true)
	}
	return c
}
