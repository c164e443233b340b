package cli

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/server"
	"github.com/weft-mesh/weft/internal/control/source/file"
	"github.com/weft-mesh/weft/internal/logging"
)

// controlCmd is `weft control`: the control plane in universal mode.
func controlCmd() *cobra.Command {
	var dir, listen, trustDomain, level, format string
	c := &cobra.Command{
		Use:   "control",
		Short: "Run the control plane: read the mesh's resources from --dir and stream each proxy its config",
		Long: `Run the control plane in universal mode (no Kubernetes). The mesh's resources are the
Kubernetes-shaped YAML files in --dir (Services, Workloads, HTTPRoutes, GRPCRoutes, weft policies); changes are
applied live, and a file with an error is reported with its file, line and field while everything else is
served. Proxies connect to --listen (the Discovery gRPC API).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logging.New(cmd.ErrOrStderr(), level, format)
			if err != nil {
				return err
			}
			src, err := file.New(dir, file.Options{Logger: log, TrustDomain: trustDomain})
			if err != nil {
				return fmt.Errorf("--dir: %w", err)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			return server.Run(cmd.Context(), server.Options{Listener: ln, Sources: []model.Source{src}, Logger: log})
		},
	}
	c.Flags().StringVar(&dir, "dir", "weft.d", "directory of the mesh's YAML resources")
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8086", "address of the Discovery API")
	c.Flags().StringVar(&trustDomain, "trust-domain", "", "SPIFFE trust domain of workload identities (default "+file.DefaultTrustDomain+")")
	c.Flags().StringVar(&level, "log-level", "info", "debug, info, warn or error")
	c.Flags().StringVar(&format, "log-format", "text", "json or text")
	return c
}
