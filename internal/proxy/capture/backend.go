package capture

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Runner runs programs: the iptables tools, in the network namespace it is
// bound to.
type Runner interface {
	// LookPath reports whether a program can be run, as exec.LookPath.
	LookPath(file string) (string, error)
	// Run runs name with args and stdin, and returns its standard output.
	// The error says what was run and includes its standard error.
	Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error)
}

// Exec runs programs with os/exec, each prefixed by Prefix when it is set:
// Exec{Prefix: []string{"ip", "netns", "exec", "pod1"}} runs them in
// network namespace pod1; the zero Exec runs them in the caller's.
type Exec struct {
	Prefix []string
}

// LookPath looks file up in PATH (the namespace shares the file system).
func (e Exec) LookPath(file string) (string, error) { return exec.LookPath(file) }

// Run implements Runner.
func (e Exec) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	argv := append(append(append([]string{}, e.Prefix...), name), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = "no output on stderr"
		}
		return stdout.Bytes(), fmt.Errorf("running %s: %w: %s", strings.Join(argv, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// Backend names the iptables programs of one netfilter backend.
type Backend struct {
	Name        string // "nft" or "legacy"
	Save4       string // e.g. iptables-nft-save
	Restore4    string
	Save6       string // "" when ip6tables is not installed
	Restore6    string
	Description string // how it was chosen, for the log
}

// Backend names, as --backend takes them.
const (
	BackendAuto   = "auto"
	BackendNFT    = "nft"
	BackendLegacy = "legacy"
)

func (b Backend) save(f Family) string {
	if f == IPv6 {
		return b.Save6
	}
	return b.Save4
}

func (b Backend) restore(f Family) string {
	if f == IPv6 {
		return b.Restore6
	}
	return b.Restore4
}

// programs finds the programs of one backend kind ("nft" or "legacy"):
// iptables-<kind>-save and friends when installed under those names, else
// plain iptables-save and friends when `iptables-save --version` says they
// are that kind ("(nf_tables)" or "(legacy)"; iptables before 1.8, which
// says neither, is legacy).
func programs(ctx context.Context, r Runner, kind string) (Backend, error) {
	b := Backend{Name: kind}
	named := func(base string) string {
		if _, err := r.LookPath(base); err == nil {
			return base
		}
		return ""
	}
	b.Save4, b.Restore4 = named("iptables-"+kind+"-save"), named("iptables-"+kind+"-restore")
	b.Save6, b.Restore6 = named("ip6tables-"+kind+"-save"), named("ip6tables-"+kind+"-restore")
	if b.Save4 != "" && b.Restore4 != "" {
		if b.Save6 == "" || b.Restore6 == "" {
			b.Save6, b.Restore6 = "", ""
		}
		return b, nil
	}
	if named("iptables-save") == "" || named("iptables-restore") == "" {
		return b, fmt.Errorf("neither iptables-%s-save/-restore nor iptables-save/-restore is installed", kind)
	}
	out, err := r.Run(ctx, nil, "iptables-save", "--version")
	if err != nil {
		return b, fmt.Errorf("asking iptables-save for its version: %w", err)
	}
	plainKind := BackendLegacy
	if strings.Contains(string(out), "nf_tables") {
		plainKind = BackendNFT
	}
	if plainKind != kind {
		return b, fmt.Errorf("iptables-%s-save is not installed, and iptables-save is the %s backend (%s)", kind, plainKind, strings.TrimSpace(string(out)))
	}
	b.Save4, b.Restore4 = "iptables-save", "iptables-restore"
	if named("ip6tables-save") != "" && named("ip6tables-restore") != "" {
		b.Save6, b.Restore6 = "ip6tables-save", "ip6tables-restore"
	}
	return b, nil
}

// countRules counts the rules (all tables) the backend holds in the
// namespace, IPv4 and IPv6.
func countRules(ctx context.Context, r Runner, b Backend) (int, error) {
	n := 0
	for _, save := range []string{b.Save4, b.Save6} {
		if save == "" {
			continue
		}
		out, err := r.Run(ctx, nil, save)
		if err != nil {
			return 0, err
		}
		for line := range strings.Lines(string(out)) {
			if strings.HasPrefix(line, "-A ") {
				n++
			}
		}
	}
	return n, nil
}

// DetectBackend returns the programs of backend want: "nft", "legacy", or
// "auto", which picks what the namespace already uses, as Istio does:
// legacy when iptables-legacy-save shows more rules than iptables-nft-save,
// else nft (so nft on a tie, e.g. a fresh pod namespace), falling back to
// the other when one is not installed or does not work (a kernel without
// nf_tables).
func DetectBackend(ctx context.Context, r Runner, want string) (Backend, error) {
	switch want {
	case BackendNFT, BackendLegacy:
		b, err := programs(ctx, r, want)
		if err != nil {
			return b, fmt.Errorf("--backend %s: %w; install iptables 1.8 or later, or use --backend auto", want, err)
		}
		b.Description = "chosen by --backend"
		return b, nil
	case BackendAuto, "":
	default:
		return Backend{}, fmt.Errorf("--backend %q: use auto, nft or legacy", want)
	}
	type candidate struct {
		b     Backend
		rules int
		err   error
	}
	var cands []candidate
	for _, kind := range []string{BackendNFT, BackendLegacy} {
		c := candidate{}
		c.b, c.err = programs(ctx, r, kind)
		if c.err == nil {
			c.rules, c.err = countRules(ctx, r, c.b)
		}
		cands = append(cands, c)
	}
	nft, legacy := cands[0], cands[1]
	switch {
	case nft.err != nil && legacy.err != nil:
		return Backend{}, fmt.Errorf("no usable iptables: nft: %w; legacy: %w", nft.err, legacy.err)
	case nft.err != nil:
		legacy.b.Description = fmt.Sprintf("nft unusable (%v)", nft.err)
		return legacy.b, nil
	case legacy.err != nil:
		nft.b.Description = fmt.Sprintf("legacy unusable (%v)", legacy.err)
		return nft.b, nil
	case legacy.rules > nft.rules:
		legacy.b.Description = fmt.Sprintf("legacy holds %d rules, nft %d", legacy.rules, nft.rules)
		return legacy.b, nil
	default:
		nft.b.Description = fmt.Sprintf("nft holds %d rules, legacy %d (nft on a tie)", nft.rules, legacy.rules)
		return nft.b, nil
	}
}
