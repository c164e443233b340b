package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RetryBudget bounds the retries to a Service: callers may retry as many
// requests as retryRatio of their live traffic, plus minRetriesPerSecond,
// over a window of ttl. The oldest RetryBudget of a Service applies.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=weft
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetRef.name`
// +kubebuilder:printcolumn:name="Ratio",type=number,JSONPath=`.spec.retryRatio`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RetryBudget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec RetryBudgetSpec `json:"spec"`
	// +optional
	Status PolicyStatus `json:"status,omitempty"`
}

// RetryBudgetSpec is what a RetryBudget asks for. Unset fields take the
// proxy's defaults (ratio 0.2, 10 retries per second, a 10s window).
type RetryBudgetSpec struct {
	// TargetRef is the Service whose callers the budget bounds.
	//
	// +required
	TargetRef ServiceTargetReference `json:"targetRef"`

	// RetryRatio is the share of live requests that may be retried, e.g.
	// 0.1: at most 1,000.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	RetryRatio float64 `json:"retryRatio,omitempty"`

	// MinRetriesPerSecond are allowed regardless of traffic: at most
	// 1,000,000.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	MinRetriesPerSecond uint32 `json:"minRetriesPerSecond,omitempty"`

	// TTL is the window over which live requests count: from 1s to 60s.
	//
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == \"\" || !self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') || duration(self) < duration('0s') || (duration(self) >= duration('1s') && duration(self) <= duration('60s'))",message="must be from 1s to 60s"
	TTL Duration `json:"ttl,omitempty"`
}

// RetryBudgetList is a list of RetryBudgets.
//
// +kubebuilder:object:root=true
type RetryBudgetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RetryBudget `json:"items"`
}

// CircuitBreaker protects a Service: concurrency limits with fail-fast,
// outlier detection (ejecting endpoints that fail) and adaptive
// concurrency. The oldest CircuitBreaker of a Service applies.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=weft
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetRef.name`
// +kubebuilder:printcolumn:name="Max Requests",type=integer,JSONPath=`.spec.maxRequests`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CircuitBreaker struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec CircuitBreakerSpec `json:"spec"`
	// +optional
	Status PolicyStatus `json:"status,omitempty"`
}

// CircuitBreakerSpec is what a CircuitBreaker asks for.
//
// +kubebuilder:validation:XValidation:rule="!has(self.maxPending) || self.maxPending == 0 || (has(self.maxRequests) && self.maxRequests > 0)",message="maxPending has no effect without maxRequests; set maxRequests or remove maxPending",fieldPath=".maxPending"
// +kubebuilder:validation:XValidation:rule="!has(self.pendingTimeout) || self.pendingTimeout == \"\" || (has(self.maxPending) && self.maxPending > 0)",message="pendingTimeout has no effect without maxPending; set maxPending or remove pendingTimeout",fieldPath=".pendingTimeout"
type CircuitBreakerSpec struct {
	// TargetRef is the Service the breaker protects.
	//
	// +required
	TargetRef ServiceTargetReference `json:"targetRef"`

	// MaxRequests bounds the requests in flight to the Service from one
	// proxy; 0 or unset: no limit.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	MaxRequests uint32 `json:"maxRequests,omitempty"`

	// MaxPending bounds the requests that wait for a slot when maxRequests
	// are in flight; 0 or unset: fail fast.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	MaxPending uint32 `json:"maxPending,omitempty"`

	// PendingTimeout bounds the wait of a pending request; unset: its own
	// deadline. Positive.
	//
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == \"\" || !self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') || duration(self) != duration('0s')",message="must be positive; remove it to let requests wait as long as their own deadline allows"
	PendingTimeout Duration `json:"pendingTimeout,omitempty"`

	// OutlierDetection ejects endpoints that fail for a while.
	//
	// +optional
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`

	// AdaptiveConcurrency adapts a concurrency limit to the latency the
	// Service shows.
	//
	// +optional
	AdaptiveConcurrency *AdaptiveConcurrency `json:"adaptiveConcurrency,omitempty"`
}

// OutlierDetection ejects endpoints after consecutive failures, or when
// their success rate falls well below their peers'. Unset fields take the
// proxy's defaults. While disabled, the other fields are not checked
// beyond their syntax.
//
// +kubebuilder:validation:XValidation:rule="(has(self.disabled) && self.disabled) || !has(self.consecutiveFailures) || self.consecutiveFailures <= 2147483647",message="must be at most 2147483647",fieldPath=".consecutiveFailures"
// +kubebuilder:validation:XValidation:rule="(has(self.disabled) && self.disabled) || !has(self.maxEjectionPercent) || self.maxEjectionPercent <= 100",message="must be a percentage, at most 100",fieldPath=".maxEjectionPercent"
// +kubebuilder:validation:XValidation:rule="(has(self.disabled) && self.disabled) || !has(self.interval) || self.interval == \"\" || !self.interval.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') || duration(self.interval) != duration('0s')",message="must be positive; remove it to use the default (10s)",fieldPath=".interval"
// +kubebuilder:validation:XValidation:rule="(has(self.disabled) && self.disabled) || !has(self.baseEjectionTime) || self.baseEjectionTime == \"\" || !self.baseEjectionTime.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') || duration(self.baseEjectionTime) < duration('0s') || (duration(self.baseEjectionTime) > duration('0s') && duration(self.baseEjectionTime) <= duration('300s'))",message="must be positive and at most 5m (the longest ejection); remove it to use the default (30s)",fieldPath=".baseEjectionTime"
type OutlierDetection struct {
	// ConsecutiveFailures ejects an endpoint after this many failures in a
	// row; 0: the proxy's default.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	ConsecutiveFailures uint32 `json:"consecutiveFailures,omitempty"`

	// SuccessRateMinRequests is the requests an endpoint must have served
	// in an interval for its success rate to count.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	SuccessRateMinRequests uint32 `json:"successRateMinRequests,omitempty"`

	// SuccessRateStdevFactor ejects an endpoint whose success rate is this
	// many standard deviations below the mean.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	SuccessRateStdevFactor float64 `json:"successRateStdevFactor,omitempty"`

	// Interval is how often success rates are computed.
	//
	// +optional
	Interval Duration `json:"interval,omitempty"`

	// BaseEjectionTime is the first ejection's length; each ejection of the
	// same endpoint lasts longer.
	//
	// +optional
	BaseEjectionTime Duration `json:"baseEjectionTime,omitempty"`

	// MaxEjectionPercent bounds the share of endpoints ejected at once.
	//
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	MaxEjectionPercent uint32 `json:"maxEjectionPercent,omitempty"`

	// Disabled turns outlier detection off.
	//
	// +optional
	Disabled bool `json:"disabled,omitempty"`
}

// AdaptiveConcurrency limits concurrency to what the Service sustains
// without its latency rising (a gradient limit), between minLimit and
// maxLimit, starting at initialLimit. Unset limits take the proxy's
// defaults.
type AdaptiveConcurrency struct {
	// Enabled turns adaptive concurrency on.
	//
	// +optional
	Enabled bool `json:"enabled,omitempty"`

	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	InitialLimit uint32 `json:"initialLimit,omitempty"`

	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	MinLimit uint32 `json:"minLimit,omitempty"`

	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	MaxLimit uint32 `json:"maxLimit,omitempty"`
}

// CircuitBreakerList is a list of CircuitBreakers.
//
// +kubebuilder:object:root=true
type CircuitBreakerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CircuitBreaker `json:"items"`
}

// LoadBalancer sets how the callers of a Service pick one of its
// endpoints: P2CEWMA (the default), RoundRobin, LeastRequest, or RingHash,
// a consistent hash of what hashOn names, for session affinity. The oldest
// LoadBalancer of a Service applies.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=weft
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetRef.name`
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.policy`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type LoadBalancer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec LoadBalancerSpec `json:"spec"`
	// +optional
	Status PolicyStatus `json:"status,omitempty"`
}

// LoadBalancerSpec is what a LoadBalancer asks for.
//
// +kubebuilder:validation:XValidation:rule="!has(self.hashOn) || (has(self.policy) && self.policy == 'RingHash')",message="hashOn is only used by policy RingHash; set policy: RingHash or remove hashOn",fieldPath=".hashOn"
// +kubebuilder:validation:XValidation:rule="!has(self.policy) || self.policy != 'RingHash' || has(self.hashOn)",message="policy RingHash needs hashOn: a header, a cookie or sourceAddress",fieldPath=".policy"
type LoadBalancerSpec struct {
	// TargetRef is the Service whose endpoints are balanced.
	//
	// +required
	TargetRef ServiceTargetReference `json:"targetRef"`

	// Policy is how an endpoint is picked; unset: P2CEWMA.
	//
	// +optional
	Policy BalancingPolicy `json:"policy,omitempty"`

	// HashOn is what RingHash hashes: requests with the same value go to
	// the same endpoint while it is up. Requests without it are balanced
	// by P2CEWMA. Only with policy RingHash, which requires it.
	//
	// +optional
	HashOn *HashOn `json:"hashOn,omitempty"`
}

// BalancingPolicy is how an endpoint is picked: P2CEWMA (the power of two
// choices over the peak-EWMA latency), RoundRobin, LeastRequest (fewest
// requests in flight) or RingHash (a consistent hash of hashOn). "": the
// default, P2CEWMA.
//
// +kubebuilder:validation:Enum="";P2CEWMA;RoundRobin;LeastRequest;RingHash
type BalancingPolicy string

// The balancing policies.
const (
	BalancingP2CEWMA      BalancingPolicy = "P2CEWMA"
	BalancingRoundRobin   BalancingPolicy = "RoundRobin"
	BalancingLeastRequest BalancingPolicy = "LeastRequest"
	BalancingRingHash     BalancingPolicy = "RingHash"
)

// HashOn names what RingHash hashes: exactly one of a request header, a
// cookie, or the caller's source address.
//
// +kubebuilder:validation:XValidation:rule="[has(self.header), has(self.cookie), has(self.sourceAddress) && self.sourceAddress].filter(x, x).size() == 1",message="set exactly one of header, cookie or sourceAddress: true"
type HashOn struct {
	// Header hashes the value of a request header.
	//
	// +optional
	Header *HashOnName `json:"header,omitempty"`

	// Cookie hashes the value of a request cookie.
	//
	// +optional
	Cookie *HashOnName `json:"cookie,omitempty"`

	// SourceAddress hashes the caller's IP address.
	//
	// +optional
	SourceAddress bool `json:"sourceAddress,omitempty"`
}

// HashOnName names a header or a cookie.
type HashOnName struct {
	// Name is the header's or the cookie's name (an HTTP token).
	//
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$`
	Name string `json:"name"`
}

// LoadBalancerList is a list of LoadBalancers.
//
// +kubebuilder:object:root=true
type LoadBalancerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LoadBalancer `json:"items"`
}
