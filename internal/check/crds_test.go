package check

import (
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

func TestCRDCompatibilityAndDrift(t *testing.T) {
	ours, err := embeddedCRDs()
	if err != nil || len(ours) == 0 {
		t.Fatalf("embedded CRDs: %d, %v", len(ours), err)
	}
	want := ours[0]
	for _, tc := range []struct {
		name       string
		mod        func(*apiextensionsv1.CustomResourceDefinition)
		wantIncomp string // "" means compatible
		wantDrift  string // "" means none
	}{
		{"the same", func(*apiextensionsv1.CustomResourceDefinition) {}, "", ""},
		{"an old stored version", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Status.StoredVersions = []string{"v0alpha9"}
		}, "stores objects as " + want.Spec.Group + "/v0alpha9", ""},
		{"other scope", func(c *apiextensionsv1.CustomResourceDefinition) { c.Spec.Scope = "Elsewhere" }, "is Elsewhere", "group, scope or names differ"},
		{"an extra version", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions = append(c.Spec.Versions, apiextensionsv1.CustomResourceDefinitionVersion{Name: "v9"})
		}, "", "version v9 is not weft's"},
		{"an edited schema", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Schema.OpenAPIV3Schema.Description = "edited"
		}, "", "its schema differs"},
		{"not served", func(c *apiextensionsv1.CustomResourceDefinition) {
			c.Spec.Versions[0].Served = !c.Spec.Versions[0].Served
		}, "", "served, storage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := want.DeepCopy()
			tc.mod(got)
			in := strings.Join(incompatibilities(got, want), "\n")
			if (in == "") != (tc.wantIncomp == "") || !strings.Contains(in, tc.wantIncomp) {
				t.Errorf("incompatibilities = %q, want %q", in, tc.wantIncomp)
			}
			d := strings.Join(drift(got, want), "\n")
			if (d == "") != (tc.wantDrift == "") || !strings.Contains(d, tc.wantDrift) {
				t.Errorf("drift = %q, want %q", d, tc.wantDrift)
			}
		})
	}
}
