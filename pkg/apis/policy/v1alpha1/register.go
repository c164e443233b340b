package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of this package's types.
const GroupName = "policy.weft.dev"

// Version is the API version of this package's types.
const Version = "v1alpha1"

// SchemeGroupVersion is the group and version of this package's types. It
// is never written to.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: Version}

// Resource returns the group and resource of an unqualified resource name
// of this group, e.g. Resource("authorizationpolicies").
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

// AddToScheme registers this package's types (and the metav1 options
// types of the group version) with s.
func AddToScheme(s *runtime.Scheme) error {
	b := runtime.NewSchemeBuilder(addKnownTypes)
	return b.AddToScheme(s)
}

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion,
		&RetryBudget{}, &RetryBudgetList{},
		&CircuitBreaker{}, &CircuitBreakerList{},
		&LoadBalancer{}, &LoadBalancerList{},
		&AuthorizationPolicy{}, &AuthorizationPolicyList{},
		&MutualTLSPolicy{}, &MutualTLSPolicyList{},
		&RateLimit{}, &RateLimitList{},
		&FaultInjection{}, &FaultInjectionList{},
	)
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}
