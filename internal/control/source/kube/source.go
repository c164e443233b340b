package kube

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"k8s.io/apimachinery/pkg/runtime/schema"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/translate"
)

// ControllerName is the controllerName of the route parent statuses the
// source writes (Gateway API's RouteParentStatus.controllerName).
const ControllerName = "weft.dev/control-plane"

// Defaults of Options.
const (
	DefaultName        = "kubernetes"
	DefaultResync      = 10 * time.Minute
	DefaultSyncTimeout = time.Minute
	// DefaultTrustDomain is the trust domain of workload identities when
	// Options.TrustDomain is empty.
	DefaultTrustDomain = "weft.local"
)

// Options configure a Source.
type Options struct {
	// Config is the Kubernetes API client configuration (in-cluster, or
	// from a kubeconfig). Required.
	Config *rest.Config
	// Name is the source's name in the model store; empty means
	// DefaultName.
	Name string
	// Logger receives problems of resources and what the source does;
	// client-go's own logs (informers, leader election) are routed to it
	// too. Nil discards them.
	Logger *slog.Logger
	// TrustDomain of workload identities; empty means DefaultTrustDomain.
	TrustDomain string
	// Resync is how often every informer hands every object to the source
	// again, which computes its model objects again (a change that made
	// no difference is not applied): a safety net for a missed
	// dependency. 0 means DefaultResync; negative disables it.
	Resync time.Duration
	// SyncTimeout bounds how long Run waits for the first list of each
	// resource before it serves without the ones that have not listed
	// (their CRD is missing, or RBAC forbids them; they are retried and
	// served once listed). 0 means DefaultSyncTimeout.
	SyncTimeout time.Duration
	// Mesh holds the mesh-wide settings the status conditions are
	// computed under (as translate.CheckMesh): the root namespace.
	Mesh translate.Mesh
	// DisableStatus: never write status conditions.
	DisableStatus bool
	// LeaderElection, when set, makes status writes the work of one
	// replica: the one that holds the Lease. Nil: this source writes
	// status whenever it runs (a single control plane).
	LeaderElection *LeaderElection
}

// LeaderElection configures the election of the replica that writes
// status, through a coordination.k8s.io Lease.
type LeaderElection struct {
	// Namespace and Name of the Lease. Required.
	Namespace, Name string
	// Identity of this replica, unique among them (its pod name).
	// Required.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod are client-go's
	// (leaderelection.LeaderElectionConfig); zero means 15s, 10s and 2s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Source is a model.Source that reads the mesh from the Kubernetes API:
// Services, EndpointSlices, Pods, Namespaces, Gateway API HTTPRoutes and
// GRPCRoutes attached to Services, ReferenceGrants, and weft's Workloads
// and policies. Run it once.
type Source struct {
	o       Options
	name    string
	log     *slog.Logger
	td      spiffeid.TrustDomain
	hc      *http.Client
	clients map[schema.GroupVersion]rest.Interface
	leases  coordinationv1.LeasesGetter

	q       *queue
	kick    chan struct{}
	synced  chan struct{}
	running atomic.Bool
	leading atomic.Bool
	writes  atomic.Uint64
	// unavailable marks the kinds that could not be listed: not
	// installed, or forbidden.
	unavailable [numKinds]atomic.Bool

	// inf holds the informers, set by Run before anything reads them.
	inf [numKinds]toolscache.SharedIndexInformer

	// Only the worker goroutine uses what follows.
	//
	// logged holds the problems last logged per object.
	logged map[model.Key]string
}

// New checks o and returns a source; nothing is contacted yet.
func New(o Options) (*Source, error) {
	if o.Config == nil {
		return nil, errors.New("kube source: no Kubernetes client configuration")
	}
	td, err := spiffeid.TrustDomainFromString(cmp.Or(o.TrustDomain, DefaultTrustDomain))
	if err != nil {
		return nil, fmt.Errorf("kube source: trust domain %q: %w", o.TrustDomain, err)
	}
	if err := o.Mesh.Validate(); err != nil {
		return nil, fmt.Errorf("kube source: %w", err)
	}
	if le := o.LeaderElection; le != nil && (le.Namespace == "" || le.Name == "" || le.Identity == "") {
		return nil, errors.New("kube source: leader election needs the Lease's namespace and name and this replica's identity")
	}
	switch {
	case o.Resync == 0:
		o.Resync = DefaultResync
	case o.Resync < 0:
		o.Resync = 0
	}
	if o.SyncTimeout <= 0 {
		o.SyncTimeout = DefaultSyncTimeout
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := cmp.Or(o.Name, DefaultName)
	hc, err := rest.HTTPClientFor(o.Config)
	if err != nil {
		return nil, fmt.Errorf("kube source: an HTTP client for the Kubernetes API: %w", err)
	}
	scheme, err := newScheme()
	if err != nil {
		return nil, err
	}
	clients, err := restClients(o.Config, hc, scheme)
	if err != nil {
		return nil, err
	}
	cc := rest.CopyConfig(o.Config)
	withDefaults(cc)
	leases, err := coordinationv1.NewForConfigAndClient(cc, hc)
	if err != nil {
		return nil, fmt.Errorf("kube source: a client for Leases: %w", err)
	}
	return &Source{
		o: o, name: name, log: log.With("source", name), td: td, hc: hc, clients: clients, leases: leases,
		q: newQueue(), kick: make(chan struct{}, 1), synced: make(chan struct{}), logged: map[model.Key]string{},
	}, nil
}

// Name implements model.Source.
func (s *Source) Name() string { return s.name }

// Synced is closed once the first list of every resource (or
// Options.SyncTimeout) has been applied to the store.
func (s *Source) Synced() <-chan struct{} { return s.synced }

// Leading reports whether this source writes status now: it holds the
// Lease, or runs without leader election.
func (s *Source) Leading() bool { return s.leading.Load() }

// StatusWrites counts the status updates this source has made.
func (s *Source) StatusWrites() uint64 { return s.writes.Load() }

// Run implements model.Source: it watches the resources, applies their
// model objects to st as they change, and (when leading) writes status
// conditions, until ctx ends; then it returns nil.
func (s *Source) Run(ctx context.Context, st *model.Store) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("kube source: Run called twice")
	}
	defer s.hc.CloseIdleConnections()
	// client-go logs (reflectors, leader election) go to our logger.
	ctx = klog.NewContext(ctx, logr.FromSlogHandler(s.log.Handler()))
	for k := range numKinds {
		inf, err := newInformer(k, s.clients[k.info().gv], s.o.Resync, s.log, func() { s.unavailable[k].Store(true) })
		if err != nil {
			return err
		}
		if _, err := inf.AddEventHandler(s.handler(k)); err != nil {
			return fmt.Errorf("kube source: %s informer: %w", k.info().what, err)
		}
		s.inf[k] = inf
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, inf := range s.inf {
		wg.Go(func() { inf.RunWithContext(ctx) })
	}
	start := time.Now()
	if !s.waitSynced(ctx) {
		return nil
	}
	s.log.Info("kubernetes resources listed", "elapsed", time.Since(start).Round(time.Millisecond))
	wg.Go(func() { s.work(ctx, st) })
	if !s.o.DisableStatus {
		wg.Go(func() { s.statusLoop(ctx, st) })
	}
	<-ctx.Done()
	return nil
}

// waitSynced waits until every informer has listed, or could not because
// its resource is not installed or forbidden, or SyncTimeout; false when
// ctx ended first.
func (s *Source) waitSynced(ctx context.Context) bool {
	deadline := time.NewTimer(s.o.SyncTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var missing, unavailable []string
		for k, inf := range s.inf {
			switch {
			case inf.HasSynced():
			case s.unavailable[k].Load():
				unavailable = append(unavailable, kind(k).info().resource)
			default:
				missing = append(missing, kind(k).info().resource)
			}
		}
		if len(missing) == 0 {
			if len(unavailable) > 0 {
				s.log.Warn("some resources cannot be listed (not installed, or forbidden); serving without them until they can be", "resources", unavailable)
			}
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			s.log.Warn("some resources could not be listed; serving without them until they are", "resources", missing, "waited", s.o.SyncTimeout)
			return true
		case <-tick.C:
		}
	}
}

// work applies the model objects of the queued keys, a batch at a time.
func (s *Source) work(ctx context.Context, st *model.Store) {
	first := true
	// A first batch even if nothing was listed.
	select {
	case s.q.wake <- struct{}{}:
	default:
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.q.wake:
		}
		keys := s.q.take()
		changes := s.compute(keys)
		s.apply(st, changes)
		if first {
			first = false
			close(s.synced)
			s.log.Info("kubernetes resources applied", "changes", len(changes))
		}
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// apply applies changes in one revision; should the store refuse one (a
// bug), the others are applied one by one.
func (s *Source) apply(st *model.Store, changes []model.Change) {
	if len(changes) == 0 {
		return
	}
	err := st.Apply(s.name, changes...)
	if err == nil {
		return
	}
	s.log.Error("the model store refused a batch of changes; applying them one by one", "changes", len(changes), "error", err)
	for _, c := range changes {
		if err := st.Apply(s.name, c); err != nil {
			s.log.Error("the model store refused a change", "error", err)
		}
	}
}
