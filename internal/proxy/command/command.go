package command

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/internal/logging"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/health"
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
	root.AddCommand(runCmd(), checkCmd(), initCmd(), version.Command("weft-proxy"))
	return root
}

func runCmd() *cobra.Command {
	var path, level, format string
	var cores int
	var cp sidecar.ControlPlane
	var explicitBase uint16
	var reg registerFlags
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
			if cp.Register, err = reg.registration(cmd, cp.Address); err != nil {
				return err
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
	reg.add(c)
	return c
}

// registerFlags are the flags of a proxy that registers its workload.
type registerFlags struct {
	register       bool
	address        string
	ports, labels  []string
	inboundPort    uint16
	healthCheck    string
	healthInterval time.Duration
}

func (f *registerFlags) add(c *cobra.Command) {
	fs := c.Flags()
	fs.BoolVar(&f.register, "register", false, "register this workload with the control plane while the proxy runs (named --node-id, in the namespace and service account of the proxy's identity); needs --control-plane")
	fs.StringVar(&f.address, "address", "", "with --register: the workload's IP, where peers reach it (default: the host's first non-loopback IPv4, else 127.0.0.1)")
	fs.StringArrayVar(&f.ports, "port", nil, "with --register: a port of the application, name=port[/protocol] (protocol http1, http2, grpc or opaque; none: detected); repeatable")
	fs.StringArrayVar(&f.labels, "label", nil, "with --register: a label Services select the workload by, key=value; repeatable")
	fs.Uint16Var(&f.inboundPort, "inbound-port", 0, "with --register: the proxy's inbound port in explicit mode, through which peers call the workload (default 0: transparent mode)")
	fs.StringVar(&f.healthCheck, "health-check", string(health.KindTCP), "with --register: how the application's health is checked: tcp (connect to every --port), http:<path> (GET on the first --port, 2xx or 3xx is healthy) or none")
	fs.DurationVar(&f.healthInterval, "health-interval", health.DefaultInterval, "with --register: time between health checks (2 failures in a row make the workload unhealthy, 1 success healthy again)")
}

// registration checks the flags and returns the registration they
// describe; nil without --register.
func (f *registerFlags) registration(c *cobra.Command, controlPlane string) (*sidecar.Registration, error) {
	if !f.register {
		// The flags that mean something only with --register.
		for _, name := range []string{"address", "port", "label", "inbound-port", "health-check", "health-interval"} {
			if c.Flags().Changed(name) {
				return nil, fmt.Errorf("--%s describes the workload to register: it needs --register", name)
			}
		}
		return nil, nil
	}
	if controlPlane == "" {
		return nil, errors.New("--register needs --control-plane: the workload is registered with the control plane")
	}
	reg := &sidecar.Registration{InboundPort: f.inboundPort, HealthInterval: f.healthInterval}
	var err error
	if f.address == "" {
		reg.Address = defaultAddress()
	} else if reg.Address, err = netip.ParseAddr(f.address); err != nil || reg.Address.Zone() != "" || reg.Address.IsUnspecified() {
		return nil, fmt.Errorf("--address %q: give the workload's IP address, e.g. 10.1.0.7", f.address)
	}
	for _, s := range f.ports {
		p, err := parsePort(s)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(reg.Ports, func(q sidecar.RegisteredPort) bool { return q.Port == p.Port || p.Name != "" && q.Name == p.Name }) {
			return nil, fmt.Errorf("--port %q: the port or its name is given twice", s)
		}
		reg.Ports = append(reg.Ports, p)
	}
	for _, s := range f.labels {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--label %q: give key=value, e.g. app=web", s)
		}
		if reg.Labels == nil {
			reg.Labels = map[string]string{}
		}
		reg.Labels[k] = v
	}
	if reg.Health, err = health.ParseSpec(f.healthCheck); err != nil {
		return nil, fmt.Errorf("--health-check: %w", err)
	}
	if reg.Health.Kind != health.KindNone && len(reg.Ports) == 0 {
		return nil, fmt.Errorf("--health-check %s probes the workload's ports: give them with --port, or pass --health-check none", f.healthCheck)
	}
	if f.healthInterval <= 0 {
		return nil, fmt.Errorf("--health-interval %v: give a positive duration, e.g. 5s", f.healthInterval)
	}
	return reg, nil
}

// parsePort reads name=port[/protocol] (the name may be left out).
func parsePort(s string) (sidecar.RegisteredPort, error) {
	var p sidecar.RegisteredPort
	rest := s
	if name, after, ok := strings.Cut(s, "="); ok {
		p.Name, rest = name, after
		if !isPortName(name) {
			return p, fmt.Errorf("--port %q: %q is not a port name (at most 15 lowercase letters, digits and '-', with a letter)", s, name)
		}
	}
	num, proto, _ := strings.Cut(rest, "/")
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil || n == 0 {
		return p, fmt.Errorf("--port %q: %q is not a port (1-65535); give name=port[/protocol], e.g. http=8080/http1", s, num)
	}
	p.Port, p.Protocol = uint16(n), proto
	if proto != "" && !slices.Contains([]string{"http1", "http2", "grpc", "opaque"}, proto) {
		return p, fmt.Errorf("--port %q: unknown protocol %q; use http1, http2, grpc or opaque, or leave it out to detect", s, proto)
	}
	return p, nil
}

// isPortName reports whether s is an IANA service name, as Kubernetes port
// names are.
func isPortName(s string) bool {
	if len(s) == 0 || len(s) > 15 || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	letter := false
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			letter = true
		case r >= '0' && r <= '9' || r == '-':
		default:
			return false
		}
	}
	return letter
}

// defaultAddress is the first IPv4 address of an interface that is up and
// not loopback (link-local addresses skipped), else 127.0.0.1.
func defaultAddress() netip.Addr {
	ifaces, err := net.Interfaces()
	if err == nil {
		for _, ifc := range ifaces {
			if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
				continue
			}
			addrs, err := ifc.Addrs()
			if err != nil {
				continue
			}
			for _, a := range addrs {
				pfx, err := netip.ParsePrefix(a.String())
				if err != nil {
					continue
				}
				if ip := pfx.Addr().Unmap(); ip.Is4() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
					return ip
				}
			}
		}
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
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
