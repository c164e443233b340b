package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/internal/logging"
	"github.com/weft-mesh/weft/internal/proxy/capture"
)

// initFlags are the flags of `weft-proxy init` and `weft-proxy init revert`.
type initFlags struct {
	settings      capture.Settings
	backend       string
	revert        bool
	dryRun        bool
	timeout       time.Duration
	level, format string
}

// initEnv is the environment variable a flag falls back to:
// --skip-inbound-ports -> WEFT_INIT_SKIP_INBOUND_PORTS.
func initEnv(flag string) string {
	return "WEFT_INIT_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func initCmd() *cobra.Command {
	var f initFlags
	c := &cobra.Command{
		Use:   "init",
		Short: "Write the rules that capture the workload's TCP traffic into the proxy (run once, as root, in the pod's network namespace)",
		Long: `Write the nat rules that redirect the network namespace's TCP traffic to weft-proxy:
connections arriving for the workload's ports to the inbound listener (--inbound-port),
connections the workload opens to the transparent outbound listener (--outbound-port),
except the proxy's own (by --proxy-uid), loopback, and the ports and CIDRs skipped.

The rules live in weft's own chains (WEFT_INBOUND, WEFT_REDIRECT_IN, WEFT_OUTBOUND,
WEFT_REDIRECT_OUT), hooked into PREROUTING and OUTPUT by one jump each, and are written in
one iptables-restore transaction per address family. Running it again leaves one set of
rules. 'weft-proxy init revert' (or --revert) removes them. Every flag falls back to an
environment variable WEFT_INIT_<FLAG>, e.g. WEFT_INIT_SKIP_INBOUND_PORTS. See docs/capture.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.revert {
				return runRevert(cmd, &f)
			}
			return runInit(cmd, &f)
		},
	}
	d := capture.DefaultSettings()
	s := &f.settings
	fs := c.Flags()
	str := func(dst *string, flag, def, usage string) {
		fs.StringVar(dst, flag, envOr(initEnv(flag), def), usage+" (env "+initEnv(flag)+")")
	}
	str(&s.ProxyUID, capture.FlagProxyUID, d.ProxyUID, "UID the proxy runs as: its connections are never captured; never 0")
	str(&s.ProxyGID, capture.FlagProxyGID, d.ProxyGID, "a group whose connections are not captured either (default none: matched by UID only)")
	str(&s.InboundPort, capture.FlagInboundPort, d.InboundPort, "port of the proxy's inbound listener, where inbound connections are redirected")
	str(&s.OutboundPort, capture.FlagOutboundPort, d.OutboundPort, "port of the proxy's transparent outbound listener, where outbound connections are redirected")
	str(&s.AdminPort, capture.FlagAdminPort, d.AdminPort, "port of the proxy's admin server, never redirected")
	str(&s.IncludeInboundPorts, capture.FlagIncludeInboundPorts, d.IncludeInboundPorts, `inbound ports to capture: "*" for all, or a list such as "8080,9000-9100" ("" captures none)`)
	str(&s.SkipInboundPorts, capture.FlagSkipInboundPorts, d.SkipInboundPorts, `inbound ports never captured, e.g. "8080,9000-9100"`)
	str(&s.SkipOutboundPorts, capture.FlagSkipOutboundPorts, d.SkipOutboundPorts, `destination ports never captured, e.g. "25,3306"`)
	str(&s.SkipOutboundCIDRs, capture.FlagSkipOutboundCIDRs, d.SkipOutboundCIDRs, `destination CIDRs never captured, IPv4 and IPv6, e.g. "10.0.0.0/8,fd00::/8"`)
	pf := c.PersistentFlags()
	pstr := func(dst *string, flag, def, usage string) {
		pf.StringVar(dst, flag, envOr(initEnv(flag), def), usage+" (env "+initEnv(flag)+")")
	}
	pstr(&s.IPv6, capture.FlagIPv6, d.IPv6, "write the IPv6 rules too: auto (when the namespace has an IPv6 address that is neither loopback nor link-local), on or off")
	pstr(&f.backend, "backend", capture.BackendAuto, "iptables backend: auto (the one holding rules, nft on a tie), nft or legacy")
	pf.BoolVar(&f.dryRun, "dry-run", envBool(initEnv("dry-run")), "print the iptables-restore input instead of applying it (env "+initEnv("dry-run")+")")
	pf.DurationVar(&f.timeout, "timeout", envDuration(initEnv("timeout"), 30*time.Second), "give up after this long (env "+initEnv("timeout")+")")
	pstr(&f.level, "log-level", "info", "debug (also logs the rules), info, warn or error")
	pstr(&f.format, "log-format", "json", "json or text")
	fs.BoolVar(&f.revert, "revert", false, "remove weft's rules instead of writing them (same as 'weft-proxy init revert')")

	c.AddCommand(&cobra.Command{
		Use:   "revert",
		Short: "Remove weft's capture rules (the jumps to weft's chains, and the chains) and nothing else",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runRevert(cmd, &f) },
	})
	return c
}

func envBool(key string) bool {
	v := strings.ToLower(os.Getenv(key))
	return v == "1" || v == "true" || v == "yes"
}

func envDuration(key string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(key)); err == nil {
		return d
	}
	return def
}

// setup builds the logger, the context with the timeout, and parses the
// options.
func (f *initFlags) setup(cmd *cobra.Command, settings capture.Settings) (*slog.Logger, context.Context, context.CancelFunc, capture.Options, error) {
	log, err := logging.New(cmd.ErrOrStderr(), f.level, f.format)
	if err != nil {
		return nil, nil, nil, capture.Options{}, err
	}
	if f.timeout <= 0 {
		return nil, nil, nil, capture.Options{}, fmt.Errorf("--timeout %v: give a positive duration, e.g. 30s", f.timeout)
	}
	opts, err := settings.Options()
	if err != nil {
		return nil, nil, nil, opts, withEnvOrigin(cmd, err)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	return log, ctx, cancel, opts, nil
}

// withEnvOrigin says which of the flags in err got their value from the
// environment rather than the command line.
func withEnvOrigin(cmd *cobra.Command, err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for i, e := range errs {
		var fe *capture.FieldError
		if !errors.As(e, &fe) {
			continue
		}
		if _, set := os.LookupEnv(initEnv(fe.Flag)); set && !flagChanged(cmd, fe.Flag) {
			errs[i] = fmt.Errorf("%w (from the environment variable %s)", e, initEnv(fe.Flag))
		}
	}
	return errors.Join(errs...)
}

func flagChanged(cmd *cobra.Command, name string) bool {
	fl := cmd.Flags().Lookup(name)
	return fl != nil && fl.Changed
}

// families returns the families to write, resolving --ipv6 auto from the
// namespace's addresses.
func families(opts capture.Options, log *slog.Logger) ([]capture.Family, error) {
	has := false
	if opts.IPv6 == capture.IPv6Auto {
		addrs, err := namespaceAddrs()
		if err != nil {
			return nil, fmt.Errorf("--%s auto: listing the namespace's addresses: %w; pass --%s on or off", capture.FlagIPv6, err, capture.FlagIPv6)
		}
		has = capture.HasRoutableIPv6(addrs)
		log.Info("ipv6 detected", "routable_ipv6_address", has)
	}
	return opts.Families(has), nil
}

func namespaceAddrs() ([]netip.Addr, error) {
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range ifaddrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out, nil
}

func runInit(cmd *cobra.Command, f *initFlags) error {
	log, ctx, cancel, opts, err := f.setup(cmd, f.settings)
	if err != nil {
		return err
	}
	defer cancel()
	fams, err := families(opts, log)
	if err != nil {
		return err
	}
	if f.dryRun {
		return printRules(cmd.OutOrStdout(), opts, fams)
	}
	runner := capture.Exec{}
	b, err := capture.DetectBackend(ctx, runner, f.backend)
	if err != nil {
		return err
	}
	log.Info("writing capture rules", "backend", b.Name, "backend_choice", b.Description,
		"families", fmt.Sprint(fams), "proxy_uid", opts.ProxyUID, "proxy_gid", opts.ProxyGID,
		"inbound_port", opts.InboundPort, "outbound_port", opts.OutboundPort, "admin_port", opts.AdminPort,
		"include_inbound_ports", f.settings.IncludeInboundPorts, "skip_inbound_ports", fmt.Sprint(opts.SkipInboundPorts),
		"skip_outbound_ports", fmt.Sprint(opts.SkipOutboundPorts), "skip_outbound_cidrs", fmt.Sprint(opts.SkipOutboundCIDRs))
	if !opts.AllInboundPorts && len(opts.IncludeInboundPorts) == 0 {
		log.Warn("no inbound port is captured", "flag", "--"+capture.FlagIncludeInboundPorts)
	}
	t := capture.Tables{Runner: runner, Backend: b, Log: log}
	for _, fam := range fams {
		if err := t.Apply(ctx, opts, fam); err != nil {
			return permissionHint(err)
		}
	}
	log.Info("traffic capture on", "families", fmt.Sprint(fams))
	return nil
}

func printRules(w io.Writer, opts capture.Options, fams []capture.Family) error {
	for _, fam := range fams {
		if _, err := fmt.Fprintf(w, "# weft-proxy init: %s rules, for %s --noflush\n%s", fam, restoreName(fam), capture.Render(opts, fam)); err != nil {
			return err
		}
	}
	return nil
}

func restoreName(f capture.Family) string {
	if f == capture.IPv6 {
		return "ip6tables-restore"
	}
	return "iptables-restore"
}

func runRevert(cmd *cobra.Command, f *initFlags) error {
	// Only --ipv6 matters: what to capture does not change what to remove.
	log, ctx, cancel, opts, err := f.setup(cmd, capture.Settings{IPv6: f.settings.IPv6})
	if err != nil {
		return err
	}
	defer cancel()
	runner := capture.Exec{}
	b, err := capture.DetectBackend(ctx, runner, f.backend)
	if err != nil {
		return err
	}
	t := capture.Tables{Runner: runner, Backend: b, Log: log}
	fams := []capture.Family{capture.IPv4}
	if opts.IPv6 != capture.IPv6Off {
		fams = append(fams, capture.IPv6)
	}
	log.Info("reverting capture rules", "backend", b.Name, "backend_choice", b.Description, "families", fmt.Sprint(fams), "dry_run", f.dryRun)
	for _, fam := range fams {
		err := revertFamily(ctx, cmd.OutOrStdout(), t, fam, f.dryRun)
		if err != nil && fam == capture.IPv6 && opts.IPv6 == capture.IPv6Auto {
			// Rules are only written for IPv6 where it works; where it
			// does not, there is nothing to remove.
			log.Warn("skipping the IPv6 revert", "error", err.Error())
			continue
		}
		if err != nil {
			return permissionHint(err)
		}
	}
	return nil
}

// revertFamily reverts one family, or prints what it would do.
func revertFamily(ctx context.Context, w io.Writer, t capture.Tables, fam capture.Family, dryRun bool) error {
	if !dryRun {
		return t.Revert(ctx, fam)
	}
	n, err := t.Save(ctx, fam)
	if err != nil {
		return err
	}
	if !n.HasWeft() {
		_, err = fmt.Fprintf(w, "# weft-proxy init revert: %s: no weft rules, nothing to do\n", fam)
		return err
	}
	_, err = fmt.Fprintf(w, "# weft-proxy init revert: %s rules, for %s --noflush\n%s", fam, restoreName(fam), capture.RevertInput(n))
	return err
}

// permissionHint adds what init needs when iptables was refused.
func permissionHint(err error) error {
	if strings.Contains(err.Error(), "ermission denied") || strings.Contains(err.Error(), "Operation not permitted") {
		return fmt.Errorf("%w\n(weft-proxy init needs root, or CAP_NET_ADMIN and CAP_NET_RAW, in the workload's network namespace)", err)
	}
	return err
}
