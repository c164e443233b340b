package install

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/weft-mesh/weft/deploy"
)

// CRDs returns weft's CustomResourceDefinitions, embedded from deploy/crds
// (generated from pkg/apis by controller-gen), sorted by file name. The
// Gateway API CRDs are not among them: weft does not install them (see
// docs/install.md).
func CRDs() ([]*unstructured.Unstructured, error) {
	files, err := deploy.CRDs()
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, f := range files {
		objs, err := DecodeYAML(f.Data)
		if err != nil {
			return nil, fmt.Errorf("embedded CRD file %s: %w", f.Name, err)
		}
		for _, o := range objs {
			if o.GetKind() != "CustomResourceDefinition" {
				return nil, fmt.Errorf("embedded CRD file %s holds a %s, not a CustomResourceDefinition", f.Name, o.GetKind())
			}
		}
		out = append(out, objs...)
	}
	return out, nil
}

// DecodeYAML decodes a YAML stream of Kubernetes objects; empty documents
// are skipped.
func DecodeYAML(data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []*unstructured.Unstructured
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading YAML document %d: %w", i, err)
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("decoding YAML document %d: %w", i, err)
		}
		if t := bytes.TrimSpace(j); len(t) == 0 || bytes.Equal(t, []byte("null")) || bytes.Equal(t, []byte("{}")) {
			continue // an empty document
		}
		// Unstructured's own JSON decoding keeps integers int64, as the
		// objects Render builds have them.
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			return nil, fmt.Errorf("decoding YAML document %d: %w", i, err)
		}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("YAML document %d has no kind or apiVersion", i)
		}
		out = append(out, u)
	}
}
