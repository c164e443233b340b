package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AuthorizationPolicy allows or denies requests (and opaque connections)
// to the workloads it applies to, by who calls (SPIFFE identity,
// namespace, trust domain, mTLS or not) and what they ask for (port,
// method, path, headers, gRPC method). See docs/policies.md for how
// policies combine.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=weft
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.action`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AuthorizationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec AuthorizationPolicySpec `json:"spec"`
	// +optional
	Status PolicyStatus `json:"status,omitempty"`
}

// AuthorizationPolicySpec is what an AuthorizationPolicy decides.
type AuthorizationPolicySpec struct {
	// TargetRefs are the Services and Workloads the policy applies to;
	// none: every workload of the policy's namespace (of the mesh, in the
	// root namespace).
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(i, a, self.all(j, b, j <= i || a.kind != b.kind || a.name != b.name || !((!has(a.sectionName) && !has(b.sectionName)) || (has(a.sectionName) && has(b.sectionName) && ((type(a.sectionName) == int || string(a.sectionName).matches('^[-+]?[0-9]+$')) ? ((type(b.sectionName) == int || string(b.sectionName).matches('^[-+]?[0-9]+$')) && (type(a.sectionName) == int ? a.sectionName : int(a.sectionName)) == (type(b.sectionName) == int ? b.sectionName : int(b.sectionName))) : (!(type(b.sectionName) == int || string(b.sectionName).matches('^[-+]?[0-9]+$')) && a.sectionName == b.sectionName))))))",message="targetRefs must be unique: each kind, name and sectionName at most once (a sectionName number written as text is the same number)"
	TargetRefs []TargetReference `json:"targetRefs,omitempty"`

	// Action is what the policy does to the requests its rules match.
	//
	// +required
	Action AuthorizationAction `json:"action"`

	// Mode is Enforce (the default) or DryRun: a dry-run policy is
	// evaluated, and what it would deny is logged and counted, never
	// denied.
	//
	// +optional
	// +kubebuilder:default=Enforce
	Mode AuthorizationMode `json:"mode,omitempty"`

	// Rules are alternatives: a request matches the policy when it matches
	// one of them. A policy without rules matches every request on its
	// ports.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(i, a, self.all(j, b, j <= i || !has(a.name) || a.name == \"\" || !has(b.name) || a.name != b.name))",message="rule names must be unique within a policy"
	// +kubebuilder:validation:XValidation:rule="self.all(a, !has(a.name) || !a.name.matches('^rule-(0|[1-9][0-9]{0,2})$') || int(a.name.substring(5)) >= size(self) || (has(self[int(a.name.substring(5))].name) && self[int(a.name.substring(5))].name != \"\"))",message="rule names must be unique within a policy: a rule without a name is rule-<index>"
	Rules []AuthorizationRule `json:"rules,omitempty"`
}

// AuthorizationAction is what a policy does to the requests it matches.
//
// +kubebuilder:validation:Enum=Allow;Deny
type AuthorizationAction string

// The actions of an AuthorizationPolicy.
const (
	ActionAllow AuthorizationAction = "Allow"
	ActionDeny  AuthorizationAction = "Deny"
)

// AuthorizationMode says whether a policy is enforced. Empty means Enforce.
//
// +kubebuilder:validation:Enum="";Enforce;DryRun
type AuthorizationMode string

// The modes of an AuthorizationPolicy.
const (
	ModeEnforce AuthorizationMode = "Enforce"
	ModeDryRun  AuthorizationMode = "DryRun"
)

// AuthorizationRule matches a request when every condition it sets
// matches; the entries of one list are alternatives.
type AuthorizationRule struct {
	// Name identifies the rule in metrics and logs: lowercase letters,
	// digits and '-' (at most 63). Unset or empty: rule-<index>. Unique in
	// the policy.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self == \"\" || self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="must be a rule name: lowercase letters, digits and '-', starting and ending with a letter or digit (at most 63)"
	Name string `json:"name,omitempty"`

	// From says who may match: callers.
	//
	// +optional
	From *AuthorizationSource `json:"from,omitempty"`

	// To says what they call: ports and requests.
	//
	// +optional
	To *AuthorizationTarget `json:"to,omitempty"`
}

// AuthorizationSource matches callers.
//
// +kubebuilder:validation:XValidation:rule="!has(self.authentication) || self.authentication != 'Unauthenticated' || (has(self.identities) ? size(self.identities) : 0) + (has(self.namespaces) ? size(self.namespaces) : 0) + (has(self.trustDomains) ? size(self.trustDomains) : 0) == 0",message="an unauthenticated client has no identity, so with identities, namespaces or trustDomains the rule never matches; drop one or the other",fieldPath=".authentication"
type AuthorizationSource struct {
	// Identities are callers' exact SPIFFE IDs.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=1024
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^spiffe://[a-z0-9._-]+(/[A-Za-z0-9._-]+)*$')",message="must be a SPIFFE ID: spiffe://<trust-domain>/<path>, the trust domain of lowercase letters, digits, '.', '-' and '_', the path of segments of letters, digits, '.', '-' and '_' (none empty, no trailing '/')"
	// +kubebuilder:validation:items:XValidation:rule="!self.startsWith('spiffe://') || !self.substring(9).matches('/[.][.]?(/|$)')",message="must be a SPIFFE ID: its path may not have '.' or '..' segments"
	Identities []string `json:"identities,omitempty"`

	// Namespaces are callers' namespaces, from their SPIFFE IDs
	// (/ns/<namespace>/...).
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="must be a namespace name: lowercase letters, digits and '-', starting and ending with a letter or digit (at most 63)"
	Namespaces []string `json:"namespaces,omitempty"`

	// TrustDomains are callers' trust domains, e.g. weft.local.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=255
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^[a-z0-9._-]+$')",message="must be a trust domain such as weft.local: lowercase letters, digits, '.', '-' and '_'"
	TrustDomains []string `json:"trustDomains,omitempty"`

	// Authentication is Authenticated (an mTLS peer) or Unauthenticated (a
	// plaintext client); unset or empty: any.
	//
	// +optional
	Authentication Authentication `json:"authentication,omitempty"`
}

// Authentication is how a caller reached the workload.
//
// +kubebuilder:validation:Enum="";Authenticated;Unauthenticated
type Authentication string

// The values of AuthorizationSource.Authentication.
const (
	Authenticated   Authentication = "Authenticated"
	Unauthenticated Authentication = "Unauthenticated"
)

// AuthorizationTarget matches what callers ask for.
type AuthorizationTarget struct {
	// Ports are workload ports (not service ports) the rule is limited to.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=65535
	Ports []int32 `json:"ports,omitempty"`

	// Methods are HTTP methods, in upper case (they are case-sensitive),
	// e.g. GET.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=32
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^[A-Z0-9!#$%&\\x27*+.^_\\x60|~-]+$')",message="must be an HTTP method: methods are case-sensitive tokens, in upper case (e.g. GET)"
	Methods []string `json:"methods,omitempty"`

	// Paths match the request path.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Paths []PathMatch `json:"paths,omitempty"`

	// Headers match request headers: every header listed must match.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(i, a, self.all(j, b, j <= i || a.name.lowerAscii() != b.name.lowerAscii()))",message="each header may be matched once (names are case-insensitive)"
	Headers []HeaderMatch `json:"headers,omitempty"`

	// GRPC match gRPC methods.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	GRPC []GRPCMethodMatch `json:"grpc,omitempty"`
}

// PathMatch matches the request path.
//
// +kubebuilder:validation:XValidation:rule="(has(self.type) && self.type == 'RegularExpression') || self.value.startsWith('/')",message="an Exact or PathPrefix path must start with /",fieldPath=".value"
// +kubebuilder:validation:XValidation:rule="(has(self.type) && self.type == 'RegularExpression') || !self.value.startsWith('/') || self.value.matches('^([-A-Za-z0-9/._~!$&\\x27()*+,;=:@]|%[0-9a-fA-F]{2})+$')",message="an Exact or PathPrefix path may hold letters, digits and -/._~!$&'()*+,;=:@, other characters percent-encoded (%XX)",fieldPath=".value"
// +kubebuilder:validation:XValidation:rule="(has(self.type) && self.type == 'RegularExpression') || !(self.value.contains('//') || self.value.matches('/[.][.]?(/|$)') || self.value.lowerAscii().contains('%2f'))",message="an Exact or PathPrefix path may not contain '//', '.' or '..' segments or an encoded '/' (%2F)",fieldPath=".value"
// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type != 'RegularExpression' || \"\".matches(self.value) == \"\".matches(self.value)",message="value must be a regular expression (RE2 syntax)"
type PathMatch struct {
	// Type is how value matches: Exact, PathPrefix (unset or empty) or
	// RegularExpression (RE2, the whole path).
	//
	// +optional
	Type PathMatchType `json:"type,omitempty"`

	// Value is the path, prefix or expression.
	//
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Value string `json:"value"`
}

// PathMatchType is how a path matches.
//
// +kubebuilder:validation:Enum="";Exact;PathPrefix;RegularExpression
type PathMatchType string

// The path match types.
const (
	PathMatchExact             PathMatchType = "Exact"
	PathMatchPathPrefix        PathMatchType = "PathPrefix"
	PathMatchRegularExpression PathMatchType = "RegularExpression"
)

// MatchType is how a header or gRPC name matches. Empty means Exact.
//
// +kubebuilder:validation:Enum="";Exact;RegularExpression
type MatchType string

// The match types of headers and gRPC methods.
const (
	MatchExact             MatchType = "Exact"
	MatchRegularExpression MatchType = "RegularExpression"
)

// HeaderMatch matches a request header.
//
// +kubebuilder:validation:XValidation:rule="(has(self.type) && self.type == 'RegularExpression') || (has(self.value) && self.value != \"\")",message="an Exact header match needs a value (to match any value use RegularExpression \".*\")",fieldPath=".value"
// +kubebuilder:validation:XValidation:rule="(has(self.type) && self.type == 'RegularExpression') || !has(self.value) || !self.value.matches('[\\x00-\\x08\\x0a-\\x1f\\x7f]')",message="an Exact header value may not hold control characters",fieldPath=".value"
// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type != 'RegularExpression' || !has(self.value) || \"\".matches(self.value) == \"\".matches(self.value)",message="value must be a regular expression (RE2 syntax)"
type HeaderMatch struct {
	// Type is how value matches: Exact (unset or empty) or
	// RegularExpression (RE2, the whole value).
	//
	// +optional
	Type MatchType `json:"type,omitempty"`

	// Name is the header's name (case-insensitive), an HTTP token.
	//
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9!#$%&\\x27*+.^_\\x60|~-]+$')",message="must be a header name: letters, digits and !#$%&'*+-.^_`|~"
	Name string `json:"name"`

	// Value is the value or expression; it may be empty only for a
	// RegularExpression.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value"`
}

// GRPCMethodMatch matches a gRPC method: its service, its method or both.
//
// +kubebuilder:validation:XValidation:rule="(has(self.service) && self.service != \"\") || (has(self.method) && self.method != \"\")",message="set service, method or both"
// +kubebuilder:validation:XValidation:rule="(has(self.type) && self.type == 'RegularExpression') || !has(self.service) || self.service == \"\" || self.service.matches('^[.]?[A-Za-z_][A-Za-z0-9_]*([.][A-Za-z_][A-Za-z0-9_]*)*$')",message="must be a gRPC service name: package.Service (letters, digits, _ and dots), without slashes",fieldPath=".service"
// +kubebuilder:validation:XValidation:rule="(has(self.type) && self.type == 'RegularExpression') || !has(self.method) || self.method == \"\" || self.method.matches('^[A-Za-z_][A-Za-z0-9_]*$')",message="must be a gRPC method name: the method alone (letters, digits and _), without slashes",fieldPath=".method"
// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type != 'RegularExpression' || !has(self.service) || \"\".matches(self.service) == \"\".matches(self.service)",message="service must be a regular expression (RE2 syntax)"
// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type != 'RegularExpression' || !has(self.method) || \"\".matches(self.method) == \"\".matches(self.method)",message="method must be a regular expression (RE2 syntax)"
type GRPCMethodMatch struct {
	// Type is how service and method match: Exact (unset or empty) or
	// RegularExpression (RE2, each whole name).
	//
	// +optional
	Type MatchType `json:"type,omitempty"`

	// Service is the fully qualified service, e.g. shop.Catalog.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Service string `json:"service,omitempty"`

	// Method is the method's name, e.g. GetItem.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Method string `json:"method,omitempty"`
}

// AuthorizationPolicyList is a list of AuthorizationPolicies.
//
// +kubebuilder:object:root=true
type AuthorizationPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AuthorizationPolicy `json:"items"`
}

// MutualTLSPolicy says whether the workloads it applies to accept
// plaintext, per port. See docs/policies.md for which policy wins.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=weft
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MutualTLSPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec MutualTLSPolicySpec `json:"spec"`
	// +optional
	Status PolicyStatus `json:"status,omitempty"`
}

// MutualTLSPolicySpec is what a MutualTLSPolicy asks for.
type MutualTLSPolicySpec struct {
	// TargetRefs are the Services and Workloads the policy applies to;
	// none: every workload of the policy's namespace (of the mesh, in the
	// root namespace).
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(i, a, self.all(j, b, j <= i || a.kind != b.kind || a.name != b.name || !((!has(a.sectionName) && !has(b.sectionName)) || (has(a.sectionName) && has(b.sectionName) && ((type(a.sectionName) == int || string(a.sectionName).matches('^[-+]?[0-9]+$')) ? ((type(b.sectionName) == int || string(b.sectionName).matches('^[-+]?[0-9]+$')) && (type(a.sectionName) == int ? a.sectionName : int(a.sectionName)) == (type(b.sectionName) == int ? b.sectionName : int(b.sectionName))) : (!(type(b.sectionName) == int || string(b.sectionName).matches('^[-+]?[0-9]+$')) && a.sectionName == b.sectionName))))))",message="targetRefs must be unique: each kind, name and sectionName at most once (a sectionName number written as text is the same number)"
	TargetRefs []TargetReference `json:"targetRefs,omitempty"`

	// Mode is the mode of every port the policy applies to, except those
	// of Ports.
	//
	// +required
	Mode MutualTLSMode `json:"mode"`

	// Ports override Mode for some workload ports (which need not be
	// declared on the workload), each at most once.
	//
	// +optional
	// +listType=map
	// +listMapKey=port
	// +kubebuilder:validation:MaxItems=64
	Ports []PortMutualTLS `json:"ports,omitempty"`
}

// MutualTLSMode says whether a port accepts plaintext.
//
// +kubebuilder:validation:Enum=Strict;Permissive
type MutualTLSMode string

// The modes of a MutualTLSPolicy.
const (
	// MutualTLSStrict refuses plaintext.
	MutualTLSStrict MutualTLSMode = "Strict"
	// MutualTLSPermissive accepts mTLS and plaintext.
	MutualTLSPermissive MutualTLSMode = "Permissive"
)

// PortMutualTLS is the mode of one workload port.
type PortMutualTLS struct {
	// Port is the workload port.
	//
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// Mode is the port's mode.
	//
	// +required
	Mode MutualTLSMode `json:"mode"`
}

// MutualTLSPolicyList is a list of MutualTLSPolicies.
//
// +kubebuilder:object:root=true
type MutualTLSPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MutualTLSPolicy `json:"items"`
}
