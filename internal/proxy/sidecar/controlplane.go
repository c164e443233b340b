package sidecar

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
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
	wg.Go(func() {
		if err := client.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			p.log.Error("control plane client stopped", "error", err)
		}
	})
	p.log.Info("proxy started; waiting for config", "control_plane", cp.Address, "identity", p.identity(), "admin", adminAddr)

	p.serveUntilStopped(ctx, adminErr, cancel, &wg)
	return nil
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
	anchors, err := parsePEMCertificates(pemBytes)
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

func parsePEMCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no CERTIFICATE PEM block found; it must hold the mesh's trust anchor certificate(s)")
	}
	return out, nil
}

// namespaceOf reads the namespace of a /ns/<namespace>/sa/<sa> SPIFFE path.
func namespaceOf(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) == 4 && segs[0] == "ns" {
		return segs[1]
	}
	return ""
}
