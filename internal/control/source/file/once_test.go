package file

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/control/model"
)

// TestLoadOnce: a one-shot load gives what Run's first load applies, with
// the source's trust domain, and reports broken documents while keeping
// the rest.
func TestLoadOnce(t *testing.T) {
	dir := copyTree(t, "mesh")
	writeFile(t, filepath.Join(dir, "broken.yaml"), "apiVersion: v1\nkind: Service\nmetadata: {name: extra, namespace: shop}\nspec: {ports: [{port: 0}]}\n")
	src, err := New(dir, Options{TrustDomain: "example.org"})
	if err != nil {
		t.Fatal(err)
	}
	objs, problems, err := src.LoadOnce()
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || !strings.HasSuffix(problems[0].File, "broken.yaml") || problems[0].Field != "spec.ports[0].port" {
		t.Fatalf("problems = %v, want one for broken.yaml's spec.ports[0].port", problems)
	}
	identities := 0
	for _, o := range objs {
		if set, ok := o.(*model.EndpointSet); ok {
			for _, e := range set.Endpoints {
				if e.Identity != "" {
					identities++
					if !strings.HasPrefix(e.Identity, "spiffe://example.org/") {
						t.Errorf("endpoint %s has identity %s, not of the source's trust domain", e.Address, e.Identity)
					}
				}
			}
		}
	}
	if identities == 0 {
		t.Fatal("the fixture gave no meshed endpoint to check")
	}

	// Run's first load applies the same objects.
	st := model.NewStore()
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // Run loads once, then sees ctx done
	src.pollOnly = true
	if err := src.Run(ctx, st); err != nil {
		t.Fatal(err)
	}
	once := model.NewStore()
	if err := once.Replace(src.Name(), objs); err != nil {
		t.Fatal(err)
	}
	if want, got := dump(t, snapshotObjects(st.Snapshot())), dump(t, snapshotObjects(once.Snapshot())); want != got {
		t.Errorf("LoadOnce differs from Run's load: %s", diff(want, got))
	}

	if _, _, err := (&Source{dir: filepath.Join(dir, "nope")}).LoadOnce(); err == nil {
		t.Error("LoadOnce of a missing directory: no error")
	}
}

// snapshotObjects lists a snapshot's services, endpoints and workloads
// in a fixed order, for comparison.
func snapshotObjects(s *model.Snapshot) []model.Object {
	var out []model.Object
	for _, ref := range slices.SortedFunc(maps.Keys(s.Services), func(a, b model.ServiceRef) int { return strings.Compare(a.String(), b.String()) }) {
		out = append(out, s.Services[ref], &model.EndpointSet{Service: ref, Endpoints: s.Endpoints[ref]})
	}
	for _, ref := range slices.SortedFunc(maps.Keys(s.Workloads), func(a, b model.ObjectRef) int { return strings.Compare(a.String(), b.String()) }) {
		out = append(out, s.Workloads[ref])
	}
	return out
}
