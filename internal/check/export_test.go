package check

import (
	"testing"

	"github.com/weft-mesh/weft/internal/k8stest"
)

// SharedKube is the package's test control plane, for the tests of
// package check_test (which run `weft check` through the CLI).
func SharedKube(t testing.TB) *k8stest.Env { return kube.Get(t) }
