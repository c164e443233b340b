package file

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/control/model"
)

// t0 is the modification time fixture files get.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// copyTree copies testdata/<name> into a new temporary directory, every
// file modified at t0, and returns the directory.
func copyTree(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("testdata", name)
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		writeFile(t, filepath.Join(dst, rel), string(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// writeFile writes a file modified at t0, creating its directory.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, t0, t0); err != nil {
		t.Fatal(err)
	}
}

// dump renders objects as indented JSON, one per object with its Go type:
// a readable, exact comparison (protobuf messages included, whose
// unexported state JSON skips).
func dump(t *testing.T, objs []model.Object) string {
	t.Helper()
	var b strings.Builder
	for _, o := range objs {
		js, err := json.MarshalIndent(o, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%T %s\n", o, js)
	}
	return b.String()
}

// diff shows the first differing line of two texts.
func diff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			lo := max(0, i-3)
			return fmt.Sprintf("line %d:\n want %q\n  got %q\ncontext (got):\n%s", i+1, w, g, strings.Join(gl[lo:min(len(gl), i+3)], "\n"))
		}
	}
	return "(no line differs)"
}

// relProblems makes problems' paths relative to dir, for comparison.
func relProblems(dir string, ps []Problem) []Problem {
	out := make([]Problem, len(ps))
	for i, p := range ps {
		if rel, err := filepath.Rel(dir, p.File); err == nil {
			p.File = filepath.ToSlash(rel)
		}
		out[i] = p
	}
	return out
}
