package k8stest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KubernetesVersion is the version of kube-apiserver and
// kube-controller-manager that hack/k8s-env.sh builds (the k8s.io/kubernetes
// version in hack/k8s/go.mod; a test checks that they agree).
const KubernetesVersion = "v1.36.1"

// The binaries a control plane needs, by name in the assets directory.
const (
	binEtcd              = "etcd"
	binAPIServer         = "kube-apiserver"
	binControllerManager = "kube-controller-manager"
)

// buildHint says how to get the binaries; every error about missing ones
// ends with it.
const buildHint = "build them with `make k8s-env` (or `bash hack/k8s-env.sh` from the repository root; " +
	"about 6 minutes on 2 cores the first time, cached afterwards)"

// AssetsDir returns the directory hack/k8s-env.sh builds the binaries into:
// $WEFT_K8S_CACHE/<KubernetesVersion>, by default
// $HOME/.cache/weft-k8s/<KubernetesVersion>.
func AssetsDir() (string, error) {
	cache := os.Getenv("WEFT_K8S_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the Kubernetes test binaries: no home directory (set WEFT_K8S_CACHE): %w", err)
		}
		cache = filepath.Join(home, ".cache", "weft-k8s")
	}
	return filepath.Join(cache, KubernetesVersion), nil
}

// binaryPaths returns the paths of the named binaries in dir, or an error
// naming every one that is missing or not executable.
func binaryPaths(dir string, names ...string) (map[string]string, error) {
	paths := make(map[string]string, len(names))
	var missing []string
	for _, name := range names {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, name)
			continue
		case err != nil:
			return nil, fmt.Errorf("checking the Kubernetes test binary %s: %w", p, err)
		case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
			return nil, fmt.Errorf("the Kubernetes test binary %s is not an executable file; delete it and %s", p, buildHint)
		}
		paths[name] = p
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the Kubernetes %s test binaries %v are not in %s: %s",
			KubernetesVersion, missing, dir, buildHint)
	}
	return paths, nil
}
