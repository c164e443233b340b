package file

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/control/model"
)

// FuzzParse feeds arbitrary bytes to the parser as one file: it must never
// panic, every problem must name the file, and the store must accept every
// object it produces. Seeds: the fixture mesh and testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	err := filepath.WalkDir(filepath.Join("testdata", "mesh"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		f.Add(data)
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	td := spiffeid.RequireTrustDomainFromString(DefaultTrustDomain)
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := parseFile(fileData{path: "fuzz.yaml", data: data, mtime: t0})
		objs, problems := build([]fileResult{fr}, td)
		for _, p := range problems {
			if p.File != "fuzz.yaml" || p.Line < 0 || p.Message == "" {
				t.Errorf("malformed problem %#v", p)
			}
		}
		if err := model.NewStore().Replace("file:fuzz", objs); err != nil {
			t.Fatalf("the store refuses what the parser produced: %v", err)
		}
	})
}
