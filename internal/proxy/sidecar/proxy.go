package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/admin"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/httpproxy"
	"github.com/weft-mesh/weft/internal/proxy/metrics"
	"github.com/weft-mesh/weft/internal/proxy/renew"
	"github.com/weft-mesh/weft/internal/proxy/tlsid"
)

// Options configure Run.
type Options struct {
	// ConfigPath is the YAML or JSON ProxyConfig file; it is watched.
	ConfigPath string
	Logger     *slog.Logger
	// ConfigPoll is how often the config file is re-read in case no file
	// event arrives. Default 5s.
	ConfigPoll time.Duration
	// Ready, when not nil, receives the admin address once every listener
	// is open (tests and scripts wait on it).
	Ready chan<- string
	// ControlPlane, when set, makes the control plane the source of the
	// config: the file at ConfigPath then only gives the proxy's local
	// settings (its certificate files and admin address).
	ControlPlane *ControlPlane
}

// Proxy is a running weft-proxy.
type Proxy struct {
	log      *slog.Logger
	errorLog *log.Logger // net/http's own logging, routed to log at debug
	buffers  *httpproxy.BufferPool
	opts     Options
	metrics  *metrics.Metrics
	up       *httpproxy.Upstreams
	state    atomic.Pointer[state]
	tls      atomic.Pointer[tlsid.Source]
	// renewer obtains and renews an issued certificate; nil when the
	// certificate comes from files.
	renewer *renew.Client

	// tunnels counts WebSocket and CONNECT tunnels (see drain).
	tunnels sync.WaitGroup
	// bg tracks the background goroutines of Run (watches).
	bg           sync.WaitGroup
	tlsWatchMu   sync.Mutex
	tlsWatchStop context.CancelFunc

	// mu guards the listener set and the reload sequence.
	mu        sync.Mutex
	listeners map[listenerKey]*listener

	conns    connSet
	draining atomic.Bool
	stop     chan struct{} // closed by POST /shutdown
	stopOnce sync.Once

	// One HTTP server per direction: connections are handed to it one at a
	// time after protocol detection.
	servers map[direction]*http.Server
	hl      map[direction]*connListener
}

// Run starts the proxy and blocks until ctx is done (SIGTERM) or POST
// /shutdown arrives, then drains: listeners close, in-flight requests get
// the configured drain time to finish, and Run returns.
func Run(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ConfigPoll <= 0 {
		opts.ConfigPoll = 5 * time.Second
	}
	if opts.ControlPlane != nil {
		return runWithControlPlane(ctx, opts)
	}
	cfg, raw, err := config.ReadFile(opts.ConfigPath)
	if err != nil {
		return err
	}
	p := newProxy(opts)
	p.up = httpproxy.NewUpstreams(p.connectTimeout, p.tls.Load)
	if cfg.TLS != nil && cfg.TLS.Issued {
		return errors.New("tls.issued: the certificate is issued by the control plane only with --control-plane; name certificate files instead")
	}
	if cfg.TLS != nil {
		src, err := tlsid.Load(cfg.TLS.Files())
		if err != nil {
			return fmt.Errorf("loading the proxy's certificate: %w", err)
		}
		p.tls.Store(src)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := p.apply(runCtx, cfg); err != nil {
		p.stopServers()
		return err
	}

	var wg sync.WaitGroup
	adminErr := make(chan error, 1)
	if err := p.startAdmin(runCtx, &wg, cfg.AdminAddress, adminErr); err != nil {
		p.closeListeners()
		p.stopServers()
		return err
	}
	wg.Go(func() {
		if err := config.Watch(runCtx, opts.ConfigPath, raw, opts.ConfigPoll, p.log, func() { p.reload(runCtx) }); err != nil {
			p.log.Error("config watch stopped; the running config stays", "error", err)
		}
	})
	if src := p.tls.Load(); src != nil {
		p.startTLSWatch(runCtx, src)
	}
	p.log.Info("proxy started", "version", cfg.Version, "admin", cfg.AdminAddress, "identity", p.identity())
	if opts.Ready != nil {
		opts.Ready <- cfg.AdminAddress
	}

	p.serveUntilStopped(ctx, adminErr, cancel, &wg)
	return nil
}

// serveUntilStopped waits for SIGTERM (ctx), POST /shutdown or an admin
// server failure, then drains and waits for Run's goroutines.
func (p *Proxy) serveUntilStopped(ctx context.Context, adminErr <-chan error, cancel context.CancelFunc, wg *sync.WaitGroup) {
	select {
	case <-ctx.Done():
		p.log.Info("shutdown requested by signal; draining")
	case <-p.stop:
		p.log.Info("shutdown requested on the admin server; draining")
	case err := <-adminErr:
		p.log.Error("admin server failed; draining", "error", err)
	}
	p.drain(p.drainTimeout())
	cancel()
	wg.Wait()
	p.bg.Wait()
	p.log.Info("proxy stopped")
}

func newProxy(opts Options) *Proxy {
	return &Proxy{
		log:       opts.Logger,
		errorLog:  slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		buffers:   httpproxy.NewBufferPool(),
		opts:      opts,
		metrics:   metrics.New(metrics.Options{}),
		listeners: map[listenerKey]*listener{},
		stop:      make(chan struct{}),
	}
}

// drainTimeout is the running config's drain time (the default before any
// config arrived).
func (p *Proxy) drainTimeout() time.Duration {
	if s := p.state.Load(); s != nil {
		return s.cfg.Timeouts.Drain
	}
	return config.DefaultDrainTimeout
}

// connectTimeout is the running config's connect timeout.
func (p *Proxy) connectTimeout() time.Duration {
	if s := p.state.Load(); s != nil {
		return s.cfg.Timeouts.Connect
	}
	return config.DefaultConnectTimeout
}

func (p *Proxy) identity() string {
	if src := p.tls.Load(); src != nil {
		return src.ID().String()
	}
	return ""
}

// apply swaps cfg in: it opens the listeners the new config adds, builds the
// new state, stores it, then starts accepting and closes the listeners the
// config drops. On error nothing changes; while draining nothing is applied.
func (p *Proxy) apply(ctx context.Context, cfg *config.Compiled) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining.Load() {
		return errors.New("the proxy is draining; config not applied")
	}
	if p.servers == nil {
		p.startServers(ctx, cfg)
	}
	opened, err := p.openListeners(cfg)
	if err != nil {
		return err
	}
	s, err := p.newState(cfg, p.state.Load())
	if err != nil {
		closeAll(opened)
		return err
	}
	p.state.Store(s)
	p.commitListeners(ctx, cfg, opened)
	p.metrics.ConfigInfo(cfg.Version)
	p.up.Retain(func(k httpproxy.PeerKey) bool {
		for _, svc := range cfg.Services {
			for _, ep := range svc.Endpoints {
				if ep.Meshed() && ep.Dial() == k.Addr && ep.Identity == k.ID {
					return true
				}
			}
		}
		return false
	})
	return nil
}

// reload re-reads the config file and swaps it in when it is valid; an
// invalid file is reported and the running config stays.
func (p *Proxy) reload(ctx context.Context) {
	cfg, err := config.LoadFile(p.opts.ConfigPath)
	var src *tlsid.Source
	if err == nil {
		src, err = p.newTLS(cfg)
	}
	if err == nil {
		err = p.apply(ctx, cfg)
	}
	if err != nil {
		p.metrics.ConfigRejected()
		p.log.Error("config rejected; keeping the running config", "path", p.opts.ConfigPath, "running_version", p.state.Load().cfg.Version, "error", err)
		return
	}
	if src != nil {
		// Only once the config is in: a rejected one keeps the old
		// certificate, and the new files are watched from now on.
		p.tls.Store(src)
		p.startTLSWatch(ctx, src)
	}
	p.log.Info("config reloaded", "version", cfg.Version)
}

// newTLS loads the certificate files when cfg names other ones than the
// running proxy's; nil when they are the same.
func (p *Proxy) newTLS(cfg *config.Compiled) (*tlsid.Source, error) {
	cur := p.tls.Load()
	switch {
	case cfg.TLS == nil && cur == nil:
		return nil, nil
	case cfg.TLS == nil:
		return nil, errors.New("tls: the running proxy has a certificate and the new config drops it; restart the proxy to run without mTLS")
	case cfg.TLS.Issued:
		return nil, errors.New("tls.issued: the certificate is issued by the control plane only with --control-plane; name certificate files instead")
	case cur != nil && cur.Files() == cfg.TLS.Files():
		return nil, nil
	}
	src, err := tlsid.Load(cfg.TLS.Files())
	if err != nil {
		return nil, fmt.Errorf("loading the proxy's certificate: %w", err)
	}
	return src, nil
}

// startTLSWatch watches src's files, ending the watch of the certificate it
// replaces.
func (p *Proxy) startTLSWatch(ctx context.Context, src *tlsid.Source) {
	p.tlsWatchMu.Lock()
	defer p.tlsWatchMu.Unlock()
	if p.tlsWatchStop != nil {
		p.tlsWatchStop()
	}
	wctx, stop := context.WithCancel(ctx)
	p.tlsWatchStop = stop
	p.bg.Go(func() { p.watchTLS(wctx, src) })
}

func (p *Proxy) watchTLS(ctx context.Context, src *tlsid.Source) {
	err := src.Watch(ctx, p.log, func(err error) {
		if err != nil {
			p.metrics.ConfigRejected()
		}
	})
	if err != nil {
		p.log.Error("certificate watch stopped; the loaded certificate stays", "error", err)
	}
}

func (p *Proxy) startAdmin(ctx context.Context, wg *sync.WaitGroup, addr string, errc chan<- error) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin.address %s: %w", addr, err)
	}
	wg.Go(func() {
		err := admin.Serve(ctx, ln, admin.Options{
			Metrics:    p.metrics,
			Ready:      p.ready,
			ConfigDump: p.configDump,
			Shutdown:   p.requestStop,
			Logger:     p.log,
		})
		if err != nil {
			errc <- err
		}
	})
	return nil
}

func (p *Proxy) requestStop() { p.stopOnce.Do(func() { close(p.stop) }) }

// ready is the /ready check: not while draining, and not with an expired
// certificate (mTLS peers would refuse every connection).
func (p *Proxy) ready() error {
	if p.draining.Load() {
		return errors.New("draining")
	}
	if p.renewer != nil {
		if err := p.renewer.Ready(); err != nil {
			return err
		}
	}
	if p.state.Load() == nil {
		return errors.New("waiting for the first config from the control plane")
	}
	if src := p.tls.Load(); src != nil && src.Expired() {
		return fmt.Errorf("certificate %s expired at %s; renew %s", src.ID(), src.NotAfter().Format(time.RFC3339), src.Files().CertFile)
	}
	return nil
}
