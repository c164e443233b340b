package command

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/internal/logging"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/sidecar"
	"github.com/weft-mesh/weft/internal/version"
)

// New returns the weft-proxy root command.
func New() *cobra.Command {
	root := &cobra.Command{
		Use:           "weft-proxy",
		Short:         "weft's sidecar proxy: mTLS, load balancing and golden metrics for one workload",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCmd(), checkCmd(), version.Command("weft-proxy"))
	return root
}

func runCmd() *cobra.Command {
	var path, level, format string
	var cores int
	var cp sidecar.ControlPlane
	var explicitBase uint16
	c := &cobra.Command{
		Use:   "run",
		Short: "Run the proxy with the config file given by --config (reloaded when it changes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logging.New(cmd.ErrOrStderr(), level, format)
			if err != nil {
				return err
			}
			if err := setCores(cores); err != nil {
				return err
			}
			opts := sidecar.Options{ConfigPath: path, Logger: log}
			if cp.Address == "" && (cp.JoinTokenFile != "" || cp.TokenFile != "") {
				return fmt.Errorf("--join-token-file and --token-file need --control-plane: the certificate is issued by the control plane")
			}
			if cp.Address != "" {
				cp.ExplicitBase = explicitBase
				if cp.NodeID == "" {
					cp.NodeID, _ = os.Hostname()
				}
				opts.ControlPlane = &cp
			}
			return sidecar.Run(cmd.Context(), opts)
		},
	}
	c.Flags().StringVarP(&path, "config", "c", envOr("WEFT_PROXY_CONFIG", "/etc/weft/proxy.yaml"), "ProxyConfig file, YAML or JSON (env WEFT_PROXY_CONFIG)")
	c.Flags().StringVar(&level, "log-level", envOr("WEFT_PROXY_LOG_LEVEL", "info"), "debug, info, warn or error")
	c.Flags().StringVar(&format, "log-format", envOr("WEFT_PROXY_LOG_FORMAT", "json"), "json or text")
	c.Flags().StringVar(&cp.Address, "control-plane", os.Getenv("WEFT_CONTROL_PLANE"), "host:port of the control plane's Discovery API (env WEFT_CONTROL_PLANE); --config then only gives the proxy's certificate files and admin address")
	c.Flags().StringVar(&cp.NodeID, "node-id", os.Getenv("WEFT_NODE_ID"), "name of this proxy instance, e.g. the workload's (env WEFT_NODE_ID; default the host name)")
	c.Flags().StringVar(&cp.JoinTokenFile, "join-token-file", os.Getenv("WEFT_JOIN_TOKEN_FILE"), "file holding a join token from `weft token create`: the proxy gets its certificate from the control plane (universal mode; env WEFT_JOIN_TOKEN_FILE)")
	c.Flags().StringVar(&cp.TokenFile, "token-file", os.Getenv("WEFT_TOKEN_FILE"), "the pod's projected ServiceAccount token with audience weft: the proxy gets its certificate from the control plane (Kubernetes; env WEFT_TOKEN_FILE)")
	c.Flags().StringVar(&cp.TrustBundleFile, "trust-bundle", os.Getenv("WEFT_TRUST_BUNDLE"), "the mesh's trust anchor(s), PEM, to verify the control plane (env WEFT_TRUST_BUNDLE)")
	c.Flags().StringVar(&cp.TrustDomain, "trust-domain", os.Getenv("WEFT_TRUST_DOMAIN"), "the mesh's trust domain (default: read from the trust anchor)")
	c.Flags().StringSliceVar(&cp.Watch, "watch", nil, "services to discover from the start, namespace/name[:port] (repeatable)")
	c.Flags().Uint16Var(&explicitBase, "explicit-base", 0, "first local port of explicit-mode listeners (default 15000)")
	c.Flags().IntVar(&cores, "cores", envInt("WEFT_PROXY_CORES", 1), "CPU cores the proxy's work is spread over (env WEFT_PROXY_CORES); the GOMAXPROCS environment variable, when set, wins")
	return c
}

// setCores bounds the Go scheduler to n cores unless GOMAXPROCS is set. A
// sidecar's traffic is one workload's: one core serves it with the least CPU
// per request, since goroutines hand work to each other without waking other
// threads (measured in bench/: about 25% less CPU per request than two).
// Busy workloads raise it.
func setCores(n int) error {
	if n < 1 {
		return fmt.Errorf("--cores %d: use 1 or more", n)
	}
	if _, set := os.LookupEnv("GOMAXPROCS"); !set {
		runtime.GOMAXPROCS(n)
	}
	return nil
}

func envInt(key string, def int) int {
	if v, ok := os.LookupEnv(key); ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

func checkCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check-config FILE",
		Short: "Validate a config file and report every problem, without running",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := config.LoadFile(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (version %q, %d services)\n", args[0], c.Version, len(c.Services))
			return nil
		},
	}
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}
