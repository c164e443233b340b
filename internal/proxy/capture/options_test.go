package capture

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParsePorts(t *testing.T) {
	cases := []struct {
		in      string
		want    []PortRange
		wantErr string
	}{
		{"", nil, ""},
		{" , ,", nil, ""},
		{"8080", []PortRange{{8080, 8080}}, ""},
		{"9090,8080", []PortRange{{8080, 8080}, {9090, 9090}}, ""},
		{" 80 , 443 ", []PortRange{{80, 80}, {443, 443}}, ""},
		{"8000-8100", []PortRange{{8000, 8100}}, ""},
		{"8000 - 8100", []PortRange{{8000, 8100}}, ""},
		{"1-65535", []PortRange{{1, 65535}}, ""},
		// Overlapping, adjacent and duplicate entries are merged.
		{"8050,8000-8100,8101,8101", []PortRange{{8000, 8101}}, ""},
		{"4-6,1-2,3", []PortRange{{1, 6}}, ""},
		{"5-6,1-2,3", []PortRange{{1, 3}, {5, 6}}, ""},
		{"0", nil, `"0" is not a port`},
		{"65536", nil, `"65536" is not a port`},
		{"http", nil, `"http" is not a port`},
		{"80,x", nil, `"x" is not a port`},
		{"-80", nil, `"-80" is not a port`},
		{"80-", nil, `"80-" is not a port`},
		{"8100-8000", nil, `write it 8000-8100`},
		{"80:90", nil, `"80:90" is not a port`},
		{"1-2-3", nil, `"1-2-3" is not a port`},
	}
	for _, tc := range cases {
		got, err := ParsePorts(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParsePorts(%q) error = %v, want one containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParsePorts(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseCIDRs(t *testing.T) {
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	cases := []struct {
		in      string
		want    []netip.Prefix
		wantErr string
	}{
		{"", nil, ""},
		{"10.0.0.0/8,fd00::/8", pfx("10.0.0.0/8", "fd00::/8"), ""},
		// Sorted, IPv4 first; duplicates removed; host bits cleared.
		{"fd00::/8, 192.168.0.0/16,10.1.2.3/8,10.0.0.0/8", pfx("10.0.0.0/8", "192.168.0.0/16", "fd00::/8"), ""},
		{"169.254.169.254", pfx("169.254.169.254/32"), ""},
		{"fd00::1", pfx("fd00::1/128"), ""},
		{"0.0.0.0/0,::/0", pfx("0.0.0.0/0", "::/0"), ""},
		{"10.0.0.0/33", nil, `"10.0.0.0/33" is not a CIDR`},
		{"10.0.0/8", nil, `"10.0.0/8" is not a CIDR`},
		{"example.com", nil, `"example.com" is not a CIDR`},
		{"fe80::1%eth0", nil, `has no zone`},
		{"::ffff:10.0.0.0/104", nil, "give the IPv4 form"},
		{"10.0.0.0/8 fd00::/8", nil, "is not a CIDR"},
	}
	for _, tc := range cases {
		got, err := ParseCIDRs(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseCIDRs(%q) error = %v, want one containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseCIDRs(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestSettingsOptions(t *testing.T) {
	with := func(f func(*Settings)) Settings {
		s := DefaultSettings()
		f(&s)
		return s
	}
	cases := []struct {
		name     string
		settings Settings
		want     func(*Options) // applied to Defaults()
		// Each error must name its flag and hint at the fix.
		wantErrs []string
	}{
		{name: "defaults", settings: DefaultSettings(), want: func(*Options) {}},
		{name: "empty settings take the defaults, but lists mean none", settings: Settings{}, want: func(o *Options) { o.AllInboundPorts = false }},
		{name: "every option", settings: Settings{
			ProxyUID: "1337", ProxyGID: "1337", InboundPort: "15006", OutboundPort: "15001", AdminPort: "15000",
			IncludeInboundPorts: "8080,9000-9100", SkipInboundPorts: "22", SkipOutboundPorts: "25,3306",
			SkipOutboundCIDRs: "169.254.169.254,fd00::/8", IPv6: " ON ",
		}, want: func(o *Options) {
			*o = Options{
				ProxyUID: 1337, ProxyGID: 1337, InboundPort: 15006, OutboundPort: 15001, AdminPort: 15000,
				IncludeInboundPorts: []PortRange{{8080, 8080}, {9000, 9100}}, SkipInboundPorts: []PortRange{{22, 22}},
				SkipOutboundPorts: []PortRange{{25, 25}, {3306, 3306}},
				SkipOutboundCIDRs: []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32"), netip.MustParsePrefix("fd00::/8")},
				IPv6:              IPv6On,
			}
		}},
		{name: "root UID refused", settings: with(func(s *Settings) { s.ProxyUID = "0" }),
			wantErrs: []string{`--proxy-uid "0": the proxy must not run as root`}},
		{name: "root GID refused", settings: with(func(s *Settings) { s.ProxyGID = "0" }),
			wantErrs: []string{`--proxy-gid "0": group 0 is root's`}},
		{name: "UID not a number", settings: with(func(s *Settings) { s.ProxyUID = "weft" }),
			wantErrs: []string{`--proxy-uid "weft": not a numeric ID`}},
		{name: "UID -1 (overflow) refused", settings: with(func(s *Settings) { s.ProxyUID = "4294967295" }),
			wantErrs: []string{`--proxy-uid "4294967295": not a numeric ID`}},
		{name: "port out of range", settings: with(func(s *Settings) { s.InboundPort = "70000" }),
			wantErrs: []string{`--inbound-port "70000": "70000" is not a port (1-65535)`}},
		{name: "listeners share a port", settings: with(func(s *Settings) { s.AdminPort = "4140" }),
			wantErrs: []string{`--admin-port "4140": it is also --outbound-port`}},
		{name: "bad include list", settings: with(func(s *Settings) { s.IncludeInboundPorts = "all" }),
			wantErrs: []string{`--include-inbound-ports "all": "all" is not a port`, `or "*" for every port`}},
		{name: "every bad field reported at once", settings: with(func(s *Settings) {
			s.ProxyUID, s.SkipInboundPorts, s.SkipOutboundPorts, s.SkipOutboundCIDRs, s.IPv6 = "0", "99999", "1-x", "10.0.0.0/40", "maybe"
		}), wantErrs: []string{
			`--proxy-uid "0"`, `--skip-inbound-ports "99999"`, `--skip-outbound-ports "1-x"`,
			`--skip-outbound-cidrs "10.0.0.0/40"`, `--ipv6 "maybe": use auto`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.settings.Options()
			if len(tc.wantErrs) > 0 {
				if err == nil {
					t.Fatalf("no error; want %q", tc.wantErrs)
				}
				for _, w := range tc.wantErrs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Errorf("error %v holds no *FieldError", err)
				}
				if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != len(tc.wantErrs) && tc.name == "every bad field reported at once" {
					t.Errorf("%d errors, want %d (one per field): %v", n, len(tc.wantErrs), err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Defaults()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name    string
		mod     func(*Options)
		wantErr string
	}{
		{"defaults", func(*Options) {}, ""},
		{"zero options", func(o *Options) { *o = Options{} }, "--proxy-uid"},
		{"zero port", func(o *Options) { o.OutboundPort = 0 }, `--outbound-port "0": give the port`},
		{"descending range", func(o *Options) { o.SkipOutboundPorts = []PortRange{{9, 8}} }, `--skip-outbound-ports "9:8"`},
		{"all and a list", func(o *Options) { o.IncludeInboundPorts = []PortRange{{80, 80}} }, "not both"},
		{"invalid prefix", func(o *Options) { o.SkipOutboundCIDRs = []netip.Prefix{{}} }, "--skip-outbound-cidrs"},
		{"unknown IPv6 mode", func(o *Options) { o.IPv6 = "yes" }, `--ipv6 "yes"`},
	}
	for _, tc := range cases {
		o := Defaults()
		tc.mod(&o)
		err := o.Validate()
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestFamilies(t *testing.T) {
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	cases := []struct {
		mode  IPv6Mode
		addrs []netip.Addr
		want  []Family
	}{
		{IPv6Auto, addrs("127.0.0.1", "10.1.0.7"), []Family{IPv4}},
		{IPv6Auto, addrs("127.0.0.1", "::1", "fe80::1", "10.1.0.7"), []Family{IPv4}},
		{IPv6Auto, addrs("10.1.0.7", "fd00:10::7"), []Family{IPv4, IPv6}},
		{IPv6Auto, addrs("2001:db8::7"), []Family{IPv4, IPv6}},
		{IPv6Auto, addrs("::ffff:10.1.0.7"), []Family{IPv4}},
		{IPv6On, nil, []Family{IPv4, IPv6}},
		{IPv6Off, addrs("fd00:10::7"), []Family{IPv4}},
	}
	for _, tc := range cases {
		o := Defaults()
		o.IPv6 = tc.mode
		if got := o.Families(HasRoutableIPv6(tc.addrs)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s with %v: %v, want %v", tc.mode, tc.addrs, got, tc.want)
		}
	}
}
