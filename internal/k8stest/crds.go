package k8stest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const gatewayAPIModule = "sigs.k8s.io/gateway-api"

// GatewayAPIStandardCRDs returns the directory holding the Gateway API
// standard-channel CRDs (config/crd/standard) of the sigs.k8s.io/gateway-api
// version the current module requires, in the module cache, so that the CRDs
// installed in tests are those of the Go types weft is built with. It runs
// `go list -m -json`, so the go command must be on PATH and the working
// directory inside the module (as it is under `go test`).
func GatewayAPIStandardCRDs(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-json", gatewayAPIModule)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("finding the %s module (go list -m -json %[1]s): %w: %s",
			gatewayAPIModule, err, strings.TrimSpace(stderr.String()))
	}
	var mod struct {
		Version string
		Dir     string
		Error   *struct{ Err string }
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", fmt.Errorf("reading `go list -m -json %s`: %w", gatewayAPIModule, err)
	}
	if mod.Error != nil {
		return "", fmt.Errorf("finding the %s module: %s", gatewayAPIModule, mod.Error.Err)
	}
	if mod.Dir == "" {
		return "", fmt.Errorf("the %s %s module is not in the module cache: run `go mod download %[1]s`",
			gatewayAPIModule, mod.Version)
	}
	dir := filepath.Join(mod.Dir, "config", "crd", "standard")
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("the Gateway API standard CRDs of %s %s: %w", gatewayAPIModule, mod.Version, err)
	}
	return dir, nil
}
