package kube_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/weft-mesh/weft/internal/k8stest"
)

// k8s is the package's Kubernetes control plane: kube-apiserver and
// kube-controller-manager (its EndpointSlice controller makes the slices
// the source reads), the Gateway API CRDs and weft's. The node lifecycle
// controller is off: no kubelet reports on the test's nodes, and it would
// mark their pods not ready after its grace period.
var k8s = k8stest.Shared{Options: k8stest.Options{
	ControllerManager:     true,
	ControllerManagerArgs: map[string][]string{"controllers": {"*,-node-lifecycle-controller"}},
	GatewayAPI:            true,
	CRDPaths:              []string{filepath.Join("..", "..", "..", "..", "deploy", "crds")},
}}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := k8s.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping the Kubernetes test control plane: %v\n", err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
