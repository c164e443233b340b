package configclient

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/proxy/configversion"
)

func service(name, endpoint string) *weftv1.Service {
	return &weftv1.Service{Name: name, Endpoints: []*weftv1.Endpoint{{Address: endpoint}}}
}

func config(label string, services ...*weftv1.Service) *weftv1.ProxyConfig {
	return &weftv1.ProxyConfig{Version: label, Outbound: &weftv1.Outbound{TransparentAddress: "127.0.0.1:4140"}, Services: services}
}

func versionOf(t *testing.T, c *weftv1.ProxyConfig) string {
	t.Helper()
	v, err := configversion.Of(c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRebuild(t *testing.T) {
	a, b, c := service("a", "10.0.0.1:80"), service("b", "10.0.0.2:80"), service("c", "10.0.0.3:80")
	b2, d := service("b", "10.0.0.22:80"), service("d", "10.0.0.4:80")
	base := config("v1", a, b, c)
	// incremental is the response the control plane sends for want.
	incremental := func(want *weftv1.ProxyConfig, updated []*weftv1.Service, removed ...string) *discoveryv1.DiscoveryResponse {
		rest := proto.Clone(want).(*weftv1.ProxyConfig)
		rest.Services = nil
		return &discoveryv1.DiscoveryResponse{Version: versionOf(t, want), BaseVersion: versionOf(t, base), Config: rest,
			ServicesUpdated: updated, ServicesRemoved: removed}
	}
	cases := []struct {
		name    string
		resp    *discoveryv1.DiscoveryResponse
		running string // default: base's version
		base    *weftv1.ProxyConfig
		want    *weftv1.ProxyConfig // nil: an error naming wantErr
		wantErr string
	}{
		{"one service changed", incremental(config("v1", a, b2, c), []*weftv1.Service{b2}), "", base, config("v1", a, b2, c), ""},
		{"a service added, sorted by name", incremental(config("v1", a, b, c, d), []*weftv1.Service{d}), "", config("v1", a, b, c), config("v1", a, b, c, d), ""},
		{"a service removed", incremental(config("v1", a, c), nil, "b"), "", base, config("v1", a, c), ""},
		{"only another field", incremental(config("v2", a, b, c), nil), "", base, config("v2", a, b, c), ""},
		{"a base that is not sorted", incremental(config("v1", a, b2, c), []*weftv1.Service{b2}), "", config("v1", c, a, b), config("v1", a, b2, c), ""},
		{"another base", incremental(config("v1", a, b2, c), []*weftv1.Service{b2}), "0123456789abcdef", base, nil, "does not run"},
		{"no config yet", incremental(config("v1", a, b2, c), []*weftv1.Service{b2}), "", nil, nil, "does not run"},
		{"the result does not hash to version", func() *discoveryv1.DiscoveryResponse {
			r := incremental(config("v1", a, b2, c), []*weftv1.Service{b2})
			r.Version = "0123456789abcdef"
			return r
		}(), "", base, nil, "not 0123456789abcdef"},
		{"a removal of a service the base lacks", incremental(config("v1", a, b, c), nil, "x"), "", base, nil, `"x"`},
		{"a service both updated and removed", incremental(config("v1", a, b2, c), []*weftv1.Service{b2}, "b"), "", base, nil, `"b"`},
		{"a service updated twice", incremental(config("v1", a, b2, c), []*weftv1.Service{b2, b2}), "", base, nil, "twice"},
		{"services in config", func() *discoveryv1.DiscoveryResponse {
			r := incremental(config("v1", a, b2, c), []*weftv1.Service{b2})
			r.Config.Services = []*weftv1.Service{a}
			return r
		}(), "", base, nil, "services_updated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			running := tc.running
			if running == "" && tc.base != nil {
				running = tc.resp.GetBaseVersion()
			}
			before := proto.Clone(tc.base)
			got, err := rebuild(tc.resp, running, tc.base)
			if tc.want == nil {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("rebuild: %v, want an error naming %q", err, tc.wantErr)
				}
				if tc.wantErr == "does not run" && !errors.Is(err, errBaseUnknown) {
					t.Errorf("error %v is not errBaseUnknown", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("rebuild: %v", err)
			}
			if !proto.Equal(got, tc.want) {
				t.Errorf("rebuilt\n %v\nwant\n %v", got, tc.want)
			}
			if !proto.Equal(tc.base, before) {
				t.Errorf("rebuild modified the base")
			}
		})
	}
}
