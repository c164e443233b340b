package capture

import (
	"fmt"
	"strconv"
	"strings"
)

// Family is an address family: which of iptables and ip6tables a rule is
// for.
type Family int

const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// loopback is the family's loopback range, written as iptables-save
// writes it.
func (f Family) loopback() string {
	if f == IPv6 {
		return "::1/128"
	}
	return "127.0.0.0/8"
}

// weft's own chains in the nat table.
const (
	// ChainInbound decides which inbound connections are redirected.
	ChainInbound = "WEFT_INBOUND"
	// ChainRedirectIn redirects to the inbound listener.
	ChainRedirectIn = "WEFT_REDIRECT_IN"
	// ChainOutbound decides which outbound connections are redirected.
	ChainOutbound = "WEFT_OUTBOUND"
	// ChainRedirectOut redirects to the outbound listener.
	ChainRedirectOut = "WEFT_REDIRECT_OUT"
)

// Chains returns weft's chains, in the order they are declared.
func Chains() []string {
	return []string{ChainInbound, ChainRedirectIn, ChainOutbound, ChainRedirectOut}
}

func isWeftChain(name string) bool {
	switch name {
	case ChainInbound, ChainRedirectIn, ChainOutbound, ChainRedirectOut:
		return true
	}
	return false
}

// Rule is one rule of the nat table: iptables-save's "-A Chain Spec".
type Rule struct {
	Chain string
	Spec  string
}

func (r Rule) String() string { return "-A " + r.Chain + " " + r.Spec }

// Jumps returns the rules that hook weft's chains into the built-in ones:
// the only rules weft adds outside its own chains.
func Jumps() []Rule {
	return []Rule{
		{"PREROUTING", "-p tcp -j " + ChainInbound},
		{"OUTPUT", "-p tcp -j " + ChainOutbound},
	}
}

// Rules returns the rules of weft's chains for family f, in order, written
// exactly as iptables-save prints them (so the rules read back from a
// namespace can be compared with these).
//
// Inbound (PREROUTING: connections arriving from other hosts): the proxy's
// own ports and the skipped ports return; the included ports (all, by
// default) go to the inbound listener.
//
// Outbound (OUTPUT: connections opened in the namespace), first match wins:
//
//  1. The proxy's connections over lo to an address of the namespace that
//     is not loopback (its own pod IP): through the inbound chain, as if
//     they came from outside. This is the "application calls its own
//     service" case: the application's connection to the service IP went to
//     the outbound listener, which chose this pod as the endpoint; sending
//     the proxy's connection to the inbound listener applies the inbound
//     side (mTLS termination, authorization, metrics) as for any other
//     caller. Istio makes the same choice. Ports the inbound chain does not
//     capture fall through to rule 2.
//  2. Anything else over lo returns: the application's own connections to
//     127.0.0.1 or to its pod IP go straight to it, and the proxy reaches
//     the application on 127.0.0.1.
//  3. The proxy's other connections return (by UID, and GID when set): it
//     never captures itself.
//  4. Skipped ports and destination CIDRs (of this family) return.
//  5. Everything else goes to the outbound listener.
func Rules(o Options, f Family) []Rule {
	var rs []Rule
	add := func(chain, format string, args ...any) {
		rs = append(rs, Rule{chain, fmt.Sprintf(format, args...)})
	}
	tcpPort := func(r PortRange) string { return "-p tcp -m tcp --dport " + r.String() }

	// Inbound.
	own := []PortRange{{o.InboundPort, o.InboundPort}, {o.OutboundPort, o.OutboundPort}, {o.AdminPort, o.AdminPort}}
	for _, r := range mergeRanges(append(own, o.SkipInboundPorts...)) {
		add(ChainInbound, "%s -j RETURN", tcpPort(r))
	}
	if o.AllInboundPorts {
		add(ChainInbound, "-p tcp -j %s", ChainRedirectIn)
	} else {
		for _, r := range o.IncludeInboundPorts {
			add(ChainInbound, "%s -j %s", tcpPort(r), ChainRedirectIn)
		}
	}
	add(ChainRedirectIn, "-p tcp -j REDIRECT --to-ports %d", o.InboundPort)

	// Outbound.
	owners := []string{"--uid-owner " + strconv.FormatUint(uint64(o.ProxyUID), 10)}
	if o.ProxyGID != 0 {
		owners = append(owners, "--gid-owner "+strconv.FormatUint(uint64(o.ProxyGID), 10))
	}
	for _, owner := range owners {
		add(ChainOutbound, "! -d %s -o lo -m owner %s -j %s", f.loopback(), owner, ChainInbound)
	}
	add(ChainOutbound, "-o lo -j RETURN")
	for _, owner := range owners {
		add(ChainOutbound, "-m owner %s -j RETURN", owner)
	}
	for _, r := range o.SkipOutboundPorts {
		add(ChainOutbound, "%s -j RETURN", tcpPort(r))
	}
	for _, p := range o.SkipOutboundCIDRs {
		if p.Addr().Is4() == (f == IPv4) {
			add(ChainOutbound, "-d %s -j RETURN", p)
		}
	}
	add(ChainOutbound, "-p tcp -j %s", ChainRedirectOut)
	add(ChainRedirectOut, "-p tcp -j REDIRECT --to-ports %d", o.OutboundPort)
	return rs
}

// Render returns the iptables-restore input (for --noflush) that installs
// the rules of family f in a namespace that has none of weft's yet: the
// chains declared, their rules, the jumps. It is what --dry-run prints.
func Render(o Options, f Family) string {
	return restoreInput(Rules(o, f), Jumps(), nil)
}

// restoreInput writes one nat transaction: weft's chains declared (which,
// with --noflush, creates them or empties them), their rules, then the
// jumps to add and the rules to delete.
func restoreInput(rules, addJumps, deleteRules []Rule) string {
	var b strings.Builder
	b.WriteString("*nat\n")
	for _, c := range Chains() {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	// Grouped by chain, in declaration order, as iptables-save prints them.
	for _, c := range Chains() {
		for _, r := range rules {
			if r.Chain == c {
				fmt.Fprintf(&b, "%s\n", r)
			}
		}
	}
	for _, r := range deleteRules {
		fmt.Fprintf(&b, "-D %s %s\n", r.Chain, r.Spec)
	}
	for _, r := range addJumps {
		fmt.Fprintf(&b, "%s\n", r)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}
