// Package scale measures the control plane at the size issue 5 names: 1,000
// services and 10,000 endpoints, many proxies streaming their configs, and
// how fast a change reaches all of them. It runs `weft control` and
// weft-proxy as real processes, with real gRPC clients as the proxies'
// streams. Run it with `make bench-scale` (or go test -run '^$' -bench .
// ./test/scale); plain `go test` only checks that it builds.
package scale

import (
	"bufio"
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/meshtest"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/jointoken"
	"github.com/weft-mesh/weft/internal/proxy/configclient"
	"github.com/weft-mesh/weft/internal/proxy/renew"
	"github.com/weft-mesh/weft/internal/proxy/tlsid"
)

// Size of the mesh, and of each proxy's view of it.
const (
	services     = 1000
	perService   = 10
	destinations = 50
)

func env(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// serviceYAML is one service and its workloads, one file per service.
func serviceYAML(i, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Service\nmetadata: {name: svc-%d, namespace: default}\nspec:\n  selector: {app: svc-%d}\n  ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]\n", i, i)
	for j := range n {
		fmt.Fprintf(&b, "---\napiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: svc-%d-%d, namespace: default, labels: {app: svc-%d}}\nspec: {address: 10.%d.%d.%d, serviceAccount: svc-%d, ports: [{name: http, port: 8080}], proxy: {inboundPort: 4143}}\n",
			i, j, i, i/256, i%256, j+1, i)
	}
	return b.String()
}

func write(tb testing.TB, path, content string) { meshtest.WriteFile(tb, path, content) }

func build(tb testing.TB, dir string) (weft, proxy string) {
	meshtest.Build(tb, "../..", dir)
	return filepath.Join(dir, "weft"), filepath.Join(dir, "weft-proxy")
}

func freeAddr(tb testing.TB) string { return fmt.Sprintf("127.0.0.1:%d", meshtest.FreePort(tb)) }

// rss returns VmRSS and VmHWM of a process, in MiB.
func rss(tb testing.TB, pid int) (cur, peak float64) {
	tb.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "VmRSS":
			cur = kb / 1024
		case "VmHWM":
			peak = kb / 1024
		}
	}
	return cur, peak
}

func anchors(tb testing.TB, path string) []*x509.Certificate {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	certs, err := tlsid.ParseCertificates(b)
	if err != nil {
		tb.Fatal(err)
	}
	return certs
}

// stream is one proxy's config stream, remembering when it saw each count of
// endpoints of svc-0.
type stream struct {
	mu   sync.Mutex
	seen map[int]time.Time
}

func (s *stream) at(n int) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.seen[n]
	return t, ok
}

// BenchmarkControlPlaneScale: weft control over 1,000 services and 10,000
// workloads, WEFT_SCALE_PROXIES (default 200) streams each watching 50
// services (svc-0 among them), and WEFT_SCALE_CHANGES (default 10) changes of
// svc-0's endpoints. Reported: the control plane's RSS and peak RSS, the
// time for a change to reach every stream (p50, p99 over streams and
// changes), and a real weft-proxy's RSS with 50 destinations against the
// same proxy with one.
func BenchmarkControlPlaneScale(b *testing.B) {
	proxies, changes := env("WEFT_SCALE_PROXIES", 200), env("WEFT_SCALE_CHANGES", 10)
	tmp := b.TempDir()
	weftBin, proxyBin := build(b, tmp)
	meshDir, dataDir := filepath.Join(tmp, "mesh"), filepath.Join(tmp, "data")
	os.Mkdir(meshDir, 0o700)
	for i := range services {
		write(b, filepath.Join(meshDir, fmt.Sprintf("svc-%d.yaml", i)), serviceYAML(i, perService))
	}
	addr := freeAddr(b)
	cp := exec.Command(weftBin, "control", "--dir", meshDir, "--data-dir", dataDir, "--listen", addr, "--log-level", "warn")
	cp.Stderr = os.Stderr
	if err := cp.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cp.Process.Kill(); cp.Wait() }()
	anchorFile := filepath.Join(dataDir, "ca", "anchor.crt")
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			if _, err := os.Stat(anchorFile); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("weft control did not start")
		}
	}
	quiet := slog.New(slog.DiscardHandler)
	tokens, err := jointoken.Open(dataDir, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streams := make([]*stream, proxies)
	var wg sync.WaitGroup
	start := time.Now()
	for k := range proxies {
		id := spiffeid.RequireFromString(fmt.Sprintf("spiffe://weft.local/ns/default/sa/client-%d", k))
		tok, _, err := tokens.Create(jointoken.CreateOptions{Identity: id, TTL: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		rc, err := renew.New(renew.Options{Address: addr, Anchors: anchors(b, anchorFile), JoinToken: tok, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rc.Obtain(ctx); err != nil {
			b.Fatal(err)
		}
		watch := []string{"default/svc-0"}
		for m := 1; len(watch) < destinations; m++ {
			if s := fmt.Sprintf("default/svc-%d", (k*7+m*13)%services); s != "default/svc-0" && !slices.Contains(watch, s) {
				watch = append(watch, s)
			}
		}
		st := &stream{seen: map[int]time.Time{}}
		streams[k] = st
		cl, err := configclient.New(configclient.Options{
			Address: addr,
			Dial:    []grpc.DialOption{grpc.WithTransportCredentials(rc.Credentials())},
			Logger:  quiet,
			Node:    &discoveryv1.Node{Identity: id.String(), Id: fmt.Sprintf("client-%d", k), Namespace: "default", WatchedServices: watch, Tls: &weftv1.TLS{Issued: true}},
			Apply: func(_ context.Context, cfg *weftv1.ProxyConfig, _ string) error {
				now := time.Now()
				for _, s := range cfg.GetServices() {
					if strings.HasPrefix(s.GetName(), "svc-0.default") {
						st.mu.Lock()
						if _, ok := st.seen[len(s.GetEndpoints())]; !ok {
							st.seen[len(s.GetEndpoints())] = now
						}
						st.mu.Unlock()
					}
				}
				return nil
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() { cl.Run(ctx) })
	}
	waitAll := func(n int, deadline time.Duration) {
		for end := time.Now().Add(deadline); ; time.Sleep(5 * time.Millisecond) {
			all := true
			for _, s := range streams {
				if _, ok := s.at(n); !ok {
					all = false
					break
				}
			}
			if all {
				return
			}
			if time.Now().After(end) {
				b.Fatalf("not every stream saw svc-0 with %d endpoints within %v", n, deadline)
			}
		}
	}
	waitAll(perService, 2*time.Minute)
	b.ReportMetric(time.Since(start).Seconds(), "s-connect-all")

	var lat []time.Duration
	b.ResetTimer()
	for c := range changes {
		n := perService + 1 + c // a new count each time: every stream must see it
		t0 := time.Now()
		write(b, filepath.Join(meshDir, "svc-0.yaml"), serviceYAML(0, n))
		waitAll(n, time.Minute)
		for _, s := range streams {
			at, _ := s.at(n)
			lat = append(lat, at.Sub(t0))
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	cur, peak := rss(b, cp.Process.Pid)
	b.ReportMetric(q(0.5), "ms-push-p50")
	b.ReportMetric(q(0.99), "ms-push-p99")
	b.ReportMetric(cur, "MiB-cp-rss")
	b.ReportMetric(peak, "MiB-cp-peak-rss")
	cancel()
	wg.Wait()

	// A real weft-proxy with 50 destinations, against the same proxy with
	// one, measured in this run.
	proxyRSS := func(watch []string) float64 {
		id := spiffeid.RequireFromString(fmt.Sprintf("spiffe://weft.local/ns/default/sa/p-%d", len(watch)))
		tok, _, err := tokens.Create(jointoken.CreateOptions{Identity: id, TTL: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		tokFile, boot := filepath.Join(tmp, id.Path()[1:len(id.Path())]+".tok"), filepath.Join(tmp, fmt.Sprintf("p%d.yaml", len(watch)))
		os.MkdirAll(filepath.Dir(tokFile), 0o700)
		write(b, tokFile, tok)
		admin := freeAddr(b)
		write(b, boot, fmt.Sprintf("admin: {address: %q}\n", admin))
		args := []string{"run", "--config", boot, "--control-plane", addr, "--node-id", id.Path(), "--join-token-file", tokFile, "--trust-bundle", anchorFile, "--log-level", "warn", "--explicit-base", strconv.Itoa(20000 + 100*len(watch))}
		for _, w := range watch {
			args = append(args, "--watch", w)
		}
		p := exec.Command(proxyBin, args...)
		p.Stderr = os.Stderr
		if err := p.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { p.Process.Kill(); p.Wait() }()
		for end := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			resp, err := http.Get("http://" + admin + "/ready")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(end) {
				b.Fatalf("weft-proxy watching %d services never became ready", len(watch))
			}
		}
		time.Sleep(2 * time.Second) // settle: idle memory
		cur, _ := rss(b, p.Process.Pid)
		return cur
	}
	var watch50 []string
	for i := range destinations {
		watch50 = append(watch50, fmt.Sprintf("default/svc-%d", i+1))
	}
	one, fifty := proxyRSS(watch50[:1]), proxyRSS(watch50)
	b.ReportMetric(one, "MiB-proxy-rss-1-dest")
	b.ReportMetric(fifty, "MiB-proxy-rss-50-dest")
	b.Logf("control plane: %d services, %d workloads, %d streams; push p50 %.1f ms, p99 %.1f ms; RSS %.0f MiB (peak %.0f); weft-proxy RSS %.1f MiB with 50 destinations vs %.1f MiB with one (%.2fx)",
		services, services*perService, proxies, q(0.5), q(0.99), cur, peak, fifty, one, fifty/one)
}
