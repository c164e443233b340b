package capture

import (
	"context"
	"strings"
	"testing"
)

func TestDetectBackend(t *testing.T) {
	named := map[string]bool{}
	for _, kind := range []string{"nft", "legacy"} {
		for _, v := range []string{"iptables", "ip6tables"} {
			named[v+"-"+kind+"-save"], named[v+"-"+kind+"-restore"] = true, true
		}
	}
	plain := map[string]bool{"iptables-save": true, "iptables-restore": true, "ip6tables-save": true, "ip6tables-restore": true}
	paths := func(sets ...map[string]bool) map[string]bool {
		out := map[string]bool{}
		for _, s := range sets {
			for k := range s {
				out[k] = true
			}
		}
		return out
	}
	rules := func(n int) string {
		var b strings.Builder
		b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n")
		for range n {
			b.WriteString("-A INPUT -j ACCEPT\n")
		}
		b.WriteString("COMMIT\n")
		return b.String()
	}
	saves := func(nft4, nft6, legacy4, legacy6 string) map[string][]string {
		return map[string][]string{
			"iptables-nft-save": {nft4}, "ip6tables-nft-save": {nft6},
			"iptables-legacy-save": {legacy4}, "ip6tables-legacy-save": {legacy6},
		}
	}
	cases := []struct {
		name        string
		want        string
		paths       map[string]bool
		outputs     map[string][]string
		wantBackend string
		wantSave4   string
		wantSave6   string
		wantErr     string
	}{
		{name: "fresh namespace: nft on a tie", want: "auto", paths: named, outputs: saves("", "", "", ""),
			wantBackend: "nft", wantSave4: "iptables-nft-save", wantSave6: "ip6tables-nft-save"},
		{name: "legacy holds rules", want: "auto", paths: named, outputs: saves("", "", rules(3), rules(1)),
			wantBackend: "legacy", wantSave4: "iptables-legacy-save", wantSave6: "ip6tables-legacy-save"},
		{name: "IPv6 rules count too", want: "auto", paths: named, outputs: saves(rules(1), "", "", rules(2)),
			wantBackend: "legacy", wantSave4: "iptables-legacy-save", wantSave6: "ip6tables-legacy-save"},
		{name: "nft holds more", want: "auto", paths: named, outputs: saves(rules(5), "", rules(2), ""),
			wantBackend: "nft", wantSave4: "iptables-nft-save", wantSave6: "ip6tables-nft-save"},
		{name: "nft does not work (kernel without nf_tables)", want: "auto", paths: named,
			outputs:     map[string][]string{"iptables-nft-save": {"!iptables-nft-save: Failed to initialize nft: Protocol not supported"}, "iptables-legacy-save": {""}, "ip6tables-legacy-save": {""}},
			wantBackend: "legacy", wantSave4: "iptables-legacy-save", wantSave6: "ip6tables-legacy-save"},
		{name: "only plain iptables, nft", want: "auto", paths: plain,
			outputs:     map[string][]string{"iptables-save --version": {"iptables-save v1.8.9 (nf_tables)\n"}, "iptables-save": {rules(1)}, "ip6tables-save": {""}},
			wantBackend: "nft", wantSave4: "iptables-save", wantSave6: "ip6tables-save"},
		{name: "only plain iptables, legacy", want: "auto", paths: plain,
			outputs:     map[string][]string{"iptables-save --version": {"iptables-save v1.8.7 (legacy)\n"}, "iptables-save": {""}, "ip6tables-save": {""}},
			wantBackend: "legacy", wantSave4: "iptables-save", wantSave6: "ip6tables-save"},
		{name: "plain iptables before 1.8 is legacy", want: "legacy", paths: map[string]bool{"iptables-save": true, "iptables-restore": true},
			outputs:     map[string][]string{"iptables-save --version": {"iptables-save v1.6.1\n"}},
			wantBackend: "legacy", wantSave4: "iptables-save", wantSave6: ""},
		{name: "named nft without ip6tables", want: "nft", paths: map[string]bool{"iptables-nft-save": true, "iptables-nft-restore": true},
			wantBackend: "nft", wantSave4: "iptables-nft-save", wantSave6: ""},
		{name: "forced legacy, only nft installed", want: "legacy", paths: plain,
			outputs: map[string][]string{"iptables-save --version": {"iptables-save v1.8.9 (nf_tables)\n"}},
			wantErr: "--backend legacy: iptables-legacy-save is not installed, and iptables-save is the nft backend"},
		{name: "no iptables at all", want: "auto", paths: nil, wantErr: "no usable iptables: nft: neither iptables-nft-save"},
		{name: "unknown backend", want: "nftables", wantErr: `--backend "nftables": use auto, nft or legacy`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeRunner{t: t, paths: paths(tc.paths), outputs: tc.outputs}
			b, err := DetectBackend(context.Background(), f, tc.want)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Name != tc.wantBackend || b.Save4 != tc.wantSave4 || b.Save6 != tc.wantSave6 {
				t.Errorf("got %+v, want %s with %s and %q", b, tc.wantBackend, tc.wantSave4, tc.wantSave6)
			}
			if b.Description == "" {
				t.Error("no description of the choice, for the log")
			}
			if strings.HasSuffix(b.Save4, "-save") && b.Restore4 != strings.TrimSuffix(b.Save4, "-save")+"-restore" {
				t.Errorf("save %s with restore %s", b.Save4, b.Restore4)
			}
		})
	}
}
