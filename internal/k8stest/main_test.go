package k8stest_test

import (
	"os"
	"testing"

	"github.com/weft-mesh/weft/internal/k8stest"
)

// kube is this package's control plane, with every option on so that one
// apiserver tests them all.
var kube = k8stest.Shared{Options: k8stest.Options{GatewayAPI: true, ControllerManager: true}}

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m, &kube)) }
