package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/weft-mesh/weft/internal/control/inject"
)

func injectCmd() *cobra.Command {
	var (
		files                 []string
		nsLabels, nsAnnots    map[string]string
		proxyImage, controlNS string
	)
	c := &cobra.Command{
		Use:   "inject -f FILE|- ...",
		Short: "Add weft's sidecar to the pods of Kubernetes manifests, as the injection webhook would",
		Long: `Read Kubernetes manifests (YAML streams, List kinds included) from files or stdin and write them to
stdout with weft injected into the pod template of every Pod, Deployment, StatefulSet, DaemonSet,
ReplicaSet, Job and CronJob that asks for it. Other objects, and workloads not injected, are written
unchanged, in the same order. The result is what the injection webhook would admit (docs/injection.md),
for GitOps repositories that keep injected manifests:

  weft inject -f deploy.yaml | kubectl apply -f -
  weft inject -f - --namespace-labels weft.io/inject=enabled < app.yaml > app.injected.yaml

A pod is injected when it, or its namespace, has weft.io/inject: enabled; the namespace is not read from
a cluster: --namespace-labels and --namespace-annotations say what it has.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return errors.New("give the manifests with -f FILE (or -f - for stdin)")
			}
			o := inject.DefaultOptions()
			if proxyImage != "" {
				o.ProxyImage = proxyImage
			}
			if controlNS != "" {
				o.ControlPlaneNamespace = controlNS
				o.ControlPlaneAddress = inject.ControlPlaneAddress(controlNS)
			}
			var out bytes.Buffer
			for _, f := range files {
				data, err := readManifestFile(cmd, f)
				if err != nil {
					return err
				}
				if out.Len() > 0 {
					out.WriteString("---\n")
				}
				if err := injectManifests(o, inject.Namespace{Labels: nsLabels, Annotations: nsAnnots}, data, &out); err != nil {
					return fmt.Errorf("%s: %w", displayName(f), err)
				}
			}
			_, err := cmd.OutOrStdout().Write(out.Bytes())
			return err
		},
	}
	fs := c.Flags()
	fs.StringArrayVarP(&files, "filename", "f", nil, "manifest file, or - for stdin (repeatable)")
	fs.StringToStringVar(&nsLabels, "namespace-labels", nil, "labels the workloads' namespace has, e.g. weft.io/inject=enabled")
	fs.StringToStringVar(&nsAnnots, "namespace-annotations", nil, "annotations the workloads' namespace has")
	fs.StringVar(&proxyImage, "proxy-image", "", "the weft-proxy image (default: this weft's, as weft install names it)")
	fs.StringVar(&controlNS, "control-plane-namespace", "", "the control plane's namespace (default weft-system)")
	return c
}

func displayName(f string) string {
	if f == "-" {
		return "stdin"
	}
	return f
}

func readManifestFile(cmd *cobra.Command, f string) ([]byte, error) {
	if f == "-" {
		b, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return nil, fmt.Errorf("reading stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("reading manifests: %w", err)
	}
	return b, nil
}

// splitDocuments splits a YAML stream at its "---" lines.
func splitDocuments(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("splitting the YAML stream: %w", err)
		}
		docs = append(docs, doc)
	}
}

// injectManifests writes the documents of data to w, injected where they
// ask for it, separated by "---". A document left unchanged is written as
// it was read (comments and order of keys included); an injected one is
// re-encoded.
func injectManifests(o inject.Options, ns inject.Namespace, data []byte, w *bytes.Buffer) error {
	docs, err := splitDocuments(data)
	if err != nil {
		return err
	}
	first := true
	for i, doc := range docs {
		var obj any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return fmt.Errorf("document %d: %w", i+1, err)
		}
		if obj == nil { // empty or only comments
			continue
		}
		m, ok := obj.(map[string]any)
		if !ok {
			return fmt.Errorf("document %d is not a Kubernetes object", i+1)
		}
		changed, err := injectObject(o, ns, m)
		if err != nil {
			return fmt.Errorf("document %d (%s): %w", i+1, describe(m), err)
		}
		if !first {
			w.WriteString("---\n")
		}
		first = false
		if !changed {
			w.Write(bytes.TrimLeft(doc, "\n"))
			if len(doc) > 0 && doc[len(doc)-1] != '\n' {
				w.WriteByte('\n')
			}
			continue
		}
		b, err := yaml.Marshal(m)
		if err != nil {
			return fmt.Errorf("document %d: encoding: %w", i+1, err)
		}
		w.Write(b)
	}
	return nil
}

// describe names an object for errors: "Deployment shop/web".
func describe(m map[string]any) string {
	kind, _ := m["kind"].(string)
	meta, _ := m["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if ns, _ := meta["namespace"].(string); ns != "" {
		name = ns + "/" + name
	}
	return strings.TrimSpace(kind + " " + name)
}

// templatePath is where a workload kind keeps its pod template, or nil.
func templatePath(kind string) []string {
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController":
		return []string{"spec", "template"}
	case "CronJob":
		return []string{"spec", "jobTemplate", "spec", "template"}
	}
	return nil
}

// injectObject injects into m in place and reports whether it changed.
func injectObject(o inject.Options, ns inject.Namespace, m map[string]any) (bool, error) {
	kind, _ := m["kind"].(string)
	meta, _ := m["metadata"].(map[string]any)
	objNS, _ := meta["namespace"].(string)
	if objNS != "" {
		ns.Name = objNS
	}
	if items, ok := m["items"].([]any); ok && strings.HasSuffix(kind, "List") {
		changed := false
		for j, it := range items {
			im, ok := it.(map[string]any)
			if !ok {
				continue
			}
			c, err := injectObject(o, ns, im)
			if err != nil {
				return false, fmt.Errorf("item %d (%s): %w", j+1, describe(im), err)
			}
			changed = changed || c
		}
		return changed, nil
	}
	if kind == "Pod" {
		return injectTemplate(o, ns, m, objNS)
	}
	path := templatePath(kind)
	if path == nil {
		return false, nil
	}
	parent := m
	for _, p := range path[:len(path)-1] {
		next, ok := parent[p].(map[string]any)
		if !ok {
			return false, nil
		}
		parent = next
	}
	tmpl, ok := parent[path[len(path)-1]].(map[string]any)
	if !ok {
		return false, nil
	}
	return injectTemplate(o, ns, tmpl, objNS)
}

// injectTemplate injects into a pod or pod template's metadata and spec.
func injectTemplate(o inject.Options, ns inject.Namespace, m map[string]any, namespace string) (bool, error) {
	raw, err := json.Marshal(map[string]any{"metadata": m["metadata"], "spec": m["spec"]})
	if err != nil {
		return false, fmt.Errorf("encoding the pod template: %w", err)
	}
	var t corev1.PodTemplateSpec
	if err := json.Unmarshal(raw, &t); err != nil {
		return false, fmt.Errorf("reading the pod template: %w", err)
	}
	own := t.Namespace
	if t.Namespace == "" {
		t.Namespace = namespace
	}
	res, err := inject.Inject(o, t.ObjectMeta, t.Spec, ns)
	if err != nil || !res.Injected {
		return false, err
	}
	res.Meta.Namespace = own // a template's namespace is its workload's
	out, err := json.Marshal(corev1.PodTemplateSpec{ObjectMeta: res.Meta, Spec: res.Spec})
	if err != nil {
		return false, fmt.Errorf("encoding the injected pod: %w", err)
	}
	var back map[string]any
	if err := json.Unmarshal(out, &back); err != nil {
		return false, fmt.Errorf("decoding the injected pod: %w", err)
	}
	if md, ok := back["metadata"].(map[string]any); ok && md["creationTimestamp"] == nil {
		delete(md, "creationTimestamp")
	}
	m["metadata"], m["spec"] = back["metadata"], back["spec"]
	return true, nil
}
