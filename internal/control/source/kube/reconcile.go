package kube

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	toolscache "k8s.io/client-go/tools/cache"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/source/convert"
	weftapi "github.com/weft-mesh/weft/pkg/apis/weft/v1alpha1"
)

// modelKind is the model kind a resource kind becomes, for the kinds that
// map one to one.
func (k kind) modelKind() model.Kind {
	switch k {
	case kindHTTPRoute:
		return model.KindHTTPRoute
	case kindGRPCRoute:
		return model.KindGRPCRoute
	case kindRetryBudget:
		return model.KindRetryBudget
	case kindCircuitBreaker:
		return model.KindCircuitBreaker
	case kindLoadBalancer:
		return model.KindLoadBalancer
	case kindAuthorization:
		return model.KindAuthorization
	case kindMutualTLS:
		return model.KindMutualTLS
	case kindRateLimit:
		return model.KindRateLimit
	case kindFaultInjection:
		return model.KindFault
	}
	return ""
}

// kindOf is the resource kind of a model kind that maps one to one.
func kindOf(mk model.Kind) (kind, bool) {
	for k := range numKinds {
		if k.modelKind() == mk {
			return k, true
		}
	}
	return 0, false
}

// handler queues the model keys an event of kind k may change.
func (s *Source) handler(k kind) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.changed(k, nil, obj) },
		UpdateFunc: func(old, obj any) { s.changed(k, old, obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			s.changed(k, nil, obj)
		},
	}
}

func (s *Source) changed(k kind, old, obj any) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	ns, name := m.GetNamespace(), m.GetName()
	switch k {
	case kindService:
		s.q.add(model.Key{Kind: model.KindService, Namespace: ns, Name: name})
	case kindEndpointSlice:
		for _, o := range []any{old, obj} {
			if sl, ok := o.(*discoveryv1.EndpointSlice); ok && sl.Labels[discoveryv1.LabelServiceName] != "" {
				s.q.add(model.Key{Kind: model.KindService, Namespace: ns, Name: sl.Labels[discoveryv1.LabelServiceName]})
			}
		}
	case kindPod:
		s.q.add(model.Key{Kind: model.KindWorkload, Namespace: ns, Name: name})
		s.q.add(s.servicesOfPod(ns, name)...)
	case kindWorkload:
		// The Services that select it compute their endpoints again.
		s.q.add(model.Key{Kind: model.KindWorkload, Namespace: ns, Name: name})
		s.q.add(s.keysIn(kindService, model.KindService, ns)...)
	case kindNamespace:
		s.q.add(model.Key{Kind: model.KindNamespace, Name: name})
		if o, ok := old.(*corev1.Namespace); !ok || namespaceSettingsChanged(o, obj.(*corev1.Namespace)) {
			// Injection and opaque ports of its pods follow it.
			s.q.add(s.keysIn(kindPod, model.KindWorkload, name)...)
			s.q.add(s.keysIn(kindService, model.KindService, name)...)
		}
	case kindReferenceGrant:
		// Which cross-namespace backends are permitted changes: every route
		// is computed again (routes are few; grants change rarely).
		s.q.add(s.keysIn(kindHTTPRoute, model.KindHTTPRoute, "")...)
		s.q.add(s.keysIn(kindGRPCRoute, model.KindGRPCRoute, "")...)
	default:
		s.q.add(model.Key{Kind: k.modelKind(), Namespace: ns, Name: name})
	}
}

func namespaceSettingsChanged(a, b *corev1.Namespace) bool {
	for _, key := range []string{InjectKey, AnnotationOpaquePorts} {
		if a.Labels[key] != b.Labels[key] || a.Annotations[key] != b.Annotations[key] {
			return true
		}
	}
	return false
}

// keysIn returns the model keys (of kind mk) of the objects of informer k in
// namespace ns ("" for all).
func (s *Source) keysIn(k kind, mk model.Kind, ns string) []model.Key {
	var objs []any
	if ns == "" {
		objs = s.inf[k].GetStore().List()
	} else {
		objs, _ = s.inf[k].GetIndexer().ByIndex(toolscache.NamespaceIndex, ns)
	}
	out := make([]model.Key, 0, len(objs))
	for _, o := range objs {
		if m, err := meta.Accessor(o); err == nil {
			out = append(out, model.Key{Kind: mk, Namespace: m.GetNamespace(), Name: m.GetName()})
		}
	}
	return out
}

// servicesOfPod returns the keys of the Services whose EndpointSlices list
// the pod.
func (s *Source) servicesOfPod(ns, pod string) []model.Key {
	objs, _ := s.inf[kindEndpointSlice].GetIndexer().ByIndex(indexPod, ns+"/"+pod)
	var out []model.Key
	for _, o := range objs {
		if sl, ok := o.(*discoveryv1.EndpointSlice); ok && sl.Labels[discoveryv1.LabelServiceName] != "" {
			out = append(out, model.Key{Kind: model.KindService, Namespace: sl.Namespace, Name: sl.Labels[discoveryv1.LabelServiceName]})
		}
	}
	return out
}

// get returns the cached object of kind k named ns/name, nil if none.
func get[T any](s *Source, k kind, ns, name string) *T {
	key := name
	if ns != "" {
		key = ns + "/" + name
	}
	obj, ok, err := s.inf[k].GetStore().GetByKey(key)
	if err != nil || !ok {
		return nil
	}
	t, _ := obj.(*T)
	return t
}

// compute returns the changes that bring the model objects of keys up to
// date with the informers' caches.
func (s *Source) compute(keys map[model.Key]struct{}) []model.Change {
	sorted := slices.SortedFunc(maps.Keys(keys), func(a, b model.Key) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	var out []model.Change
	for _, k := range sorted {
		switch k.Kind {
		case model.KindService:
			out = append(out, s.service(k.Namespace, k.Name)...)
		case model.KindWorkload:
			out = append(out, s.workload(k.Namespace, k.Name))
		case model.KindNamespace:
			out = append(out, s.namespace(k.Name))
		default:
			if rk, ok := kindOf(k.Kind); ok {
				out = append(out, s.converted(rk, k))
			}
		}
	}
	return out
}

// service computes a Service and its endpoints: those of its
// EndpointSlices, and the Workloads (VMs) its selector matches.
func (s *Source) service(ns, name string) []model.Change {
	sk := model.Key{Kind: model.KindService, Namespace: ns, Name: name}
	ek := model.Key{Kind: model.KindEndpoints, Namespace: ns, Name: name}
	gone := []model.Change{{Delete: sk}, {Delete: ek}}
	svc := get[corev1.Service](s, kindService, ns, name)
	if svc == nil || svc.Spec.Type == corev1.ServiceTypeExternalName {
		s.report(sk, nil, slog.LevelDebug)
		return gone
	}
	r := convert.Object(svc, convert.Options{})
	if r.Object == nil {
		s.report(sk, r.Problems, slog.LevelDebug)
		return gone
	}
	m := r.Object.(*model.Service)
	objs, _ := s.inf[kindEndpointSlice].GetIndexer().ByIndex(indexService, ns+"/"+name)
	var sls []*discoveryv1.EndpointSlice
	for _, o := range objs {
		if sl, ok := o.(*discoveryv1.EndpointSlice); ok {
			sls = append(sls, sl)
		}
	}
	eps, problems := sliceEndpoints(m, r.TargetPortNames, sls, s.podOf, s.td)
	problems = append(r.Problems, problems...)
	if len(m.Selector) > 0 {
		if vms := s.workloadsIn(ns); len(vms) > 0 {
			set, ps := convert.WorkloadEndpoints(m, r.TargetPortNames, vms, s.td)
			eps = append(eps, set.Endpoints...)
			for _, p := range ps {
				problems = append(problems, convert.Problem{Field: p.Field, Message: p.Message})
			}
		}
	}
	if eps == nil {
		eps = []model.Endpoint{}
	}
	s.report(sk, problems, slog.LevelDebug)
	return []model.Change{{Upsert: m}, {Upsert: &model.EndpointSet{Service: m.Ref(), Endpoints: eps}}}
}

// workloadsIn returns the valid Workloads (VMs) of a namespace, by name.
func (s *Source) workloadsIn(ns string) []*model.Workload {
	objs, _ := s.inf[kindWorkload].GetIndexer().ByIndex(toolscache.NamespaceIndex, ns)
	var out []*model.Workload
	for _, o := range objs {
		w, ok := o.(*weftapi.Workload)
		if !ok {
			continue
		}
		if r := convert.Object(w, convert.Options{}); r.Object != nil {
			out = append(out, r.Object.(*model.Workload))
		}
	}
	slices.SortFunc(out, func(a, b *model.Workload) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// podOf returns a cached pod and its namespace.
func (s *Source) podOf(ns, name string) (*corev1.Pod, *corev1.Namespace) {
	pod := get[corev1.Pod](s, kindPod, ns, name)
	if pod == nil {
		return nil, nil
	}
	return pod, get[corev1.Namespace](s, kindNamespace, "", ns)
}

// workload computes the Workload of a pod, or else of a weft Workload of
// the same name.
func (s *Source) workload(ns, name string) model.Change {
	k := model.Key{Kind: model.KindWorkload, Namespace: ns, Name: name}
	vm := get[weftapi.Workload](s, kindWorkload, ns, name)
	if pod, nsObj := s.podOf(ns, name); pod != nil && !terminal(pod) {
		w, problems := podWorkload(pod, nsObj)
		if vm != nil {
			problems = append(problems, convert.Problem{Field: "metadata.name",
				Message: "a Workload " + ns + "/" + name + " has the pod's name; the pod wins and the Workload is ignored: rename it"})
		}
		s.report(k, problems, slog.LevelWarn)
		return model.Change{Upsert: w}
	}
	if vm == nil {
		s.report(k, nil, slog.LevelWarn)
		return model.Change{Delete: k}
	}
	r := convert.Object(vm, convert.Options{})
	s.report(k, r.Problems, slog.LevelWarn)
	if r.Object == nil {
		return model.Change{Delete: k}
	}
	return model.Change{Upsert: r.Object}
}

func (s *Source) namespace(name string) model.Change {
	k := model.Key{Kind: model.KindNamespace, Name: name}
	n := get[corev1.Namespace](s, kindNamespace, "", name)
	if n == nil {
		s.report(k, nil, slog.LevelWarn)
		return model.Change{Delete: k}
	}
	r := convert.Object(n, convert.Options{})
	s.report(k, r.Problems, slog.LevelWarn)
	if r.Object == nil {
		return model.Change{Delete: k}
	}
	return model.Change{Upsert: r.Object}
}

// converted computes a route or a policy: converted as universal mode
// converts it, cross-namespace backends of routes limited by
// ReferenceGrants.
func (s *Source) converted(rk kind, k model.Key) model.Change {
	obj, ok, _ := s.inf[rk].GetStore().GetByKey(k.Namespace + "/" + k.Name)
	if !ok {
		s.report(k, nil, slog.LevelWarn)
		return model.Change{Delete: k}
	}
	problems := func(r convert.Result) []convert.Problem { return r.Problems }
	if parents, isRoute := parentRefsOf(obj); isRoute {
		if !slices.ContainsFunc(parents, isServiceParent) {
			// Attached to Gateways only: another implementation's route.
			s.report(k, nil, slog.LevelWarn)
			return model.Change{Delete: k}
		}
		problems = func(r convert.Result) []convert.Problem {
			// Not a word about the parents that are not weft's.
			return slices.DeleteFunc(slices.Clone(r.Problems), func(p convert.Problem) bool {
				for i, pr := range parents {
					if !isServiceParent(pr) && p.Field == fmt.Sprintf("spec.parentRefs[%d]", i) {
						return true
					}
				}
				return false
			})
		}
	}
	r := convert.Object(obj, convert.Options{})
	s.report(k, problems(r), slog.LevelWarn)
	if r.Object == nil {
		return model.Change{Delete: k}
	}
	if route, ok := r.Object.(*model.Route); ok {
		s.restrictBackends(route)
	}
	return model.Change{Upsert: r.Object}
}

// parentRefsOf returns the parentRefs of a route; false for another
// object.
func parentRefsOf(obj any) ([]gwv1.ParentReference, bool) {
	switch o := obj.(type) {
	case *gwv1.HTTPRoute:
		return o.Spec.ParentRefs, true
	case *gwv1.GRPCRoute:
		return o.Spec.ParentRefs, true
	}
	return nil, false
}

// report logs the problems of an object when they changed.
func (s *Source) report(k model.Key, problems []convert.Problem, level slog.Level) {
	var lines []string
	for _, p := range problems {
		l := p.Message
		if p.Field != "" {
			l = p.Field + ": " + l
		}
		if p.Invalid {
			l += "; the resource is ignored until it is fixed"
		}
		lines = append(lines, l)
	}
	joined := strings.Join(lines, "\n")
	prev, had := s.logged[k]
	switch {
	case joined == prev:
		return
	case joined == "":
		delete(s.logged, k)
		if had {
			s.log.Info("resource problems fixed", "object", k.String())
		}
		return
	}
	s.logged[k] = joined
	for _, l := range lines {
		if level >= slog.LevelWarn {
			s.log.Warn("resource problem", "object", k.String(), "problem", l)
		} else {
			s.log.Debug("resource problem", "object", k.String(), "problem", l)
		}
	}
}

// restrictBackends gives weight 0 to the backends, and drops the mirrors,
// that a route sends to another namespace without a ReferenceGrant of that
// namespace permitting it.
func (s *Source) restrictBackends(r *model.Route) {
	from := "HTTPRoute"
	if r.Kind == model.RouteGRPC {
		from = "GRPCRoute"
	}
	for i := range r.Rules {
		rule := &r.Rules[i]
		for j := range rule.Backends {
			if b := &rule.Backends[j]; !s.permitted(from, r.Namespace, b.ServiceRef) {
				b.Weight = 0
			}
		}
		rule.Mirrors = slices.DeleteFunc(rule.Mirrors, func(m model.MirrorRef) bool { return !s.permitted(from, r.Namespace, m.ServiceRef) })
	}
}

// permitted reports whether a route of kind from (HTTPRoute, GRPCRoute) in
// namespace fromNS may send to Service to: always in its own namespace,
// else when a ReferenceGrant of to's namespace says so.
func (s *Source) permitted(from, fromNS string, to model.ServiceRef) bool {
	if to.Namespace == fromNS {
		return true
	}
	objs, _ := s.inf[kindReferenceGrant].GetIndexer().ByIndex(toolscache.NamespaceIndex, to.Namespace)
	for _, o := range objs {
		g, ok := o.(*gwv1beta1.ReferenceGrant)
		if !ok {
			continue
		}
		if grants(g.Spec, from, fromNS, to.Name) {
			return true
		}
	}
	return false
}

// grants reports whether a ReferenceGrant permits routes of kind from in
// namespace fromNS to refer to the Service named to (of the grant's
// namespace).
func grants(g gwv1.ReferenceGrantSpec, from, fromNS, to string) bool {
	fromOK := slices.ContainsFunc(g.From, func(f gwv1.ReferenceGrantFrom) bool {
		return f.Group == gwv1.GroupName && string(f.Kind) == from && string(f.Namespace) == fromNS
	})
	toOK := slices.ContainsFunc(g.To, func(t gwv1.ReferenceGrantTo) bool {
		return t.Group == "" && t.Kind == "Service" && (t.Name == nil || *t.Name == "" || string(*t.Name) == to)
	})
	return fromOK && toOK
}
