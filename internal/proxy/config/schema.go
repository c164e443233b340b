package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// normalize walks a decoded YAML/JSON document against the ProxyConfig
// schema before protojson sees it, for two reasons protojson cannot serve:
// its errors name neither the field path nor the fix (they point into the
// intermediate JSON), and its Duration syntax is seconds only ("1.5s"),
// while operators write Go durations ("300ms", "5m"). Durations are
// rewritten in place to protojson's form; every problem is returned with
// its path.
func normalize(md protoreflect.MessageDescriptor, v any, path string) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: expected a mapping of fields, got %s", orRoot(path), describe(v))
	}
	var errs []error
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fd := md.Fields().ByTextName(k)
		if fd == nil {
			fd = md.Fields().ByJSONName(k)
		}
		p := join(path, k)
		if fd == nil {
			errs = append(errs, fmt.Errorf("%s: unknown field; the fields here are %s", p, fieldNames(md)))
			continue
		}
		val := m[k]
		if val == nil {
			continue // null: the default
		}
		if fd.IsList() {
			list, ok := val.([]any)
			if !ok {
				errs = append(errs, fmt.Errorf("%s: expected a list, got %s", p, describe(val)))
				continue
			}
			for i, e := range list {
				nv, err := normalizeValue(fd, e, fmt.Sprintf("%s[%d]", p, i))
				if err != nil {
					errs = append(errs, err)
				}
				list[i] = nv
			}
			continue
		}
		nv, err := normalizeValue(fd, val, p)
		if err != nil {
			errs = append(errs, err)
		}
		m[k] = nv
	}
	return errors.Join(errs...)
}

func normalizeValue(fd protoreflect.FieldDescriptor, v any, path string) (any, error) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if _, ok := v.(bool); !ok {
			return v, fmt.Errorf("%s: expected true or false, got %s", path, describe(v))
		}
	case protoreflect.StringKind:
		switch x := v.(type) {
		case string:
		case float64: // a YAML number where text is meant, e.g. version: 2
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		default:
			return v, fmt.Errorf("%s: expected text, got %s", path, describe(v))
		}
	case protoreflect.Uint32Kind:
		f, ok := v.(float64)
		if !ok || f < 0 || f > math.MaxUint32 || f != math.Trunc(f) {
			return v, fmt.Errorf("%s: expected a whole number from 0 to %d, got %s", path, uint32(math.MaxUint32), describe(v))
		}
	case protoreflect.MessageKind:
		if fd.Message().FullName() == "google.protobuf.Duration" {
			return normalizeDuration(v, path)
		}
		return v, normalize(fd.Message(), v, path)
	}
	return v, nil
}

// normalizeDuration accepts Go durations ("300ms", "1m30s") and bare
// numbers of seconds, and writes protojson's "<seconds>s".
func normalizeDuration(v any, path string) (any, error) {
	var d time.Duration
	switch x := v.(type) {
	case string:
		var err error
		if d, err = time.ParseDuration(x); err != nil {
			return v, fmt.Errorf("%s: %q is not a duration; write e.g. 300ms, 5s or 1m30s", path, x)
		}
	case float64:
		d = time.Duration(x * float64(time.Second))
	default:
		return v, fmt.Errorf("%s: expected a duration such as 5s, got %s", path, describe(v))
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s", nil
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing"
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return "the number " + strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		return strconv.Quote(x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func fieldNames(md protoreflect.MessageDescriptor) string {
	names := make([]string, 0, md.Fields().Len())
	for i := range md.Fields().Len() {
		names = append(names, string(md.Fields().Get(i).Name()))
	}
	return strings.Join(names, ", ")
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func orRoot(path string) string {
	if path == "" {
		return "config"
	}
	return path
}
