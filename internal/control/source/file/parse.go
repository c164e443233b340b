package file

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/weft-mesh/weft/internal/suggest"

	"go.yaml.in/yaml/v3"

	"github.com/weft-mesh/weft/internal/control/source/convert"
)

// Limits that keep a hostile or broken file from exhausting the control
// plane: a mesh's resources are kilobytes.
const (
	maxFileBytes = 4 << 20
	// maxNodes bounds the nodes one document may expand to, aliases
	// included (a "billion laughs" document stops here).
	maxNodes = 100_000
)

// document is one YAML document of a file, not yet decoded.
type document struct {
	root *yaml.Node // the document's content: a mapping for a resource
	line int
}

// splitDocuments parses the YAML documents of data. A syntax error ends the
// file: the documents before it are returned with the error's line.
func splitDocuments(data []byte) (docs []document, errLine int, err error) {
	defer func() {
		// The YAML library is third-party code fed user input: a panic
		// in it must cost one file, not the control plane.
		if r := recover(); r != nil {
			errLine, err = 0, fmt.Errorf("the YAML parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, 0, nil
		}
		if err != nil {
			return docs, yamlErrorLine(err), fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if len(n.Content) == 0 {
			continue // a document holding only comments
		}
		root := n.Content[0]
		if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
			continue // an empty document ("---" at the end)
		}
		docs = append(docs, document{root: root, line: root.Line})
	}
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// yamlErrorLine extracts the line from a YAML library error, 0 if none.
func yamlErrorLine(err error) int {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil {
			return n
		}
	}
	return 0
}

// fieldError is a problem at a path of a document.
type fieldError struct {
	path string
	line int
	msg  string
}

// decoder decodes YAML nodes into Go values strictly, as the Kubernetes API
// server decodes JSON: fields by their json tag, exact case, no unknown or
// duplicate fields, no type coercion. Unlike a JSON decoder it keeps going
// after a problem and records each problem with its field path and line,
// and the line of every field it meets (lines), so later checks can point
// at the field they reject.
type decoder struct {
	lines  map[string]int
	errs   []fieldError
	nodes  int
	fields map[reflect.Type]map[string][]int
}

func newDecoder() *decoder {
	return &decoder{lines: map[string]int{}, fields: map[reflect.Type]map[string][]int{}}
}

func (d *decoder) fail(path string, line int, format string, args ...any) {
	d.errs = append(d.errs, fieldError{path: path, line: line, msg: fmt.Sprintf(format, args...)})
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// decode sets v (addressable) from node n found at path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n, ok := d.resolve(n, path)
	if !ok {
		return
	}
	if _, seen := d.lines[path]; !seen {
		d.lines[path] = n.Line
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // as JSON's null: the field keeps its zero value
	}
	if reflect.PointerTo(v.Type()).Implements(jsonUnmarshaler) {
		d.decodeJSON(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(path, n.Line, "want a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		if !d.scalar(n, path, "a string", "!!str", "!!timestamp") {
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		// YAML 1.1's spellings too, as Kubernetes' YAML reader takes them.
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
			switch strings.ToLower(n.Value) {
			case "yes", "on":
				v.SetBool(true)
				return
			case "no", "off":
				v.SetBool(false)
				return
			}
		}
		if d.scalar(n, path, "true or false", "!!bool") {
			d.decodeScalar(n, v, path)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if d.scalar(n, path, "an integer", "!!int") {
			d.decodeScalar(n, v, path)
		}
	case reflect.Float32, reflect.Float64:
		if d.scalar(n, path, "a number", "!!int", "!!float") {
			d.decodeScalar(n, v, path)
			if f := v.Float(); math.IsInf(f, 0) || math.IsNaN(f) {
				d.fail(path, n.Line, "%s is not a finite number", n.Value)
			}
		}
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.fail(path, n.Line, "%s", yamlMessage(err))
			return
		}
		v.Set(reflect.ValueOf(&x).Elem())
	default:
		d.fail(path, n.Line, "cannot decode into %s", v.Type())
	}
}

// resolve follows aliases and counts nodes against the budget.
func (d *decoder) resolve(n *yaml.Node, path string) (*yaml.Node, bool) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	d.nodes++
	if d.nodes == maxNodes+1 {
		d.fail(path, n.Line, "the document expands to more than %d nodes (aliases included); split it", maxNodes)
	}
	return n, d.nodes <= maxNodes
}

// scalar checks that n is a scalar of one of the YAML tags.
func (d *decoder) scalar(n *yaml.Node, path, want string, tags ...string) bool {
	if n.Kind == yaml.ScalarNode {
		for _, t := range tags {
			if n.ShortTag() == t {
				return true
			}
		}
	}
	hint := ""
	if n.Kind == yaml.ScalarNode && tags[0] == "!!str" {
		hint = `; quote it ("` + n.Value + `") if it is meant as text`
	}
	d.fail(path, n.Line, "want %s, got %s%s", want, describe(n), hint)
	return false
}

// decodeScalar lets the YAML library convert a checked scalar, which also
// catches values out of the Go type's range.
func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	p := reflect.New(v.Type())
	if err := n.Decode(p.Interface()); err != nil {
		d.fail(path, n.Line, "%s is out of range for %s", n.Value, kindName(v.Kind()))
		return
	}
	v.Set(p.Elem())
}

// decodeJSON decodes types that define their own JSON form (times,
// int-or-string) through it, as the API server does.
func (d *decoder) decodeJSON(n *yaml.Node, v reflect.Value, path string) {
	js, err := d.toJSON(n, path)
	if err != nil {
		d.fail(path, n.Line, "%v", err)
		return
	}
	if err := v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(js); err != nil {
		d.fail(path, n.Line, "invalid value %s: %v", strings.TrimSpace(string(js)), err)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, n.Line, "want a mapping of fields, got %s", describe(n))
		return
	}
	fields := d.fieldsOf(v.Type())
	seen := map[string]bool{}
	for _, kv := range d.pairs(n, path) {
		key, val := kv[0], kv[1]
		name := key.Value
		fp := join(path, name)
		if seen[name] {
			d.fail(fp, key.Line, "field %q is set twice", name)
			continue
		}
		seen[name] = true
		idx, ok := fields[name]
		if !ok {
			d.fail(fp, key.Line, "unknown field %q%s", name, didYouMean(name, fields))
			continue
		}
		d.lines[fp] = key.Line
		d.decode(val, v.FieldByIndex(idx), fp)
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, n.Line, "want a mapping, got %s", describe(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.fail(path, n.Line, "cannot decode into %s", v.Type())
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, kv := range d.pairs(n, path) {
		key, val := kv[0], kv[1]
		fp := mapPath(path, key.Value)
		k := reflect.New(v.Type().Key()).Elem()
		k.SetString(key.Value)
		if m.MapIndex(k).IsValid() {
			d.fail(fp, key.Line, "key %q is set twice", key.Value)
			continue
		}
		d.lines[fp] = key.Line
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, e, fp)
		m.SetMapIndex(k, e)
	}
	v.Set(m)
}

// pairs returns the key/value pairs of a mapping, merge keys ("<<")
// expanded: merged pairs first, each overridden by an explicit one.
func (d *decoder) pairs(n *yaml.Node, path string) [][2]*yaml.Node {
	var own, merged [][2]*yaml.Node
	explicit := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind == yaml.ScalarNode && key.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(val, path)...)
			continue
		}
		if key.Kind != yaml.ScalarNode {
			d.fail(path, key.Line, "a mapping key must be a plain value, got %s", describe(key))
			continue
		}
		explicit[key.Value] = true
		own = append(own, [2]*yaml.Node{key, val})
	}
	var out [][2]*yaml.Node
	taken := map[string]bool{}
	for _, kv := range merged {
		if !explicit[kv[0].Value] && !taken[kv[0].Value] {
			taken[kv[0].Value] = true
			out = append(out, kv)
		}
	}
	return append(out, own...)
}

func (d *decoder) merge(val *yaml.Node, path string) [][2]*yaml.Node {
	val, ok := d.resolve(val, path)
	if !ok {
		return nil
	}
	switch val.Kind {
	case yaml.MappingNode:
		return d.pairs(val, path)
	case yaml.SequenceNode:
		var out [][2]*yaml.Node
		for _, m := range val.Content {
			out = append(out, d.merge(m, path)...)
		}
		return out
	}
	d.fail(path, val.Line, "a merge key (<<) needs a mapping, got %s", describe(val))
	return nil
}

// fieldsOf maps the JSON names of a struct's fields to their index paths,
// inlined (embedded) structs included.
func (d *decoder) fieldsOf(t reflect.Type) map[string][]int {
	if f, ok := d.fields[t]; ok {
		return f
	}
	out := map[string][]int{}
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		inline := sf.Anonymous && sf.Type.Kind() == reflect.Struct
		if tag == "-" || (!sf.IsExported() && !inline) {
			continue
		}
		if name == "" && inline {
			for n, idx := range d.fieldsOf(sf.Type) {
				if _, clash := out[n]; !clash {
					out[n] = append([]int{i}, idx...)
				}
			}
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out[name] = []int{i}
	}
	d.fields[t] = out
	return out
}

// toJSON converts a node to JSON for a type's own decoder.
func (d *decoder) toJSON(n *yaml.Node, path string) ([]byte, error) {
	n, ok := d.resolve(n, path)
	if !ok {
		return nil, errors.New("too many nodes")
	}
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return []byte("null"), nil
		case "!!bool", "!!int", "!!float":
			var x any
			if err := n.Decode(&x); err != nil {
				return nil, errors.New(yamlMessage(err))
			}
			if f, ok := x.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
				return nil, fmt.Errorf("%s is not a finite number", n.Value)
			}
			return json.Marshal(x)
		default:
			return json.Marshal(n.Value)
		}
	case yaml.SequenceNode:
		parts := make([]json.RawMessage, 0, len(n.Content))
		for _, c := range n.Content {
			js, err := d.toJSON(c, path)
			if err != nil {
				return nil, err
			}
			parts = append(parts, js)
		}
		return json.Marshal(parts)
	case yaml.MappingNode:
		obj := map[string]json.RawMessage{}
		for _, kv := range d.pairs(n, path) {
			js, err := d.toJSON(kv[1], path)
			if err != nil {
				return nil, err
			}
			obj[kv[0].Value] = js
		}
		return json.Marshal(obj)
	}
	return nil, fmt.Errorf("unexpected %s", describe(n))
}

// describe names what a node is, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		switch n.ShortTag() {
		case "!!str", "!!timestamp":
			return fmt.Sprintf("the string %q", v)
		case "!!int", "!!float":
			return "the number " + v
		case "!!bool":
			return "the boolean " + v
		}
		return "the value " + v
	}
	return "an unexpected node"
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.Bool:
		return "a boolean"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a " + k.String()
}

func yamlMessage(err error) string { return strings.TrimPrefix(err.Error(), "yaml: ") }

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// mapPath is the path of a map's entry, as convert.MapPath spells it.
func mapPath(path, key string) string { return convert.MapPath(path, key) }

// suggest proposes the known field closest to an unknown one.
func didYouMean(name string, fields map[string][]int) string {
	best, bestDist := "", 3
	for f := range fields {
		dist := suggest.Distance(strings.ToLower(name), strings.ToLower(f))
		if dist < bestDist || (dist == bestDist && best != "" && f < best) {
			best, bestDist = f, dist
		}
	}
	if best == "" {
		return "; check its spelling or remove it"
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}
