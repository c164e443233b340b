package universal

import (
	"context"
	"io"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/command"
)

// TestRegisterFlags: weft-proxy run refuses registration flags that make
// no sense, naming the flag, before it starts anything.
func TestRegisterFlags(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	cp := func(more ...string) []string {
		return append([]string{"--register", "--control-plane", "127.0.0.1:1", "--node-id", "web-1"}, more...)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"valid: fails later, on the missing bootstrap file", cp("--port", "http=8080/http1", "--port", "9090", "--label", "app=web",
			"--health-check", "http:/healthz", "--address", "10.1.0.7", "--inbound-port", "4143"), "bootstrap config"},
		{"valid without ports when nothing is checked", cp("--health-check", "none"), "bootstrap config"},
		{"register without a control plane", []string{"--register", "--port", "http=8080"}, "--register needs --control-plane"},
		{"a port without register", []string{"--control-plane", "127.0.0.1:1", "--port", "http=8080"}, "--port describes the workload to register"},
		{"port 0", cp("--port", "http=0"), `"0" is not a port`},
		{"port not a number", cp("--port", "http=web"), `"web" is not a port`},
		{"bad port name", cp("--port", "HTTP=8080"), `"HTTP" is not a port name`},
		{"unknown protocol", cp("--port", "http=8080/http3"), `unknown protocol "http3"`},
		{"port twice", cp("--port", "http=8080", "--port", "admin=8080"), "given twice"},
		{"label without value", cp("--port", "8080", "--label", "app"), "--label \"app\""},
		{"unknown health check", cp("--port", "8080", "--health-check", "grpc"), "--health-check"},
		{"tcp check without ports", cp(), "give them with --port"},
		{"address with a zone", cp("--port", "8080", "--address", "fe80::1%eth0"), "--address"},
		{"zero interval", cp("--port", "8080", "--health-interval", "0s"), "--health-interval"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := command.New()
			// --cores as it is: the test process's GOMAXPROCS stays.
			args := append([]string{"run", "--config", missing, "--log-level", "error", "--cores", strconv.Itoa(runtime.GOMAXPROCS(0))}, tc.args...)
			root.SetArgs(args)
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := root.ExecuteContext(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("weft-proxy %s: %v, want an error containing %q", strings.Join(args, " "), err, tc.want)
			}
		})
	}
}
