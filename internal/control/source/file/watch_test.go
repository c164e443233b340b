package file

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/control/model"
)

func TestNew(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir+"/", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Name(), "file:"+dir; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	if s.poll != DefaultPoll || s.td.Name() != DefaultTrustDomain {
		t.Errorf("defaults: poll %s, trust domain %s", s.poll, s.td)
	}
	writeFile(t, filepath.Join(dir, "f.yaml"), "")
	for _, tc := range []struct {
		name string
		dir  string
		opts Options
		want string
	}{
		{"missing directory", filepath.Join(dir, "nope"), Options{}, "no such file"},
		{"a file", filepath.Join(dir, "f.yaml"), Options{}, "not a directory"},
		{"bad trust domain", dir, Options{TrustDomain: "Not A Domain"}, "trust domain"},
		{"negative poll", dir, Options{Poll: -time.Second}, "negative poll"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.dir, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func webPort(snap *model.Snapshot) uint16 {
	if svc := snap.Services[refWeb]; svc != nil && len(svc.Ports) > 0 {
		return svc.Ports[0].Port
	}
	return 0
}

// TestKeepLastGood breaks and fixes a file, reloading by hand.
func TestKeepLastGood(t *testing.T) {
	dir := copyTree(t, "mesh")
	s, err := New(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := model.NewStore()
	r := newRunner(s, st, nil)
	reload := func() *model.Snapshot {
		t.Helper()
		if err := r.reload(); err != nil {
			t.Fatal(err)
		}
		return st.Snapshot()
	}
	snap := reload()
	if webPort(snap) != 80 || len(s.Problems()) != 0 {
		t.Fatalf("first load: web port %d, problems %v", webPort(snap), s.Problems())
	}
	rev := snap.Revision
	if snap = reload(); snap.Revision != rev {
		t.Errorf("a reload without change applied revision %d", snap.Revision)
	}

	// Break web's port, change web-canary's and delete catalog, all in
	// services.yaml: web-canary changes, web and catalog stay as they
	// were.
	path := filepath.Join(dir, "services.yaml")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(orig), "---\n")
	broken := strings.Replace(docs[0], "port: 80", "port: eighty", 1) + "---\n" + strings.Replace(docs[1], "appProtocol: http", "appProtocol: http2", 1)
	writeFile(t, path, broken)
	snap = reload()
	if webPort(snap) != 80 {
		t.Errorf("broken web: port %d, want the last good 80", webPort(snap))
	}
	if snap.Services[refCatalog] == nil {
		t.Error("catalog was dropped while its file is broken")
	}
	if got := snap.Services[refCanary].Ports[0].AppProtocol; got != "http2" {
		t.Errorf("web-canary's valid change was not applied: appProtocol %q", got)
	}
	if ps := relProblems(dir, s.Problems()); len(ps) != 1 || ps[0].File != "services.yaml" || ps[0].Line != 15 || ps[0].Field != "spec.ports[0].port" {
		t.Errorf("problems %v, want one at services.yaml:15 spec.ports[0].port", ps)
	}

	// Fixed: the file is what it says again.
	writeFile(t, path, strings.Replace(broken, "port: eighty", "port: 8080", 1))
	snap = reload()
	if webPort(snap) != 8080 {
		t.Errorf("fixed web: port %d, want 8080", webPort(snap))
	}
	if snap.Services[refCatalog] != nil {
		t.Error("catalog is still served once its file is fixed without it")
	}
	// What referred to catalog, or to web's port 80, now points nowhere.
	var got []string
	for _, p := range relProblems(dir, s.Problems()) {
		got = append(got, p.File+":"+strconv.Itoa(p.Line)+": "+p.Field)
	}
	want := []string{
		"policies.yaml:19: spec.targetRef",
		"routes/catalog.yaml:8: spec.parentRefs[0]",
		"routes/catalog.yaml:15: spec.rules[0].backendRefs[0]",
		"routes/web-canary.yaml:9: spec.parentRefs[0]",
		"routes/web-canary.yaml:40: spec.rules[1].backendRefs[0]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems once fixed:\n got %q\nwant %q", got, want)
	}

	// A file that is deleted takes its objects with it.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	snap = reload()
	if snap.Services[refWeb] != nil || len(snap.Endpoints) != 0 {
		t.Errorf("services of a deleted file are still served")
	}
	if snap.Workloads[model.ObjectRef{Namespace: "shop", Name: "web-1"}] == nil {
		t.Error("workloads of another file were dropped")
	}

	// The directory disappears: everything stays, with a problem.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	before := st.Snapshot().Revision
	snap = reload()
	if snap.Revision != before || len(snap.Workloads) == 0 {
		t.Errorf("a vanished directory changed the model")
	}
	if ps := s.Problems(); len(ps) != 1 || ps[0].File != dir {
		t.Errorf("problems %v, want one for the directory", ps)
	}
}

// waitFor waits until the store's snapshot satisfies cond.
func waitFor(t *testing.T, st *model.Store, revs <-chan uint64, what string, cond func(*model.Snapshot) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond(st.Snapshot()) {
		select {
		case <-revs:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func runSource(t *testing.T, s *Source, st *model.Store) (revs <-chan uint64, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	revs = st.Subscribe(ctx)
	go func() { done <- s.Run(ctx, st) }()
	return revs, func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
}

const extraService = "apiVersion: v1\nkind: Service\nmetadata: {name: extra, namespace: shop}\nspec:\n  ports: [{name: http, port: 80}]\n"

func TestRunWatches(t *testing.T) {
	dir := copyTree(t, "mesh")
	// A poll too slow for the test: changes must be seen through
	// notifications.
	s, err := New(dir, Options{Poll: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	st := model.NewStore()
	revs, stop := runSource(t, s, st)
	defer stop()
	waitFor(t, st, revs, "the first load", func(s *model.Snapshot) bool { return webPort(s) == 80 })

	// A file in a new subdirectory.
	writeFile(t, filepath.Join(dir, "new", "deeper", "extra.yaml"), extraService)
	extra := model.ServiceRef{Namespace: "shop", Name: "extra"}
	waitFor(t, st, revs, "a file in a new directory", func(s *model.Snapshot) bool { return s.Services[extra] != nil })

	// An atomic write: a temporary file renamed over the old one.
	path := filepath.Join(dir, "services.yaml")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".services.yaml.tmp")
	writeFile(t, tmp, strings.Replace(string(orig), "port: 80", "port: 8080", 1))
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, st, revs, "a file renamed over", func(s *model.Snapshot) bool { return webPort(s) == 8080 })

	// A later file in the new directory, then deletions.
	writeFile(t, filepath.Join(dir, "new", "deeper", "more.yaml"), strings.ReplaceAll(extraService, "extra", "more"))
	more := model.ServiceRef{Namespace: "shop", Name: "more"}
	waitFor(t, st, revs, "a second file in the new directory", func(s *model.Snapshot) bool { return s.Services[more] != nil })
	if err := os.Remove(filepath.Join(dir, "routes", "web-canary.yaml")); err != nil {
		t.Fatal(err)
	}
	canary := model.RouteRef{Kind: model.RouteHTTP, Namespace: "shop", Name: "web-canary"}
	waitFor(t, st, revs, "a deleted file", func(s *model.Snapshot) bool { return s.Routes[canary] == nil })
	if err := os.RemoveAll(filepath.Join(dir, "new")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, st, revs, "a deleted directory", func(s *model.Snapshot) bool { return s.Services[extra] == nil && s.Services[more] == nil })
}

func TestRunPolls(t *testing.T) {
	dir := copyTree(t, "mesh")
	s, err := New(dir, Options{Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.pollOnly = true
	st := model.NewStore()
	revs, stop := runSource(t, s, st)
	defer stop()
	waitFor(t, st, revs, "the first load", func(s *model.Snapshot) bool { return webPort(s) == 80 })
	writeFile(t, filepath.Join(dir, "extra.yaml"), extraService)
	waitFor(t, st, revs, "a new file", func(s *model.Snapshot) bool {
		return s.Services[model.ServiceRef{Namespace: "shop", Name: "extra"}] != nil
	})
}

func TestKeepLastGoodCases(t *testing.T) {
	svc := func(file, name string) *resource {
		return &resource{file: file, obj: &model.Service{Namespace: "ns", Name: name}}
	}
	last := map[string][]*resource{
		"d/a.yaml":     {svc("d/a.yaml", "a1"), svc("d/a.yaml", "a2")},
		"d/b.yaml":     {svc("d/b.yaml", "b")},
		"d/sub/c.yaml": {svc("d/sub/c.yaml", "c")},
		"d/gone.yaml":  {svc("d/gone.yaml", "g")},
	}
	cases := []struct {
		name    string
		results []fileResult
		want    map[string][]string // path: names served
	}{
		{
			name: "good files replace, deleted files go",
			results: []fileResult{
				{path: "d/a.yaml", resources: []*resource{svc("d/a.yaml", "a1")}},
			},
			want: map[string][]string{"d/a.yaml": {"a1"}},
		},
		{
			name: "a broken file keeps what its valid documents no longer give",
			results: []fileResult{
				{path: "d/a.yaml", broken: true, resources: []*resource{svc("d/a.yaml", "a1")}},
				{path: "d/b.yaml", broken: true},
			},
			want: map[string][]string{"d/a.yaml": {"a1", "a2"}, "d/b.yaml": {"b"}},
		},
		{
			name: "an unlistable directory keeps its files",
			results: []fileResult{
				{path: "d/a.yaml"},
				{path: "d/sub", broken: true, dir: true},
			},
			want: map[string][]string{"d/a.yaml": nil, "d/sub/c.yaml": {"c"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			results, good := keepLastGood(tc.results, last)
			got := map[string][]string{}
			for _, f := range results {
				if f.dir {
					continue
				}
				got[f.path] = nil
				for _, r := range f.resources {
					got[f.path] = append(got[f.path], r.obj.Key().Name)
				}
				if !slices.Equal(got[f.path], names(good[f.path])) {
					t.Errorf("%s: served %v, recorded as good %v", f.path, got[f.path], names(good[f.path]))
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("served %v, want %v", got, tc.want)
			}
			for path, want := range tc.want {
				if !slices.Equal(got[path], want) {
					t.Errorf("%s: served %v, want %v", path, got[path], want)
				}
			}
		})
	}
}

func names(rs []*resource) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.obj.Key().Name)
	}
	return out
}
