package up

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/source/file"
)

// TestDemoMeshLoadsCleanly: the resources weft up writes are valid, with no
// problem reported, and every service gets its workload as an endpoint.
func TestDemoMeshLoadsCleanly(t *testing.T) {
	spec, err := demoSpec("/bin/weft-demo")
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPlan(spec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mesh.yaml"), []byte(p.mesh()), 0o600); err != nil {
		t.Fatal(err)
	}
	objs, problems, err := file.Load(dir)
	if err != nil || len(problems) != 0 {
		t.Fatalf("load: %v, problems %v", err, problems)
	}
	var sets int
	for _, o := range objs {
		if o.Key().Kind == model.KindEndpoints {
			sets++
		}
	}
	if sets != 3 {
		t.Fatalf("%d endpoint sets; want one per service", sets)
	}
	// The frontend finds its calls in the order the control plane assigns
	// its listeners: by service name.
	env := p.env(spec.Services[0])
	if len(env) != 2 || !strings.HasPrefix(env[0], "WEFT_SERVICE_CATALOG=127.0.0.1:") || !strings.HasPrefix(env[1], "WEFT_SERVICE_INVENTORY=127.0.0.1:") {
		t.Fatalf("env %v", env)
	}
}

func TestSpecProblemsNameTheField(t *testing.T) {
	cases := []struct {
		yaml string
		want string
	}{
		{"services: []", "services: none"},
		{"services: [{name: Web, command: [x], port: 80, protocol: http1}]", "services[0].name"},
		{"services: [{name: web, port: 80, protocol: http1}]", "services[0].command"},
		{"services: [{name: web, command: [x], port: 0, protocol: http1}]", "services[0].port"},
		{"services: [{name: web, command: [x], port: 80, protocol: http3}]", "services[0].protocol"},
		{"services: [{name: web, command: [x], port: 80, protocol: http1, calls: [db]}]", "services[0].calls[0]"},
		{"entry: db\nservices: [{name: web, command: [x], port: 80, protocol: http1}]", "entry"},
		{"servces: []", "servces"},
	}
	for _, tc := range cases {
		path := filepath.Join(t.TempDir(), "up.yaml")
		os.WriteFile(path, []byte(tc.yaml), 0o600)
		_, err := LoadSpec(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error naming %s", tc.yaml, err, tc.want)
		}
	}
}

func TestFreeRange(t *testing.T) {
	first, err := freeRange(3)
	if err != nil {
		t.Fatal(err)
	}
	if first <= 0 || first+2 > 65535 {
		t.Fatalf("range starting at %d", first)
	}
}
