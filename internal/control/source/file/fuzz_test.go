package file

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/translate"
)

// FuzzParse feeds arbitrary bytes to the parser as one file: it must never
// panic, every problem must name the file, the store must accept every
// object it produces, every security policy it produces must pass the
// rules the translation applies (the model's and the proxy's), no default
// inbound policy it keeps may be unknown, and the translation must check
// the result without panicking. Seeds: the fixture mesh and
// testdata/fuzz/FuzzParse.
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
		st := model.NewStore()
		if err := st.Replace("file:fuzz", objs); err != nil {
			t.Fatalf("the store refuses what the parser produced: %v", err)
		}
		for _, o := range objs {
			var invalid []model.FieldError
			defaultPolicy := ""
			switch o := o.(type) {
			case *model.AuthorizationPolicy:
				invalid = translate.ValidateAuthorization(o)
			case *model.MutualTLSPolicy:
				invalid = o.Validate()
			case *model.Namespace:
				defaultPolicy = o.DefaultInboundPolicy
			case *model.Workload:
				defaultPolicy = o.DefaultInboundPolicy
			}
			if len(invalid) > 0 {
				t.Errorf("%s is served but invalid: %v", o.Key(), invalid)
			}
			if defaultPolicy != "" && !slices.Contains(model.DefaultInboundPolicies(), defaultPolicy) {
				t.Errorf("%s is served with the unknown default inbound policy %q", o.Key(), defaultPolicy)
			}
		}
		translate.Check(st.Snapshot())
	})
}
