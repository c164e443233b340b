package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	"github.com/weft-mesh/weft/internal/control/model"
)

// DefaultGrace is how long a workload whose proxy vanished stays registered
// (not ready) waiting for the proxy to come back.
const DefaultGrace = 30 * time.Second

// SourceName is the Registry's name as a model.Source.
const SourceName = "registry"

// Options configure a Registry.
type Options struct {
	// DataDir keeps the registrations in <DataDir>/registrations.json, so
	// a restarted control plane serves them at once; "" keeps them in
	// memory only.
	DataDir string
	// Grace is how long a workload stays registered, not ready, after its
	// proxy's stream ended without deregister, and how long a restarted
	// control plane waits for the proxies of persisted registrations to
	// come back. Zero means DefaultGrace.
	Grace time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now and After replace time.Now and time.After, for tests; nil: the
	// real clock.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
}

// Registry holds the registered workloads. Create it with New, run it as a
// model.Source (Run), and feed it the Discovery streams' events: Connect,
// Request and Disconnect. Safe for concurrent use.
type Registry struct {
	o       Options
	log     *slog.Logger
	started chan struct{} // closed once Run has applied the persisted state
	wake    chan struct{} // a deadline changed
	dirty   chan struct{} // something to persist

	mu      sync.Mutex
	store   *model.Store
	ctx     context.Context // Run's; done once the control plane stops
	entries map[model.ObjectRef]*entry
	streams map[*discoveryv1.Node]model.ObjectRef
	gen     uint64 // counts changes of what Overlay returns
	subs    map[chan struct{}]struct{}
	cache   overlayCache
}

// entry is one registered workload.
type entry struct {
	workload *model.Workload
	identity string
	health   discoveryv1.Health
	detail   string
	// stream is the stream that confirms the registration; nil after it
	// ended, or, for a persisted registration, until one confirms it.
	stream *discoveryv1.Node
	// lost is set when the stream ended without deregister: the endpoints
	// are not ready.
	lost bool
	// deadline is when the registration is removed unless a stream
	// confirms it; zero while one does.
	deadline   time.Time
	registered time.Time
	// shadowed is set while another source's workload of the same name
	// wins in the Store (logged once).
	shadowed bool
}

// ready says whether the workload's endpoints are served.
func (e *entry) ready() bool {
	return !e.lost && e.health != discoveryv1.Health_HEALTH_UNHEALTHY
}

// New returns a registry holding the registrations persisted in
// o.DataDir, if any. Run serves them.
func New(o Options) (*Registry, error) {
	if o.Grace < 0 {
		return nil, fmt.Errorf("registry: grace period %v is negative; give a duration such as 30s", o.Grace)
	}
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	r := &Registry{
		o:       o,
		log:     o.Logger.With("source", SourceName),
		started: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		dirty:   make(chan struct{}, 1),
		entries: map[model.ObjectRef]*entry{},
		streams: map[*discoveryv1.Node]model.ObjectRef{},
		subs:    map[chan struct{}]struct{}{},
	}
	if o.DataDir != "" {
		if err := r.load(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Name implements model.Source.
func (r *Registry) Name() string { return SourceName }

// Run implements model.Source: it applies the registered workloads to s,
// removes those whose grace period ran out and persists changes, until
// ctx ends. A Registry runs once.
func (r *Registry) Run(ctx context.Context, s *model.Store) error {
	r.mu.Lock()
	if r.store != nil {
		r.mu.Unlock()
		return errors.New("registry: Run was called before; a Registry runs once")
	}
	r.store, r.ctx = s, ctx
	// Persisted registrations wait for their proxies from now on.
	deadline := r.o.Now().Add(r.o.Grace)
	objs := make([]model.Object, 0, len(r.entries))
	for _, e := range r.entries {
		e.deadline = deadline
		objs = append(objs, e.workload)
	}
	err := s.Replace(SourceName, objs)
	if n := len(objs); n > 0 && err == nil {
		r.log.Info("registered workloads restored; each is removed unless its proxy reconnects within the grace period", "workloads", n, "grace", r.o.Grace)
	}
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("registry: applying the persisted workloads: %w", err)
	}
	close(r.started)

	var wg sync.WaitGroup
	wg.Go(func() { r.persistLoop(ctx) })
	defer wg.Wait()
	revisions := s.Subscribe(ctx)
	for {
		next := r.expire()
		var timer <-chan time.Time
		if !next.IsZero() {
			timer = r.o.After(next.Sub(r.o.Now()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-timer:
		case <-revisions:
			r.checkShadowed()
		}
	}
}

// checkShadowed logs the registered workloads that another source's
// workload of the same name starts or stops shadowing (a Workload written
// into the files after the registration): the other source's wins.
func (r *Registry) checkShadowed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	snap := r.store.Snapshot()
	for ref, e := range r.entries {
		sw := snap.Workloads[ref]
		shadowed := sw != nil && !sameWorkload(sw, e.workload)
		switch {
		case shadowed && !e.shadowed:
			r.log.Warn("registered workload shadowed by a workload of another source (a Workload in the files), which wins; its proxy's registration is ignored until that one is removed",
				"workload", ref.String(), "identity", e.identity)
		case !shadowed && e.shadowed:
			r.log.Info("registered workload no longer shadowed by another source", "workload", ref.String())
		}
		e.shadowed = shadowed
	}
}

// Connect registers the workload of a stream's node, with the health of
// its first request; it does nothing for a node without registration. Its
// error is a gRPC status that refuses the stream: codes.InvalidArgument
// naming the invalid fields, codes.AlreadyExists when the name is taken.
// node.identity must have been verified by the caller. node is the stream's
// key for Request and Disconnect.
func (r *Registry) Connect(ctx context.Context, node *discoveryv1.Node, first *discoveryv1.DiscoveryRequest) error {
	if node.GetRegistration() == nil {
		return nil
	}
	w, err := Workload(node)
	if err != nil {
		r.log.Warn("workload registration refused", "identity", node.GetIdentity(), "node_id", node.GetId(), "error", err)
		return status.Error(codes.InvalidArgument, err.Error())
	}
	select {
	case <-r.started:
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx.Err() != nil {
		return status.Error(codes.Unavailable, "the control plane is stopping; registering again after it restarts")
	}
	ref := w.Ref()
	old := r.entries[ref]
	if old != nil && old.identity != node.GetIdentity() {
		err := fmt.Sprintf("workload %s is registered by a proxy of another identity (%s)", ref, old.identity)
		if old.stream == nil {
			err += fmt.Sprintf(", which may come back until %s", old.deadline.UTC().Format(time.RFC3339))
		}
		r.log.Warn("workload registration refused", "workload", ref.String(), "identity", node.GetIdentity(), "registered_by", old.identity)
		return status.Error(codes.AlreadyExists, err+"; give this proxy another --node-id")
	}
	if sw := r.store.Snapshot().Workloads[ref]; sw != nil && (old == nil || !sameWorkload(sw, old.workload)) {
		r.log.Warn("workload registration refused: another source defines the workload", "workload", ref.String(), "identity", node.GetIdentity())
		return status.Errorf(codes.AlreadyExists, "workload %s is defined by another of the control plane's sources (a Workload in its files); remove it there, or give this proxy another --node-id", ref)
	}
	e := &entry{workload: w, identity: node.GetIdentity(), stream: node, registered: r.o.Now()}
	if old != nil {
		// The last reported health stands until the proxy reports again.
		e.health, e.detail, e.registered = old.health, old.detail, old.registered
		if old.stream != nil {
			delete(r.streams, old.stream)
			r.log.Warn("workload registered again by a new stream of its proxy; the previous stream is ignored", "workload", ref.String(), "identity", e.identity)
		}
	}
	if h := first.GetHealth(); h != discoveryv1.Health_HEALTH_UNKNOWN {
		e.health, e.detail = h, first.GetHealthDetail()
	}
	if old == nil || !sameWorkload(old.workload, w) {
		if err := r.store.Apply(SourceName, model.Change{Upsert: w}); err != nil {
			r.log.Error("cannot apply a registered workload", "workload", ref.String(), "error", err)
			return status.Errorf(codes.Internal, "applying workload %s: %v", ref, err)
		}
	}
	r.entries[ref] = e
	r.streams[node] = ref
	r.log.Info("workload registered", "workload", ref.String(), "identity", e.identity, "address", w.Address.String(),
		"ports", len(w.Ports), "health", healthName(e.health), "again", old != nil)
	if first.GetDeregister() {
		r.deregister(node, ref)
		return nil
	}
	r.changed()
	return nil
}

// Request handles a later request of a stream: a health report or
// deregister. Requests of streams that registered nothing, or whose
// registration a newer stream took over, are ignored.
func (r *Registry) Request(node *discoveryv1.Node, req *discoveryv1.DiscoveryRequest) {
	if req.GetHealth() == discoveryv1.Health_HEALTH_UNKNOWN && !req.GetDeregister() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ref, ok := r.streams[node]
	if !ok || r.ctx.Err() != nil {
		return // not registered, taken over, or the control plane stops
	}
	if req.GetDeregister() {
		r.deregister(node, ref)
		return
	}
	e := r.entries[ref]
	h, detail := req.GetHealth(), req.GetHealthDetail()
	if h == e.health && detail == e.detail {
		return
	}
	wasReady := e.ready()
	e.health, e.detail = h, detail
	r.log.Info("registered workload's health changed", "workload", ref.String(), "health", healthName(h), "detail", detail,
		"ready", e.ready(), "was_ready", wasReady)
	r.changed()
}

// deregister removes the workload of a stream that deregistered. r.mu is
// held.
func (r *Registry) deregister(node *discoveryv1.Node, ref model.ObjectRef) {
	delete(r.streams, node)
	delete(r.entries, ref)
	if err := r.store.Apply(SourceName, model.Change{Delete: model.Key{Kind: model.KindWorkload, Namespace: ref.Namespace, Name: ref.Name}}); err != nil {
		r.log.Error("cannot remove a deregistered workload", "workload", ref.String(), "error", err)
	}
	r.log.Info("workload deregistered by its proxy", "workload", ref.String())
	r.changed()
}

// Disconnect handles the end of a stream. A stream that ended without
// deregister leaves its workload registered but not ready, removed after
// the grace period unless its proxy reconnects. Streams that end because
// the control plane stops change nothing.
func (r *Registry) Disconnect(node *discoveryv1.Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ref, ok := r.streams[node]
	if !ok {
		return
	}
	delete(r.streams, node)
	e := r.entries[ref]
	e.stream = nil
	if r.ctx.Err() != nil {
		return // the control plane stops: the persisted state stays as it was
	}
	e.lost = true
	e.deadline = r.o.Now().Add(r.o.Grace)
	r.log.Info("registered workload's proxy disconnected without deregistering; its endpoints are not ready, and it is removed unless the proxy reconnects in time",
		"workload", ref.String(), "removed_at", e.deadline)
	r.changed()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// expire removes the registrations whose deadline passed and returns the
// earliest deadline left (zero if none).
func (r *Registry) expire() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.o.Now()
	var next time.Time
	var gone []model.Change
	for _, ref := range slices.SortedFunc(maps.Keys(r.entries), compareRefs) {
		e := r.entries[ref]
		switch {
		case e.deadline.IsZero():
		case !now.Before(e.deadline):
			delete(r.entries, ref)
			gone = append(gone, model.Change{Delete: model.Key{Kind: model.KindWorkload, Namespace: ref.Namespace, Name: ref.Name}})
			r.log.Info("registered workload removed: its proxy did not come back within the grace period", "workload", ref.String(), "grace", r.o.Grace)
		case next.IsZero() || e.deadline.Before(next):
			next = e.deadline
		}
	}
	if len(gone) > 0 {
		if err := r.store.Apply(SourceName, gone...); err != nil {
			r.log.Error("cannot remove expired registered workloads", "error", err)
		}
		r.changed()
	}
	return next
}

// changed records a change of the registrations: subscribers hear of it
// and it is persisted. r.mu is held.
func (r *Registry) changed() {
	r.gen++
	for ch := range r.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	select {
	case r.dirty <- struct{}{}:
	default:
	}
}

// Subscribe returns a channel that receives a value whenever what Overlay
// returns may have changed (coalesced: one pending value at most). It is
// closed when ctx ends.
func (r *Registry) Subscribe(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	r.mu.Lock()
	r.subs[ch] = struct{}{}
	r.mu.Unlock()
	context.AfterFunc(ctx, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.subs, ch)
		close(ch)
	})
	return ch
}

// sameWorkload reports whether two workloads are equal field by field.
func sameWorkload(a, b *model.Workload) bool {
	return a.Namespace == b.Namespace && a.Name == b.Name && a.ServiceAccount == b.ServiceAccount &&
		maps.Equal(a.Labels, b.Labels) && a.Address == b.Address && a.ProxyInbound == b.ProxyInbound &&
		slices.Equal(a.Ports, b.Ports) && a.Meshed == b.Meshed && a.DefaultInboundPolicy == b.DefaultInboundPolicy
}

func compareRefs(a, b model.ObjectRef) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

func healthName(h discoveryv1.Health) string {
	switch h {
	case discoveryv1.Health_HEALTH_HEALTHY:
		return "healthy"
	case discoveryv1.Health_HEALTH_UNHEALTHY:
		return "unhealthy"
	}
	return "unknown"
}
