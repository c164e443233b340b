package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/control/discovery"
	"github.com/weft-mesh/weft/internal/control/identity"
	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/registry"
	"github.com/weft-mesh/weft/internal/control/translate"
	"github.com/weft-mesh/weft/internal/proxy/config"
)

// Options configure Run.
type Options struct {
	// Listener serves the control plane's gRPC API: Discovery, and Identity
	// when Identity is set.
	Listener net.Listener
	// Identity, when set, makes the control plane the mesh's certificate
	// authority: it serves the Identity API, every endpoint speaks TLS with
	// the control plane's own certificate, discovery answers a proxy only
	// for the SPIFFE ID of its client certificate, and every response
	// carries the trust anchors and issuer (rotations reach proxies live).
	// Without it the API is plaintext: for tests and proxies that bring
	// their own certificates.
	Identity *identity.Options
	Sources  []model.Source
	Logger   *slog.Logger
	// Ready, when not nil, is closed once the sources have started and the
	// API is served.
	Ready chan<- struct{}
	// Mesh holds the mesh-wide settings of the translation: Mesh.RootNamespace
	// (default translate.DefaultRootNamespace, "weft-system": policies
	// without targetRefs there apply to every workload) and
	// Mesh.DefaultInboundPolicy (default "allow-all"; the values are
	// model.DefaultInboundPolicies()). Run refuses invalid ones.
	Mesh translate.Mesh
	// Registry, when set, lets proxies register their workloads (Node
	// registration, health and deregister on the Discovery stream): it runs
	// as one more source, and the endpoints of the registered workloads are
	// added to the Services that select them. It needs Identity: a
	// registration's namespace and service account are those of the
	// proxy's verified SPIFFE ID.
	Registry *registry.Registry
}

// Run serves until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := o.Mesh.Validate(); err != nil {
		return fmt.Errorf("control plane settings: %w", err)
	}
	store := model.NewStore()
	cache := discovery.NewCache()
	r := &reconciler{store: store, cache: cache, log: o.Logger, proxies: map[string]*proxyState{}, mesh: o.Mesh}
	dopts := discovery.Options{
		Logger:       o.Logger,
		Validate:     validate,
		OnConnect:    r.connect,
		OnDisconnect: r.disconnect,
		OnWatch:      r.watch,
	}
	if o.Registry != nil {
		if o.Identity == nil {
			return errors.New("control plane settings: a registry of workloads needs Identity: registrations take their namespace and service account from the proxy's verified SPIFFE ID")
		}
		o.Sources = append(slices.Clone(o.Sources), o.Registry)
		useRegistry(&dopts, r, o.Registry)
	}
	var serverOpts []grpc.ServerOption
	var ids *identity.Server
	if o.Identity != nil {
		var err error
		if ids, err = identity.NewServer(*o.Identity); err != nil {
			return err
		}
		auth := o.Identity.Authority
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(auth.ServerTLS(o.Identity.Now))))
		dopts.Authenticate = authenticate(auth, o.Identity.Now)
		cache.SetTrust(trustOf(auth.Current()))
	}
	g := grpc.NewServer(serverOpts...)
	discovery.NewServer(cache, dopts).Register(g)
	if ids != nil {
		ids.Register(g)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(o.Sources)+1)
	for _, s := range o.Sources {
		wg.Go(func() {
			if err := s.Run(ctx, store); err != nil {
				errc <- fmt.Errorf("source %s: %w", s.Name(), err)
			}
		})
	}
	wg.Go(func() {
		for range store.Subscribe(ctx) {
			r.renderAll()
		}
	})
	if o.Registry != nil {
		// Health changes the endpoints, not the store.
		wg.Go(func() {
			for range o.Registry.Subscribe(ctx) {
				r.renderAll()
			}
		})
	}
	if o.Identity != nil {
		// An operator's `weft ca` rotation step reaches every proxy live.
		wg.Go(func() {
			o.Identity.Authority.Watch(ctx, caPoll, func(a *ca.Authority) { cache.SetTrust(trustOf(a)) })
		})
	}
	wg.Go(func() {
		if err := g.Serve(o.Listener); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errc <- fmt.Errorf("serving the Discovery API on %s: %w", o.Listener.Addr(), err)
		}
	})
	o.Logger.Info("control plane serving", "address", o.Listener.Addr().String())
	if o.Ready != nil {
		close(o.Ready)
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	// Stop, not GracefulStop: proxies keep their streams open for good.
	g.Stop()
	wg.Wait()
	return err
}

// useRegistry feeds the registry the events of the proxies' streams, and
// has the reconciler render the registry's overlay of the model.
func useRegistry(d *discovery.Options, r *reconciler, reg *registry.Registry) {
	d.Admit = reg.Connect
	d.OnRequest = reg.Request
	disconnect := d.OnDisconnect
	d.OnDisconnect = func(n *discoveryv1.Node) {
		reg.Disconnect(n)
		disconnect(n)
	}
	r.overlay = reg.Overlay
}

// snapshot is the model the proxies' configs are rendered from.
func (r *reconciler) snapshot() *model.Snapshot {
	snap := r.store.Snapshot()
	if r.overlay != nil {
		snap = r.overlay(snap)
	}
	return snap
}

// caPoll is how often the control plane looks for a rotated CA.
const caPoll = 2 * time.Second

// trustOf is the trust material proxies receive from a.
func trustOf(a *ca.Authority) discovery.Trust {
	t := discovery.Trust{IssuerFingerprint: a.IssuerFingerprint()}
	for _, c := range a.Anchors() {
		t.Anchors = append(t.Anchors, c.Raw)
	}
	return t
}

// authenticate lets a proxy's stream through only for the SPIFFE ID of its
// client certificate.
func authenticate(auth *identity.Authority, now func() time.Time) func(context.Context, *discoveryv1.Node) error {
	if now == nil {
		now = time.Now
	}
	return func(ctx context.Context, n *discoveryv1.Node) error {
		id, ok, err := auth.PeerID(ctx, now())
		switch {
		case !ok:
			return status.Error(codes.Unauthenticated, "the Discovery API needs the proxy's client certificate: get one from the Identity API first (weft-proxy --join-token-file or --token-file)")
		case err != nil:
			return status.Errorf(codes.Unauthenticated, "%v", err)
		case id.String() != n.GetIdentity():
			return status.Errorf(codes.PermissionDenied, "node.identity %s is not the identity of the proxy's certificate (%s); a proxy only gets its own config", n.GetIdentity(), id)
		}
		return nil
	}
}

// validate checks a config with the proxy's own rules before it is served.
func validate(cfg *weftv1.ProxyConfig) error {
	_, err := config.Compile(cfg)
	return err
}

// reconciler renders the config of every connected proxy.
type reconciler struct {
	store *model.Store
	cache *discovery.Cache
	log   *slog.Logger
	mesh  translate.Mesh
	// overlay, when set, adds to the store's snapshot what the store cannot
	// hold (registered workloads' endpoints).
	overlay func(*model.Snapshot) *model.Snapshot

	mu      sync.Mutex
	proxies map[string]*proxyState // by discovery.NodeKey
}

type proxyState struct {
	node    *discoveryv1.Node
	streams int
	watched map[model.ServicePortRef]bool
	last    *weftv1.ProxyConfig
	// waiting: the last render had nothing to send (logged once).
	waiting bool
}

func (r *reconciler) connect(n *discoveryv1.Node) {
	r.mu.Lock()
	key := discovery.NodeKey(n)
	p, ok := r.proxies[key]
	if !ok {
		p = &proxyState{watched: map[model.ServicePortRef]bool{}}
		r.proxies[key] = p
	}
	p.node = n
	p.streams++
	r.addWatches(p, n.GetWatchedServices())
	r.mu.Unlock()
	r.render(key)
}

func (r *reconciler) disconnect(n *discoveryv1.Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.proxies[discovery.NodeKey(n)]; ok {
		if p.streams--; p.streams <= 0 {
			delete(r.proxies, discovery.NodeKey(n))
			r.cache.Delete(discovery.NodeKey(n))
		}
	}
}

func (r *reconciler) watch(n *discoveryv1.Node, services []string) {
	r.mu.Lock()
	p, ok := r.proxies[discovery.NodeKey(n)]
	if ok {
		r.addWatches(p, services)
	}
	r.mu.Unlock()
	if ok {
		r.render(discovery.NodeKey(n))
	}
}

// addWatches parses "namespace/name" and "namespace/name:port"; bad names
// are logged and ignored. Called with r.mu held.
func (r *reconciler) addWatches(p *proxyState, services []string) {
	for _, s := range services {
		ref, err := ParseServiceRef(s)
		if err != nil {
			r.log.Warn("proxy asked for a malformed service", "identity", p.node.GetIdentity(), "service", s, "error", err)
			continue
		}
		p.watched[ref] = true
	}
}

// ParseServiceRef reads "namespace/name" or "namespace/name:port".
func ParseServiceRef(s string) (model.ServicePortRef, error) {
	ns, rest, ok := strings.Cut(s, "/")
	if !ok || ns == "" || rest == "" {
		return model.ServicePortRef{}, fmt.Errorf("%q is not namespace/name or namespace/name:port", s)
	}
	ref := model.ServicePortRef{ServiceRef: model.ServiceRef{Namespace: ns, Name: rest}}
	if name, port, ok := strings.Cut(rest, ":"); ok {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return model.ServicePortRef{}, fmt.Errorf("%q: port %q is not 1-65535", s, port)
		}
		ref.Name, ref.Port = name, uint16(n)
	}
	return ref, nil
}

func (r *reconciler) renderAll() {
	r.mu.Lock()
	ids := make([]string, 0, len(r.proxies))
	for id := range r.proxies {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	slices.Sort(ids)
	for _, id := range ids {
		r.render(id)
	}
}

// render translates the model for one proxy (by discovery.NodeKey) and
// hands the result to the cache; problems are logged, the rest is served.
func (r *reconciler) render(key string) {
	snap := r.snapshot()
	r.mu.Lock()
	p, ok := r.proxies[key]
	if !ok {
		r.mu.Unlock()
		return
	}
	identity := p.node.GetIdentity()
	in := translate.Proxy{
		Identity:     identity,
		Workload:     workloadOf(snap, p.node),
		TLS:          p.node.GetTls(),
		ExplicitBase: uint16(p.node.GetExplicitBase()),
		Previous:     p.last,
		Mesh:         r.mesh,
	}
	for ref := range p.watched {
		in.Watched = append(in.Watched, ref)
	}
	r.mu.Unlock()
	slices.SortFunc(in.Watched, func(a, b model.ServicePortRef) int {
		return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
	})
	if in.Workload == nil || in.Workload.ProxyInbound != 0 {
		in.Mode = translate.ModeExplicit
	}
	res, err := translate.Config(snap, in)
	if errors.Is(err, translate.ErrNothingToServe) {
		// E.g. the proxy connected before the sources' first load.
		r.mu.Lock()
		first := !p.waiting
		p.waiting = true
		r.mu.Unlock()
		if first {
			r.log.Info("proxy waits: nothing to send it yet", "identity", identity, "watched", len(in.Watched), "reason", err)
		}
		return
	}
	if err != nil {
		r.log.Error("cannot render the config of a proxy", "identity", identity, "error", err)
		return
	}
	r.mu.Lock()
	p.waiting = false
	r.mu.Unlock()
	for _, pr := range res.Problems {
		r.log.Warn("mesh problem worked around", "identity", identity, "object", pr.Object, "field", pr.Field, "problem", pr.Message)
	}
	if a := p.node.GetAdminAddress(); a != "" {
		res.Config.Admin = &weftv1.Admin{Address: a}
	}
	r.mu.Lock()
	if p, ok := r.proxies[key]; ok {
		p.last = res.Config
	}
	r.mu.Unlock()
	r.cache.Set(key, res.Config)
}

// workloadOf finds the workload a proxy runs beside: the one its node id
// names, else the only workload of its identity's namespace and service
// account.
func workloadOf(snap *model.Snapshot, n *discoveryv1.Node) *model.Workload {
	id, err := spiffeid.FromString(n.GetIdentity())
	if err != nil {
		return nil
	}
	segs := strings.Split(strings.Trim(id.Path(), "/"), "/")
	if len(segs) != 4 || segs[0] != "ns" || segs[2] != "sa" {
		return nil
	}
	ns, sa := segs[1], segs[3]
	var found *model.Workload
	count := 0
	for _, w := range snap.Workloads {
		if w.Namespace != ns || w.ServiceAccount != sa {
			continue
		}
		if n.GetId() != "" && w.Name == n.GetId() {
			return w
		}
		found = w
		count++
	}
	if count == 1 {
		return found
	}
	return nil
}
