package config

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/route"
)

var update = flag.Bool("update", false, "rewrite golden files")

// serviceView is a Service without its compiled route table and clocks.
type serviceView struct {
	Name        string
	Addresses   []netip.AddrPort
	Protocol    Protocol
	Endpoints   []Endpoint
	Policy      string
	HashOn      HashOn
	Pool        Pool
	Rules       []route.Rule
	Policies    map[RuleKey]*RulePolicy
	RetryBudget [3]any
}

// TestCompileFull checks the resolved form of a config that uses every
// section against a golden file (go test -update rewrites it).
func TestCompileFull(t *testing.T) {
	c, err := LoadFile(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		Version, Admin string
		TLS            *TLSFiles
		Inbound        *Inbound
		Transparent    string
		Explicit       map[string]string
		Services       map[string]serviceView
		VIPs           map[string]string
		DetectTimeout  time.Duration
		OpaquePorts    []uint16
		Timeouts       Timeouts
		AccessLog      bool
		MaxHeaderBytes int
	}
	v := view{
		Version: c.Version, Admin: c.AdminAddress, TLS: c.TLS, Inbound: c.Inbound,
		Transparent: c.Outbound.TransparentAddress, Explicit: map[string]string{},
		Services: map[string]serviceView{}, VIPs: map[string]string{},
		DetectTimeout: c.DetectTimeout, OpaquePorts: c.OpaquePorts, Timeouts: c.Timeouts,
		AccessLog: c.AccessLog, MaxHeaderBytes: c.MaxHeaderBytes,
	}
	for _, e := range c.Outbound.Explicit {
		v.Explicit[e.Address] = e.Service.Name + "/" + string(e.Protocol)
	}
	for name, s := range c.Services {
		v.Services[name] = serviceView{
			Name: s.Name, Addresses: s.Addresses, Protocol: s.Protocol, Endpoints: s.Endpoints,
			Policy: s.Policy, HashOn: s.HashOn, Pool: s.Pool, Rules: s.Rules, Policies: s.Policies,
			RetryBudget: [3]any{s.RetryBudget.RetryRatio, s.RetryBudget.MinRetriesPerSecond, s.RetryBudget.TTL.String()},
		}
	}
	for vip, s := range c.VIPs {
		v.VIPs[vip.String()] = s.Name
	}
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "full.golden")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(want)) != strings.TrimSpace(string(got)) {
		t.Errorf("resolved config differs from %s (run go test -update to accept):\n%s", golden, got)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Parse([]byte("outbound: {transparent_address: \"127.0.0.1:4140\"}"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminAddress != DefaultAdminAddress || c.DetectTimeout != DefaultDetectTimeout ||
		c.Timeouts.Drain != DefaultDrainTimeout || c.MaxHeaderBytes != DefaultMaxHeaderBytes || c.Inbound != nil {
		t.Errorf("defaults not applied: %+v", c)
	}
	if p := (&Inbound{}).Port(8080); p.AppPort != 8080 || p.Protocol != Detect {
		t.Errorf("an unlisted inbound port must forward to the same port with detection, got %+v", p)
	}
}

// TestErrorsNameTheField: every bad input is refused with the field path and
// a hint of the fix.
func TestErrorsNameTheField(t *testing.T) {
	const base = "outbound: {transparent_address: \"127.0.0.1:4140\"}\n"
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"empty", "", []string{"empty"}},
		{"not yaml", "{", []string{"not valid YAML"}},
		{"unknown field", "listners: 1", []string{"listners"}},
		{"wrong type", "access_log: maybe", []string{"access_log"}},
		{"no listener", "version: x", []string{"no listener is configured"}},
		{"bad admin address", base + "admin: {address: \"localhost\"}", []string{"admin.address", "ip:port"}},
		{"inbound without tls", "inbound: {}", []string{"tls", "certificate"}},
		{"half tls", base + "tls: {cert_file: a}", []string{"tls.key_file", "tls.trust_bundle_file"}},
		{"bad protocol", base + "services: [{name: a, protocol: http3}]", []string{"services[0].protocol", "http3", "opaque, http1, http2, grpc"}},
		{"duplicate service", base + "services: [{name: a}, {name: a}]", []string{"services[1].name", "defined twice"}},
		{"nameless service", base + "services: [{}]", []string{"services[0].name"}},
		{"bad endpoint", base + "services: [{name: a, endpoints: [{address: \"10.0.0.1\"}]}]", []string{"services[0].endpoints[0].address", "ip:port"}},
		{"bad identity", base + "tls: {cert_file: a, key_file: b, trust_bundle_file: c}\nservices: [{name: a, endpoints: [{address: \"10.0.0.1:80\", identity: \"web\"}]}]", []string{"endpoints[0].identity", "SPIFFE"}},
		{"meshed endpoint without tls", base + "services: [{name: a, endpoints: [{address: \"10.0.0.1:80\", identity: \"spiffe://td/ns/a/sa/b\"}]}]", []string{"identity", "no certificate"}},
		{"proxy address without identity", base + "services: [{name: a, endpoints: [{address: \"10.0.0.1:80\", proxy_address: \"10.0.0.1:4143\"}]}]", []string{"proxy_address", "identity"}},
		{"duplicate vip", base + "services: [{name: a, addresses: [\"10.96.0.1:80\"]}, {name: b, addresses: [\"10.96.0.1:80\"]}]", []string{"services[1].addresses[0]", "already belongs"}},
		{"bad policy", base + "services: [{name: a, load_balancer: {policy: random}}]", []string{"load_balancer.policy", "p2c-ewma"}},
		{"ring-hash without key", base + "services: [{name: a, load_balancer: {policy: ring-hash}}]", []string{"hash_on"}},
		{"hash key without ring-hash", base + "services: [{name: a, load_balancer: {hash_on: {header: x}}}]", []string{"hash_on", "ring-hash"}},
		{"two hash keys", base + "services: [{name: a, load_balancer: {policy: ring-hash, hash_on: {header: x, source_ip: true}}}]", []string{"exactly one"}},
		{"explicit to unknown service", "outbound: {explicit: [{address: \"127.0.0.1:9001\", service: nope}]}", []string{"outbound.explicit[0].service", "nope"}},
		{"duplicate explicit address", "services: [{name: a}]\noutbound: {explicit: [{address: \"127.0.0.1:9001\", service: a}, {address: \"127.0.0.1:9001\", service: a}]}", []string{"explicit[1].address"}},
		{"negative timeout", base + "timeouts: {connect: -1s}", []string{"timeouts.connect", "positive"}},
		{"bad duration", base + "timeouts: {drain: soon}", []string{"drain"}},
		{"detection too long", base + "detection: {timeout: 30s}", []string{"detection.timeout", "server-speaks-first"}},
		{"bad opaque port", base + "detection: {opaque_ports: [70000]}", []string{"detection.opaque_ports[0]"}},
		{"bad inbound port", "tls: {cert_file: a, key_file: b, trust_bundle_file: c}\ninbound: {ports: [{port: 0}]}", []string{"inbound.ports[0].port"}},
		{"duplicate inbound port", "tls: {cert_file: a, key_file: b, trust_bundle_file: c}\ninbound: {ports: [{port: 80}, {port: 80}]}", []string{"inbound.ports[1].port", "twice"}},
		{"bad app host", "tls: {cert_file: a, key_file: b, trust_bundle_file: c}\ninbound: {app_host: localhost}", []string{"inbound.app_host"}},
		{"header limit", base + "max_header_bytes: 10", []string{"max_header_bytes"}},
		{"bad port mtls mode", "tls: {cert_file: a, key_file: b, trust_bundle_file: c}\ninbound: {ports: [{port: 80, mtls: STRICT}]}", []string{"inbound.ports[0].mtls", `"STRICT"`, "strict, permissive"}},
		{"bad default authorization", "tls: {cert_file: a, key_file: b, trust_bundle_file: c}\ninbound: {authorization: {default_policy: deny}}", []string{"inbound.authorization.default_policy", "deny-all"}},
		{"bad authorization rule", "tls: {cert_file: a, key_file: b, trust_bundle_file: c}\ninbound: {authorization: {policies: [{name: ns/p, action: Allow, rules: [{}, {to: {paths: [{type: Exact, value: api}]}}]}]}}", []string{"inbound.authorization.policies[0].rules[1].to.paths[0].value", "absolute path"}},
		{"unknown authorization field", "tls: {cert_file: a, key_file: b, trust_bundle_file: c}\ninbound: {authorization: {policies: [{name: ns/p, action: Allow, rules: [{source: {}}]}]}}", []string{"source"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml))
			if err == nil {
				_, err = Compile(cfg)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	cfg, err := Parse([]byte("admin: {address: x}\nservices: [{name: a, protocol: bad}, {name: \"\"}]"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(cfg)
	if err == nil || strings.Count(err.Error(), "\n") < 2 {
		t.Fatalf("want every problem on its own line, got %v", err)
	}
}

// FuzzParse: whatever a user or a control plane sends, parsing and
// compiling never panic, and a config that compiles also compiles again
// from its own JSON form.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			return
		}
		c, err := Compile(cfg)
		if err != nil {
			return
		}
		again, err := Compile(c.Source)
		if err != nil || again.Version != c.Version || len(again.Services) != len(c.Services) {
			t.Fatalf("recompiling a valid config failed: %v", err)
		}
	})
}

func TestDurationsAcceptGoSyntax(t *testing.T) {
	for in, want := range map[string]time.Duration{"300ms": 300 * time.Millisecond, "1m30s": 90 * time.Second, "2": 2 * time.Second, "0.5s": 500 * time.Millisecond} {
		cfg, err := Parse([]byte("outbound: {transparent_address: \"127.0.0.1:1\"}\ntimeouts: {drain: " + in + "}"))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		c, err := Compile(cfg)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if c.Timeouts.Drain != want {
			t.Errorf("%s: got %v, want %v", in, c.Timeouts.Drain, want)
		}
	}
}

func TestProxyPortsNeverForwarded(t *testing.T) {
	cfg, err := Parse([]byte(`tls: {cert_file: a, key_file: b, trust_bundle_file: c}
admin: {address: "0.0.0.0:4191"}
inbound: {address: "0.0.0.0:4143"}
outbound: {transparent_address: "127.0.0.1:4140"}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []uint16{4191, 4143, 4140} {
		if !c.Inbound.Port(p).Skip {
			t.Errorf("port %d of the proxy itself would be forwarded to the application", p)
		}
	}
	if c.Inbound.Port(8080).Skip {
		t.Error("an application port is skipped")
	}
	cfg, _ = Parse([]byte(`tls: {cert_file: a, key_file: b, trust_bundle_file: c}
inbound: {ports: [{port: 4191, protocol: http1}]}`))
	if _, err := Compile(cfg); err == nil || !strings.Contains(err.Error(), "4191") {
		t.Errorf("serving an application on the admin port was accepted: %v", err)
	}
}

// TestPortMTLSMode: a port's own mtls setting wins over
// inbound.require_mtls, both ways.
func TestPortMTLSMode(t *testing.T) {
	cases := []struct {
		requireMTLS bool
		mode        string
		refused     bool
		by          MTLSMode
	}{
		{false, "", false, MTLSDefault},
		{true, "", true, MTLSDefault},
		{false, "strict", true, MTLSStrict},
		{true, "strict", true, MTLSStrict},
		{false, "permissive", false, MTLSPermissive},
		{true, "permissive", false, MTLSPermissive},
	}
	for _, tc := range cases {
		y := fmt.Sprintf("tls: {cert_file: a, key_file: b, trust_bundle_file: c}\ninbound: {require_mtls: %v, ports: [{port: 8080, mtls: %q}]}", tc.requireMTLS, tc.mode)
		cfg, err := Parse([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		c, err := Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if refused, by := c.Inbound.PlaintextRefused(8080); refused != tc.refused || by != tc.by {
			t.Errorf("require_mtls %v, port mtls %q: refused %v by %q, want %v by %q", tc.requireMTLS, tc.mode, refused, by, tc.refused, tc.by)
		}
		if refused, _ := c.Inbound.PlaintextRefused(9090); refused != tc.requireMTLS {
			t.Errorf("require_mtls %v: an unlisted port refuses plaintext: %v", tc.requireMTLS, refused)
		}
	}
}

// TestAuthorizationCompiled: the inbound side always carries an
// authorizer, allow-all without an authorization section.
func TestAuthorizationCompiled(t *testing.T) {
	for y, want := range map[string]string{
		"tls: {cert_file: a, key_file: b, trust_bundle_file: c}\ninbound: {}":                                          "allow-all",
		"tls: {cert_file: a, key_file: b, trust_bundle_file: c}\ninbound: {authorization: {default_policy: deny-all}}": "deny-all",
	} {
		cfg, err := Parse([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		c, err := Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if c.Inbound.Authz == nil || c.Inbound.Authz.Describe().DefaultPolicy != want {
			t.Errorf("%s: authorizer %+v, want default %s", y, c.Inbound.Authz.Describe(), want)
		}
	}
}
