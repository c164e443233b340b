package model

import (
	"maps"
	"slices"
	"time"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
)

// AnnotationDefaultInboundPolicy is the annotation of a Namespace or a
// Workload that sets its default inbound authorization policy.
const AnnotationDefaultInboundPolicy = "weft.dev/default-inbound-policy"

// Default inbound authorization policies: what decides a request to a
// workload when no authorization policy applies. They are the proxy's
// weftv1.Authorization.default_policy values.
const (
	DefaultInboundAllowAll           = "allow-all"
	DefaultInboundDenyAll            = "deny-all"
	DefaultInboundAllowSameNamespace = "allow-same-namespace"
	DefaultInboundAllowAuthenticated = "allow-authenticated"
)

// DefaultInboundPolicies lists the default inbound policies, in the order
// messages name them.
func DefaultInboundPolicies() []string {
	return []string{DefaultInboundAllowAll, DefaultInboundDenyAll, DefaultInboundAllowSameNamespace, DefaultInboundAllowAuthenticated}
}

// Namespace is what the model knows of a namespace: it need not exist for
// objects to be in it; it carries the namespace's defaults.
type Namespace struct {
	Name   string
	Labels map[string]string
	// DefaultInboundPolicy is the namespace's default inbound authorization
	// policy as written; "" defers to the mesh's. The translation checks
	// the value.
	DefaultInboundPolicy string
}

// Key implements Object. A namespace is in no namespace.
func (n *Namespace) Key() Key { return Key{Kind: KindNamespace, Name: n.Name} }

func (n *Namespace) clone() Object {
	c := *n
	c.Labels = maps.Clone(n.Labels)
	return &c
}

// PolicyTargetKind says what a policy's targetRef names.
type PolicyTargetKind string

// The kinds of objects a security policy targets.
const (
	TargetService  PolicyTargetKind = "Service"
	TargetWorkload PolicyTargetKind = "Workload"
)

// PolicyTargetRef is one targetRef of an authorization or mTLS policy: a
// Service or a Workload of the policy's own namespace (Gateway API's
// LocalPolicyTargetReferenceWithSectionName).
type PolicyTargetRef struct {
	Kind PolicyTargetKind
	Name string
	// SectionName narrows a Service target to one of its ports, named by
	// its name or its number (in decimal); "" targets every port.
	SectionName string
}

// AuthorizationAction is what an authorization policy does to the requests
// its rules match.
type AuthorizationAction string

// The authorization actions, as the proxy spells them.
const (
	AuthorizationAllow AuthorizationAction = "Allow"
	AuthorizationDeny  AuthorizationAction = "Deny"
)

// AuthorizationPolicy allows or denies inbound requests to workloads. With
// no TargetRefs it applies to every workload of its namespace, or of the
// mesh when the namespace is the mesh's root namespace (a control plane
// setting); otherwise to the workloads and service ports it targets.
type AuthorizationPolicy struct {
	Namespace, Name string
	Created         time.Time
	TargetRefs      []PolicyTargetRef
	Action          AuthorizationAction
	// DryRun logs and counts what the policy would deny, denying nothing.
	DryRun bool
	// Rules are alternatives; a policy with none matches every request
	// on the ports it applies to.
	Rules []AuthorizationRule
}

// AuthorizationRule is one rule of an authorization policy: it matches
// when every condition set matches.
type AuthorizationRule struct {
	// Name identifies the rule in metrics and logs; "" means
	// "rule-<index>".
	Name string
	From *weftv1.AuthorizationSource
	// Ports are the workload ports the rule is limited to; none: every
	// port the policy applies to.
	Ports []uint16
	To    *weftv1.AuthorizationTarget
}

// Ref returns the reference to the policy.
func (p *AuthorizationPolicy) Ref() ObjectRef { return ObjectRef{p.Namespace, p.Name} }

// Key implements Object.
func (p *AuthorizationPolicy) Key() Key { return Key{KindAuthorization, p.Namespace, p.Name} }

func (p *AuthorizationPolicy) clone() Object {
	c := *p
	c.TargetRefs = slices.Clone(p.TargetRefs)
	c.Rules = make([]AuthorizationRule, len(p.Rules))
	for i, r := range p.Rules {
		c.Rules[i] = AuthorizationRule{Name: r.Name, From: cloneMsg(r.From), Ports: slices.Clone(r.Ports), To: cloneMsg(r.To)}
	}
	return &c
}

// MTLSMode says whether a workload port refuses plaintext clients.
type MTLSMode string

// The mTLS modes.
const (
	// MTLSStrict refuses plaintext connections.
	MTLSStrict MTLSMode = "Strict"
	// MTLSPermissive accepts mTLS and plaintext: the default.
	MTLSPermissive MTLSMode = "Permissive"
)

// MutualTLSPolicy sets the mTLS mode of workloads' inbound ports. Its
// scope is an AuthorizationPolicy's; a targeted policy beats its
// namespace's, which beats the mesh's.
type MutualTLSPolicy struct {
	Namespace, Name string
	Created         time.Time
	TargetRefs      []PolicyTargetRef
	Mode            MTLSMode
	// Ports override Mode for some workload ports.
	Ports []PortMTLS
}

// PortMTLS is the mTLS mode of one workload port.
type PortMTLS struct {
	Port uint16
	Mode MTLSMode
}

// Ref returns the reference to the policy.
func (p *MutualTLSPolicy) Ref() ObjectRef { return ObjectRef{p.Namespace, p.Name} }

// Key implements Object.
func (p *MutualTLSPolicy) Key() Key { return Key{KindMutualTLS, p.Namespace, p.Name} }

func (p *MutualTLSPolicy) clone() Object {
	c := *p
	c.TargetRefs = slices.Clone(p.TargetRefs)
	c.Ports = slices.Clone(p.Ports)
	return &c
}
