package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/ratelimit"
)

const inboundTLS = "tls: {cert_file: a, key_file: b, trust_bundle_file: c}\n"

// TestInboundRateLimit: an inbound port's rate_limit compiles to its config
// and a live limiter; the total is optional there when a per-identity limit
// is set.
func TestInboundRateLimit(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want *ratelimit.Config // nil: the port has no limiter
	}{
		{"none", "inbound: {ports: [{port: 8080}]}", nil},
		{"total only", "inbound: {ports: [{port: 8080, rate_limit: {requests_per_second: 100, burst: 20}}]}",
			&ratelimit.Config{RequestsPerSecond: 100, Burst: 20}},
		{"per identity only", "inbound: {ports: [{port: 8080, rate_limit: {per_identity_requests_per_second: 5}}]}",
			&ratelimit.Config{PerIdentityRequestsPerSecond: 5}},
		{"both", "inbound: {ports: [{port: 8080, rate_limit: {requests_per_second: 100, per_identity_requests_per_second: 5, per_identity_burst: 2}}]}",
			&ratelimit.Config{RequestsPerSecond: 100, PerIdentityRequestsPerSecond: 5, PerIdentityBurst: 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(inboundTLS + tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			c, err := Compile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			p := c.Inbound.Port(8080)
			if tc.want == nil {
				if p.RateLimit != nil || p.Limiter != nil {
					t.Fatalf("port has a rate limit %+v, want none", p.RateLimit)
				}
				return
			}
			if p.RateLimit == nil || !reflect.DeepEqual(*p.RateLimit, *tc.want) {
				t.Errorf("rate limit %+v, want %+v", p.RateLimit, tc.want)
			}
			if p.Limiter == nil {
				t.Fatal("no limiter built")
			}
			if unlisted := c.Inbound.Port(9090); unlisted.Limiter != nil {
				t.Error("an unlisted port is rate limited")
			}
		})
	}
}

func TestRateLimitErrorsNameTheField(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"inbound empty", inboundTLS + "inbound: {ports: [{port: 80}, {port: 81, rate_limit: {}}]}",
			[]string{"inbound.ports[1].rate_limit", "sets no limit"}},
		{"inbound negative total", inboundTLS + "inbound: {ports: [{port: 80, rate_limit: {requests_per_second: -1}}]}",
			[]string{"inbound.ports[0].rate_limit", "RequestsPerSecond is -1"}},
		{"inbound burst without total", inboundTLS + "inbound: {ports: [{port: 80, rate_limit: {burst: 3, per_identity_requests_per_second: 1}}]}",
			[]string{"inbound.ports[0].rate_limit", "no total limit"}},
		{"inbound identity burst without rate", inboundTLS + "inbound: {ports: [{port: 80, rate_limit: {requests_per_second: 1, per_identity_burst: 3}}]}",
			[]string{"inbound.ports[0].rate_limit", "per-identity limiting is off"}},
		{"route without total", "outbound: {transparent_address: \"127.0.0.1:4140\"}\nservices: [{name: a, routes: [{route: ns/r, rate_limit: {per_identity_requests_per_second: 1}}]}]",
			[]string{"services[0].routes[0].rate_limit.requests_per_second", "inbound.ports[].rate_limit"}},
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
