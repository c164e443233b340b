package cli

import (
	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/internal/logging"
	"github.com/weft-mesh/weft/internal/up"
)

// upCmd is `weft up`: the whole mesh and a demo on this machine.
func upCmd() *cobra.Command {
	var o up.Options
	var level, specFile string
	c := &cobra.Command{
		Use:   "up",
		Short: "Run the mesh on this machine: control plane, a demo of three services (or your own, -f) with their proxies, mTLS",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logging.New(cmd.ErrOrStderr(), level, "text")
			if err != nil {
				return err
			}
			o.Logger = log
			o.Out = cmd.OutOrStdout()
			if specFile != "" {
				if o.Spec, err = up.LoadSpec(specFile); err != nil {
					return err
				}
			}
			return up.Run(cmd.Context(), o)
		},
	}
	c.Flags().StringVar(&o.DataDir, "data-dir", ".weft", "where the CA, join tokens, mesh resources and logs are kept (reused by the next run)")
	c.Flags().StringVar(&o.BinDir, "bin-dir", "", "directory of weft-proxy and weft-demo (default: beside weft)")
	c.Flags().StringVarP(&specFile, "file", "f", "", "your own services instead of the demo: each a command, its port and protocol, and the services it calls (see docs/universal-mode.md)")
	c.Flags().StringVar(&level, "log-level", "warn", "debug, info, warn or error")
	return c
}
