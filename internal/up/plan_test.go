package up

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/source/file"
)

// TestDemoMeshLoadsCleanly: the resources weft up writes are valid, with no
// problem reported, and every service gets its workload as an endpoint.
func TestDemoMeshLoadsCleanly(t *testing.T) {
	p := plan{
		app:   map[string]int{"frontend": 20001, "catalog": 20002, "inventory": 20003},
		in:    map[string]int{"frontend": 20011, "catalog": 20012, "inventory": 20013},
		admin: map[string]int{},
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "demo.yaml"), []byte(p.mesh()), 0o600); err != nil {
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
	if len(objs) < 9 || sets != 3 {
		t.Fatalf("%d objects, %d endpoint sets; want 3 services, 3 workloads and 3 endpoint sets", len(objs), sets)
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
