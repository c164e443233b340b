package check

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/weft-mesh/weft/internal/install"
)

// embeddedCRDs are the CRDs this binary installs (deploy/crds, through
// internal/install), typed.
func embeddedCRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	objs, err := install.CRDs()
	if err != nil {
		return nil, fmt.Errorf("reading the CRDs embedded in weft: %w", err)
	}
	out := make([]*apiextensionsv1.CustomResourceDefinition, 0, len(objs))
	for _, o := range objs {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, crd); err != nil {
			return nil, fmt.Errorf("decoding the embedded CRD %s: %w", o.GetName(), err)
		}
		out = append(out, crd)
	}
	return out, nil
}

// versionHash is the SHA-256 of a CRD version's JSON (name, served,
// storage, schema, subresources, printer columns, ...), short.
func versionHash(v apiextensionsv1.CustomResourceDefinitionVersion) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "unhashable: " + err.Error()
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])[:12]
}

// drift says how the cluster's CRD got differs from want, this weft's; nil
// when they are the same.
func drift(got, want *apiextensionsv1.CustomResourceDefinition) []string {
	var out []string
	if got.Spec.Group != want.Spec.Group || got.Spec.Scope != want.Spec.Scope || !reflect.DeepEqual(got.Spec.Names.ShortNames, want.Spec.Names.ShortNames) ||
		got.Spec.Names.Kind != want.Spec.Names.Kind || !reflect.DeepEqual(got.Spec.Names.Categories, want.Spec.Names.Categories) {
		out = append(out, "its group, scope or names differ")
	}
	gotV := map[string]apiextensionsv1.CustomResourceDefinitionVersion{}
	for _, v := range got.Spec.Versions {
		gotV[v.Name] = v
	}
	for _, w := range want.Spec.Versions {
		g, ok := gotV[w.Name]
		delete(gotV, w.Name)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("version %s is missing", w.Name))
		case versionHash(g) != versionHash(w):
			what := "served, storage, printer columns or subresources differ"
			if !reflect.DeepEqual(g.Schema, w.Schema) {
				what = "schema differs"
			}
			out = append(out, fmt.Sprintf("version %s: its %s (hash %s, weft's %s)", w.Name, what, versionHash(g), versionHash(w)))
		}
	}
	for name := range gotV {
		out = append(out, fmt.Sprintf("version %s is not weft's", name))
	}
	return out
}

// checkCRDsCurrent checks that the cluster's weft CRDs are those of this
// binary.
func (c *Cluster) checkCRDsCurrent(ctx context.Context) Outcome {
	ours, err := embeddedCRDs()
	if err != nil {
		return Fail("this weft binary is broken: reinstall it", "%v", err)
	}
	var problems []string
	for _, want := range ours {
		got, err := c.APIExtensions.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			problems = append(problems, fmt.Sprintf("CRD %s is not installed", want.Name))
			continue
		}
		if err != nil {
			return Fail("check that the kubeconfig's user may read CRDs", "reading CRD %s: %v", want.Name, err)
		}
		for _, d := range drift(got, want) {
			problems = append(problems, fmt.Sprintf("CRD %s: %s", want.Name, d))
		}
	}
	if len(problems) > 0 {
		return Fail("run weft install to upgrade them: weft install --apply (or weft install | kubectl apply --server-side --field-manager="+install.FieldManager+" -f -)",
			"the cluster's CRDs are not this weft's:\n%s", strings.Join(problems, "\n"))
	}
	return Pass("")
}
