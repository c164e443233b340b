package cli

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/weft-mesh/weft/internal/control/attest/kubetoken"
	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/control/identity"
	"github.com/weft-mesh/weft/internal/control/inject"
	"github.com/weft-mesh/weft/internal/control/jointoken"
	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/registry"
	"github.com/weft-mesh/weft/internal/control/server"
	"github.com/weft-mesh/weft/internal/control/source/file"
	"github.com/weft-mesh/weft/internal/control/source/kube"
	"github.com/weft-mesh/weft/internal/control/translate"
	"github.com/weft-mesh/weft/internal/control/webhookca"
	"github.com/weft-mesh/weft/internal/install"
	"github.com/weft-mesh/weft/internal/logging"
)

// defaultDataDir is where weft control, weft up and the commands that share
// their state (weft token, weft ca, weft check) keep it.
const defaultDataDir = ".weft"

// Defaults of weft control on Kubernetes.
const (
	// defaultNamespace is the control plane's namespace when neither
	// --namespace nor POD_NAMESPACE says.
	defaultNamespace = "weft-system"
	// defaultLease names the leader-election Lease (the install's RBAC
	// grants that one name).
	defaultLease = "weft-control"
	// defaultAudience is the audience of the projected ServiceAccount
	// tokens proxies prove their identity with.
	defaultAudience = "weft"
)

// identityOptions opens the CA (in caDir; empty: <data-dir>/ca) and the
// join tokens of a data directory.
func identityOptions(dataDir, caDir, trustDomain string, lifetime time.Duration, log *slog.Logger) (*identity.Options, error) {
	flag := "--ca-dir"
	if caDir == "" {
		caDir, flag = filepath.Join(dataDir, "ca"), "--data-dir"
	}
	auth, err := identity.OpenAuthority(caDir, ca.Options{TrustDomain: trustDomain}, log)
	if err != nil {
		return nil, fmt.Errorf("%s: certificate authority: %w", flag, err)
	}
	tokens, err := jointoken.Open(dataDir, nil)
	if err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	return &identity.Options{Authority: auth, Tokens: tokens, Lifetime: lifetime, Logger: log}, nil
}

// kubeFlags are weft control's Kubernetes settings.
type kubeFlags struct {
	enabled     bool
	kubeconfig  string
	namespace   string
	audience    string
	leaderElect bool
	lease       string
	resync      time.Duration
	// webhookListen is the address of the injection webhook (HTTPS);
	// empty: not served.
	webhookListen string
}

// kubeParts are what --kubernetes builds: the source, the verifier of
// ServiceAccount tokens, a client and the control plane's namespace.
type kubeParts struct {
	src      *kube.Source
	verifier *kubetoken.Verifier
	cs       kubernetes.Interface
	ns       string
}

// kubeConfig is the API client configuration: --kubeconfig, else
// $KUBECONFIG or ~/.kube/config, else the pod's in-cluster configuration.
func kubeConfig(path string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig: the Kubernetes API's address and credentials (from --kubeconfig, $KUBECONFIG, ~/.kube/config or the pod's ServiceAccount): %w", err)
	}
	return cfg, nil
}

// replicaID names this replica in leader election: $POD_NAME, else the
// host name with a random suffix.
func replicaID() string {
	if n := os.Getenv("POD_NAME"); n != "" {
		return n
	}
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return cmp.Or(host, "weft-control") + "-" + hex.EncodeToString(b)
}

// kubeSource builds the Kubernetes source and the TokenReview verifier of
// proxies' ServiceAccount tokens.
func (k kubeFlags) kubeSource(mesh translate.Mesh, trustDomain string, log *slog.Logger) (*kubeParts, error) {
	cfg, err := kubeConfig(k.kubeconfig)
	if err != nil {
		return nil, err
	}
	// client-go's own logs (warnings of the API server, ...) go to the
	// control plane's logger.
	klog.SetSlogLogger(log)
	ns := cmp.Or(k.namespace, os.Getenv("POD_NAMESPACE"), defaultNamespace)
	var le *kube.LeaderElection
	if k.leaderElect {
		le = &kube.LeaderElection{Namespace: ns, Name: k.lease, Identity: replicaID()}
	}
	src, err := kube.New(kube.Options{Config: cfg, Logger: log, TrustDomain: trustDomain, Resync: k.resync, Mesh: mesh, LeaderElection: le})
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("a Kubernetes client: %w", err)
	}
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return nil, fmt.Errorf("--trust-domain %q: %w", trustDomain, err)
	}
	v, err := kubetoken.New(cs.AuthenticationV1(), td, k.audience)
	if err != nil {
		return nil, fmt.Errorf("--token-audience: %w", err)
	}
	return &kubeParts{src: src, verifier: v, cs: cs, ns: ns}, nil
}

// webhookDNSNames are the names the API server dials the injection webhook
// by: the control plane's Service in its namespace.
func webhookDNSNames(ns string) []string {
	svc := install.ControlPlaneName + "." + ns + ".svc"
	return []string{svc, svc + ".cluster.local"}
}

// serveWebhook serves the injection webhook (inject.Path) on ln over tls
// until ctx ends.
func serveWebhook(ctx context.Context, ln net.Listener, tlsCfg *tls.Config, k *kubeParts, log *slog.Logger) error {
	opts := inject.Options{ProxyImage: os.Getenv("WEFT_PROXY_IMAGE"), ControlPlaneNamespace: k.ns}
	mux := http.NewServeMux()
	mux.Handle(inject.Path, inject.NewHandler(opts, inject.NamespacesFromClient(k.cs.CoreV1()), log.With("component", "inject")))
	srv := &http.Server{Handler: mux, TLSConfig: tlsCfg, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	log.Info("injection webhook serving", "address", ln.Addr().String(), "path", inject.Path)
	if err := serveUntilDone(ctx, srv, func() error { return srv.ServeTLS(ln, "", "") }); err != nil {
		return fmt.Errorf("--webhook-listen: %w", err)
	}
	return nil
}

// serveUntilDone runs serve until ctx ends, then shuts srv down (5 s for
// requests in flight); an error of serve ends it early.
func serveUntilDone(ctx context.Context, srv *http.Server, serve func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// controlCmd is `weft control`: the control plane, in universal mode or on
// Kubernetes.
func controlCmd() *cobra.Command {
	var dir, dataDir, caDir, listen, adminListen, trustDomain, level, format string
	var mesh translate.Mesh
	var lifetime, grace time.Duration
	var k kubeFlags
	c := &cobra.Command{
		Use:   "control",
		Short: "Run the control plane: read the mesh's resources and stream each proxy its config",
		Long: `Run the control plane. In universal mode (no Kubernetes) the mesh's resources are the
Kubernetes-shaped YAML files in --dir (Services, Workloads, HTTPRoutes, GRPCRoutes, weft policies); changes are
applied live, and a file with an error is reported with its file, line and field while everything else is
served. With --kubernetes they are read from the Kubernetes API instead (Services, EndpointSlices, Pods,
Namespaces, Gateway API routes, weft's CRDs), --dir adding files beside them when given, and the status
conditions of routes and policies are written back by the replica that holds the leader-election Lease.
Proxies connect to --listen: the Identity API (certificates against a join token, or on Kubernetes the pod's
projected ServiceAccount token) and the Discovery API, over TLS with the control plane's own certificate. The
certificate authority (--ca-dir: generated on first start, or supplied in cert-manager's layout), join tokens
and other state live in --data-dir.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logging.New(cmd.ErrOrStderr(), level, format)
			if err != nil {
				return err
			}
			if err := mesh.Validate(); err != nil {
				return err
			}
			if trustDomain == "" {
				trustDomain = file.DefaultTrustDomain
			}
			var sources []model.Source
			var kp *kubeParts
			var kubeSrc *kube.Source
			if k.enabled {
				if kp, err = k.kubeSource(mesh, trustDomain, log); err != nil {
					return err
				}
				kubeSrc = kp.src
				sources = append(sources, kubeSrc)
			}
			if !k.enabled || cmd.Flags().Changed("dir") {
				src, err := file.New(dir, file.Options{Logger: log, TrustDomain: trustDomain})
				if err != nil {
					return fmt.Errorf("--dir: %w", err)
				}
				sources = append(sources, src)
			}
			id, err := identityOptions(dataDir, caDir, trustDomain, lifetime, log)
			if err != nil {
				return err
			}
			if kp != nil {
				id.Kube = kp.verifier
			}
			reg, err := registry.New(registry.Options{DataDir: dataDir, Grace: grace, Logger: log})
			if err != nil {
				return fmt.Errorf("--data-dir: %w", err)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			ready := make(chan struct{})
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			adminDone := make(chan error, 1)
			if adminListen != "" {
				aln, err := net.Listen("tcp", adminListen)
				if err != nil {
					ln.Close()
					return fmt.Errorf("--admin-listen %s: %w", adminListen, err)
				}
				go func() { adminDone <- serveAdmin(ctx, aln, ready, kubeSrc) }()
			} else {
				adminDone <- nil
			}
			var wg sync.WaitGroup
			var webhookErr error
			if kp != nil {
				if k.webhookListen != "" {
					wln, err := net.Listen("tcp", k.webhookListen)
					if err != nil {
						cancel()
						ln.Close()
						return errors.Join(fmt.Errorf("--webhook-listen %s: %w", k.webhookListen, err), <-adminDone)
					}
					tlsCfg := id.Authority.WebhookTLS(webhookDNSNames(kp.ns), nil)
					wg.Go(func() {
						if webhookErr = serveWebhook(ctx, wln, tlsCfg, kp, log); webhookErr != nil {
							cancel()
						}
					})
				}
				// The leader keeps the webhook's caBundle and the pods'
				// anchors ConfigMaps equal to the anchors server.Run reloads.
				wg.Go(func() {
					_ = webhookca.Run(ctx, webhookca.Options{
						Client:  kp.cs,
						Anchors: func() []*x509.Certificate { return id.Authority.Current().Anchors() },
						Leading: kp.src.Leading,
						Logger:  log.With("component", "webhookca"),
					})
				})
			}
			err = server.Run(ctx, server.Options{Listener: ln, Sources: sources, Logger: log, Identity: id, Mesh: mesh, Registry: reg, Ready: ready})
			cancel()
			wg.Wait()
			return errors.Join(err, webhookErr, <-adminDone)
		},
	}
	c.Flags().StringVar(&dir, "dir", "weft.d", "directory of the mesh's YAML resources (with --kubernetes: only when given, read beside the cluster's)")
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8086", "address of the control plane's gRPC API (Identity and Discovery, TLS)")
	c.Flags().StringVar(&adminListen, "admin-listen", "", "address of a plain HTTP endpoint for probes: /live, and /ready once the API is served and (--kubernetes) the cluster's resources are loaded; empty: none")
	c.Flags().StringVar(&dataDir, "data-dir", defaultDataDir, "the control plane's state: CA in <data-dir>/ca unless --ca-dir, join tokens, registered workloads")
	c.Flags().StringVar(&caDir, "ca-dir", "", "the certificate authority's directory (default <data-dir>/ca): generated there on first start, or supplied in cert-manager's layout (tls.crt, tls.key, ca.crt: a mounted Secret)")
	c.Flags().DurationVar(&grace, "registration-grace", registry.DefaultGrace, "how long a workload registered by its proxy (weft-proxy run --register) stays, not ready, after the proxy vanished without deregistering, and how long a restarted control plane waits for the proxies of the registrations it kept")
	c.Flags().DurationVar(&lifetime, "cert-lifetime", identity.DefaultLifetime, "lifetime of the workload certificates it issues (renewed at about 70%)")
	c.Flags().StringVar(&trustDomain, "trust-domain", "", "SPIFFE trust domain of workload identities (default "+file.DefaultTrustDomain+")")
	c.Flags().StringVar(&mesh.RootNamespace, "root-namespace", translate.DefaultRootNamespace, "namespace whose AuthorizationPolicy and MutualTLSPolicy without targetRefs apply to the whole mesh")
	c.Flags().StringVar(&mesh.DefaultInboundPolicy, "default-inbound-policy", model.DefaultInboundAllowAll, "who may call a workload no authorization policy covers: "+strings.Join(model.DefaultInboundPolicies(), ", ")+" (namespaces and workloads override it with the weft.dev/default-inbound-policy annotation)")
	c.Flags().BoolVar(&k.enabled, "kubernetes", false, "read the mesh from the Kubernetes API (in-cluster, or --kubeconfig) and accept pods' projected ServiceAccount tokens as proof of identity")
	c.Flags().StringVar(&k.kubeconfig, "kubeconfig", "", "kubeconfig file for --kubernetes (default: $KUBECONFIG, ~/.kube/config, else the pod's in-cluster configuration)")
	c.Flags().StringVar(&k.audience, "token-audience", defaultAudience, "audience of the projected ServiceAccount tokens proxies present (checked with TokenReview)")
	c.Flags().StringVar(&k.namespace, "namespace", "", "the control plane's namespace, where its leader-election Lease is (default: $POD_NAMESPACE, else "+defaultNamespace+")")
	c.Flags().BoolVar(&k.leaderElect, "leader-elect", true, "with --kubernetes: elect one replica (Lease --lease-name) to write status conditions; every replica serves proxies. false: this one writes them")
	c.Flags().StringVar(&k.lease, "lease-name", defaultLease, "name of the leader-election Lease")
	c.Flags().StringVar(&k.webhookListen, "webhook-listen", net.JoinHostPort("0.0.0.0", strconv.Itoa(install.WebhookPort)), "with --kubernetes: address of the sidecar injection webhook (HTTPS, "+inject.Path+", a certificate of the control plane's CA for its Service's DNS names); empty: not served")
	c.Flags().DurationVar(&k.resync, "resync", kube.DefaultResync, "how often every Kubernetes resource is read again from the informers' caches, as a safety net (0: the default; negative: never)")
	c.Flags().StringVar(&level, "log-level", "info", "debug, info, warn or error")
	c.Flags().StringVar(&format, "log-format", "text", "json or text")
	return c
}

// serveAdmin serves /live and /ready on ln until ctx ends. Ready means the
// API is served (ready is closed) and the Kubernetes source, if any, has
// loaded the cluster's resources.
func serveAdmin(ctx context.Context, ln net.Listener, ready <-chan struct{}, src *kube.Source) error {
	isClosed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /live", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case !isClosed(ready):
			http.Error(w, "not ready: the API is not served yet", http.StatusServiceUnavailable)
		case src != nil && !isClosed(src.Synced()):
			http.Error(w, "not ready: the Kubernetes resources are not loaded yet", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ready")
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := serveUntilDone(ctx, srv, func() error { return srv.Serve(ln) }); err != nil {
		return fmt.Errorf("--admin-listen: %w", err)
	}
	return nil
}
