package install

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/weft-mesh/weft/deploy"
)

// ChartVersion is the version of the Helm chart's packaging. Its
// appVersion, and the default image tag, is DefaultTag().
const ChartVersion = "0.1.0"

// ChartDir is where the chart lives, relative to the repository root.
const ChartDir = "deploy/helm/weft"

// ChartFile is one file of the generated chart, its path relative to the
// chart's directory.
type ChartFile struct {
	Path string
	Data []byte
}

// The chart is generated, not written by hand, so that it cannot drift from
// Render: each template is the YAML Render writes for values that are
// placeholders (valuesPlaceholders), each placeholder then replaced by its
// template expression. Objects present only with cert-manager (or different
// with it) are wrapped in `if .Values.certManager.enabled`. The namespace
// object and the weft-ca Secret are not in the chart: Helm installs into the
// release namespace (helm install --create-namespace) and cannot generate a
// CA with weft's code (`weft install --ca-secret=only` makes the Secret).
// The CRDs go to crds/, which Helm installs before the templates and never
// upgrades or deletes.

// placeholder is one value of the chart: the sentinel Render is given and
// the template expression that replaces it.
type placeholder struct {
	sentinel any    // string, int32 (an integer field) or a quantity string
	expr     string // e.g. ".Values.image.tag"
	integer  bool   // rendered unquoted
}

func token(key string) string { return "@@" + key + "@@" }

// chartPlaceholders returns the placeholders by key, and the Options whose
// rendering carries them.
func chartPlaceholders(certManager bool) (map[string]placeholder, Options) {
	ph := map[string]placeholder{
		"namespace":                 {sentinel: token("namespace"), expr: ".Release.Namespace"},
		"image.registry":            {sentinel: token("image.registry"), expr: ".Values.image.registry"},
		"image.tag":                 {sentinel: token("image.tag"), expr: ".Values.image.tag"},
		"image.pullPolicy":          {sentinel: token("image.pullPolicy"), expr: ".Values.image.pullPolicy"},
		"replicas":                  {sentinel: int32(909001), expr: ".Values.replicas", integer: true},
		"trustDomain":               {sentinel: token("trustDomain"), expr: ".Values.trustDomain"},
		"logLevel":                  {sentinel: token("logLevel"), expr: ".Values.logLevel"},
		"resources.requests.cpu":    {sentinel: "909002m", expr: ".Values.resources.requests.cpu"},
		"resources.requests.memory": {sentinel: "909003Mi", expr: ".Values.resources.requests.memory"},
		"resources.limits.cpu":      {sentinel: "909004m", expr: ".Values.resources.limits.cpu"},
		"resources.limits.memory":   {sentinel: "909005Mi", expr: ".Values.resources.limits.memory"},
		"webhook.failurePolicy":     {sentinel: token("webhook.failurePolicy"), expr: ".Values.webhook.failurePolicy"},
		"webhook.timeoutSeconds":    {sentinel: int32(909006), expr: ".Values.webhook.timeoutSeconds", integer: true},
	}
	s := func(k string) string { return ph[k].sentinel.(string) }
	i := func(k string) int32 { return ph[k].sentinel.(int32) }
	o := Options{
		Namespace: s("namespace"),
		CASecret:  CASecretSkip,
		Values: Values{
			Image:       Image{Registry: s("image.registry"), Tag: s("image.tag"), PullPolicy: s("image.pullPolicy")},
			Replicas:    i("replicas"),
			TrustDomain: s("trustDomain"),
			LogLevel:    s("logLevel"),
			Resources: Resources{
				Requests: ResourceList{CPU: s("resources.requests.cpu"), Memory: s("resources.requests.memory")},
				Limits:   ResourceList{CPU: s("resources.limits.cpu"), Memory: s("resources.limits.memory")},
			},
			CertManager: CertManager{Enabled: certManager},
			Webhook:     Webhook{FailurePolicy: s("webhook.failurePolicy"), TimeoutSeconds: i("webhook.timeoutSeconds")},
		},
	}
	return ph, o
}

// chartObjects renders the chart's objects (no namespace, no CA Secret, no
// CRDs) as template text, keyed by file name, in apply order.
func chartObjects(certManager bool) (names []string, texts map[string]string, err error) {
	ph, o := chartPlaceholders(certManager)
	m, err := render(o)
	if err != nil {
		return nil, nil, err
	}
	// The values that are no strings become tokens, so that every
	// placeholder is one string in the YAML.
	bySentinel := map[any]string{}
	for k, p := range ph {
		if _, isString := p.sentinel.(string); !isString || !strings.HasPrefix(p.sentinel.(string), "@@") {
			key := p.sentinel
			if n, ok := key.(int32); ok {
				key = int64(n)
			}
			bySentinel[key] = token(k)
		}
	}
	texts = map[string]string{}
	for _, obj := range m.Objects {
		if obj.GetKind() == "Namespace" {
			continue
		}
		replaceSentinels(obj.Object, bySentinel)
		y, err := yaml.Marshal(obj.Object)
		if err != nil {
			return nil, nil, fmt.Errorf("marshalling %s: %w", ref(obj), err)
		}
		text, err := templatize(string(y), ph)
		if err != nil {
			return nil, nil, fmt.Errorf("templating %s: %w", ref(obj), err)
		}
		name := "templates/" + strings.ToLower(obj.GetKind()) + "-" + obj.GetName() + ".yaml"
		if _, dup := texts[name]; dup {
			return nil, nil, fmt.Errorf("two objects make template %s", name)
		}
		names = append(names, name)
		texts[name] = text
	}
	return names, texts, nil
}

// replaceSentinels replaces, in place, the values of m equal to a key of
// by with its token.
func replaceSentinels(m map[string]any, by map[any]string) {
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				v[k] = walk(e)
			}
		case []any:
			for i, e := range v {
				v[i] = walk(e)
			}
		case string, int64:
			if t, ok := by[v]; ok {
				return t
			}
		}
		return v
	}
	walk(m)
}

// templatize replaces the tokens of y by template expressions: a whole
// quoted scalar by the value quoted (or bare, for integers), a token within
// a string by the value.
func templatize(y string, ph map[string]placeholder) (string, error) {
	for _, k := range slices.Sorted(maps.Keys(ph)) {
		p := ph[k]
		t := token(k)
		whole := "{{ " + p.expr + " | quote }}"
		if p.integer {
			whole = "{{ " + p.expr + " }}"
		}
		y = strings.ReplaceAll(y, "'"+t+"'", whole)
		y = strings.ReplaceAll(y, `"`+t+`"`, whole)
		y = strings.ReplaceAll(y, t, "{{ "+p.expr+" }}")
	}
	if i := strings.Index(y, "@@"); i >= 0 {
		end := min(len(y), i+40)
		return "", fmt.Errorf("a placeholder was left: %q", y[i:end])
	}
	return y, nil
}

const generatedHeader = "# Generated from internal/install by `make gen`: do not edit.\n"

// GenerateChart returns the files of the Helm chart.
func GenerateChart() ([]ChartFile, error) {
	plainNames, plain, err := chartObjects(false)
	if err != nil {
		return nil, fmt.Errorf("generating the chart: %w", err)
	}
	cmNames, withCM, err := chartObjects(true)
	if err != nil {
		return nil, fmt.Errorf("generating the chart: %w", err)
	}
	const cond = ".Values.certManager.enabled"
	var files []ChartFile
	add := func(path, text string) { files = append(files, ChartFile{Path: path, Data: []byte(text)}) }
	for _, name := range mergeOrder(plainNames, cmNames) {
		a, inPlain := plain[name]
		b, inCM := withCM[name]
		var text string
		switch {
		case inPlain && inCM && a == b:
			text = a
		case inPlain && inCM:
			text = conditionalText(cond, a, b)
		case inCM:
			text = "{{- if " + cond + " }}\n" + b + "{{- end }}\n"
		default:
			text = "{{- if not " + cond + " }}\n" + a + "{{- end }}\n"
		}
		add(name, generatedHeader+text)
	}
	crds, err := deploy.CRDs()
	if err != nil {
		return nil, fmt.Errorf("generating the chart: %w", err)
	}
	for _, f := range crds {
		files = append(files, ChartFile{Path: "crds/" + f.Name, Data: f.Data})
	}
	values, err := valuesYAML(DefaultValues())
	if err != nil {
		return nil, fmt.Errorf("generating the chart: %w", err)
	}
	schema, err := valuesSchema()
	if err != nil {
		return nil, fmt.Errorf("generating the chart: %w", err)
	}
	add("Chart.yaml", generatedHeader+chartYAML())
	add("values.yaml", generatedHeader+string(values))
	add("values.schema.json", string(schema))
	add("templates/NOTES.txt", notesTxt)
	add("README.md", chartReadme)
	slices.SortFunc(files, func(a, b ChartFile) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// conditionalText is a template that renders b when cond holds and a
// otherwise: when b is a with lines inserted in one place, only those are
// conditional; else the whole of each is.
func conditionalText(cond, a, b string) string {
	al, bl := strings.SplitAfter(a, "\n"), strings.SplitAfter(b, "\n")
	pre := 0
	for pre < len(al) && pre < len(bl) && al[pre] == bl[pre] {
		pre++
	}
	suf := 0
	for suf < len(al)-pre && suf < len(bl)-pre && al[len(al)-1-suf] == bl[len(bl)-1-suf] {
		suf++
	}
	if pre > 0 && pre+suf == len(al) {
		inserted := strings.Join(bl[pre:len(bl)-suf], "")
		return strings.Join(al[:pre], "") + "{{- if " + cond + " }}\n" + inserted + "{{- end }}\n" + strings.Join(al[pre:], "")
	}
	return "{{- if " + cond + " }}\n" + b + "{{- else }}\n" + a + "{{- end }}\n"
}

// mergeOrder is a's names followed by those only b has, in b's order.
func mergeOrder(a, b []string) []string {
	out := slices.Clone(a)
	for _, n := range b {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// WriteChart writes the chart into dir, replacing the files it generates
// and removing the templates and CRDs it no longer does.
func WriteChart(dir string) error {
	files, err := GenerateChart()
	if err != nil {
		return err
	}
	for _, sub := range []string{"templates", "crds"} {
		old, _ := filepath.Glob(filepath.Join(dir, sub, "*"))
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				return fmt.Errorf("removing a stale chart file: %w", err)
			}
		}
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("writing the chart: %w", err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return fmt.Errorf("writing the chart: %w", err)
		}
	}
	return nil
}

func chartYAML() string {
	return `apiVersion: v2
name: weft
description: weft, a service mesh - the control plane, its CRDs and permissions, and the sidecar injection webhook
type: application
version: ` + ChartVersion + `
appVersion: ` + strconv.Quote(DefaultTag()) + `
home: https://github.com/weft-mesh/weft
sources:
  - https://github.com/weft-mesh/weft
keywords:
  - service-mesh
  - mtls
  - gateway-api
`
}

// valuesYAML writes v as a values file, with comments.
func valuesYAML(v Values) ([]byte, error) {
	var b bytes.Buffer
	q := strconv.Quote
	fmt.Fprintf(&b, `# Values of the weft chart, and of `+"`weft install --values`"+`: both read this file the same way.
# The namespace is the release's: helm install weft deploy/helm/weft -n weft-system --create-namespace

# The images: <registry>/weft:<tag> (the control plane) and <registry>/weft-proxy:<tag> (the injected proxy).
image:
  registry: %s
  tag: %s
  pullPolicy: %s

# Control plane replicas, at least 2: all serve proxies, one leads (Lease %s) for the singleton work.
replicas: %d

# SPIFFE trust domain of workload identities: spiffe://<trustDomain>/ns/<namespace>/sa/<serviceaccount>.
trustDomain: %s

# debug, info, warn or error.
logLevel: %s

resources:
  requests:
    cpu: %s
    memory: %s
  limits:
    cpu: %s
    memory: %s

# With cert-manager, it issues and renews weft's issuer into the weft-ca Secret (a self-signed anchor
# Issuer, a CA Issuer, a CA Certificate). Without it, the weft-ca Secret must exist before the
# control plane starts: weft install --ca-secret=only -n <namespace> | kubectl apply -f -
certManager:
  enabled: %t

webhook:
  # What the API server does with a pod to inject when the webhook cannot be reached: Fail refuses it
  # (its controller retries), Ignore creates it without a proxy, outside the mesh and its policies.
  failurePolicy: %s
  timeoutSeconds: %d
`, q(v.Image.Registry), q(v.Image.Tag), v.Image.PullPolicy, LeaseName, v.Replicas, q(v.TrustDomain), v.LogLevel,
		q(v.Resources.Requests.CPU), q(v.Resources.Requests.Memory), q(v.Resources.Limits.CPU), q(v.Resources.Limits.Memory),
		v.CertManager.Enabled, v.Webhook.FailurePolicy, v.Webhook.TimeoutSeconds)
	got, err := ParseValues(b.Bytes(), Values{})
	if err != nil {
		return nil, fmt.Errorf("the generated values.yaml does not parse: %w", err)
	}
	if got != v {
		return nil, fmt.Errorf("the generated values.yaml reads back as %+v, not %+v", got, v)
	}
	return b.Bytes(), nil
}

// valuesSchema is values.schema.json: Helm checks values against it, as
// Values.Validate does for weft install.
func valuesSchema() ([]byte, error) {
	str := func(desc string) map[string]any {
		return map[string]any{"type": "string", "minLength": 1, "description": desc}
	}
	enum := func(desc string, vals []string) map[string]any {
		return map[string]any{"type": "string", "enum": vals, "description": desc}
	}
	obj := func(props map[string]any) map[string]any {
		return map[string]any{"type": "object", "additionalProperties": false, "required": slices.Sorted(maps.Keys(props)), "properties": props}
	}
	quantity := map[string]any{"type": "string", "pattern": `^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$`}
	resources := obj(map[string]any{"cpu": quantity, "memory": quantity})
	s := obj(map[string]any{
		"image": obj(map[string]any{
			"registry":   map[string]any{"type": "string", "pattern": `^[^\s@]+[^/\s@]$`, "description": "registry and path of the images, no tag"},
			"tag":        map[string]any{"type": "string", "pattern": `^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`},
			"pullPolicy": enum("", pullPolicies()),
		}),
		"replicas":    map[string]any{"type": "integer", "minimum": MinReplicas},
		"trustDomain": str("SPIFFE trust domain"),
		"logLevel":    enum("", logLevels()),
		"resources":   obj(map[string]any{"requests": resources, "limits": resources}),
		"certManager": obj(map[string]any{"enabled": map[string]any{"type": "boolean"}}),
		"webhook": obj(map[string]any{
			"failurePolicy":  enum("Fail refuses pods to inject while the webhook is unreachable; Ignore creates them without a proxy", failurePolicies()),
			"timeoutSeconds": map[string]any{"type": "integer", "minimum": 1, "maximum": 30},
		}),
	})
	s["$schema"] = "https://json-schema.org/draft-07/schema#"
	s["title"] = "weft chart values"
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshalling values.schema.json: %w", err)
	}
	return append(b, '\n'), nil
}

const notesTxt = `weft's control plane is starting in namespace {{ .Release.Namespace }}.

  kubectl -n {{ .Release.Namespace }} rollout status deployment/` + ControlPlaneName + `
{{- if not .Values.certManager.enabled }}

It reads its issuer and trust anchor from the Secret ` + CASecretName + `, which this chart does not create:
  weft install --ca-secret=only -n {{ .Release.Namespace }} | kubectl apply -f -
{{- end }}

Mesh a namespace (its new pods get a proxy):
  kubectl label namespace <namespace> ` + InjectLabel + `=enabled

The Gateway API CRDs (HTTPRoute, GRPCRoute) are not installed by weft: see docs/install.md.
`

const chartReadme = `# weft Helm chart

Generated from ` + "`internal/install`" + ` by ` + "`make gen`" + `: the templates are the manifests ` + "`weft install`" + `
renders, with values in place of settings, and a test renders them and compares them with ` + "`weft install`" + `'s
output object by object. Do not edit these files; change ` + "`internal/install`" + ` and run ` + "`make gen`" + `.

    weft install --ca-secret=only -n weft-system | kubectl apply -f -   # unless certManager.enabled
    helm install weft deploy/helm/weft -n weft-system --create-namespace

Values: ` + "`values.yaml`" + ` (checked by ` + "`values.schema.json`" + `). The CRDs in ` + "`crds/`" + ` are installed by Helm
before the templates and, as Helm does with CRDs, never upgraded or deleted by it: apply them yourself on upgrade
(` + "`weft install`" + ` does). See docs/install.md for upgrades, uninstalling, cert-manager and what the RBAC grants.
`
