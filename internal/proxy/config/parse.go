package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
)

// maxFileBytes bounds what Parse accepts: a proxy config is kilobytes, a
// megabyte file is a mistake (or an attack on a file the proxy watches).
const maxFileBytes = 16 << 20

// Parse decodes a ProxyConfig from YAML or JSON (JSON is YAML). Unknown fields
// are errors, so a typo never silently disables a setting.
func Parse(data []byte) (*weftv1.ProxyConfig, error) {
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("config is %d bytes, larger than the %d byte limit", len(data), maxFileBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("config is empty: write at least one listener (see docs/configuration.md)")
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config is not valid YAML or JSON: %w", err)
	}
	if doc == nil {
		return nil, fmt.Errorf("config holds no settings: write at least one listener (see docs/configuration.md)")
	}
	cfg := &weftv1.ProxyConfig{}
	if err := normalize(cfg.ProtoReflect().Descriptor(), doc, ""); err != nil {
		return nil, err
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("re-encoding config: %w", err)
	}
	if err := (protojson.UnmarshalOptions{}).Unmarshal(js, cfg); err != nil {
		return nil, fmt.Errorf("config does not match the ProxyConfig schema (docs/configuration.md): %w", err)
	}
	return cfg, nil
}

// LoadFile reads, parses and compiles the config at path.
func LoadFile(path string) (*Compiled, error) {
	c, _, err := ReadFile(path)
	return c, err
}

// ReadFile is LoadFile that also returns the bytes it compiled, so a watcher
// can start from exactly what is running.
func ReadFile(path string) (*Compiled, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading config file: %w", err)
	}
	c, err := load(path, data)
	return c, data, err
}

func load(path string, data []byte) (*Compiled, error) {
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	c, err := Compile(cfg)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return c, nil
}
