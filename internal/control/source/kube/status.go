package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/source/convert"
	"github.com/weft-mesh/weft/internal/control/translate"
	policyapi "github.com/weft-mesh/weft/pkg/apis/policy/v1alpha1"
)

// Timing of status writes.
const (
	// statusSettle is how long a change waits for others before status is
	// computed: an edit of several objects is one pass.
	statusSettle = 250 * time.Millisecond
	// statusRetry is when a pass that could not write everything (a
	// conflict, the API unavailable) is tried again.
	statusRetry = 5 * time.Second
)

// statusLoop writes status conditions while this source leads.
func (s *Source) statusLoop(ctx context.Context, st *model.Store) {
	select {
	case <-ctx.Done():
		return
	case <-s.synced:
	}
	le := s.o.LeaderElection
	if le == nil {
		s.leading.Store(true)
		defer s.leading.Store(false)
		s.writeStatus(ctx, st)
		return
	}
	// client-go runs OnStartedLeading in a goroutine of its own; the
	// writing is handed to this one, which Run waits for.
	leads := make(chan context.Context)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case lctx := <-leads:
				s.leading.Store(true)
				s.log.Info("leading: this replica writes status", "lease", le.Namespace+"/"+le.Name, "identity", le.Identity)
				s.writeStatus(lctx, st)
				s.leading.Store(false)
			}
		}
	}()
	defer func() { <-done }()
	cfg := leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: le.Namespace, Name: le.Name},
			Client:     s.leases,
			LockConfig: resourcelock.ResourceLockConfig{Identity: le.Identity},
		},
		LeaseDuration:   orDefault(le.LeaseDuration, 15*time.Second),
		RenewDeadline:   orDefault(le.RenewDeadline, 10*time.Second),
		RetryPeriod:     orDefault(le.RetryPeriod, 2*time.Second),
		ReleaseOnCancel: true,
		Name:            le.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				select {
				case leads <- lctx:
				case <-lctx.Done():
				}
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				if id != le.Identity {
					s.log.Info("another replica leads and writes status", "leader", id)
				}
			},
		},
	}
	elector, err := leaderelection.NewLeaderElector(cfg)
	if err != nil {
		s.log.Error("leader election cannot start; this replica never writes status", "error", err)
		return
	}
	for ctx.Err() == nil {
		elector.Run(ctx) // returns when leadership is lost, or ctx ends
		if ctx.Err() == nil {
			s.log.Warn("lost the lease; this replica stops writing status and campaigns again", "lease", le.Namespace+"/"+le.Name)
		}
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// writeStatus writes status conditions after every change until ctx ends.
// A change is written statusSettle after it is seen, whatever follows it:
// a busy cluster delays status by no more than that.
func (s *Source) writeStatus(ctx context.Context, st *model.Store) {
	revisions := st.Subscribe(ctx)
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer settle.Stop()
	defer retry.Stop()
	armed := false
	arm := func(d time.Duration) {
		if !armed {
			armed = true
			settle.Reset(d)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
			arm(statusSettle)
		case _, ok := <-revisions:
			if !ok {
				return
			}
			arm(statusSettle)
		case <-retry.C:
			arm(0)
		case <-settle.C:
			armed = false
			start := time.Now()
			ok := s.statusPass(ctx, st)
			s.log.Debug("status pass", "elapsed", time.Since(start).Round(time.Microsecond), "complete", ok)
			if !ok {
				retry.Reset(statusRetry)
			}
		}
	}
}

// statusPass writes the status of every route and policy whose conditions
// changed; false when a write failed.
func (s *Source) statusPass(ctx context.Context, st *model.Store) bool {
	routeKinds := []kind{kindHTTPRoute, kindGRPCRoute}
	policyKinds := []kind{kindRetryBudget, kindCircuitBreaker, kindLoadBalancer, kindAuthorization, kindMutualTLS, kindRateLimit, kindFaultInjection}
	n := 0
	for _, k := range slices.Concat(routeKinds, policyKinds) {
		n += len(s.inf[k].GetStore().ListKeys())
	}
	if n == 0 {
		return true
	}
	snap := st.Snapshot()
	c := newChecker(snap, translate.CheckMesh(snap, s.o.Mesh), s.permitted)
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	ok := true
	for _, k := range routeKinds {
		for _, obj := range s.inf[k].GetStore().List() {
			if err := s.routeStatus(ctx, c, k, obj, now); err != nil {
				ok = false
				s.logWriteError(k, obj, err)
			}
		}
	}
	for _, k := range policyKinds {
		for _, obj := range s.inf[k].GetStore().List() {
			if err := s.policyStatus(ctx, c, k, obj, now); err != nil {
				ok = false
				s.logWriteError(k, obj, err)
			}
		}
	}
	return ok
}

func (s *Source) logWriteError(k kind, obj any, err error) {
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		// Changed or deleted since it was read: the informer brings the
		// new version, and another pass.
		s.log.Debug("status not written: the object changed", "kind", k.info().what, "error", err)
		return
	}
	s.log.Warn("cannot write status", "kind", k.info().what, "error", err)
}

// routeStatus writes weft's entries of a route's status.parents: one per
// parentRef to a Service, with Accepted and ResolvedRefs; the entries of
// other controllers are kept as they are.
func (s *Source) routeStatus(ctx context.Context, c *checker, k kind, obj any, now metav1.Time) error {
	var m *metav1.ObjectMeta
	var parents []gwv1.ParentReference
	var current []gwv1.RouteParentStatus
	switch o := obj.(type) {
	case *gwv1.HTTPRoute:
		m, parents, current = &o.ObjectMeta, o.Spec.ParentRefs, o.Status.Parents
	case *gwv1.GRPCRoute:
		m, parents, current = &o.ObjectMeta, o.Spec.ParentRefs, o.Status.Parents
	default:
		return nil
	}
	if !slices.ContainsFunc(parents, isServiceParent) && !slices.ContainsFunc(current, func(p gwv1.RouteParentStatus) bool { return p.ControllerName == ControllerName }) {
		return nil // not weft's, and never was
	}
	key := model.Key{Kind: k.modelKind(), Namespace: m.Namespace, Name: m.Name}
	r := convert.Object(obj, convert.Options{})
	accepted, resolved := c.routeConditions(k.info().what, key, r, parents)
	var others, mine, want []gwv1.RouteParentStatus
	for _, p := range current {
		if p.ControllerName == ControllerName {
			mine = append(mine, p)
		} else {
			others = append(others, p)
		}
	}
	for i, p := range parents {
		if accepted[i] == nil || slices.ContainsFunc(want, func(w gwv1.RouteParentStatus) bool { return equality.Semantic.DeepEqual(w.ParentRef, p) }) {
			continue
		}
		var prev []metav1.Condition
		if j := slices.IndexFunc(mine, func(e gwv1.RouteParentStatus) bool { return equality.Semantic.DeepEqual(e.ParentRef, p) }); j >= 0 {
			prev = mine[j].Conditions
		}
		want = append(want, gwv1.RouteParentStatus{
			ParentRef:      p,
			ControllerName: ControllerName,
			Conditions: []metav1.Condition{
				setCondition(prev, accepted[i].metav1(string(gwv1.RouteConditionAccepted), m.Generation), now),
				setCondition(prev, resolved.metav1(string(gwv1.RouteConditionResolvedRefs), m.Generation), now),
			},
		})
	}
	if equality.Semantic.DeepEqual(mine, want) {
		return nil
	}
	all := slices.Concat(others, want)
	if all == nil {
		all = []gwv1.RouteParentStatus{}
	}
	return s.patchStatus(ctx, k, m, map[string]any{"parents": all})
}

// policyStatus writes a policy's Accepted and ResolvedRefs conditions.
func (s *Source) policyStatus(ctx context.Context, c *checker, k kind, obj any, now metav1.Time) error {
	var m *metav1.ObjectMeta
	var current []metav1.Condition
	switch o := obj.(type) {
	case *policyapi.RetryBudget:
		m, current = &o.ObjectMeta, o.Status.Conditions
	case *policyapi.CircuitBreaker:
		m, current = &o.ObjectMeta, o.Status.Conditions
	case *policyapi.LoadBalancer:
		m, current = &o.ObjectMeta, o.Status.Conditions
	case *policyapi.AuthorizationPolicy:
		m, current = &o.ObjectMeta, o.Status.Conditions
	case *policyapi.MutualTLSPolicy:
		m, current = &o.ObjectMeta, o.Status.Conditions
	case *policyapi.RateLimit:
		m, current = &o.ObjectMeta, o.Status.Conditions
	case *policyapi.FaultInjection:
		m, current = &o.ObjectMeta, o.Status.Conditions
	default:
		return nil
	}
	key := model.Key{Kind: k.modelKind(), Namespace: m.Namespace, Name: m.Name}
	accepted, resolved := c.policyConditions(key, convert.Object(obj, convert.Options{}))
	var want []metav1.Condition
	for _, e := range current {
		if !slices.Contains(policyConditionTypes(), e.Type) {
			want = append(want, e)
		}
	}
	want = append(want,
		setCondition(current, accepted.metav1(policyapi.ConditionAccepted, m.Generation), now),
		setCondition(current, resolved.metav1(policyapi.ConditionResolvedRefs, m.Generation), now))
	if equality.Semantic.DeepEqual(current, want) {
		return nil
	}
	return s.patchStatus(ctx, k, m, map[string]any{"conditions": want})
}

// patchStatus merges status into an object's status, provided the object
// is still at the version read.
func (s *Source) patchStatus(ctx context.Context, k kind, m *metav1.ObjectMeta, status map[string]any) error {
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": m.ResourceVersion},
		"status":   status,
	})
	if err != nil {
		return fmt.Errorf("encoding the status of %s %s/%s: %w", k.info().what, m.Namespace, m.Name, err)
	}
	in := k.info()
	err = s.clients[in.gv].Patch(types.MergePatchType).Namespace(m.Namespace).Resource(in.resource).Name(m.Name).
		SubResource("status").Body(body).Do(ctx).Error()
	if err != nil {
		return fmt.Errorf("writing the status of %s %s/%s: %w", in.what, m.Namespace, m.Name, err)
	}
	s.writes.Add(1)
	s.log.Debug("status written", "kind", in.what, "namespace", m.Namespace, "name", m.Name)
	return nil
}
