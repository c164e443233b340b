package capture

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// FuzzParsePorts: any text either is refused or gives sorted, disjoint,
// non-adjacent valid ranges that read back the same when written out.
func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{"", "8080,9090", "8000-8100", " 80 , 443 ", "1-65535", "0", "65536", "8100-8000", "80,,90", "5-6,1-2,3", "-", "1-2-3", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := ParsePorts(s)
		if err != nil {
			if rs != nil {
				t.Fatalf("error %v with a result %v", err, rs)
			}
			return
		}
		for i, r := range rs {
			if r.First == 0 || r.Last < r.First {
				t.Fatalf("invalid range %+v from %q", r, s)
			}
			if i > 0 && int(rs[i-1].Last)+1 >= int(r.First) {
				t.Fatalf("ranges %v and %v not merged (from %q)", rs[i-1], r, s)
			}
		}
		var parts []string
		for _, r := range rs {
			parts = append(parts, fmt.Sprintf("%d-%d", r.First, r.Last))
		}
		again, err := ParsePorts(strings.Join(parts, ","))
		if err != nil || !reflect.DeepEqual(again, rs) {
			t.Fatalf("round trip of %q: %v -> %v, %v", s, rs, again, err)
		}
	})
}

// FuzzParseCIDRs: any text either is refused or gives masked, valid,
// sorted, distinct prefixes that read back the same.
func FuzzParseCIDRs(f *testing.F) {
	for _, s := range []string{"", "10.0.0.0/8,fd00::/8", "10.1.2.3/8", "169.254.169.254", "fd00::1", "::ffff:10.0.0.0/104", "fe80::1%eth0", "0.0.0.0/0,::/0", "1.2.3.4/33"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseCIDRs(s)
		if err != nil {
			return
		}
		var parts []string
		for i, p := range ps {
			if prefixProblem(p) != "" || p != p.Masked() {
				t.Fatalf("bad prefix %v from %q", p, s)
			}
			if i > 0 && !lessPrefix(ps[i-1], p) {
				t.Fatalf("%v and %v out of order (from %q)", ps[i-1], p, s)
			}
			parts = append(parts, p.String())
		}
		again, err := ParseCIDRs(strings.Join(parts, ","))
		if err != nil || !reflect.DeepEqual(again, ps) {
			t.Fatalf("round trip of %q: %v -> %v, %v", s, ps, again, err)
		}
	})
}

func lessPrefix(a, b netip.Prefix) bool {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c < 0
	}
	return a.Bits() < b.Bits()
}

// FuzzSettings: the lists as a pod's annotations would give them. Options
// that parse validate, and render rules whose every line iptables-restore
// could read: no stray characters from the input reach the rules.
func FuzzSettings(f *testing.F) {
	f.Add("*", "8080,9090", "25", "10.0.0.0/8,fd00::/8", "2102")
	f.Add("8000-8100", "", "", "", "1337")
	f.Add("", "22", "0", "::/0", "0")
	f.Add("*,80", "80\n-A OUTPUT -j ACCEPT", "", "10.0.0.0/8\nCOMMIT", "2102 -j ACCEPT")
	f.Fuzz(func(t *testing.T, include, skipIn, skipOut, cidrs, uid string) {
		s := DefaultSettings()
		s.IncludeInboundPorts, s.SkipInboundPorts, s.SkipOutboundPorts, s.SkipOutboundCIDRs, s.ProxyUID = include, skipIn, skipOut, cidrs, uid
		o, err := s.Options()
		if err != nil {
			return
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("Options() accepted what Validate refuses: %v", err)
		}
		for _, fam := range []Family{IPv4, IPv6} {
			for line := range strings.Lines(Render(o, fam)) {
				line = strings.TrimSuffix(line, "\n")
				if !validRestoreLine(line) {
					t.Fatalf("rendered line %q from %+v", line, s)
				}
			}
		}
	})
}

// validRestoreLine reports whether a rendered line is one weft writes:
// the table, a chain declaration, COMMIT, or a rule made only of the
// characters rules hold.
func validRestoreLine(line string) bool {
	switch {
	case line == "*nat" || line == "COMMIT":
		return true
	case strings.HasPrefix(line, ":WEFT_") && strings.HasSuffix(line, " - [0:0]"):
		return true
	case strings.HasPrefix(line, "-A "):
		return strings.IndexFunc(line, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(" -_:./!", r))
		}) < 0
	}
	return false
}
