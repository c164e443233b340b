package cli

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// New returns the weft root command.
func New() *cobra.Command {
	root := &cobra.Command{
		Use:           "weft",
		Short:         "weft: a service mesh with the least latency, memory and configuration",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(versionCmd())
	return root
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the build version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			v := "(devel)"
			if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
				v = bi.Main.Version
			}
			fmt.Fprintln(cmd.OutOrStdout(), "weft", v)
		},
	}
}
