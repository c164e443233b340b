package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RateLimit limits the requests a route rule serves with a token bucket:
// requestsPerSecond on average, in bursts of up to burst. A request over
// the limit gets 429 Too Many Requests with Retry-After (gRPC:
// RESOURCE_EXHAUSTED). Each proxy keeps its own bucket (a local limit).
//
// A RateLimit applies in two ways, which may be combined:
//
//   - where an HTTPRoute or GRPCRoute rule of its namespace references it
//     with a filter of type ExtensionRef (group policy.weft.dev, kind
//     RateLimit): only the total (requestsPerSecond, burst) applies, in
//     each caller's proxy; perClient is ignored there;
//   - at the inbound of the workloads its targetRefs select: the whole
//     limit, the total and perClient, applies in each selected workload's
//     proxy to the requests arriving on the selected port(s). When two
//     RateLimits select the same port, the oldest (then the first by name)
//     applies and the other is reported.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=weft
// +kubebuilder:printcolumn:name="RPS",type=number,JSONPath=`.spec.requestsPerSecond`
// +kubebuilder:printcolumn:name="Burst",type=integer,JSONPath=`.spec.burst`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RateLimit struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec RateLimitSpec `json:"spec"`
	// +optional
	Status PolicyStatus `json:"status,omitempty"`
}

// RateLimitSpec is what a RateLimit asks for: a total, a per-client
// limit, or both.
//
// +kubebuilder:validation:XValidation:rule="has(self.requestsPerSecond) || has(self.perClient)",message="set requestsPerSecond (the total), perClient, or both"
// +kubebuilder:validation:XValidation:rule="!has(self.burst) || has(self.requestsPerSecond)",message="burst is the total's: set requestsPerSecond too, or remove burst (perClient.burst is each client's)",fieldPath=".burst"
type RateLimitSpec struct {
	// TargetRefs are the Services and Workloads at whose inbound the limit
	// applies (total and perClient); none: the limit applies only where a
	// route rule references it.
	//
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(i, a, self.all(j, b, j <= i || a.kind != b.kind || a.name != b.name || !((!has(a.sectionName) && !has(b.sectionName)) || (has(a.sectionName) && has(b.sectionName) && ((type(a.sectionName) == int || string(a.sectionName).matches('^[-+]?[0-9]+$')) ? ((type(b.sectionName) == int || string(b.sectionName).matches('^[-+]?[0-9]+$')) && (type(a.sectionName) == int ? a.sectionName : int(a.sectionName)) == (type(b.sectionName) == int ? b.sectionName : int(b.sectionName))) : (!(type(b.sectionName) == int || string(b.sectionName).matches('^[-+]?[0-9]+$')) && a.sectionName == b.sectionName))))))",message="targetRefs must be unique: each kind, name and sectionName at most once (a sectionName number written as text is the same number)"
	TargetRefs []TargetReference `json:"targetRefs,omitempty"`

	// RequestsPerSecond is the average total rate allowed: greater than 0,
	// at most 1,000,000,000; fractions allowed (0.5: one request every
	// 2s). Optional when perClient is set (then there is no total limit);
	// a route rule's ExtensionRef filter needs it.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:ExclusiveMinimum=true
	// +kubebuilder:validation:Maximum=1000000000
	RequestsPerSecond float64 `json:"requestsPerSecond,omitempty"`

	// Burst is how many requests may pass at once (the bucket's size):
	// from 1 to 1,073,741,824. Unset: requestsPerSecond rounded up.
	//
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1073741824
	Burst int32 `json:"burst,omitempty"`

	// PerClient gives each client, by its verified identity (its SPIFFE
	// ID; plaintext clients share one bucket), a bucket of its own. It
	// applies only at the inbound of the workloads targetRefs select.
	//
	// +optional
	PerClient *RateLimitPerClient `json:"perClient,omitempty"`
}

// RateLimitPerClient is the token bucket of each client.
type RateLimitPerClient struct {
	// RequestsPerSecond is each client's average rate: greater than 0, at
	// most 1,000,000,000; fractions allowed.
	//
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:ExclusiveMinimum=true
	// +kubebuilder:validation:Maximum=1000000000
	RequestsPerSecond float64 `json:"requestsPerSecond"`

	// Burst is how many requests a client may send at once: from 1 to
	// 1,073,741,824. Unset: requestsPerSecond rounded up.
	//
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1073741824
	Burst int32 `json:"burst,omitempty"`
}

// RateLimitList is a list of RateLimits.
//
// +kubebuilder:object:root=true
type RateLimitList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RateLimit `json:"items"`
}

// FaultInjection injects faults into the requests of a route rule, for
// resilience testing: a fixed delay, an abort with an error status, or
// both (a delayed request may then be aborted), each for a percentage of
// the requests.
//
// A FaultInjection applies where an HTTPRoute or GRPCRoute rule of its
// namespace references it with a filter of type ExtensionRef (group
// policy.weft.dev, kind FaultInjection).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=weft
// +kubebuilder:printcolumn:name="Delay %",type=number,JSONPath=`.spec.delay.percent`
// +kubebuilder:printcolumn:name="Abort %",type=number,JSONPath=`.spec.abort.percent`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type FaultInjection struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec FaultInjectionSpec `json:"spec"`
	// +optional
	Status PolicyStatus `json:"status,omitempty"`
}

// FaultInjectionSpec is what a FaultInjection asks for: a delay, an abort,
// or both.
//
// +kubebuilder:validation:XValidation:rule="has(self.delay) || has(self.abort)",message="set delay, abort or both: a FaultInjection without either injects nothing"
type FaultInjectionSpec struct {
	// Delay holds percent of the requests for fixedDelay before they go on.
	//
	// +optional
	Delay *FaultDelay `json:"delay,omitempty"`

	// Abort answers percent of the requests with an error status, without
	// sending them to a backend.
	//
	// +optional
	Abort *FaultAbort `json:"abort,omitempty"`
}

// FaultDelay delays a percentage of the requests.
type FaultDelay struct {
	// Percent of the requests are delayed: from 0 to 100, fractions
	// allowed.
	//
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent float64 `json:"percent"`

	// FixedDelay is how long a delayed request waits: positive, such as
	// 500ms or 2s.
	//
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') || duration(self) != duration('0s')",message="must be positive; to delay nothing, set percent to 0 or remove delay"
	FixedDelay Duration `json:"fixedDelay"`
}

// FaultAbort aborts a percentage of the requests with an HTTP status or a
// gRPC status: exactly one of httpStatus and grpcStatus.
//
// +kubebuilder:validation:XValidation:rule="has(self.httpStatus) != has(self.grpcStatus)",message="set exactly one of httpStatus (HTTP requests) and grpcStatus (gRPC requests)"
type FaultAbort struct {
	// Percent of the requests are aborted: from 0 to 100, fractions
	// allowed.
	//
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent float64 `json:"percent"`

	// HTTPStatus is the status of an aborted request, from 200 to 599
	// (e.g. 503). A gRPC request gets the gRPC status gRPC clients map it
	// to (503: UNAVAILABLE).
	//
	// +optional
	// +kubebuilder:validation:Minimum=200
	// +kubebuilder:validation:Maximum=599
	HTTPStatus *int32 `json:"httpStatus,omitempty"`

	// GRPCStatus is the gRPC status code of an aborted gRPC request, from
	// 1 to 16 (e.g. 14, UNAVAILABLE). A request that is not gRPC gets 500.
	//
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16
	GRPCStatus *int32 `json:"grpcStatus,omitempty"`
}

// FaultInjectionList is a list of FaultInjections.
//
// +kubebuilder:object:root=true
type FaultInjectionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FaultInjection `json:"items"`
}
