package check

import (
	"os"
	"testing"

	"github.com/weft-mesh/weft/internal/k8stest"
)

// kube is the package's Kubernetes control plane, with the Gateway API
// CRDs, started by the first test that needs it.
var kube = k8stest.Shared{Options: k8stest.Options{GatewayAPI: true}}

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m, &kube)) }
