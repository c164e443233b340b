package file

import (
	"fmt"
	"maps"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/source/convert"
	policyapi "github.com/weft-mesh/weft/pkg/apis/policy/v1alpha1"
	weftapi "github.com/weft-mesh/weft/pkg/apis/weft/v1alpha1"
)

// API versions of the resources a directory holds.
const (
	apiCore    = "v1"
	apiGateway = "gateway.networking.k8s.io/v1"
	apiWeft    = "weft.dev/v1alpha1"
	apiPolicy  = "policy.weft.dev/v1alpha1"
)

// kinds lists the apiVersion and kind of every resource weft reads.
func kinds() [][2]string {
	return [][2]string{
		{apiCore, "Service"}, {apiWeft, "Workload"}, {apiGateway, "HTTPRoute"}, {apiGateway, "GRPCRoute"},
		{apiPolicy, "RetryBudget"}, {apiPolicy, "CircuitBreaker"}, {apiPolicy, "LoadBalancer"},
		{apiCore, "Namespace"}, {apiPolicy, "AuthorizationPolicy"}, {apiPolicy, "MutualTLSPolicy"},
		{apiPolicy, "RateLimit"}, {apiPolicy, "FaultInjection"},
	}
}

// newObject returns a new value of the Go type a document of apiVersion and
// kind decodes into, nil for one weft does not read.
func newObject(apiVersion, kind string) any {
	switch [2]string{apiVersion, kind} {
	case [2]string{apiCore, "Service"}:
		return &corev1.Service{}
	case [2]string{apiWeft, "Workload"}:
		return &weftapi.Workload{}
	case [2]string{apiGateway, "HTTPRoute"}:
		return &gwv1.HTTPRoute{}
	case [2]string{apiGateway, "GRPCRoute"}:
		return &gwv1.GRPCRoute{}
	case [2]string{apiPolicy, "RetryBudget"}:
		return &policyapi.RetryBudget{}
	case [2]string{apiPolicy, "CircuitBreaker"}:
		return &policyapi.CircuitBreaker{}
	case [2]string{apiPolicy, "LoadBalancer"}:
		return &policyapi.LoadBalancer{}
	case [2]string{apiCore, "Namespace"}:
		return &corev1.Namespace{}
	case [2]string{apiPolicy, "AuthorizationPolicy"}:
		return &policyapi.AuthorizationPolicy{}
	case [2]string{apiPolicy, "MutualTLSPolicy"}:
		return &policyapi.MutualTLSPolicy{}
	case [2]string{apiPolicy, "RateLimit"}:
		return &policyapi.RateLimit{}
	case [2]string{apiPolicy, "FaultInjection"}:
		return &policyapi.FaultInjection{}
	}
	return nil
}

// resource is one valid document: the model object it produced, where it
// came from, and what it refers to (checked once every file is read).
type resource struct {
	file string
	line int
	obj  model.Object
	refs []reference
	// For a Service, per port: the named target port ("" when numeric)
	// and the line of its field.
	targetNames []string
	targetLines []int
}

// reference is a reference of a resource and the line of its field.
type reference struct {
	convert.Reference
	line int
}

// conv holds what parsing one document found: where its fields are and
// its problems.
type conv struct {
	file     string
	docLine  int
	lines    map[string]int
	problems []Problem
	invalid  bool
}

const skipped = "; the document is ignored until it is fixed"

// maxDocProblems bounds the problems reported per document.
const maxDocProblems = 10

// fail records a problem that makes the document invalid.
func (c *conv) fail(field, format string, args ...any) {
	c.invalid = true
	c.problems = append(c.problems, Problem{File: c.file, Line: c.line(field), Field: field, Message: fmt.Sprintf(format, args...) + skipped})
}

// line returns the line of a field, or of its closest ancestor seen.
func (c *conv) line(field string) int {
	for field != "" {
		if l, ok := c.lines[field]; ok {
			return l
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return c.docLine
}

// parseDocument decodes and converts one document; nil when it is invalid.
func parseDocument(file string, doc document, mtime time.Time) (*resource, []Problem) {
	c := &conv{file: file, docLine: doc.line, lines: map[string]int{}}
	if doc.root.Kind != yaml.MappingNode {
		c.fail("", "a resource must be a mapping with apiVersion, kind, metadata and spec, got %s", describe(doc.root))
		return nil, c.problems
	}
	for i := 0; i+1 < len(doc.root.Content); i += 2 {
		c.lines[doc.root.Content[i].Value] = doc.root.Content[i].Line
	}
	apiVersion, kind := topScalar(doc.root, "apiVersion"), topScalar(doc.root, "kind")
	obj := newObject(apiVersion, kind)
	if obj == nil {
		c.unknownKind(apiVersion, kind)
		return nil, c.problems
	}
	d := newDecoder()
	d.decode(doc.root, reflect.ValueOf(obj).Elem(), "")
	maps.Copy(c.lines, d.lines)
	for _, e := range d.errs {
		c.invalid = true
		c.problems = append(c.problems, Problem{File: file, Line: e.line, Field: e.path, Message: e.msg + skipped})
	}
	if c.invalid {
		return nil, capProblems(c.problems)
	}
	r := convert.Object(obj, convert.Options{Created: mtime})
	for _, p := range r.Problems {
		msg := p.Message
		if p.Invalid {
			msg += skipped
		}
		c.problems = append(c.problems, Problem{File: file, Line: c.line(p.Field), Field: p.Field, Message: msg})
	}
	if r.Object == nil {
		return nil, capProblems(c.problems)
	}
	res := &resource{file: file, line: doc.line, obj: r.Object, targetNames: r.TargetPortNames}
	for _, f := range r.TargetPortFields {
		res.targetLines = append(res.targetLines, c.line(f))
	}
	for _, ref := range r.Refs {
		res.refs = append(res.refs, reference{Reference: ref, line: c.line(ref.Field)})
	}
	return res, capProblems(c.problems)
}

// capProblems keeps the first maxDocProblems problems of a document and
// says how many more there are.
func capProblems(ps []Problem) []Problem {
	if len(ps) <= maxDocProblems {
		return ps
	}
	more := ps[maxDocProblems]
	more.Message = fmt.Sprintf("and %d more problems", len(ps)-maxDocProblems)
	return append(ps[:maxDocProblems], more)
}

func topScalar(m *yaml.Node, key string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.ScalarNode {
			return m.Content[i+1].Value
		}
	}
	return ""
}

func (c *conv) unknownKind(apiVersion, kind string) {
	if apiVersion == "" || kind == "" {
		c.fail("", "apiVersion and kind are required")
		return
	}
	for _, k := range kinds() {
		if k[1] == kind {
			c.fail("apiVersion", "%s %s is not supported; use apiVersion: %s", apiVersion, kind, k[0])
			return
		}
	}
	var known []string
	for _, k := range kinds() {
		known = append(known, k[1]+" ("+k[0]+")")
	}
	c.fail("kind", "kind %s (%s) is not one weft reads; use one of %s", kind, apiVersion, strings.Join(known, ", "))
}
