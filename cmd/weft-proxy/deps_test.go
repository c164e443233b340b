package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestProxyStaysLean fails when weft-proxy links a Kubernetes client library
// or any control-plane package: the data plane must stay small and quick to
// start, and must not depend on the control plane's code.
func TestProxyStaysLean(t *testing.T) {
	// As the Makefile builds it: without gRPC's tracing.
	out, err := exec.Command("go", "list", "-deps", "-tags", "grpcnotrace", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{
		"k8s.io/client-go",
		"k8s.io/apimachinery",
		"sigs.k8s.io/controller-runtime",
		"sigs.k8s.io/gateway-api",
		"github.com/weft-mesh/weft/internal/control",
		"github.com/weft-mesh/weft/internal/cli",
		// Heavy for what a sidecar needs: 2.5 MB of resident memory.
		"golang.org/x/net/trace",
		"html/template",
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned %d packages; the check would prove nothing", len(deps))
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("weft-proxy links %s (forbidden prefix %s): move the dependency out of the proxy's import graph", d, f)
			}
		}
	}
}
