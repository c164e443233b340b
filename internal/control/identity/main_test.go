package identity_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/weft-mesh/weft/internal/k8stest"
)

// kube is the package's Kubernetes control plane, started by the first test
// that needs it.
var kube k8stest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	if err := kube.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping the Kubernetes test control plane: %v\n", err)
		code = 1
	}
	os.Exit(code)
}
