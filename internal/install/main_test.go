package install

import (
	"os"
	"testing"

	"github.com/weft-mesh/weft/internal/k8stest"
)

// kube is the package's Kubernetes control plane, started by the first test
// that needs it, with stand-ins for cert-manager's CRDs.
var kube = k8stest.Shared{Options: k8stest.Options{CRDs: certManagerStandInCRDs()}}

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m, &kube)) }
