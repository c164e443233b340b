package capture

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Defaults of the options: the ports of weft-proxy's listeners (see
// internal/proxy/config and internal/control/translate) and the UID the
// injector runs the proxy as.
const (
	// DefaultProxyUID is the UID weft-proxy runs as in an injected pod: a
	// fixed non-root number outside the system accounts' range (below
	// 1000), the one Linkerd's proxy uses, so cluster policies written for
	// that UID apply as they are. On a VM no other account may have it:
	// its connections would escape capture too.
	DefaultProxyUID     uint32 = 2102
	DefaultInboundPort  uint16 = 4143
	DefaultOutboundPort uint16 = 4140
	DefaultAdminPort    uint16 = 4191
)

// Flag names, shared by `weft-proxy init`, the errors of Settings.Options
// and the documentation.
const (
	FlagProxyUID            = "proxy-uid"
	FlagProxyGID            = "proxy-gid"
	FlagInboundPort         = "inbound-port"
	FlagOutboundPort        = "outbound-port"
	FlagAdminPort           = "admin-port"
	FlagIncludeInboundPorts = "include-inbound-ports"
	FlagSkipInboundPorts    = "skip-inbound-ports"
	FlagSkipOutboundPorts   = "skip-outbound-ports"
	FlagSkipOutboundCIDRs   = "skip-outbound-cidrs"
	FlagIPv6                = "ipv6"
)

// Pod annotations the injector maps to the flags above (issue 7); their
// values have the flags' syntax.
const (
	AnnotationIncludeInboundPorts = "traffic.weft.io/include-inbound-ports"
	AnnotationSkipInboundPorts    = "traffic.weft.io/skip-inbound-ports"
	AnnotationSkipOutboundPorts   = "traffic.weft.io/skip-outbound-ports"
	AnnotationSkipOutboundCIDRs   = "traffic.weft.io/skip-outbound-cidrs"
	AnnotationIPv6                = "traffic.weft.io/ipv6"
)

// IPv6Mode says whether the IPv6 rules (ip6tables) are written.
type IPv6Mode string

const (
	// IPv6Auto writes them when the namespace has an IPv6 address that is
	// neither loopback nor link-local (see HasRoutableIPv6).
	IPv6Auto IPv6Mode = "auto"
	IPv6On   IPv6Mode = "on"
	IPv6Off  IPv6Mode = "off"
)

// PortRange is a TCP port or an inclusive range of them.
type PortRange struct {
	First, Last uint16
}

// String is the range in iptables' --dport syntax: "8080" or "8000:8100".
func (r PortRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(int(r.First))
	}
	return fmt.Sprintf("%d:%d", r.First, r.Last)
}

// Options say what is captured. The zero value is not valid; start from
// Defaults.
type Options struct {
	// ProxyUID is the UID weft-proxy runs as. Connections its sockets open
	// are never redirected outbound. Never 0.
	ProxyUID uint32
	// ProxyGID, when not 0, is a group whose connections are treated as the
	// proxy's too. Off by default: a pod-wide runAsGroup would otherwise let
	// the application's traffic escape capture.
	ProxyGID uint32
	// The proxy's listeners. Connections to them are never redirected
	// inbound.
	InboundPort, OutboundPort, AdminPort uint16
	// AllInboundPorts redirects every inbound port (the "*" of
	// --include-inbound-ports); otherwise only IncludeInboundPorts are
	// redirected (none when it is empty).
	AllInboundPorts     bool
	IncludeInboundPorts []PortRange
	// SkipInboundPorts are never redirected inbound, even when included.
	SkipInboundPorts []PortRange
	// SkipOutboundPorts and SkipOutboundCIDRs (destinations) are never
	// redirected outbound. Each CIDR is written for its own family.
	SkipOutboundPorts []PortRange
	SkipOutboundCIDRs []netip.Prefix
	// IPv6 says whether the IPv6 rules are written too.
	IPv6 IPv6Mode
}

// Defaults returns the options of an injected sidecar: every inbound port
// but the proxy's own, all outbound TCP but the proxy's, IPv6 when the
// namespace has it.
func Defaults() Options {
	return Options{
		ProxyUID:        DefaultProxyUID,
		InboundPort:     DefaultInboundPort,
		OutboundPort:    DefaultOutboundPort,
		AdminPort:       DefaultAdminPort,
		AllInboundPorts: true,
		IPv6:            IPv6Auto,
	}
}

// FieldError is a problem with one flag's value.
type FieldError struct {
	Flag  string // without the dashes
	Value string
	Msg   string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("--%s %q: %s", e.Flag, e.Value, e.Msg)
}

// Validate checks options built in code (Settings.Options calls it too).
// The error joins one FieldError per problem.
func (o Options) Validate() error {
	return errors.Join(o.problems()...)
}

func (o Options) problems() []error {
	var errs []error
	bad := func(flag, value, format string, args ...any) {
		errs = append(errs, &FieldError{Flag: flag, Value: value, Msg: fmt.Sprintf(format, args...)})
	}
	if o.ProxyUID == 0 {
		bad(FlagProxyUID, "0", "the proxy must not run as root, and every process running as root would escape capture; run the proxy as its own user (default %d) and give that UID", DefaultProxyUID)
	}
	ports := []struct {
		flag string
		port uint16
	}{{FlagInboundPort, o.InboundPort}, {FlagOutboundPort, o.OutboundPort}, {FlagAdminPort, o.AdminPort}}
	for i, p := range ports {
		if p.port == 0 {
			bad(p.flag, "0", "give the port of the proxy's listener (1-65535)")
			continue
		}
		for _, q := range ports[:i] {
			if q.port == p.port {
				bad(p.flag, strconv.Itoa(int(p.port)), "it is also --%s: each of the proxy's listeners has its own port", q.flag)
			}
		}
	}
	checkRanges := func(flag string, rs []PortRange) {
		for _, r := range rs {
			if r.First == 0 || r.Last < r.First {
				bad(flag, r.String(), "not a port (1-65535) or an ascending range of them (8000-8100)")
			}
		}
	}
	checkRanges(FlagIncludeInboundPorts, o.IncludeInboundPorts)
	checkRanges(FlagSkipInboundPorts, o.SkipInboundPorts)
	checkRanges(FlagSkipOutboundPorts, o.SkipOutboundPorts)
	if o.AllInboundPorts && len(o.IncludeInboundPorts) > 0 {
		bad(FlagIncludeInboundPorts, "*", "give \"*\" (every port) or a list of ports, not both")
	}
	for _, p := range o.SkipOutboundCIDRs {
		if msg := prefixProblem(p); msg != "" {
			bad(FlagSkipOutboundCIDRs, p.String(), "%s", msg)
		}
	}
	switch o.IPv6 {
	case IPv6Auto, IPv6On, IPv6Off:
	default:
		bad(FlagIPv6, string(o.IPv6), "use auto (when the namespace has a routable IPv6 address), on or off")
	}
	return errs
}

// prefixProblem says what is wrong with a CIDR to skip, or "".
func prefixProblem(p netip.Prefix) string {
	switch {
	case !p.IsValid():
		return "not a CIDR (e.g. 10.0.0.0/8 or fd00::/8)"
	case p.Addr().Is4In6():
		return "an IPv4-mapped IPv6 prefix matches no traffic: give the IPv4 form (e.g. 10.0.0.0/8)"
	}
	return ""
}

// Settings are the options as text: from the command line, WEFT_INIT_*
// environment variables or pod annotations. Empty fields take the default,
// except the lists, where empty means none (IncludeInboundPorts "" captures
// no inbound port; its default is "*").
type Settings struct {
	ProxyUID, ProxyGID                    string
	InboundPort, OutboundPort, AdminPort  string
	IncludeInboundPorts, SkipInboundPorts string
	SkipOutboundPorts, SkipOutboundCIDRs  string
	IPv6                                  string
}

// DefaultSettings are the flags' defaults, as text.
func DefaultSettings() Settings {
	return Settings{
		ProxyUID:            strconv.Itoa(int(DefaultProxyUID)),
		InboundPort:         strconv.Itoa(int(DefaultInboundPort)),
		OutboundPort:        strconv.Itoa(int(DefaultOutboundPort)),
		AdminPort:           strconv.Itoa(int(DefaultAdminPort)),
		IncludeInboundPorts: "*",
		IPv6:                string(IPv6Auto),
	}
}

// Options parses and validates the settings. The error joins one
// FieldError per problem, each naming its flag.
func (s Settings) Options() (Options, error) {
	o := Defaults()
	var errs []error
	field := func(flag, value string, err error) {
		if err != nil {
			errs = append(errs, &FieldError{Flag: flag, Value: value, Msg: err.Error()})
		}
	}
	if s.ProxyUID != "" {
		uid, err := parseID(s.ProxyUID)
		field(FlagProxyUID, s.ProxyUID, err)
		if err == nil {
			o.ProxyUID = uid
		}
	}
	if s.ProxyGID != "" {
		gid, err := parseID(s.ProxyGID)
		if err == nil && gid == 0 {
			err = errors.New("group 0 is root's: every process in it would escape capture; give the proxy's own group, or leave it empty to match by UID only")
		}
		field(FlagProxyGID, s.ProxyGID, err)
		if err == nil {
			o.ProxyGID = gid
		}
	}
	for _, p := range []struct {
		flag, value string
		dst         *uint16
	}{{FlagInboundPort, s.InboundPort, &o.InboundPort}, {FlagOutboundPort, s.OutboundPort, &o.OutboundPort}, {FlagAdminPort, s.AdminPort, &o.AdminPort}} {
		if p.value != "" {
			port, err := parsePort(strings.TrimSpace(p.value))
			field(p.flag, p.value, err)
			if err == nil {
				*p.dst = port
			}
		}
	}
	var err error
	if strings.TrimSpace(s.IncludeInboundPorts) == "*" {
		o.AllInboundPorts = true
	} else {
		o.AllInboundPorts = false
		o.IncludeInboundPorts, err = ParsePorts(s.IncludeInboundPorts)
		if err != nil {
			err = fmt.Errorf("%w; or \"*\" for every port", err)
		}
		field(FlagIncludeInboundPorts, s.IncludeInboundPorts, err)
	}
	o.SkipInboundPorts, err = ParsePorts(s.SkipInboundPorts)
	field(FlagSkipInboundPorts, s.SkipInboundPorts, err)
	o.SkipOutboundPorts, err = ParsePorts(s.SkipOutboundPorts)
	field(FlagSkipOutboundPorts, s.SkipOutboundPorts, err)
	o.SkipOutboundCIDRs, err = ParseCIDRs(s.SkipOutboundCIDRs)
	field(FlagSkipOutboundCIDRs, s.SkipOutboundCIDRs, err)
	if s.IPv6 != "" {
		o.IPv6 = IPv6Mode(strings.ToLower(strings.TrimSpace(s.IPv6)))
	}
	// Values that did not parse kept their defaults, so Validate reports
	// only the other problems.
	errs = append(errs, o.problems()...)
	return o, errors.Join(errs...)
}

func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, errors.New("not a numeric ID (0-4294967294)")
	}
	return uint32(n), nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return uint16(n), nil
}

// ParsePorts reads a comma-separated list of ports and ranges, as flags and
// annotations give them: "8080,9090", "8000-8100", " 80 , 443 " (blank
// items are ignored, so "" is the empty list). The result is sorted, with
// overlapping and adjacent ranges merged.
func ParsePorts(s string) ([]PortRange, error) {
	var out []PortRange
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		first, last, isRange := strings.Cut(item, "-")
		a, err := parsePort(strings.TrimSpace(first))
		b := a
		if err == nil && isRange {
			b, err = parsePort(strings.TrimSpace(last))
		}
		if err != nil {
			return nil, fmt.Errorf("%q is not a port (1-65535) or a range (8000-8100)", item)
		}
		if b < a {
			return nil, fmt.Errorf("range %q goes down: write it %d-%d", item, b, a)
		}
		out = append(out, PortRange{a, b})
	}
	return mergeRanges(out), nil
}

func mergeRanges(rs []PortRange) []PortRange {
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b PortRange) int { return cmp.Or(cmp.Compare(a.First, b.First), cmp.Compare(a.Last, b.Last)) })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if int(r.First) <= int(last.Last)+1 {
			last.Last = max(last.Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}

// ParseCIDRs reads a comma-separated list of IPv4 and IPv6 CIDRs, as flags
// and annotations give them: "10.0.0.0/8,fd00::/8". A bare address is one
// host (/32 or /128); host bits are cleared ("10.1.2.3/8" is 10.0.0.0/8);
// blank items are ignored. The result is sorted (IPv4 first) without
// duplicates.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var p netip.Prefix
		var err error
		if strings.Contains(item, "/") {
			p, err = netip.ParsePrefix(item)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(item); err == nil {
				if a.Zone() != "" {
					return nil, fmt.Errorf("%q: a CIDR has no zone (%%%s): remove it", item, a.Zone())
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR (e.g. 10.0.0.0/8 or fd00::/8) or an address", item)
		}
		if msg := prefixProblem(p); msg != "" {
			return nil, fmt.Errorf("%q: %s", item, msg)
		}
		out = append(out, p.Masked())
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	return slices.Compact(out), nil
}

// HasRoutableIPv6 reports whether any of a namespace's interface addresses
// is IPv6 other than loopback and link-local: what IPv6Auto looks for.
func HasRoutableIPv6(addrs []netip.Addr) bool {
	return slices.ContainsFunc(addrs, func(a netip.Addr) bool {
		return a.Is6() && !a.Is4In6() && !a.IsLoopback() && !a.IsLinkLocalUnicast() && !a.IsUnspecified() && !a.IsMulticast()
	})
}

// Families returns the address families the options capture, given whether
// the namespace has a routable IPv6 address (for IPv6Auto).
func (o Options) Families(hasIPv6 bool) []Family {
	if o.IPv6 == IPv6On || o.IPv6 == IPv6Auto && hasIPv6 {
		return []Family{IPv4, IPv6}
	}
	return []Family{IPv4}
}
