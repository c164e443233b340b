package k8stest_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/weft-mesh/weft/internal/k8stest"
)

// kube is this package's control plane, with every option on so that one
// apiserver tests them all.
var kube = k8stest.Shared{Options: k8stest.Options{GatewayAPI: true, ControllerManager: true}}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := kube.Stop(); err != nil {
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
