package cli

import (
	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/internal/version"
)

// New returns the weft root command.
func New() *cobra.Command {
	root := &cobra.Command{
		Use:           "weft",
		Short:         "weft: a service mesh with the least latency, memory and configuration",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(version.Command("weft"), controlCmd(), upCmd(), tokenCmd(), caCmd(), checkCmd(), explainCmd(), installCmd(), uninstallCmd(), injectCmd())
	return root
}
