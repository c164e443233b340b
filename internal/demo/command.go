package demo

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/internal/logging"
)

// Default listen addresses of the three services.
const (
	DefaultFrontendAddr  = "127.0.0.1:8080"
	DefaultCatalogAddr   = "127.0.0.1:8081"
	DefaultInventoryAddr = "127.0.0.1:8082"
)

// New returns the weft-demo root command with its catalog, inventory and
// frontend subcommands.
func New() *cobra.Command {
	var level, format string
	root := &cobra.Command{
		Use:           "weft-demo",
		Short:         "weft-demo: three services (HTTP/1.1, gRPC, TCP) to show the mesh",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&level, "log-level", "info", `log level: "debug", "info", "warn" or "error"`)
	root.PersistentFlags().StringVar(&format, "log-format", "text", `log format: "text" or "json"`)
	newLog := func(cmd *cobra.Command) (*slog.Logger, error) {
		log, err := logging.New(cmd.ErrOrStderr(), level, format)
		if err != nil {
			return nil, fmt.Errorf("logger: %w", err)
		}
		return log, nil
	}

	catalog := serviceCmd("catalog", "gRPC catalog (grpc.testing.TestService/UnaryCall)", DefaultCatalogAddr, newLog,
		func(ctx context.Context, ln net.Listener, log *slog.Logger) error { return Catalog(ctx, ln, log) })
	inventory := serviceCmd("inventory", `TCP inventory: "STOCK <item>" answers "<item> <n>"`, DefaultInventoryAddr, newLog,
		func(ctx context.Context, ln net.Listener, log *slog.Logger) error { return Inventory(ctx, ln, log) })

	var catalogAddr, inventoryAddr string
	frontend := serviceCmd("frontend", "HTTP/1.1 frontend calling catalog and inventory", DefaultFrontendAddr, newLog,
		func(ctx context.Context, ln net.Listener, log *slog.Logger) error {
			return Frontend(ctx, ln, catalogAddr, inventoryAddr, log)
		})
	frontend.Flags().StringVar(&catalogAddr, "catalog", DefaultCatalogAddr, "catalog gRPC address (e.g. the local weft-proxy's listener)")
	frontend.Flags().StringVar(&inventoryAddr, "inventory", DefaultInventoryAddr, "inventory TCP address (e.g. the local weft-proxy's listener)")

	root.AddCommand(catalog, inventory, frontend)
	return root
}

type serveFunc func(ctx context.Context, ln net.Listener, log *slog.Logger) error

func serviceCmd(name, short, defaultAddr string, newLog func(*cobra.Command) (*slog.Logger, error), serve serveFunc) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLog(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var lc net.ListenConfig
			ln, err := lc.Listen(ctx, "tcp", addr)
			if err != nil {
				return fmt.Errorf("%s: listen: %w", name, err)
			}
			return serve(ctx, ln, log)
		},
	}
	cmd.Flags().StringVar(&addr, "listen", defaultAddr, "address to listen on")
	return cmd
}
