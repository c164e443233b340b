package sidecar

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/configclient"
	"github.com/weft-mesh/weft/internal/proxy/health"
	"github.com/weft-mesh/weft/internal/proxy/httpproxy"
	"github.com/weft-mesh/weft/internal/proxy/renew"
	"github.com/weft-mesh/weft/internal/proxy/tlsid"
	"github.com/weft-mesh/weft/internal/version"
)

// ControlPlane says where the proxy's config comes from.
type ControlPlane struct {
	// Address of the Discovery API, host:port.
	Address string
	// NodeID names this proxy instance (e.g. the pod or workload name).
	NodeID string
	// Watch lists services to discover from the start, as
	// "namespace/name" or "namespace/name:port".
	Watch []string
	// ExplicitBase is the first local port of explicit-mode listeners.
	ExplicitBase uint16
	// Proof of identity for an issued certificate: a join token (universal
	// mode) in JoinTokenFile, or the projected ServiceAccount token
	// (Kubernetes) in TokenFile. With either set, the proxy gets its
	// certificate from the control plane's Identity API, renews it, and
	// talks to the control plane over mTLS; the bootstrap config then has no
	// tls section. Without, the certificate comes from the config's files.
	JoinTokenFile string
	TokenFile     string
	// TrustBundleFile holds the mesh's trust anchor(s), to verify the
	// control plane before the proxy has a certificate. Required with a
	// proof of identity.
	TrustBundleFile string
	// TrustDomain of the mesh; default: read from the trust anchor.
	TrustDomain string
	// Now and After replace time.Now and time.After for everything about
	// the issued certificate (validity, renewal, peer verification), so
	// tests can move time; nil: the real clock.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Dial options; default: mTLS with the issued certificate, or
	// plaintext for a proxy with certificate files.
	Dial []grpc.DialOption
	// Register, when set, registers the workload the proxy runs beside
	// with the control plane, reports its health and deregisters it when
	// the proxy drains.
	Register *Registration
}

// Registration is the workload a proxy registers (weft-proxy run
// --register). Its name is the node id; its namespace and service account
// are those of the proxy's identity.
type Registration struct {
	// Address is the workload's IP, where peers reach it.
	Address netip.Addr
	Ports   []RegisteredPort
	Labels  map[string]string
	// InboundPort is the port of the proxy's inbound listener in explicit
	// mode, through which peers call the workload; 0: transparent mode.
	InboundPort uint16
	// Health checks the application on the ports (on 127.0.0.1, where the
	// proxy reaches it); kind none reports no health (the workload counts
	// as healthy).
	Health health.Spec
	// HealthInterval is the time between checks; zero means
	// health.DefaultInterval.
	HealthInterval time.Duration
}

// RegisteredPort is one port of a registered workload.
type RegisteredPort struct {
	// Name is optional (IANA service name); a Service's named targetPort
	// resolves to it.
	Name string
	Port uint16
	// Protocol is http1, http2, grpc or opaque; "" detects.
	Protocol string
}

// deregisterTimeout bounds the deregister of a draining proxy: the control
// plane removes a workload that did not deregister after its grace period
// anyway.
const deregisterTimeout = 2 * time.Second

func (r *Registration) proto() *discoveryv1.WorkloadRegistration {
	out := &discoveryv1.WorkloadRegistration{Address: r.Address.String(), Labels: r.Labels, ProxyInboundPort: uint32(r.InboundPort)}
	for _, p := range r.Ports {
		out.Ports = append(out.Ports, &discoveryv1.WorkloadPort{Name: p.Name, Port: uint32(p.Port), Protocol: p.Protocol})
	}
	return out
}

// issued reports whether the proxy's certificate is issued by the control
// plane.
func (cp *ControlPlane) issued() bool { return cp.JoinTokenFile != "" || cp.TokenFile != "" }

// runWithControlPlane runs the proxy with its config streamed by the
// control plane. Until the first config arrives, only the admin server
// runs and /ready says what the proxy waits for; a rejected config is
// reported back and the running one stays.
func runWithControlPlane(ctx context.Context, opts Options) error {
	cp := opts.ControlPlane
	data, err := os.ReadFile(opts.ConfigPath)
	if err != nil {
		return fmt.Errorf("reading the bootstrap config: %w", err)
	}
	boot, err := config.Parse(data)
	if err != nil {
		return fmt.Errorf("bootstrap config %s: %w", opts.ConfigPath, err)
	}
	adminAddr := boot.GetAdmin().GetAddress()
	if adminAddr == "" {
		adminAddr = config.DefaultAdminAddress
	}
	p := newProxy(opts)
	p.up = httpproxy.NewUpstreams(p.connectTimeout, p.tls.Load)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	adminErr := make(chan error, 1)
	bootTLS := boot.GetTls()
	var src *tlsid.Source
	switch {
	case cp.issued() && bootTLS != nil:
		return fmt.Errorf("bootstrap config %s: a tls section and a proof of identity (--join-token-file or --token-file) both give the proxy a certificate; keep one", opts.ConfigPath)
	case cp.issued():
		r, err := newRenewer(cp, p)
		if err != nil {
			return err
		}
		p.renewer = r
		// The admin server first: /ready says why while the certificate is
		// on its way.
		if err := p.startAdmin(runCtx, &wg, adminAddr, adminErr); err != nil {
			return err
		}
		p.log.Info("getting the proxy's certificate from the control plane", "control_plane", cp.Address)
		if src, err = r.Obtain(runCtx); err != nil {
			cancel()
			wg.Wait()
			p.bg.Wait()
			if ctx.Err() != nil {
				return nil // stopped while waiting
			}
			return fmt.Errorf("getting the proxy's certificate: %w", err)
		}
		p.tls.Store(src)
		wg.Go(func() { r.Run(runCtx) })
		bootTLS = &weftv1.TLS{Issued: true}
	case bootTLS == nil:
		return fmt.Errorf("bootstrap config %s: the proxy has no identity: with --control-plane, pass --join-token-file (universal mode) or --token-file (Kubernetes) with --trust-bundle, or name certificate files in a tls section", opts.ConfigPath)
	default:
		src, err = tlsid.Load(tlsid.Files{CertFile: bootTLS.GetCertFile(), KeyFile: bootTLS.GetKeyFile(), TrustBundleFile: bootTLS.GetTrustBundleFile()})
		if err != nil {
			return fmt.Errorf("loading the proxy's certificate: %w", err)
		}
		p.tls.Store(src)
		if err := p.startAdmin(runCtx, &wg, adminAddr, adminErr); err != nil {
			return err
		}
		p.startTLSWatch(runCtx, src)
	}

	dial := cp.Dial
	switch {
	case dial != nil:
	case p.renewer != nil:
		dial = []grpc.DialOption{grpc.WithTransportCredentials(p.renewer.Credentials())}
	default:
		dial = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	var readyOnce sync.Once
	apply := func(ctx context.Context, in *weftv1.ProxyConfig, version string) error {
		cfg := proto.Clone(in).(*weftv1.ProxyConfig)
		// Local settings are the proxy's own: its certificate files and the
		// admin address its server already listens on.
		cfg.Tls = bootTLS
		cfg.Admin = &weftv1.Admin{Address: adminAddr}
		c, err := config.Compile(cfg)
		if err != nil {
			p.metrics.ConfigRejected()
			return err
		}
		if err := p.apply(runCtx, c); err != nil {
			p.metrics.ConfigRejected()
			return err
		}
		p.log.Info("config from the control plane applied", "version", version)
		readyOnce.Do(func() {
			if opts.Ready != nil {
				opts.Ready <- adminAddr
			}
		})
		return nil
	}
	var trust func([][]byte, string)
	if r := p.renewer; r != nil {
		trust = func(anchors [][]byte, issuer string) {
			if err := r.SetAnchors(anchors); err != nil {
				p.log.Error("trust anchors from the control plane refused; keeping the current ones", "error", err)
			}
			r.IssuerChanged(issuer)
		}
	}
	client, err := configclient.New(configclient.Options{
		Address: cp.Address,
		Dial:    dial,
		Node: &discoveryv1.Node{
			Identity:        src.ID().String(),
			Id:              cp.NodeID,
			Namespace:       namespaceOf(src.ID().Path()),
			ProxyVersion:    version.String(),
			WatchedServices: cp.Watch,
			Tls:             bootTLS,
			AdminAddress:    adminAddr,
			ExplicitBase:    uint32(cp.ExplicitBase),
			Registration:    registrationOf(cp),
		},
		Apply:  apply,
		Trust:  trust,
		Logger: p.log,
	})
	if err != nil {
		cancel()
		wg.Wait()
		p.bg.Wait()
		return fmt.Errorf("--control-plane: %w", err)
	}
	clientCtx, stop := runCtx, cancel
	if reg := cp.Register; reg != nil {
		// The stream outlives the stop signal until the drain has begun: it
		// carries the deregister.
		var stopClient context.CancelFunc
		clientCtx, stopClient = context.WithCancel(context.WithoutCancel(ctx))
		defer stopClient()
		stop = func() { cancel(); stopClient() }
		if err := p.checkHealth(runCtx, &wg, reg, client); err != nil {
			stop()
			wg.Wait()
			p.bg.Wait()
			return err
		}
		wg.Go(func() { p.deregisterOnStop(ctx, clientCtx, client) })
	}
	wg.Go(func() {
		if err := client.Run(clientCtx); err != nil && !errors.Is(err, context.Canceled) {
			p.log.Error("control plane client stopped", "error", err)
		}
	})
	p.log.Info("proxy started; waiting for config", "control_plane", cp.Address, "identity", p.identity(), "admin", adminAddr,
		"registering", cp.Register != nil)

	p.serveUntilStopped(ctx, adminErr, stop, &wg)
	return nil
}

func registrationOf(cp *ControlPlane) *discoveryv1.WorkloadRegistration {
	if cp.Register == nil {
		return nil
	}
	return cp.Register.proto()
}

// checkHealth starts the checks of a registered workload's application,
// each change reported to the control plane, and waits for the first
// result, so that the first message of the stream carries it.
func (p *Proxy) checkHealth(ctx context.Context, wg *sync.WaitGroup, reg *Registration, client *configclient.Client) error {
	if reg.Health.Kind == health.KindNone || reg.Health.Kind == "" {
		return nil
	}
	ports := make([]uint16, len(reg.Ports))
	for i, rp := range reg.Ports {
		ports[i] = rp.Port
	}
	first := make(chan struct{})
	var once sync.Once
	c, err := health.New(health.Options{
		Spec:     reg.Health,
		Host:     config.DefaultAppHost,
		Ports:    ports,
		Interval: reg.HealthInterval,
		Logger:   p.log,
		OnChange: func(s health.Status) {
			h := discoveryv1.Health_HEALTH_UNHEALTHY
			if s.Healthy {
				h = discoveryv1.Health_HEALTH_HEALTHY
			}
			client.SetHealth(h, s.Detail)
			once.Do(func() { close(first) })
		},
	})
	if err != nil {
		return fmt.Errorf("--health-check: %w", err)
	}
	wg.Go(func() { c.Run(ctx) })
	select {
	case <-first:
	case <-ctx.Done():
	}
	return nil
}

// deregisterOnStop deregisters the workload as soon as the proxy is told to
// stop (signal or POST /shutdown), while it drains. Best effort, bounded by
// deregisterTimeout.
func (p *Proxy) deregisterOnStop(ctx, clientCtx context.Context, client *configclient.Client) {
	select {
	case <-ctx.Done():
	case <-p.stop:
	case <-clientCtx.Done():
		return // stopped for another reason, after the drain
	}
	dctx, cancel := context.WithTimeout(clientCtx, deregisterTimeout)
	defer cancel()
	if err := client.Deregister(dctx); err != nil {
		p.log.Warn("could not deregister the workload; the control plane removes it after its grace period", "error", err)
		return
	}
	p.log.Info("workload deregistered from the control plane")
}

// newRenewer makes the client of the Identity API.
func newRenewer(cp *ControlPlane, p *Proxy) (*renew.Client, error) {
	if cp.TrustBundleFile == "" {
		return nil, errors.New("--trust-bundle is required with a proof of identity: the mesh's trust anchor(s), to verify the control plane (anchor.crt in its data directory)")
	}
	pemBytes, err := os.ReadFile(cp.TrustBundleFile)
	if err != nil {
		return nil, fmt.Errorf("--trust-bundle: %w", err)
	}
	anchors, err := tlsid.ParseCertificates(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("--trust-bundle %s: %w", cp.TrustBundleFile, err)
	}
	o := renew.Options{
		Address:     cp.Address,
		Anchors:     anchors,
		TrustDomain: cp.TrustDomain,
		TokenFile:   cp.TokenFile,
		Registerer:  p.metrics.Registry,
		Logger:      p.log,
		Now:         cp.Now,
		After:       cp.After,
		// Pooled mTLS connections to peers close, so no request rides a
		// connection opened with a certificate that has since expired.
		OnExpire: func() { p.up.Retain(func(httpproxy.PeerKey) bool { return false }) },
	}
	if cp.JoinTokenFile != "" {
		b, err := os.ReadFile(cp.JoinTokenFile)
		if err != nil {
			return nil, fmt.Errorf("--join-token-file: %w", err)
		}
		o.JoinToken = strings.TrimSpace(string(b))
		if o.JoinToken == "" {
			return nil, fmt.Errorf("--join-token-file %s is empty; write the token from `weft token create` into it", cp.JoinTokenFile)
		}
	}
	return renew.New(o)
}

// namespaceOf reads the namespace of a /ns/<namespace>/sa/<sa> SPIFFE path.
func namespaceOf(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) == 4 && segs[0] == "ns" {
		return segs[1]
	}
	return ""
}
