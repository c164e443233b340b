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

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/discovery"
	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/translate"
	"github.com/weft-mesh/weft/internal/proxy/config"
)

// Options configure Run.
type Options struct {
	// Listener serves the Discovery API (plaintext gRPC for now; mTLS comes
	// with certificate issuance).
	Listener net.Listener
	Sources  []model.Source
	Logger   *slog.Logger
	// Ready, when not nil, is closed once the sources have started and the
	// API is served.
	Ready chan<- struct{}
}

// Run serves until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	store := model.NewStore()
	cache := discovery.NewCache()
	r := &reconciler{store: store, cache: cache, log: o.Logger, proxies: map[string]*proxyState{}}
	srv := discovery.NewServer(cache, discovery.Options{
		Logger:       o.Logger,
		Validate:     validate,
		OnConnect:    r.connect,
		OnDisconnect: r.disconnect,
		OnWatch:      r.watch,
	})
	g := grpc.NewServer()
	srv.Register(g)

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

	mu      sync.Mutex
	proxies map[string]*proxyState // by identity
}

type proxyState struct {
	node    *discoveryv1.Node
	streams int
	watched map[model.ServicePortRef]bool
	last    *weftv1.ProxyConfig
}

func (r *reconciler) connect(n *discoveryv1.Node) {
	r.mu.Lock()
	p, ok := r.proxies[n.GetIdentity()]
	if !ok {
		p = &proxyState{watched: map[model.ServicePortRef]bool{}}
		r.proxies[n.GetIdentity()] = p
	}
	p.node = n
	p.streams++
	r.addWatches(p, n.GetWatchedServices())
	r.mu.Unlock()
	r.render(n.GetIdentity())
}

func (r *reconciler) disconnect(n *discoveryv1.Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.proxies[n.GetIdentity()]; ok {
		if p.streams--; p.streams <= 0 {
			delete(r.proxies, n.GetIdentity())
			r.cache.Delete(n.GetIdentity())
		}
	}
}

func (r *reconciler) watch(n *discoveryv1.Node, services []string) {
	r.mu.Lock()
	p, ok := r.proxies[n.GetIdentity()]
	if ok {
		r.addWatches(p, services)
	}
	r.mu.Unlock()
	if ok {
		r.render(n.GetIdentity())
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

// render translates the model for one proxy and hands the result to the
// cache; problems are logged, the rest is served.
func (r *reconciler) render(identity string) {
	snap := r.store.Snapshot()
	r.mu.Lock()
	p, ok := r.proxies[identity]
	if !ok {
		r.mu.Unlock()
		return
	}
	in := translate.Proxy{
		Identity:     identity,
		Workload:     workloadOf(snap, p.node),
		TLS:          p.node.GetTls(),
		ExplicitBase: uint16(p.node.GetExplicitBase()),
		Previous:     p.last,
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
	if err != nil {
		r.log.Error("cannot render the config of a proxy", "identity", identity, "error", err)
		return
	}
	for _, pr := range res.Problems {
		r.log.Warn("mesh problem worked around", "identity", identity, "object", pr.Object, "field", pr.Field, "problem", pr.Message)
	}
	if a := p.node.GetAdminAddress(); a != "" {
		res.Config.Admin = &weftv1.Admin{Address: a}
	}
	r.mu.Lock()
	if p, ok := r.proxies[identity]; ok {
		p.last = res.Config
	}
	r.mu.Unlock()
	r.cache.Set(identity, res.Config)
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
