package cli

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/control/identity"
	"github.com/weft-mesh/weft/internal/control/jointoken"
	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/registry"
	"github.com/weft-mesh/weft/internal/control/server"
	"github.com/weft-mesh/weft/internal/control/source/file"
	"github.com/weft-mesh/weft/internal/control/translate"
	"github.com/weft-mesh/weft/internal/logging"
)

// defaultDataDir is where weft control, weft up and the commands that share
// their state (weft token, weft ca, weft check) keep it.
const defaultDataDir = ".weft"

// identityOptions opens the CA and the join tokens of a data directory.
func identityOptions(dataDir, trustDomain string, lifetime time.Duration, log *slog.Logger) (*identity.Options, error) {
	auth, err := identity.OpenAuthority(filepath.Join(dataDir, "ca"), ca.Options{TrustDomain: trustDomain}, log)
	if err != nil {
		return nil, fmt.Errorf("--data-dir: certificate authority: %w", err)
	}
	tokens, err := jointoken.Open(dataDir, nil)
	if err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	return &identity.Options{Authority: auth, Tokens: tokens, Lifetime: lifetime, Logger: log}, nil
}

// controlCmd is `weft control`: the control plane in universal mode.
func controlCmd() *cobra.Command {
	var dir, dataDir, listen, trustDomain, level, format string
	var mesh translate.Mesh
	var lifetime, grace time.Duration
	c := &cobra.Command{
		Use:   "control",
		Short: "Run the control plane: read the mesh's resources from --dir and stream each proxy its config",
		Long: `Run the control plane in universal mode (no Kubernetes). The mesh's resources are the
Kubernetes-shaped YAML files in --dir (Services, Workloads, HTTPRoutes, GRPCRoutes, weft policies); changes are
applied live, and a file with an error is reported with its file, line and field while everything else is
served. Proxies connect to --listen: the Identity API (certificates against a join token or ServiceAccount
token) and the Discovery API, over TLS with the control plane's own certificate. The certificate authority
(generated on first start), join tokens and other state live in --data-dir.`,
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
			src, err := file.New(dir, file.Options{Logger: log, TrustDomain: trustDomain})
			if err != nil {
				return fmt.Errorf("--dir: %w", err)
			}
			id, err := identityOptions(dataDir, trustDomain, lifetime, log)
			if err != nil {
				return err
			}
			reg, err := registry.New(registry.Options{DataDir: dataDir, Grace: grace, Logger: log})
			if err != nil {
				return fmt.Errorf("--data-dir: %w", err)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			return server.Run(cmd.Context(), server.Options{Listener: ln, Sources: []model.Source{src}, Logger: log, Identity: id, Mesh: mesh, Registry: reg})
		},
	}
	c.Flags().StringVar(&dir, "dir", "weft.d", "directory of the mesh's YAML resources")
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8086", "address of the control plane's gRPC API (Identity and Discovery, TLS)")
	c.Flags().StringVar(&dataDir, "data-dir", defaultDataDir, "the control plane's state: CA in <data-dir>/ca, join tokens, registered workloads")
	c.Flags().DurationVar(&grace, "registration-grace", registry.DefaultGrace, "how long a workload registered by its proxy (weft-proxy run --register) stays, not ready, after the proxy vanished without deregistering, and how long a restarted control plane waits for the proxies of the registrations it kept")
	c.Flags().DurationVar(&lifetime, "cert-lifetime", identity.DefaultLifetime, "lifetime of the workload certificates it issues (renewed at about 70%)")
	c.Flags().StringVar(&trustDomain, "trust-domain", "", "SPIFFE trust domain of workload identities (default "+file.DefaultTrustDomain+")")
	c.Flags().StringVar(&mesh.RootNamespace, "root-namespace", translate.DefaultRootNamespace, "namespace whose AuthorizationPolicy and MutualTLSPolicy without targetRefs apply to the whole mesh")
	c.Flags().StringVar(&mesh.DefaultInboundPolicy, "default-inbound-policy", model.DefaultInboundAllowAll, "who may call a workload no authorization policy covers: "+strings.Join(model.DefaultInboundPolicies(), ", ")+" (namespaces and workloads override it with the weft.dev/default-inbound-policy annotation)")
	c.Flags().StringVar(&level, "log-level", "info", "debug, info, warn or error")
	c.Flags().StringVar(&format, "log-format", "text", "json or text")
	return c
}
