package translate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/weft-mesh/weft/internal/control/model"
)

// DefaultRootNamespace is the mesh's root namespace when Mesh.RootNamespace
// is empty.
const DefaultRootNamespace = "weft-system"

// Mesh holds the control plane's settings for the whole mesh. The zero
// value is the defaults.
type Mesh struct {
	// RootNamespace is where authorization and mTLS policies without
	// targetRefs apply to every workload of the mesh; "" means
	// DefaultRootNamespace.
	RootNamespace string
	// DefaultInboundPolicy decides the requests no authorization policy
	// applies to, unless a namespace or workload annotation
	// (model.AnnotationDefaultInboundPolicy) says otherwise: one of
	// model.DefaultInboundPolicies(); "" means allow-all.
	DefaultInboundPolicy string
}

// Validate reports a setting out of its range.
func (m Mesh) Validate() error {
	if m.RootNamespace != "" {
		if !isDNSLabel(m.RootNamespace) {
			return fmt.Errorf("mesh root namespace %q is not a namespace name (lowercase letters, digits and '-', at most 63)", m.RootNamespace)
		}
	}
	if m.DefaultInboundPolicy != "" && !validDefaultInbound(m.DefaultInboundPolicy) {
		return fmt.Errorf("mesh default inbound policy %q is unknown; use %s", m.DefaultInboundPolicy, defaultInboundList())
	}
	return nil
}

func (m Mesh) root() string {
	if m.RootNamespace == "" {
		return DefaultRootNamespace
	}
	return m.RootNamespace
}

func (m Mesh) defaultInbound() string {
	if m.DefaultInboundPolicy == "" {
		return model.DefaultInboundAllowAll
	}
	return m.DefaultInboundPolicy
}

func validDefaultInbound(s string) bool { return slices.Contains(model.DefaultInboundPolicies(), s) }

// defaultInboundList is "allow-all, deny-all, allow-same-namespace or
// allow-authenticated".
func defaultInboundList() string {
	all := model.DefaultInboundPolicies()
	return strings.Join(all[:len(all)-1], ", ") + " or " + all[len(all)-1]
}

// isDNSLabel reports whether s is an RFC 1123 label, as namespace names
// are.
func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
