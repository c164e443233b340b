package install

import (
	"strconv"
	"strings"

	"github.com/weft-mesh/weft/internal/version"
)

// The one place weft's images are named. Release builds set both at link
// time (see deploy/docker/weft.Dockerfile and `make image`):
//
//	go build -ldflags "-X github.com/weft-mesh/weft/internal/install.imageRegistry=ghcr.io/weft-mesh \
//	    -X github.com/weft-mesh/weft/internal/install.imageTag=v0.3.0" ./cmd/weft
//
// They are variables only because -X can set nothing else; no code writes
// them. Read them through DefaultRegistry and DefaultTag.
var (
	imageRegistry = "ghcr.io/weft-mesh"
	imageTag      = ""
)

// Image names under the registry: <registry>/<name>:<tag>.
const (
	ControlPlaneImageName = "weft"
	ProxyImageName        = "weft-proxy"
)

// FallbackTag is the image tag of a development build: one neither linked
// with a tag nor built from a released module version.
const FallbackTag = "latest"

// DefaultRegistry is the registry and path prefix of weft's images.
func DefaultRegistry() string { return imageRegistry }

// DefaultTag is the tag of weft's images that this binary installs: the tag
// it was linked with, else its module version when that is a release (as
// with `go install github.com/weft-mesh/weft/cmd/weft@v0.3.0`), else
// FallbackTag.
func DefaultTag() string {
	if imageTag != "" {
		return imageTag
	}
	if v := version.String(); isRelease(v) {
		return v
	}
	return FallbackTag
}

// ImageRef is <registry>/<name>:<tag>.
func ImageRef(registry, name, tag string) string {
	return registry + "/" + name + ":" + tag
}

// isRelease reports whether v is a released module version, vMAJOR.MINOR.PATCH
// (no pre-release, no pseudo-version, no +dirty), which is also an image tag.
func isRelease(v string) bool {
	rest, ok := strings.CutPrefix(v, "v")
	if !ok {
		return false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 32); err != nil || (len(p) > 1 && p[0] == '0') {
			return false
		}
	}
	return true
}
