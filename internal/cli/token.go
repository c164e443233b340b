package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/control/jointoken"
)

// tokenCmd is `weft token`: the join tokens of universal mode.
func tokenCmd() *cobra.Command {
	var dataDir string
	c := &cobra.Command{
		Use:   "token",
		Short: "Manage join tokens: how a proxy on a VM or laptop proves its identity to get its first certificate",
	}
	c.PersistentFlags().StringVar(&dataDir, "data-dir", defaultDataDir, "the control plane's data directory")

	var idStr, ns, sa string
	var ttl time.Duration
	var reusable bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a join token bound to one workload identity; prints the token",
		Long: `Create a join token bound to one workload identity and print it. Give it to the workload's proxy
(weft-proxy run --control-plane ... --join-token-file FILE --trust-bundle <data-dir>/ca/anchor.crt), which
presents it once to get its first certificate and renews over mTLS afterwards. Tokens are single-use unless
--reusable (for autoscaled VMs from one image); only their hash is stored.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := tokenIdentity(dataDir, idStr, ns, sa)
			if err != nil {
				return err
			}
			if td, err := ca.TrustDomainOf(filepath.Join(dataDir, "ca")); err == nil && id.TrustDomain() != td {
				return fmt.Errorf("--identity %s is not in this mesh's trust domain %s; the control plane would refuse the token", id, td.Name())
			}
			store, err := jointoken.Open(dataDir, nil)
			if err != nil {
				return err
			}
			tok, t, err := store.Create(jointoken.CreateOptions{Identity: id, TTL: ttl, Reusable: reusable})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			use := "single use"
			if reusable {
				use = "reusable"
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "join token %s for %s, %s, expires %s\n", t.ID, t.Identity, use, t.Expires.Local().Format(time.RFC3339))
			return nil
		},
	}
	create.Flags().StringVar(&idStr, "identity", "", "the SPIFFE ID the token proves, e.g. spiffe://weft.local/ns/shop/sa/web")
	create.Flags().StringVarP(&ns, "namespace", "n", "", "namespace of the identity (with --service-account, instead of --identity)")
	create.Flags().StringVar(&sa, "service-account", "", "service account of the identity (with --namespace)")
	create.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token can be redeemed (at most 720h)")
	create.Flags().BoolVar(&reusable, "reusable", false, "allow any number of uses until it expires")

	list := &cobra.Command{
		Use:   "list",
		Short: "List join tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := jointoken.Open(dataDir, nil)
			if err != nil {
				return err
			}
			ts, err := store.List()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tIDENTITY\tUSE\tEXPIRES\tSTATE")
			now := time.Now()
			for _, t := range ts {
				use, state := "reusable", "valid"
				if t.SingleUse {
					use = "single"
				}
				switch {
				case !now.Before(t.Expires):
					state = "expired"
				case t.SingleUse && t.Used != nil:
					state = "used " + t.Used.Local().Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Identity, use, t.Expires.Local().Format(time.RFC3339), state)
			}
			return w.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a join token (the ID from `weft token list`)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := jointoken.Open(dataDir, nil)
			if err != nil {
				return err
			}
			if err := store.Revoke(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "join token %s revoked\n", args[0])
			return nil
		},
	}
	c.AddCommand(create, list, revoke)
	return c
}

// tokenIdentity is the identity of --identity, or of --namespace and
// --service-account in the trust domain of the data directory's CA.
func tokenIdentity(dataDir, idStr, ns, sa string) (spiffeid.ID, error) {
	switch {
	case idStr != "" && (ns != "" || sa != ""):
		return spiffeid.ID{}, errors.New("give either --identity or --namespace with --service-account, not both")
	case idStr != "":
		id, err := spiffeid.FromString(idStr)
		if err != nil {
			return id, fmt.Errorf("--identity %q: %w; e.g. spiffe://weft.local/ns/shop/sa/web", idStr, err)
		}
		return id, nil
	case ns == "" || sa == "":
		return spiffeid.ID{}, errors.New("name the identity: --identity spiffe://<trust-domain>/ns/<ns>/sa/<sa>, or --namespace and --service-account")
	}
	td, err := ca.TrustDomainOf(filepath.Join(dataDir, "ca"))
	if err != nil {
		return spiffeid.ID{}, err
	}
	id, err := spiffeid.FromSegments(td, "ns", ns, "sa", sa)
	if err != nil {
		return id, fmt.Errorf("--namespace %q --service-account %q: %w", ns, sa, err)
	}
	return id, nil
}
