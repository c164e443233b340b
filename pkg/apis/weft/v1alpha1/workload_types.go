package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Workload is a host outside Kubernetes that takes part in the mesh: its
// address, the identity its proxy gets and the ports it serves. Services
// select Workloads of their namespace by label, as they select pods, and
// route to them on the ports their targetPorts name.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=weft
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.address`
// +kubebuilder:printcolumn:name="Service Account",type=string,JSONPath=`.spec.serviceAccount`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Workload struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec WorkloadSpec `json:"spec"`
}

// WorkloadSpec is what a Workload is.
type WorkloadSpec struct {
	// Address is the host's IP address, IPv4 or IPv6, without a zone, not
	// unspecified (0.0.0.0, ::).
	//
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self) ? !ip(self).isUnspecified() : isIP(self.lowerAscii().replace('ffff', 'fffe'))",message="must be the IP address of a host: IPv4 or IPv6, without a zone, not 0.0.0.0 or ::"
	Address string `json:"address"`

	// ServiceAccount names the workload's identity:
	// spiffe://<trust-domain>/ns/<namespace>/sa/<serviceAccount>. Unset or
	// empty: "default". A DNS subdomain (RFC 1123), as a ServiceAccount's
	// name.
	//
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == \"\" || self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="must be a service account name: lowercase letters, digits, '-' and '.' (a DNS subdomain, RFC 1123)"
	ServiceAccount string `json:"serviceAccount,omitempty"`

	// Ports are the ports the workload serves, each at most once, with
	// names used at most once. A Service's named targetPort resolves to the
	// port of that name.
	//
	// +optional
	// +listType=map
	// +listMapKey=port
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(p, !has(p.name) || p.name == \"\" || self.exists_one(q, has(q.name) && q.name == p.name))",message="port names must be unique"
	Ports []WorkloadPort `json:"ports,omitempty"`

	// Proxy describes the workload's weft-proxy.
	//
	// +optional
	Proxy *WorkloadProxy `json:"proxy,omitempty"`

	// Meshed says whether the workload runs a weft-proxy (default true).
	// The endpoints of a workload that is not meshed carry no identity and
	// are reached in plaintext.
	//
	// +optional
	Meshed *bool `json:"meshed,omitempty"`
}

// WorkloadPort is one port a workload serves.
type WorkloadPort struct {
	// Name is the port's name, which a Service's targetPort may use: an
	// IANA service name (at most 15 lowercase letters, digits and '-', with
	// a letter, no leading, trailing or doubled '-').
	//
	// +optional
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="self == \"\" || (self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && self.matches('[a-z]') && !self.contains('--'))",message="must be a port name: at most 15 lowercase letters, digits and '-', with at least one letter, not starting or ending with '-' and without '--'"
	Name string `json:"name,omitempty"`

	// Port is the port number.
	//
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// Protocol is what the port speaks; unset or empty: detected from the
	// first bytes of each connection.
	//
	// +optional
	Protocol Protocol `json:"protocol,omitempty"`
}

// Protocol is the protocol of a workload port.
//
// +kubebuilder:validation:Enum="";opaque;http1;http2;grpc
type Protocol string

// The protocols of a workload port.
const (
	// ProtocolOpaque is TCP relayed as bytes, with no detection.
	ProtocolOpaque Protocol = "opaque"
	// ProtocolHTTP1 is HTTP/1.1.
	ProtocolHTTP1 Protocol = "http1"
	// ProtocolHTTP2 is HTTP/2 (h2c, or inside the mesh's mTLS).
	ProtocolHTTP2 Protocol = "http2"
	// ProtocolGRPC is gRPC.
	ProtocolGRPC Protocol = "grpc"
)

// WorkloadProxy describes a workload's weft-proxy.
type WorkloadProxy struct {
	// InboundPort is the port of the proxy's inbound listener in explicit
	// mode: peers reach the workload through its proxy there. Unset or 0:
	// the proxy captures inbound traffic transparently.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	InboundPort int32 `json:"inboundPort,omitempty"`
}

// WorkloadList is a list of Workloads.
//
// +kubebuilder:object:root=true
type WorkloadList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Workload `json:"items"`
}
