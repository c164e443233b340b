package sidecar

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/configclient"
	"github.com/weft-mesh/weft/internal/proxy/httpproxy"
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
	// Dial options; default plaintext (mTLS to the control plane comes with
	// certificate issuance).
	Dial []grpc.DialOption
}

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
	if boot.GetTls() == nil {
		return fmt.Errorf("bootstrap config %s: the tls section is required with --control-plane: it names the proxy's certificate, which is its identity", opts.ConfigPath)
	}
	src, err := tlsid.Load(tlsid.Files{CertFile: boot.GetTls().GetCertFile(), KeyFile: boot.GetTls().GetKeyFile(), TrustBundleFile: boot.GetTls().GetTrustBundleFile()})
	if err != nil {
		return fmt.Errorf("loading the proxy's certificate: %w", err)
	}
	adminAddr := boot.GetAdmin().GetAddress()
	if adminAddr == "" {
		adminAddr = config.DefaultAdminAddress
	}

	p := newProxy(opts)
	p.tls.Store(src)
	p.up = httpproxy.NewUpstreams(p.connectTimeout, p.tls.Load)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	adminErr := make(chan error, 1)
	if err := p.startAdmin(runCtx, &wg, adminAddr, adminErr); err != nil {
		return err
	}
	p.startTLSWatch(runCtx, src)

	dial := cp.Dial
	if dial == nil {
		dial = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	var readyOnce sync.Once
	apply := func(ctx context.Context, in *weftv1.ProxyConfig, version string) error {
		cfg := proto.Clone(in).(*weftv1.ProxyConfig)
		// Local settings are the proxy's own: its certificate files and the
		// admin address its server already listens on.
		cfg.Tls = boot.GetTls()
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
	client, err := configclient.New(configclient.Options{
		Address: cp.Address,
		Dial:    dial,
		Node: &discoveryv1.Node{
			Identity:        src.ID().String(),
			Id:              cp.NodeID,
			Namespace:       namespaceOf(src.ID().Path()),
			ProxyVersion:    version.String(),
			WatchedServices: cp.Watch,
			Tls:             boot.GetTls(),
			AdminAddress:    adminAddr,
			ExplicitBase:    uint32(cp.ExplicitBase),
		},
		Apply:  apply,
		Logger: p.log,
	})
	if err != nil {
		cancel()
		wg.Wait()
		p.bg.Wait()
		return fmt.Errorf("--control-plane: %w", err)
	}
	wg.Go(func() {
		if err := client.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			p.log.Error("control plane client stopped", "error", err)
		}
	})
	p.log.Info("proxy started; waiting for config", "control_plane", cp.Address, "identity", p.identity(), "admin", adminAddr)

	p.serveUntilStopped(ctx, adminErr, cancel, &wg)
	return nil
}

// namespaceOf reads the namespace of a /ns/<namespace>/sa/<sa> SPIFFE path.
func namespaceOf(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) == 4 && segs[0] == "ns" {
		return segs[1]
	}
	return ""
}
