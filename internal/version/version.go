// Package version reports the build version of weft's binaries and gives
// each of them its `version` command.
package version

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// String is the module version the binary was built from, or "(devel)".
func String() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// Command is the `version` command of the named binary.
func Command(binary string) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the build version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), binary, String())
		},
	}
}
