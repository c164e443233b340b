package configversion_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/proxy/configversion"
)

func TestOf(t *testing.T) {
	web := &weftv1.ProxyConfig{Services: []*weftv1.Service{{Name: "web", Endpoints: []*weftv1.Endpoint{{Address: "10.0.0.1:80"}}}}}
	cases := []struct {
		name    string
		a, b    *weftv1.ProxyConfig
		same    bool
		wantErr string // of b
	}{
		{"nil is the empty config", nil, &weftv1.ProxyConfig{}, true, ""},
		{"same content", &weftv1.ProxyConfig{Version: "v1"}, &weftv1.ProxyConfig{Version: "v1"}, true, ""},
		{"different content", &weftv1.ProxyConfig{Version: "v1"}, &weftv1.ProxyConfig{Version: "v2"}, false, ""},
		{"service order counts", &weftv1.ProxyConfig{Services: []*weftv1.Service{{Name: "a"}, {Name: "b"}}},
			&weftv1.ProxyConfig{Services: []*weftv1.Service{{Name: "b"}, {Name: "a"}}}, false, ""},
		{"a copy", web, proto.Clone(web).(*weftv1.ProxyConfig), true, ""},
		{"an endpoint changed", web, &weftv1.ProxyConfig{Services: []*weftv1.Service{{Name: "web", Endpoints: []*weftv1.Endpoint{{Address: "10.0.0.2:80"}}}}}, false, ""},
		{"not UTF-8", &weftv1.ProxyConfig{}, &weftv1.ProxyConfig{Version: "\xff"}, false, "encoding the config"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			va, err := configversion.Of(tc.a)
			if err != nil {
				t.Fatalf("Of(a): %v", err)
			}
			if len(va) != configversion.Len || strings.Trim(va, "0123456789abcdef") != "" {
				t.Errorf("version %q: want %d hex digits", va, configversion.Len)
			}
			vb, err := configversion.Of(tc.b)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Of(b) = %q, %v; want an error naming %q", vb, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Of(b): %v", err)
			}
			if (va == vb) != tc.same {
				t.Errorf("versions %q and %q: same = %v, want %v", va, vb, va == vb, tc.same)
			}
		})
	}
}
