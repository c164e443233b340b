package kube

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	policyapi "github.com/weft-mesh/weft/pkg/apis/policy/v1alpha1"
	weftapi "github.com/weft-mesh/weft/pkg/apis/weft/v1alpha1"
)

// kind is one type of resource the source watches.
type kind int

// The kinds watched, in the order their informers start.
const (
	kindNamespace kind = iota
	kindService
	kindEndpointSlice
	kindPod
	kindWorkload
	kindHTTPRoute
	kindGRPCRoute
	kindReferenceGrant
	kindRetryBudget
	kindCircuitBreaker
	kindLoadBalancer
	kindAuthorization
	kindMutualTLS
	kindRateLimit
	kindFaultInjection
	numKinds
)

// resourceInfo says where a kind is served and what Go type it decodes into.
type resourceInfo struct {
	gv       schema.GroupVersion
	resource string
	// what names the kind in logs and messages.
	what string
	new  func() runtime.Object
}

func (k kind) info() resourceInfo {
	core := corev1.SchemeGroupVersion
	switch k {
	case kindNamespace:
		return resourceInfo{core, "namespaces", "Namespace", func() runtime.Object { return &corev1.Namespace{} }}
	case kindService:
		return resourceInfo{core, "services", "Service", func() runtime.Object { return &corev1.Service{} }}
	case kindEndpointSlice:
		return resourceInfo{discoveryv1.SchemeGroupVersion, "endpointslices", "EndpointSlice", func() runtime.Object { return &discoveryv1.EndpointSlice{} }}
	case kindPod:
		return resourceInfo{core, "pods", "Pod", func() runtime.Object { return &corev1.Pod{} }}
	case kindWorkload:
		return resourceInfo{weftapi.SchemeGroupVersion, "workloads", "Workload", func() runtime.Object { return &weftapi.Workload{} }}
	case kindHTTPRoute:
		return resourceInfo{schema.GroupVersion(gwv1.GroupVersion), "httproutes", "HTTPRoute", func() runtime.Object { return &gwv1.HTTPRoute{} }}
	case kindGRPCRoute:
		return resourceInfo{schema.GroupVersion(gwv1.GroupVersion), "grpcroutes", "GRPCRoute", func() runtime.Object { return &gwv1.GRPCRoute{} }}
	case kindReferenceGrant:
		return resourceInfo{schema.GroupVersion(gwv1beta1.GroupVersion), "referencegrants", "ReferenceGrant", func() runtime.Object { return &gwv1beta1.ReferenceGrant{} }}
	case kindRetryBudget:
		return resourceInfo{policyapi.SchemeGroupVersion, "retrybudgets", "RetryBudget", func() runtime.Object { return &policyapi.RetryBudget{} }}
	case kindCircuitBreaker:
		return resourceInfo{policyapi.SchemeGroupVersion, "circuitbreakers", "CircuitBreaker", func() runtime.Object { return &policyapi.CircuitBreaker{} }}
	case kindLoadBalancer:
		return resourceInfo{policyapi.SchemeGroupVersion, "loadbalancers", "LoadBalancer", func() runtime.Object { return &policyapi.LoadBalancer{} }}
	case kindAuthorization:
		return resourceInfo{policyapi.SchemeGroupVersion, "authorizationpolicies", "AuthorizationPolicy", func() runtime.Object { return &policyapi.AuthorizationPolicy{} }}
	case kindMutualTLS:
		return resourceInfo{policyapi.SchemeGroupVersion, "mutualtlspolicies", "MutualTLSPolicy", func() runtime.Object { return &policyapi.MutualTLSPolicy{} }}
	case kindRateLimit:
		return resourceInfo{policyapi.SchemeGroupVersion, "ratelimits", "RateLimit", func() runtime.Object { return &policyapi.RateLimit{} }}
	case kindFaultInjection:
		return resourceInfo{policyapi.SchemeGroupVersion, "faultinjections", "FaultInjection", func() runtime.Object { return &policyapi.FaultInjection{} }}
	}
	panic(fmt.Sprintf("kube: unknown kind %d", k))
}

// newScheme registers every type the source reads.
func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, gwv1.Install, gwv1beta1.Install,
		policyapi.AddToScheme, weftapi.AddToScheme} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("kube source: registering API types: %w", err)
		}
	}
	return s, nil
}

// restClients builds one REST client per group version the kinds use.
func restClients(cfg *rest.Config, hc *http.Client, scheme *runtime.Scheme) (map[schema.GroupVersion]rest.Interface, error) {
	codecs := serializer.NewCodecFactory(scheme)
	out := map[schema.GroupVersion]rest.Interface{}
	for k := range numKinds {
		gv := k.info().gv
		if out[gv] != nil {
			continue
		}
		c := rest.CopyConfig(cfg)
		c.GroupVersion = &gv
		c.APIPath = "/apis"
		if gv.Group == "" {
			c.APIPath = "/api"
		}
		c.NegotiatedSerializer = codecs.WithoutConversion()
		c.ContentType = runtime.ContentTypeJSON
		withDefaults(c)
		rc, err := rest.RESTClientForConfigAndClient(c, hc)
		if err != nil {
			return nil, fmt.Errorf("kube source: a client for %s: %w", gv, err)
		}
		out[gv] = rc
	}
	return out, nil
}

// userAgent is the User-Agent of the source's requests (unless the config
// sets one).
const userAgent = "weft-control"

// withDefaults sets the User-Agent and, unless the configuration sets them,
// a client-side rate limit fit for a controller (client-go's default, 5
// requests per second, would make a status pass over many routes crawl).
func withDefaults(c *rest.Config) {
	if c.UserAgent == "" {
		c.UserAgent = userAgent
	}
	if c.QPS == 0 && c.RateLimiter == nil {
		c.QPS, c.Burst = 50, 100
	}
}

// Names of the informers' indexes.
const (
	// indexService indexes EndpointSlices by "<namespace>/<service>".
	indexService = "service"
	// indexPod indexes EndpointSlices by the "<namespace>/<pod>" of their
	// endpoints' targetRefs.
	indexPod = "pod"
)

// newInformer returns the informer of a kind, not started. unavailable is
// called when the kind cannot be listed because it does not exist (its CRD
// is not installed) or the control plane may not list it.
func newInformer(k kind, rc rest.Interface, resync time.Duration, log *slog.Logger, unavailable func()) (toolscache.SharedIndexInformer, error) {
	in := k.info()
	lw := toolscache.NewListWatchFromClient(rc, in.resource, metav1.NamespaceAll, fields.Everything())
	indexers := toolscache.Indexers{}
	if k != kindNamespace {
		indexers[toolscache.NamespaceIndex] = toolscache.MetaNamespaceIndexFunc
	}
	if k == kindEndpointSlice {
		indexers[indexService] = sliceServiceIndex
		indexers[indexPod] = slicePodIndex
	}
	inf := toolscache.NewSharedIndexInformerWithOptions(lw, in.new(), toolscache.SharedIndexInformerOptions{
		ResyncPeriod: resync, Indexers: indexers, ObjectDescription: in.what,
	})
	if err := inf.SetTransform(trim); err != nil {
		return nil, fmt.Errorf("kube source: %s informer: %w", in.what, err)
	}
	// A resource that cannot be listed (its CRD is not installed, or the
	// control plane may not read it) is retried by the informer; say so,
	// once per kind of error, rather than once per retry.
	var last string
	err := inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *toolscache.Reflector, err error) {
		if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
			unavailable()
		}
		msg := err.Error()
		if msg == last {
			return
		}
		last = msg
		hint := ""
		switch {
		case apierrors.IsNotFound(err):
			hint = "install its CustomResourceDefinition; until then it is not watched"
		case apierrors.IsForbidden(err):
			hint = "the control plane may not list and watch it: check its RBAC"
		}
		log.Warn("cannot watch a resource; retrying", "resource", in.resource, "group", in.gv.Group, "error", msg, "hint", hint)
	})
	if err != nil {
		return nil, fmt.Errorf("kube source: %s informer: %w", in.what, err)
	}
	return inf, nil
}

// sliceServiceIndex indexes an EndpointSlice by its Service.
func sliceServiceIndex(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	if svc := s.Labels[discoveryv1.LabelServiceName]; svc != "" {
		return []string{s.Namespace + "/" + svc}, nil
	}
	return nil, nil
}

// slicePodIndex indexes an EndpointSlice by the pods its endpoints are.
func slicePodIndex(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	var out []string
	for _, e := range s.Endpoints {
		if r := e.TargetRef; r != nil && r.Kind == "Pod" && r.Name != "" {
			ns := r.Namespace
			if ns == "" {
				ns = s.Namespace
			}
			out = append(out, ns+"/"+r.Name)
		}
	}
	return out, nil
}

// trim drops what the source never reads before an object is cached:
// managed fields everywhere, and most of a pod (ten thousand pods are
// kept in memory).
func trim(obj any) (any, error) {
	if p, ok := obj.(*corev1.Pod); ok {
		return slimPod(p), nil
	}
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// slimPod keeps of a pod what the source reads: its metadata, its
// ServiceAccount, its containers' names and ports, its phase and IPs.
func slimPod(p *corev1.Pod) *corev1.Pod {
	out := &corev1.Pod{TypeMeta: p.TypeMeta, ObjectMeta: p.ObjectMeta}
	out.ManagedFields = nil
	out.OwnerReferences = nil
	out.Spec.ServiceAccountName = p.Spec.ServiceAccountName
	slim := func(cs []corev1.Container) []corev1.Container {
		var o []corev1.Container
		for _, c := range cs {
			o = append(o, corev1.Container{Name: c.Name, Ports: c.Ports, RestartPolicy: c.RestartPolicy})
		}
		return o
	}
	out.Spec.Containers = slim(p.Spec.Containers)
	out.Spec.InitContainers = slim(p.Spec.InitContainers)
	out.Status = corev1.PodStatus{Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs}
	return out
}
