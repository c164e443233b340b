package install

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"text/template"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// chartDir is the chart, from this package's directory.
const chartDir = "../../" + ChartDir

// TestChartCurrent is `make gen-check` for the chart: the committed chart
// is what GenerateChart writes, file for file.
func TestChartCurrent(t *testing.T) {
	files, err := GenerateChart()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	for _, f := range files {
		want[f.Path] = f.Data
	}
	if *update {
		if err := WriteChart(chartDir); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string][]byte{}
	err = filepath.WalkDir(chartDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(chartDir, path)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		got[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range want {
		g, ok := got[path]
		switch {
		case !ok:
			t.Errorf("%s/%s is missing: run `make gen`", ChartDir, path)
		case !bytes.Equal(g, data):
			t.Errorf("%s/%s is stale: run `make gen`\n%s", ChartDir, path, lineDiff(string(data), string(g)))
		}
	}
	for path := range got {
		if _, ok := want[path]; !ok {
			t.Errorf("%s/%s is not generated: remove it, or run `make gen`", ChartDir, path)
		}
	}
}

// helmQuote is Sprig's quote, which Helm templates use.
func helmQuote(v ...any) string {
	var out []string
	for _, s := range v {
		if s != nil {
			out = append(out, fmt.Sprintf("%q", fmt.Sprint(s)))
		}
	}
	return strings.Join(out, " ")
}

// renderChart renders the chart's templates as Helm would (Go templates;
// the chart uses only quote of Sprig's functions, and `if`), with values
// read as Helm reads them (YAML to JSON: numbers are float64).
func renderChart(t *testing.T, values map[string]any, namespace string) []*unstructured.Unstructured {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(chartDir, "templates", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no templates in %s (%v)", chartDir, err)
	}
	data := map[string]any{
		"Values":  values,
		"Release": map[string]any{"Name": "weft", "Namespace": namespace},
	}
	var out []*unstructured.Unstructured
	for _, p := range paths {
		text, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := template.New(filepath.Base(p)).Option("missingkey=error").
			Funcs(template.FuncMap{"quote": helmQuote}).Parse(string(text))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, data); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		objs, err := DecodeYAML(b.Bytes())
		if err != nil {
			t.Fatalf("%s renders YAML that does not decode: %v\n%s", p, err, b.String())
		}
		out = append(out, objs...)
	}
	return out
}

// normalize turns an object into plain JSON values, so that int64 and
// float64 numbers compare equal.
func normalize(t *testing.T, u *unstructured.Unstructured) any {
	t.Helper()
	b, err := json.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func objKey(u *unstructured.Unstructured) string {
	return u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
}

// TestChartRendersLikeInstall renders the chart's templates with values
// files and compares them, object by object, with what weft install
// renders from the same values files: the two cannot drift.
func TestChartRendersLikeInstall(t *testing.T) {
	defaults, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		namespace string
		overrides string
	}{
		"defaults":     {"weft-system", ""},
		"cert-manager": {"weft-system", "certManager:\n  enabled: true\n"},
		"custom": {"mesh", `image: {registry: "registry.example.com:5000/mesh", tag: "1.0", pullPolicy: Always}
replicas: 5
trustDomain: prod.example.com
logLevel: debug
resources: {requests: {cpu: 250m, memory: 1Gi}, limits: {cpu: "2", memory: 2Gi}}
webhook: {failurePolicy: Ignore, timeoutSeconds: 12}
`},
	} {
		t.Run(name, func(t *testing.T) {
			// weft install --values: the chart's values.yaml, then the file.
			v, err := ParseValues(defaults, Values{})
			if err != nil {
				t.Fatal(err)
			}
			if v, err = ParseValues([]byte(tc.overrides), v); err != nil {
				t.Fatal(err)
			}
			m, err := Render(Options{Namespace: tc.namespace, Values: v, CASecret: CASecretSkip})
			if err != nil {
				t.Fatal(err)
			}
			// helm install -f: values.yaml, the file merged over it.
			var hv, ov map[string]any
			if err := yaml.Unmarshal(defaults, &hv); err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal([]byte(tc.overrides), &ov); err != nil {
				t.Fatal(err)
			}
			mergeValues(hv, ov)
			chart := renderChart(t, hv, tc.namespace)

			want := map[string]*unstructured.Unstructured{}
			for _, o := range m.Objects {
				if o.GetKind() != "Namespace" { // Helm's release namespace
					want[objKey(o)] = o
				}
			}
			got := map[string]*unstructured.Unstructured{}
			for _, o := range chart {
				if _, dup := got[objKey(o)]; dup {
					t.Errorf("the chart renders %s twice", objKey(o))
				}
				got[objKey(o)] = o
			}
			for _, k := range slices.Sorted(maps.Keys(want)) {
				g, ok := got[k]
				if !ok {
					t.Errorf("the chart does not render %s", k)
					continue
				}
				if !reflect.DeepEqual(normalize(t, want[k]), normalize(t, g)) {
					wy, _ := yaml.Marshal(want[k].Object)
					gy, _ := yaml.Marshal(g.Object)
					t.Errorf("%s differs between weft install and the chart:\n%s", k, lineDiff(string(wy), string(gy)))
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					t.Errorf("the chart renders %s, which weft install does not", k)
				}
			}
		})
	}
}

// mergeValues merges src into dst as Helm merges values files.
func mergeValues(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func TestChartNotes(t *testing.T) {
	text, err := os.ReadFile(filepath.Join(chartDir, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := template.New("NOTES.txt").Option("missingkey=error").Parse(string(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range []bool{false, true} {
		var b bytes.Buffer
		data := map[string]any{
			"Values":  map[string]any{"certManager": map[string]any{"enabled": cm}},
			"Release": map[string]any{"Namespace": "mesh"},
		}
		if err := tmpl.Execute(&b, data); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(b.String(), "--ca-secret=only -n mesh"); got == cm {
			t.Errorf("cert-manager %v: the notes say to create the CA Secret: %v\n%s", cm, got, b.String())
		}
	}
}

func TestChartCRDsAreEmbeddedOnes(t *testing.T) {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	paths, err := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(crds) {
		t.Errorf("the chart has %d CRD files, deploy/crds %d CRDs", len(paths), len(crds))
	}
}

func TestValuesSchema(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	// Every value has a schema, and nothing else does.
	var v map[string]any
	y, _ := yaml.Marshal(DefaultValues())
	if err := yaml.Unmarshal(y, &v); err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(maps.Keys(s.Properties)), slices.Sorted(maps.Keys(v)); !slices.Equal(got, want) {
		t.Errorf("schema properties %v, values %v", got, want)
	}
}
