package capture

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// Tables applies and reverts weft's rules in one network namespace: the one
// Runner's programs run in.
type Tables struct {
	Runner  Runner
	Backend Backend
	Log     *slog.Logger // nil: slog.Default()
}

func (t Tables) log() *slog.Logger {
	if t.Log == nil {
		return slog.Default()
	}
	return t.Log
}

// NAT is what a namespace's nat table holds, as read from iptables-save.
type NAT struct {
	Chains []string // every chain, built-in ones included
	Rules  []Rule   // every rule, in order
}

// Weft returns the rules in weft's chains (in the order saved).
func (n NAT) Weft() []Rule {
	var out []Rule
	for _, r := range n.Rules {
		if isWeftChain(r.Chain) {
			out = append(out, r)
		}
	}
	return out
}

// JumpsToWeft returns the rules outside weft's chains whose target is one
// of weft's chains.
func (n NAT) JumpsToWeft() []Rule {
	var out []Rule
	for _, r := range n.Rules {
		if !isWeftChain(r.Chain) && isWeftChain(target(r.Spec)) {
			out = append(out, r)
		}
	}
	return out
}

// HasWeft reports whether any of weft's chains or jumps are present.
func (n NAT) HasWeft() bool {
	return slices.ContainsFunc(n.Chains, isWeftChain) || len(n.JumpsToWeft()) > 0
}

// target returns the chain a rule jumps or goes to ("-j X" / "-g X").
func target(spec string) string {
	f := strings.Fields(spec)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" || f[i] == "-g" || f[i] == "--jump" || f[i] == "--goto" {
			return f[i+1]
		}
	}
	return ""
}

// ParseNAT reads the nat table from iptables-save output (other tables and
// comments are ignored).
func ParseNAT(save string) NAT {
	var n NAT
	in := false
	for line := range strings.Lines(save) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "*"):
			in = line == "*nat"
		case !in:
		case line == "COMMIT":
			in = false
		case strings.HasPrefix(line, ":"):
			if name, _, ok := strings.Cut(line[1:], " "); ok {
				n.Chains = append(n.Chains, name)
			}
		case strings.HasPrefix(line, "-A "):
			chain, spec, _ := strings.Cut(line[3:], " ")
			n.Rules = append(n.Rules, Rule{Chain: chain, Spec: strings.TrimSpace(spec)})
		}
	}
	return n
}

// Save reads family f's nat table.
func (t Tables) Save(ctx context.Context, f Family) (NAT, error) {
	save, err := t.program(f, true)
	if err != nil {
		return NAT{}, err
	}
	out, err := t.Runner.Run(ctx, nil, save, "-t", "nat")
	if err != nil {
		return NAT{}, fmt.Errorf("reading the %s nat table: %w", f, err)
	}
	return ParseNAT(string(out)), nil
}

func (t Tables) program(f Family, save bool) (string, error) {
	p := t.Backend.restore(f)
	if save {
		p = t.Backend.save(f)
	}
	if p == "" {
		return "", fmt.Errorf("%s rules need ip6tables of the %s backend, which is not installed: install it, or pass --%s off", f, t.Backend.Name, FlagIPv6)
	}
	return p, nil
}

func (t Tables) restore(ctx context.Context, f Family, input string) error {
	restore, err := t.program(f, false)
	if err != nil {
		return err
	}
	// -w: wait for the xtables lock rather than fail when another
	// iptables holds it.
	if _, err := t.Runner.Run(ctx, []byte(input), restore, "-w", "5", "--noflush"); err != nil {
		return fmt.Errorf("writing the %s nat rules: %w; the input was:\n%s", f, err, input)
	}
	return nil
}

// Apply writes the rules of o for family f in one iptables-restore
// transaction: weft's chains are created or emptied and refilled, the
// jumps to them added when absent, and any other jump to them (a
// duplicate, or one an older version wrote) deleted. Running it again with
// the same options changes nothing; with other options, it replaces the
// rules. Then it reads the table back to check.
func (t Tables) Apply(ctx context.Context, o Options, f Family) error {
	if err := o.Validate(); err != nil {
		return err
	}
	before, err := t.Save(ctx, f)
	if err != nil {
		return err
	}
	add, del := jumpChanges(before.JumpsToWeft())
	rules := Rules(o, f)
	if err := t.restore(ctx, f, restoreInput(rules, add, del)); err != nil {
		return err
	}
	after, err := t.Save(ctx, f)
	if err != nil {
		return fmt.Errorf("checking the rules written: %w", err)
	}
	if got, want := after.JumpsToWeft(), Jumps(); !slices.Equal(got, want) {
		return fmt.Errorf("the %s rules were written but read back wrong: jumps to weft's chains are %v, want %v", f, got, want)
	}
	if got := after.Weft(); len(got) != len(rules) {
		return fmt.Errorf("the %s rules were written but read back wrong: weft's chains hold %d rules, want %d", f, len(got), len(rules))
	}
	t.log().Info("capture rules applied", "family", f.String(), "backend", t.Backend.Name,
		"rules", len(rules), "jumps_added", len(add), "stale_jumps_deleted", len(del))
	t.log().Debug("capture rules", "family", f.String(), "rules", restoreInput(rules, add, del))
	return nil
}

// jumpChanges compares the jumps found to weft's chains with the ones
// wanted: which to add, which to delete so that exactly one of each is left.
func jumpChanges(found []Rule) (add, del []Rule) {
	seen := map[Rule]bool{}
	for _, r := range found {
		if slices.Contains(Jumps(), r) && !seen[r] {
			seen[r] = true
			continue
		}
		del = append(del, r)
	}
	for _, j := range Jumps() {
		if !seen[j] {
			add = append(add, j)
		}
	}
	return add, del
}

// Revert removes, for family f, every rule outside weft's chains that
// jumps to one of them, and weft's chains; nothing else. It does nothing
// when there is nothing of weft's.
func (t Tables) Revert(ctx context.Context, f Family) error {
	before, err := t.Save(ctx, f)
	if err != nil {
		return err
	}
	if !before.HasWeft() {
		t.log().Info("no capture rules to revert", "family", f.String(), "backend", t.Backend.Name)
		return nil
	}
	if err := t.restore(ctx, f, RevertInput(before)); err != nil {
		return err
	}
	after, err := t.Save(ctx, f)
	if err != nil {
		return fmt.Errorf("checking the revert: %w", err)
	}
	if after.HasWeft() {
		return fmt.Errorf("reverted the %s rules, but weft's chains or jumps are still there: chains %v, jumps %v", f, after.Chains, after.JumpsToWeft())
	}
	t.log().Info("capture rules reverted", "family", f.String(), "backend", t.Backend.Name,
		"jumps_deleted", len(before.JumpsToWeft()), "chains_deleted", len(weftChains(before)))
	return nil
}

// weftChains returns weft's chains present in n.
func weftChains(n NAT) []string {
	var out []string
	for _, c := range Chains() {
		if slices.Contains(n.Chains, c) {
			out = append(out, c)
		}
	}
	return out
}

// RevertInput returns the iptables-restore input (for --noflush) that
// removes weft's rules from the nat table n: the jumps to weft's chains,
// then the chains, emptied and deleted. Nothing else is touched.
func RevertInput(n NAT) string {
	var b strings.Builder
	b.WriteString("*nat\n")
	for _, r := range n.JumpsToWeft() {
		fmt.Fprintf(&b, "-D %s %s\n", r.Chain, r.Spec)
	}
	chains := weftChains(n)
	for _, c := range chains {
		fmt.Fprintf(&b, "-F %s\n", c)
	}
	for _, c := range chains {
		fmt.Fprintf(&b, "-X %s\n", c)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}
