package cli

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/internal/control/ca"
)

// caCmd is `weft ca`: rotation of the trust anchor and the issuer.
func caCmd() *cobra.Command {
	var dataDir string
	c := &cobra.Command{
		Use:   "ca",
		Short: "Rotate the mesh's trust anchor and issuer with no failed request",
		Long: `Rotate the certificate authority of the control plane's data directory. A running control plane picks
each step up within seconds and pushes it to every proxy.

Anchor rotation, with no failed request:
  1. weft ca add-anchor        a new anchor joins the trust bundle; every proxy trusts old and new
  2. weft ca rotate-issuer     a new issuer signed by the new anchor; proxies re-issue (spread over seconds)
  3. weft ca remove-anchor FP  once weft check shows no issuer depending on the old anchor

rotate-issuer alone renews the issuer before it expires. weft check shows every anchor and issuer.`,
	}
	c.PersistentFlags().StringVar(&dataDir, "data-dir", defaultDataDir, "the control plane's data directory")
	caDir := func() string { return filepath.Join(dataDir, "ca") }
	c.AddCommand(&cobra.Command{
		Use:   "add-anchor",
		Short: "Generate a new trust anchor, add it to the bundle and make it sign the next issuer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fp, err := ca.AddAnchor(caDir(), ca.Options{})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "trust anchor %s added; next: `weft ca rotate-issuer` once proxies have the new bundle (seconds)\n", fp[:16])
			return nil
		},
	}, &cobra.Command{
		Use:   "rotate-issuer",
		Short: "Replace the issuer with a new one signed by the current anchor; proxies re-issue their certificates",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fp, err := ca.RotateIssuer(caDir(), ca.Options{})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "issuer %s in place; proxies renew their certificates within seconds\n", fp[:16])
			return nil
		},
	}, &cobra.Command{
		Use:   "remove-anchor FINGERPRINT",
		Short: "Remove an old trust anchor from the bundle (fingerprint prefix from `weft check`)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := ca.RemoveAnchor(caDir(), args[0], ca.Options{}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "trust anchor %s removed from the bundle\n", args[0])
			return nil
		},
	})
	return c
}
