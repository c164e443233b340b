package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/capture"
	"github.com/weft-mesh/weft/internal/proxy/command"
)

// runCLI runs weft-proxy with args (after env is set: flags read their
// WEFT_INIT_* fallbacks when the command is built).
func runCLI(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errOut bytes.Buffer
	root := command.New()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// TestInitDryRun: --dry-run prints, per family, exactly the rules the
// capture package renders for the options the flags and environment give,
// and runs no iptables.
func TestInitDryRun(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		opts func(*capture.Options)
		fams []capture.Family
	}{
		{"defaults, IPv4 only", nil, []string{"--ipv6", "off"}, func(*capture.Options) {}, []capture.Family{capture.IPv4}},
		{"flags", nil, []string{"--ipv6", "on", "--skip-inbound-ports", "22, 8081", "--skip-outbound-cidrs", "fd00::/8,10.0.0.0/8", "--proxy-uid", "1337"},
			func(o *capture.Options) {
				o.ProxyUID = 1337
				o.SkipInboundPorts = []capture.PortRange{{First: 22, Last: 22}, {First: 8081, Last: 8081}}
				o.SkipOutboundCIDRs, _ = capture.ParseCIDRs("10.0.0.0/8,fd00::/8")
			}, []capture.Family{capture.IPv4, capture.IPv6}},
		{"environment", map[string]string{"WEFT_INIT_SKIP_OUTBOUND_PORTS": "3306", "WEFT_INIT_IPV6": "off", "WEFT_INIT_INCLUDE_INBOUND_PORTS": "8080"}, nil,
			func(o *capture.Options) {
				o.SkipOutboundPorts = []capture.PortRange{{First: 3306, Last: 3306}}
				o.AllInboundPorts, o.IncludeInboundPorts = false, []capture.PortRange{{First: 8080, Last: 8080}}
			}, []capture.Family{capture.IPv4}},
		{"a flag wins over the environment", map[string]string{"WEFT_INIT_PROXY_UID": "0"}, []string{"--proxy-uid", "2103", "--ipv6", "off"},
			func(o *capture.Options) { o.ProxyUID = 2103 }, []capture.Family{capture.IPv4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := runCLI(t, tc.env, append([]string{"init", "--dry-run"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			o := capture.Defaults()
			tc.opts(&o)
			var want strings.Builder
			for _, f := range tc.fams {
				restore := map[capture.Family]string{capture.IPv4: "iptables-restore", capture.IPv6: "ip6tables-restore"}[f]
				want.WriteString("# weft-proxy init: " + f.String() + " rules, for " + restore + " --noflush\n" + capture.Render(o, f))
			}
			if out != want.String() {
				t.Errorf("dry run printed\n%s\nwant\n%s", out, want.String())
			}
		})
	}
}

// TestInitErrors: bad values are refused before anything runs, with the
// flag named (and the environment variable, when it gave the value).
func TestInitErrors(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"root UID", nil, []string{"--proxy-uid", "0"}, []string{`--proxy-uid "0": the proxy must not run as root`}},
		{"port out of range", nil, []string{"--outbound-port", "65536"}, []string{`--outbound-port "65536"`, "(1-65535)"}},
		{"bad CIDR from the environment", map[string]string{"WEFT_INIT_SKIP_OUTBOUND_CIDRS": "10.0.0.0/8,10.300.0.0/16"}, nil,
			[]string{`--skip-outbound-cidrs "10.0.0.0/8,10.300.0.0/16": "10.300.0.0/16" is not a CIDR`, "from the environment variable WEFT_INIT_SKIP_OUTBOUND_CIDRS"}},
		{"two problems", nil, []string{"--skip-inbound-ports", "80-70", "--ipv6", "maybe"}, []string{"write it 70-80", `--ipv6 "maybe": use auto`}},
		{"unknown backend", nil, []string{"--backend", "nftables", "--ipv6", "off"}, []string{`--backend "nftables": use auto, nft or legacy`}},
		{"bad timeout", nil, []string{"--timeout", "0s"}, []string{"--timeout 0s"}},
		{"arguments", nil, []string{"now"}, []string{`unknown command "now"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, tc.env, append([]string{"init"}, tc.args...)...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
