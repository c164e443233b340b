package apis_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/source/file"
	"github.com/weft-mesh/weft/internal/control/translate"
)

// fixture is what the documents of these tests refer to, in namespace shop:
// Service web (port http 80 to the workloads' port http) and its Workload
// web-0.
const fixture = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec:
  address: 10.1.0.1
  serviceAccount: web
  ports: [{name: http, port: 8080, protocol: http1}]
`

// apiserverVerdict creates doc (one YAML document) with a server-side dry
// run and strict field validation, as kubectl apply does, and returns the
// apiserver's error, nil if it accepts the document.
func apiserverVerdict(t *testing.T, c client.Client, doc string) error {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
		t.Fatalf("the test's document does not parse: %v\n%s", err, doc)
	}
	if obj.GetNamespace() == "" {
		obj.SetNamespace("default") // as the file source reads it
	}
	return c.Create(t.Context(), obj, client.DryRunAll, client.FieldValidation("Strict"))
}

// universalVerdict reads doc as universal mode does, beside the fixture,
// and returns the problems that keep it from being served: the file
// source's refusals ("the document is ignored") and the translation's
// ("the policy is ignored": what the proxy would refuse). Problems that
// leave it served (a target that does not exist) are not returned.
func universalVerdict(t *testing.T, doc string) []string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"fixture.yaml": fixture, "doc.yaml": doc} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	objs, problems, err := file.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var refused []string
	for _, p := range problems {
		if filepath.Base(p.File) != "doc.yaml" {
			t.Fatalf("the fixture has a problem: %v", p)
		}
		if strings.Contains(p.Message, "the document is ignored") {
			refused = append(refused, "file source: "+p.Field+": "+p.Message)
		}
	}
	st := model.NewStore()
	if err := st.Replace("file", objs); err != nil {
		t.Fatal(err)
	}
	for _, p := range translate.Check(st.Snapshot()) {
		if strings.HasSuffix(p.Message, "the policy is ignored") {
			refused = append(refused, "translation: "+p.String())
		}
	}
	return refused
}
