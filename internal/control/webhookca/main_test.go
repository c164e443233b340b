package webhookca_test

import (
	"os"
	"testing"

	"github.com/weft-mesh/weft/internal/k8stest"
)

// kube is the package's Kubernetes control plane (apiserver and etcd),
// started by the first test that needs it.
var kube k8stest.Shared

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m, &kube)) }
