package apis_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// weftAPIVersions are the API versions of this module's types.
var weftAPIVersions = []string{"weft.dev/v1alpha1", "policy.weft.dev/v1alpha1"}

// example is a document of weft's API found in a file.
type example struct {
	where      string // file:line
	kind, ns   string
	doc        string
	apiVersion string
}

// TestDocsExamples checks that the apiserver accepts every YAML example of
// weft's API in the docs, and so does universal mode.
func TestDocsExamples(t *testing.T) {
	var examples []example
	for _, path := range []string{"../../docs/policies.md", "../../docs/universal-mode.md"} {
		md, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, block := range yamlBlocks(t, string(md)) {
			examples = append(examples, weftDocuments(t, path, block.line, block.text)...)
		}
	}
	checkExamples(t, examples, "Workload", "RetryBudget", "CircuitBreaker", "LoadBalancer", "AuthorizationPolicy", "MutualTLSPolicy", "RateLimit", "FaultInjection")
}

// TestFileSourceFixtures checks that the apiserver accepts every document
// of weft's API in the file source's fixture mesh.
func TestFileSourceFixtures(t *testing.T) {
	root := filepath.Join("..", "..", "internal", "control", "source", "file", "testdata", "mesh")
	var examples []example
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		examples = append(examples, weftDocuments(t, path, 1, string(data))...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkExamples(t, examples, "Workload", "RetryBudget", "CircuitBreaker", "AuthorizationPolicy", "MutualTLSPolicy")
}

// checkExamples creates each example (dry run) and fails unless the
// apiserver and universal mode accept it and every kind of wantKinds has
// an example.
func checkExamples(t *testing.T, examples []example, wantKinds ...string) {
	t.Helper()
	var ns []string
	seen := map[string]bool{}
	for _, e := range examples {
		if e.ns == "" {
			e.ns = "default"
		}
		if !slices.Contains(ns, e.ns) {
			ns = append(ns, e.ns)
		}
		seen[e.kind] = true
	}
	for _, k := range wantKinds {
		if !seen[k] {
			t.Errorf("no example of %s found", k)
		}
	}
	c := newClient(t, ns...)
	for _, e := range examples {
		t.Run(e.where+" "+e.kind, func(t *testing.T) {
			if err := apiserverVerdict(t, c, e.doc); err != nil {
				t.Errorf("the apiserver refuses the example: %v\n%s", err, e.doc)
			}
			if refused := universalVerdict(t, e.doc); len(refused) > 0 {
				t.Errorf("universal mode refuses the example: %q\n%s", refused, e.doc)
			}
		})
	}
}

type block struct {
	line int // of the block's first line in its file
	text string
}

// yamlBlocks returns the fenced ```yaml blocks of a Markdown text.
func yamlBlocks(t *testing.T, md string) []block {
	t.Helper()
	var out []block
	var cur *block
	for i, l := range strings.Split(md, "\n") {
		trimmed := strings.TrimSpace(l)
		switch {
		case cur == nil && trimmed == "```yaml":
			cur = &block{line: i + 2}
		case cur != nil && trimmed == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += l + "\n"
		}
	}
	if cur != nil {
		t.Fatalf("a yaml block from line %d is not closed", cur.line)
	}
	return out
}

// weftDocuments returns the documents of weft's API in a YAML text that
// starts at line first of path, each re-encoded on its own.
func weftDocuments(t *testing.T, path string, first int, text string) []example {
	t.Helper()
	var out []example
	dec := yaml.NewDecoder(bytes.NewReader([]byte(text)))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: invalid YAML: %v", path, err)
		}
		var head struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Metadata   struct {
				Namespace string `yaml:"namespace"`
			} `yaml:"metadata"`
		}
		if err := n.Decode(&head); err != nil || !slices.Contains(weftAPIVersions, head.APIVersion) {
			continue
		}
		doc, err := yaml.Marshal(&n)
		if err != nil {
			t.Fatal(err)
		}
		line := first - 1 + n.Line
		if len(n.Content) > 0 {
			line = first - 1 + n.Content[0].Line
		}
		out = append(out, example{
			where: filepath.Base(path) + ":" + strconv.Itoa(line), kind: head.Kind, apiVersion: head.APIVersion,
			ns: head.Metadata.Namespace, doc: string(doc),
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
