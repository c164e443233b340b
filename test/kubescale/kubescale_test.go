// Package kubescale measures the control plane's Kubernetes source at the
// size issue 6 names, on a real kube-apiserver: 1,000 Services and 10,000
// endpoints (1,000 EndpointSlices of 10) created through the API, a proxy
// watching 50 of them, the time until its config has them all, the time
// an EndpointSlice change takes to reach it, and the control plane's
// memory. Run it with `make bench-kube-scale` (or go test -run '^$' -bench
// KubeScale -benchtime 1x ./test/kubescale); plain `go test` only checks
// that it builds.
//
// The endpoints have no Pods behind them (kube-controller-manager's
// EndpointSlice controller is off: the slices are written directly): they
// are plaintext endpoints, with no identity looked up from a Pod.
package kubescale

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	discoveryv1api "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/attest/kubetoken"
	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/control/identity"
	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/server"
	"github.com/weft-mesh/weft/internal/control/source/kube"
	"github.com/weft-mesh/weft/internal/k8stest"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/configclient"
	"github.com/weft-mesh/weft/internal/proxy/renew"
)

// Size of the mesh, and of the proxy's view of it.
const (
	services     = 1000
	perService   = 10
	destinations = 50
	changes      = 20
	creators     = 8 // parallel clients creating the objects
	ns           = "scale"
)

func svcName(i int) string { return fmt.Sprintf("svc-%d", i) }

func endpointAddress(i, j int) string { return fmt.Sprintf("172.%d.%d.%d", 16+i/256, i%256, j+1) }

func service(i int) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: svcName(i), Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": svcName(i)},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), AppProtocol: ptr.To("http")}},
		},
	}
}

func slice(i int) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: svcName(i) + "-1", Namespace: ns,
			Labels: map[string]string{discoveryv1.LabelServiceName: svcName(i), discoveryv1.LabelManagedBy: "kubescale.weft.dev"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	for j := range perService {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{endpointAddress(i, j)},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
		})
	}
	return s
}

// watched is the proxy's view: 50 services spread over the 1,000.
func watched() []int {
	out := make([]int, destinations)
	for k := range out {
		out[k] = k * (services / destinations)
	}
	return out
}

// proxyView is what the proxy has received, and a signal on each config.
type proxyView struct {
	mu      sync.Mutex
	cfg     *weftv1.ProxyConfig
	changed chan struct{}
}

func (p *proxyView) set(cfg *weftv1.ProxyConfig) {
	p.mu.Lock()
	p.cfg = cfg
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// endpoints returns the addresses of service in the latest config.
func (p *proxyView) endpoints(service string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.cfg.GetServices() {
		if s.GetName() == service {
			var out []string
			for _, e := range s.GetEndpoints() {
				out = append(out, e.GetAddress())
			}
			return out
		}
	}
	return nil
}

// waitUntil waits for cond to hold after each config the proxy gets.
func (p *proxyView) waitUntil(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-p.changed:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("waiting for the proxy's config: %w", ctx.Err())
		}
	}
	return nil
}

// selfMemory returns the Go heap in use after a collection and the
// process's VmRSS, in MiB.
func selfMemory(tb testing.TB) (heap, rss float64) {
	tb.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, _ := strings.Cut(sc.Text(), ":"); k == "VmRSS" {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			rss = kb / 1024
		}
	}
	return float64(ms.HeapInuse) / (1 << 20), rss
}

// createAll creates the services and their slices with parallel clients,
// the objects of service i by creator i%creators.
func createAll(ctx context.Context, cs kubernetes.Interface) error {
	errs := make(chan error, creators)
	for w := range creators {
		go func() {
			for i := w; i < services; i += creators {
				if _, err := cs.CoreV1().Services(ns).Create(ctx, service(i), metav1.CreateOptions{}); err != nil {
					errs <- fmt.Errorf("creating service %s: %w", svcName(i), err)
					return
				}
				if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice(i), metav1.CreateOptions{}); err != nil {
					errs <- fmt.Errorf("creating the EndpointSlice of %s: %w", svcName(i), err)
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range creators {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// startControlPlane runs internal/control/server with the kube source in
// this process, as `weft control --kubernetes` does, until ctx ends.
func startControlPlane(ctx context.Context, b *testing.B, env *k8stest.Env) (addr string, auth *identity.Authority, done <-chan error) {
	b.Helper()
	log := slog.New(slog.DiscardHandler)
	src, err := kube.New(kube.Options{Config: env.Config, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	auth, err = identity.OpenAuthority(filepath.Join(b.TempDir(), "ca"), ca.Options{TrustDomain: "weft.local"}, log)
	if err != nil {
		b.Fatal(err)
	}
	verifier, err := kubetoken.New(env.Clientset.AuthenticationV1(), spiffeid.RequireTrustDomainFromString("weft.local"), "weft")
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- server.Run(ctx, server.Options{Listener: ln, Sources: []model.Source{src}, Logger: log, Ready: ready,
			Identity: &identity.Options{Authority: auth, Kube: verifier, Logger: log}})
	}()
	for _, ch := range []<-chan struct{}{ready, src.Synced()} {
		select {
		case <-ch:
		case err := <-errc:
			b.Fatalf("control plane stopped: %v", err)
		case <-time.After(time.Minute):
			b.Fatal("control plane not ready after a minute")
		}
	}
	return ln.Addr().String(), auth, errc
}

// connectProxy gets a certificate for a ServiceAccount token of
// scale/client and opens a Discovery stream watching the services.
func connectProxy(ctx context.Context, b *testing.B, env *k8stest.Env, addr string, auth *identity.Authority, view *proxyView) <-chan error {
	b.Helper()
	if _, err := env.Clientset.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "client"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	tr, err := env.Clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "client", &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{Audiences: []string{"weft"}, ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	tokenFile := filepath.Join(b.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(tr.Status.Token), 0o600); err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	rc, err := renew.New(renew.Options{Address: addr, Anchors: auth.Current().Anchors(), TrustDomain: "weft.local", TokenFile: tokenFile, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := rc.Obtain(ctx); err != nil {
		b.Fatalf("getting a certificate with the ServiceAccount token: %v", err)
	}
	var watch []string
	for _, i := range watched() {
		watch = append(watch, ns+"/"+svcName(i))
	}
	client, err := configclient.New(configclient.Options{
		Address: addr,
		Dial:    []grpc.DialOption{grpc.WithTransportCredentials(rc.Credentials())},
		Node: &discoveryv1api.Node{
			Identity: "spiffe://weft.local/ns/" + ns + "/sa/client", Id: "client-1",
			WatchedServices: watch, Tls: &weftv1.TLS{Issued: true},
		},
		Backoff: configclient.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		Logger:  quiet,
		Apply: func(_ context.Context, cfg *weftv1.ProxyConfig, _ string) error {
			if _, err := config.Compile(cfg); err != nil {
				return fmt.Errorf("compiling the proxy's config: %w", err)
			}
			view.set(cfg)
			return nil
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- client.Run(ctx) }()
	return done
}

// BenchmarkKubeScale: see the package documentation. It runs once,
// whatever b.N; use -benchtime 1x.
func BenchmarkKubeScale(b *testing.B) {
	env := k8stest.Start(b, k8stest.Options{
		GatewayAPI: true,
		CRDPaths:   []string{filepath.Join("..", "..", "deploy", "crds")},
		// For ServiceAccount tokens (the proxy's certificate) only: the
		// EndpointSlice controller is off, the benchmark writes the slices.
		ControllerManager:     true,
		ControllerManagerArgs: map[string][]string{"controllers": {"serviceaccount,serviceaccount-token"}},
		// 1,000 ClusterIPs do not fit envtest's default /24.
		APIServerArgs: map[string][]string{"service-cluster-ip-range": {"10.96.0.0/16"}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if _, err := env.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	addr, auth, cpDone := startControlPlane(runCtx, b, env)
	view := &proxyView{changed: make(chan struct{}, 1)}
	proxyDone := connectProxy(runCtx, b, env, addr, auth, view)
	defer func() {
		stop()
		if err := <-proxyDone; err != nil && runCtx.Err() == nil {
			b.Errorf("proxy stream: %v", err)
		}
		if err := <-cpDone; err != nil {
			b.Errorf("control plane: %v", err)
		}
	}()
	heap0, rss0 := selfMemory(b)

	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 10000, 10000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	if err := createAll(ctx, cs); err != nil {
		b.Fatal(err)
	}
	created := time.Since(start)
	all := func() bool {
		for _, i := range watched() {
			if len(view.endpoints(svcName(i)+"."+ns+":80")) != perService {
				return false
			}
		}
		return true
	}
	if err := view.waitUntil(ctx, all); err != nil {
		b.Fatal(err)
	}
	converged := time.Since(start)

	// One EndpointSlice change at a time: the first endpoint of a watched
	// service moves to a new address.
	var lat []time.Duration
	for k := range changes {
		i := watched()[k%destinations]
		s, err := cs.DiscoveryV1().EndpointSlices(ns).Get(ctx, svcName(i)+"-1", metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		addr := fmt.Sprintf("172.31.%d.%d", k/250, k%250+1)
		s.Endpoints[0].Addresses = []string{addr}
		t0 := time.Now()
		if _, err := cs.DiscoveryV1().EndpointSlices(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		name := svcName(i) + "." + ns + ":80"
		if err := view.waitUntil(ctx, func() bool {
			return slices.ContainsFunc(view.endpoints(name), func(a string) bool { return strings.HasPrefix(a, addr+":") })
		}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1)+0.5)].Microseconds()) / 1000 }

	time.Sleep(2 * time.Second) // settle
	heap, rss := selfMemory(b)
	b.ReportMetric(created.Seconds(), "s-create")
	b.ReportMetric(converged.Seconds(), "s-proxy-has-all")
	b.ReportMetric(q(0.5), "ms-change-p50")
	b.ReportMetric(q(0.99), "ms-change-p99")
	b.ReportMetric(heap, "MiB-heap")
	b.ReportMetric(rss, "MiB-rss")
	b.ReportMetric(heap-heap0, "MiB-heap-growth")
	b.ReportMetric(rss-rss0, "MiB-rss-growth")
	b.Logf("%d services, %d endpoints: created in %v, the proxy had its %d services in %v; %d slice changes p50 %.1fms p99 %.1fms; heap in use %.1f MiB (%.1f before), RSS %.1f MiB (%.1f before)",
		services, services*perService, created.Round(time.Millisecond), destinations, converged.Round(time.Millisecond),
		changes, q(0.5), q(0.99), heap, heap0, rss, rss0)
}
