package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weft-mesh/weft/internal/check"
	"github.com/weft-mesh/weft/internal/control/ca"
)

// checkCmd is `weft check`: what will break, and when, before it does.
func checkCmd() *cobra.Command {
	var (
		dataDir, trustDomain        string
		anchorWarn, issuerWarn      time.Duration
		kubeconfig, kubeContext, ns string
		pre                         bool
		output                      string
		timeout                     time.Duration
	)
	c := &cobra.Command{
		Use:   "check",
		Short: "Check a mesh: a Kubernetes install (or, with --pre, that weft can be installed), or the certificate authority of a data directory",
		Long: `Check weft in the Kubernetes cluster of the kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config; --context):
the API server and its version, the control plane's Deployment, pods and Service, the injection webhook (its
caBundle and whether the API server can reach it), weft's CRDs against this binary's, the trust anchors' and
issuer's expiry, and the meshed pods' proxies. One line per check, √ or × (‼: a warning, which does not fail),
with a hint saying how to fix what failed; the exit status is 1 when a check failed.

  weft check          # an installed weft
  weft check --pre    # can weft be installed here? (API server, version, permissions, CRDs)

With --data-dir, or when no cluster is configured, it checks the certificate authority in the control plane's
data directory instead (universal mode): every trust anchor and the issuer, with fingerprint and expiry. It warns
when an anchor expires within --anchor-warning or the issuer within --issuer-warning, with the command that fixes
it, and fails when something has expired.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := cmd.Flags()
			kubeFlags := flags.Changed("kubeconfig") || flags.Changed("context") || pre
			if flags.Changed("data-dir") {
				if kubeFlags || flags.Changed("namespace") {
					return errors.New("--data-dir checks a data directory; --kubeconfig, --context, --namespace and --pre are for a cluster")
				}
				return checkDataDir(cmd, dataDir, trustDomain, anchorWarn, issuerWarn)
			}
			cfg, empty, err := clusterConfig(kubeconfig, kubeContext)
			if empty && !kubeFlags {
				return checkDataDir(cmd, dataDir, trustDomain, anchorWarn, issuerWarn)
			}
			if err != nil {
				return err
			}
			cl, err := check.NewCluster(cfg, ns)
			if err != nil {
				return err
			}
			cl.AnchorWarning, cl.IssuerWarning = anchorWarn, issuerWarn
			checks := cl.PostInstall()
			if pre {
				checks = cl.PreInstall()
			}
			_, err = check.Run(cmd.Context(), cmd.OutOrStdout(), checks, check.Options{Format: output, Timeout: timeout})
			return err
		},
	}
	c.Flags().StringVar(&dataDir, "data-dir", defaultDataDir, "check the certificate authority of this data directory (universal mode)")
	c.Flags().StringVar(&trustDomain, "trust-domain", "", "with --data-dir: the mesh's trust domain (default: read from the trust anchor)")
	c.Flags().DurationVar(&anchorWarn, "anchor-warning", 180*24*time.Hour, "warn when a trust anchor expires within this")
	c.Flags().DurationVar(&issuerWarn, "issuer-warning", 30*24*time.Hour, "warn when the issuer expires within this")
	c.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	c.Flags().StringVar(&kubeContext, "context", "", "kubeconfig context (default: the current context)")
	c.Flags().StringVarP(&ns, "namespace", "n", "", "the control plane's namespace (default weft-system)")
	c.Flags().BoolVar(&pre, "pre", false, "check that weft can be installed into the cluster, instead of an install")
	c.Flags().StringVarP(&output, "output", "o", check.FormatText, fmt.Sprintf("output format of the cluster checks: one of %v", check.Formats()))
	c.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "bound on each cluster check")
	return c
}

// clusterConfig loads the kubeconfig (explicit path, else $KUBECONFIG, else
// ~/.kube/config; else in-cluster). empty reports that no cluster is
// configured at all.
func clusterConfig(path, context string) (_ *rest.Config, empty bool, _ error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, clientcmd.IsEmptyConfig(err), fmt.Errorf("loading the kubeconfig: %w", err)
	}
	return rest.CopyConfig(cfg), false, nil
}

// checkDataDir is the universal-mode check of the CA of a data directory.
func checkDataDir(cmd *cobra.Command, dataDir, trustDomain string, anchorWarn, issuerWarn time.Duration) error {
	a, err := ca.Load(filepath.Join(dataDir, "ca"), ca.Options{TrustDomain: trustDomain})
	if err != nil {
		return err
	}
	return check.ReportCA(cmd.OutOrStdout(), a.Expiries(), time.Now(), check.UniversalExpiryPolicy(anchorWarn, issuerWarn))
}
