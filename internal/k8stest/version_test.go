package k8stest_test

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/k8stest"
)

// TestVersionsAgree checks that the binaries hack/k8s-env.sh builds, the
// version this package looks for and the client library weft links are
// one Kubernetes release.
func TestVersionsAgree(t *testing.T) {
	f, err := os.Open("../../hack/k8s/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var hack string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[0] == "require" {
			fields = fields[1:]
		}
		if len(fields) >= 2 && fields[0] == "k8s.io/kubernetes" {
			hack = fields[1]
			break
		}
	}
	if hack != k8stest.KubernetesVersion {
		t.Errorf("hack/k8s/go.mod builds k8s.io/kubernetes %q, k8stest.KubernetesVersion is %q", hack, k8stest.KubernetesVersion)
	}
	// client-go v0.X.Y is Kubernetes v1.X.Y.
	if got, want := moduleVersion(t, "k8s.io/client-go"), "v0."+strings.TrimPrefix(k8stest.KubernetesVersion, "v1."); got != want {
		t.Errorf("weft links k8s.io/client-go %s; Kubernetes %s goes with %s", got, k8stest.KubernetesVersion, want)
	}
}
