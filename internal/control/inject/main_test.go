package inject

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

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
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
