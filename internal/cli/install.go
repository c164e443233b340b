package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weft-mesh/weft/internal/install"
	"github.com/weft-mesh/weft/internal/version"
)

// installClusterFlags are the flags of the commands that act on a cluster.
type installClusterFlags struct {
	apply, dryRun       bool
	kubeconfig, context string
}

func (f *installClusterFlags) register(c *cobra.Command, applyHelp string) {
	c.Flags().BoolVar(&f.apply, "apply", false, applyHelp)
	c.Flags().BoolVar(&f.dryRun, "dry-run", false, "with --apply: have the API server check everything (server-side dry run) and change nothing")
	c.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file for --apply (default: $KUBECONFIG or ~/.kube/config)")
	c.Flags().StringVar(&f.context, "context", "", "kubeconfig context for --apply (default: the current context)")
}

func (f *installClusterFlags) check() error {
	if f.dryRun && !f.apply {
		return errors.New("--dry-run is a server-side dry run: it needs --apply")
	}
	if !f.apply && (f.kubeconfig != "" || f.context != "") {
		return errors.New("--kubeconfig and --context are for --apply")
	}
	return nil
}

// cluster connects to the cluster of the kubeconfig.
func (f *installClusterFlags) cluster(out io.Writer) (*install.Cluster, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	return install.NewCluster(rest.CopyConfig(cfg), out)
}

// installCmd is `weft install`.
func installCmd() *cobra.Command {
	var (
		cf                         installClusterFlags
		ns, valuesFile, caDir      string
		registry, tag, trustDomain string
		caSecret                   string
		replicas                   int32
		certManager, crds          bool
	)
	c := &cobra.Command{
		Use:   "install",
		Short: "Print (or --apply) the manifests that install weft's control plane into Kubernetes",
		Long: `Print the manifests that install weft into a Kubernetes cluster, as a YAML stream for kubectl:
the namespace, weft's CRDs, the control plane's ServiceAccount and least-privilege RBAC, the trust anchor
(a weft-ca Secret with a newly generated anchor and issuer, or cert-manager objects with --cert-manager),
the control plane's Deployment, Service and PodDisruptionBudget, and the sidecar injection webhook.

  weft install | kubectl apply --server-side --field-manager=weft -f -
  weft install --apply                      # the same, to the cluster of the current kubeconfig

Upgrading is installing the newer version's manifests over the older ones. --apply keeps an existing weft-ca
Secret; with kubectl, leave it out: weft install --ca-secret=skip | kubectl apply ... The Gateway API CRDs
are not installed: see docs/install.md. Settings come from --values (the Helm chart's values.yaml format),
then from the flags.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cf.check(); err != nil {
				return err
			}
			v := install.DefaultValues()
			if valuesFile != "" {
				var err error
				if v, err = install.ReadValuesFile(valuesFile, v); err != nil {
					return fmt.Errorf("--values: %w", err)
				}
			}
			flags := cmd.Flags()
			if flags.Changed("registry") {
				v.Image.Registry = registry
			}
			if flags.Changed("tag") {
				v.Image.Tag = tag
			}
			if flags.Changed("replicas") {
				v.Replicas = replicas
			}
			if flags.Changed("trust-domain") {
				v.TrustDomain = trustDomain
			}
			if flags.Changed("cert-manager") {
				v.CertManager.Enabled = certManager
			}
			o := install.Options{Namespace: ns, Values: v, CRDs: crds, CASecret: install.CASecretMode(caSecret)}
			if caDir != "" && v.CertManager.Enabled {
				return errors.New("--ca-dir and --cert-manager: with cert-manager, cert-manager keeps the CA")
			}
			if !v.CertManager.Enabled && o.CASecret != install.CASecretSkip {
				// Validate before generating a CA for nothing.
				if err := v.Validate(); err != nil {
					return err
				}
				var err error
				if caDir != "" {
					o.CA, err = install.CAFromDir(caDir, v.TrustDomain)
				} else {
					o.CA, err = install.GenerateCA(v.TrustDomain)
					if err == nil {
						note := "the anchor's key is not kept (use --ca-dir to keep it)"
						if cf.apply {
							note += "; a weft-ca Secret the cluster already has is kept instead"
						}
						fmt.Fprintln(cmd.ErrOrStderr(), "weft install: generated a new trust anchor and issuer for the weft-ca Secret; "+note)
					}
				}
				if err != nil {
					return err
				}
			}
			m, err := install.Render(o)
			if err != nil {
				return err
			}
			if cf.apply {
				cl, err := cf.cluster(cmd.OutOrStdout())
				if err != nil {
					return err
				}
				return cl.Apply(cmd.Context(), m, install.ApplyOptions{DryRun: cf.dryRun})
			}
			y, err := m.YAML()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "# weft %s install manifests (namespace %s, images %s:%s).\n", version.String(), nsOrDefault(ns), v.Image.Registry+"/{weft,weft-proxy}", v.Image.Tag)
			fmt.Fprintln(out, "# Apply with: kubectl apply --server-side --field-manager="+install.FieldManager+" -f -")
			if o.CASecret != install.CASecretSkip && !v.CertManager.Enabled {
				fmt.Fprintln(out, "# This stream holds the issuer's private key (Secret "+install.CASecretName+"): do not store it in version control.")
			}
			_, err = out.Write(y)
			return err
		},
	}
	cf.register(c, "apply the manifests to the cluster of the current kubeconfig (server-side apply, field manager "+install.FieldManager+") instead of printing them")
	def := install.DefaultValues()
	c.Flags().StringVarP(&ns, "namespace", "n", install.DefaultNamespace, "namespace of the control plane")
	c.Flags().StringVarP(&valuesFile, "values", "f", "", "values file, in the format of the Helm chart's values.yaml (deploy/helm/weft/values.yaml)")
	c.Flags().StringVar(&registry, "registry", def.Image.Registry, "registry and path of the images: <registry>/weft:<tag> and <registry>/weft-proxy:<tag>")
	c.Flags().StringVar(&tag, "tag", def.Image.Tag, "tag of the images")
	c.Flags().Int32Var(&replicas, "replicas", def.Replicas, "control plane replicas (at least 2)")
	c.Flags().StringVar(&trustDomain, "trust-domain", def.TrustDomain, "SPIFFE trust domain of the mesh's identities")
	c.Flags().BoolVar(&certManager, "cert-manager", false, "let cert-manager (installed beforehand) issue and renew weft's issuer instead of a generated weft-ca Secret")
	c.Flags().BoolVar(&crds, "crds", true, "include weft's CRDs (--crds=false when they are managed separately)")
	c.Flags().StringVar(&caSecret, "ca-secret", string(install.CASecretInclude), "the weft-ca Secret: "+strings.Join(install.CASecretModes(), ", ")+" (skip: for upgrades with kubectl, keeping the cluster's; only: the namespace and the Secret, for the Helm chart)")
	c.Flags().StringVar(&caDir, "ca-dir", "", "take the trust anchor and issuer from this directory (weft's layout: anchor.crt, issuer.crt, issuer.key; or cert-manager's: ca.crt, tls.crt, tls.key), generating them there if it is empty, instead of a new one each run")
	return c
}

func nsOrDefault(ns string) string {
	if ns == "" {
		return install.DefaultNamespace
	}
	return ns
}

// uninstallCmd is `weft uninstall`.
func uninstallCmd() *cobra.Command {
	var (
		cf                          installClusterFlags
		ns                          string
		certManager, crds, allowCRs bool
	)
	c := &cobra.Command{
		Use:   "uninstall",
		Short: "Print (or --apply: delete) what weft install created, in the safe order",
		Long: `Print the objects weft install created, for kubectl delete, in the safe order: the webhook
configuration first (so that pods can still be created while the rest goes), then the control plane, the
CA, the permissions and the namespace (with everything in it).

  weft uninstall | kubectl delete --ignore-not-found -f -
  weft uninstall --apply

The CRDs are left in place unless --crds is given: deleting a CRD deletes every custom resource of its kind
(every AuthorizationPolicy, RetryBudget, ... in the cluster). With --apply --crds, weft counts them first and
deletes nothing if there are any, unless --delete-custom-resources is given too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cf.check(); err != nil {
				return err
			}
			if allowCRs && !crds {
				return errors.New("--delete-custom-resources goes with --crds")
			}
			v := install.DefaultValues()
			// --apply deletes the cert-manager objects when they exist
			// (those of an install with --cert-manager); kubectl fails on
			// kinds the cluster does not serve, so printing needs the flag.
			v.CertManager.Enabled = certManager || cf.apply
			m, err := install.UninstallManifest(install.Options{Namespace: ns, Values: v, CRDs: crds})
			if err != nil {
				return err
			}
			if cf.apply {
				cl, err := cf.cluster(cmd.OutOrStdout())
				if err != nil {
					return err
				}
				return cl.Delete(cmd.Context(), m, install.DeleteOptions{DryRun: cf.dryRun, DeleteCustomResources: allowCRs})
			}
			return printUninstall(cmd.OutOrStdout(), m)
		},
	}
	cf.register(c, "delete the objects from the cluster of the current kubeconfig instead of printing them")
	c.Flags().StringVarP(&ns, "namespace", "n", install.DefaultNamespace, "namespace of the control plane")
	c.Flags().BoolVar(&certManager, "cert-manager", false, "include the cert-manager objects of an install with --cert-manager (always with --apply)")
	c.Flags().BoolVar(&crds, "crds", false, "delete weft's CRDs too, and with them every custom resource of their kinds")
	c.Flags().BoolVar(&allowCRs, "delete-custom-resources", false, "with --apply --crds: delete the CRDs even though custom resources of their kinds exist")
	return c
}

// printUninstall writes m for kubectl delete, with a warning before the
// CRDs.
func printUninstall(out io.Writer, m install.Manifest) error {
	fmt.Fprintln(out, "# weft uninstall: delete with kubectl delete --ignore-not-found -f -")
	warned := false
	for _, o := range m.Objects {
		if o.GetKind() == "CustomResourceDefinition" && !warned {
			warned = true
			fmt.Fprintln(out, "# WARNING: deleting the CRDs below deletes every custom resource of their kinds in the cluster")
			fmt.Fprintln(out, "# (AuthorizationPolicies, MutualTLSPolicies, RetryBudgets, CircuitBreakers, Workloads). Back them up first:")
			fmt.Fprintln(out, "#   kubectl get weft -A -o yaml > weft-resources.yaml")
		}
		y, err := install.Manifest{Objects: []*unstructured.Unstructured{o}}.YAML()
		if err != nil {
			return err
		}
		if _, err := out.Write(y); err != nil {
			return err
		}
	}
	return nil
}
