package kube_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/control/attest/kubetoken"
	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/control/identity"
	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/server"
	"github.com/weft-mesh/weft/internal/control/source/kube"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/configclient"
	"github.com/weft-mesh/weft/internal/proxy/renew"
	policyapi "github.com/weft-mesh/weft/pkg/apis/policy/v1alpha1"
)

// controlPlane is internal/control/server run with the kube source and an
// Identity API that checks pods' ServiceAccount tokens with TokenReview.
type controlPlane struct {
	addr string
	auth *identity.Authority
}

func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	env := k8s.Get(t)
	log := testLogger(t)
	src, err := kube.New(kube.Options{Config: env.Config, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := identity.OpenAuthority(filepath.Join(t.TempDir(), "ca"), ca.Options{TrustDomain: "weft.local"}, log)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := kubetoken.New(env.Clientset.AuthenticationV1(), spiffeid.RequireTrustDomainFromString("weft.local"), "weft")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Options{Listener: ln, Sources: []model.Source{src}, Logger: log, Ready: ready,
			Identity: &identity.Options{Authority: auth, Kube: verifier, Logger: log}})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("control plane: %v", err)
		}
	})
	for _, ch := range []<-chan struct{}{ready, src.Synced()} {
		select {
		case <-ch:
		case err := <-done:
			t.Fatalf("control plane stopped: %v", err)
		case <-time.After(time.Minute):
			t.Fatal("control plane not ready after a minute")
		}
	}
	return &controlPlane{addr: ln.Addr().String(), auth: auth}
}

// proxyStream is a proxy's Discovery stream: the configs it receives.
type proxyStream struct {
	mu   sync.Mutex
	last *weftv1.ProxyConfig
}

func (p *proxyStream) config() *weftv1.ProxyConfig {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// saToken returns a token of ServiceAccount sa of the cluster's namespace
// for audience weft, as the kubelet projects it into a pod.
func (c *cluster) saToken(sa string) string {
	c.t.Helper()
	ctx := c.t.Context()
	_, err := c.cs.CoreV1().ServiceAccounts(c.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		c.t.Fatal(err)
	}
	exp := int64(3600)
	tr, err := c.cs.CoreV1().ServiceAccounts(c.ns).CreateToken(ctx, sa, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{Audiences: []string{"weft"}, ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	return tr.Status.Token
}

// connectProxy plays the proxy of pod nodeID (ServiceAccount sa): a
// certificate from the Identity API for its projected token, then a
// Discovery stream over mTLS, watching watch.
func connectProxy(t *testing.T, addr string, anchors []*x509.Certificate, c *cluster, sa, nodeID string, watch ...string) *proxyStream {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(c.saToken(sa)), 0o600); err != nil {
		t.Fatal(err)
	}
	rc, err := renew.New(renew.Options{Address: addr, Anchors: anchors, TrustDomain: "weft.local", TokenFile: tokenFile, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Obtain(t.Context()); err != nil {
		t.Fatalf("getting a certificate with the ServiceAccount token: %v", err)
	}
	ps := &proxyStream{}
	client, err := configclient.New(configclient.Options{
		Address: addr,
		Dial:    []grpc.DialOption{grpc.WithTransportCredentials(rc.Credentials())},
		Node: &discoveryv1.Node{
			Identity:        "spiffe://weft.local/ns/" + c.ns + "/sa/" + sa,
			Id:              nodeID,
			WatchedServices: watch,
			Tls:             &weftv1.TLS{Issued: true},
		},
		Backoff: configclient.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		Logger:  testLogger(t),
		Apply: func(_ context.Context, cfg *weftv1.ProxyConfig, _ string) error {
			if _, err := config.Compile(cfg); err != nil {
				return err
			}
			ps.mu.Lock()
			ps.last = cfg
			ps.mu.Unlock()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- client.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ps
}

// proxyEndpoints renders the endpoints of a service in a proxy's config:
// "address identity" per line.
func proxyEndpoints(cfg *weftv1.ProxyConfig, service string) string {
	if cfg == nil {
		return "(no config)"
	}
	for _, s := range cfg.GetServices() {
		if s.GetName() != service {
			continue
		}
		var lines []string
		for _, e := range s.GetEndpoints() {
			lines = append(lines, e.GetAddress()+" "+or(e.GetIdentity(), "plaintext"))
		}
		return strings.Join(lines, "\n")
	}
	return "(no service " + service + ")"
}

// TestEndpointSliceChangesReachAProxy: a proxy connected to the control
// plane, with a certificate it got for its ServiceAccount token, sees the
// endpoints of the Service it calls follow the cluster's EndpointSlices.
func TestEndpointSliceChangesReachAProxy(t *testing.T) {
	cp := startControlPlane(t)
	c := newCluster(t, map[string]string{kube.InjectKey: "enabled"}, nil)
	c.service("web", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")})
	c.pod(podSpec{name: "web-1", sa: "web", ip: "10.1.0.1", labels: map[string]string{"app": "web"}, ready: true})
	stream := connectProxy(t, cp.addr, cp.auth.Current().Anchors(), c, "client", "client-1", c.ns+"/web")
	service := "web." + c.ns + ":80"
	id := "spiffe://weft.local/ns/" + c.ns + "/sa/web"
	for _, step := range []struct {
		name string
		do   func()
		want []string
	}{
		{"first config", func() {}, []string{"10.1.0.1:8080 " + id}},
		{"a second pod", func() {
			c.pod(podSpec{name: "web-2", sa: "web", ip: "10.1.0.2", labels: map[string]string{"app": "web"}, ready: true})
		}, []string{"10.1.0.1:8080 " + id, "10.1.0.2:8080 " + id}},
		{"the first one not ready", func() { c.setReady("web-1", false) }, []string{"10.1.0.2:8080 " + id}},
		{"a pod without a proxy", func() {
			c.pod(podSpec{name: "web-3", sa: "web", ip: "10.1.0.3", labels: map[string]string{"app": "web", kube.InjectKey: "disabled"}, ready: true})
		}, []string{"10.1.0.2:8080 " + id, "10.1.0.3:8080 plaintext"}},
		{"the first one ready again", func() { c.setReady("web-1", true) }, []string{"10.1.0.1:8080 " + id, "10.1.0.2:8080 " + id, "10.1.0.3:8080 plaintext"}},
	} {
		step.do()
		want := strings.Join(step.want, "\n")
		waitFor(t, step.name+" reaches the proxy", func() string {
			if got := proxyEndpoints(stream.config(), service); got != want {
				return fmt.Sprintf("the proxy's endpoints of %s:\n%s\nwant:\n%s", service, got, want)
			}
			return ""
		})
	}
}

// TestMeshedPodGetsItsPolicies: the proxy of a meshed pod gets the
// AuthorizationPolicy and MutualTLSPolicy that target its Service.
func TestMeshedPodGetsItsPolicies(t *testing.T) {
	cp := startControlPlane(t)
	c := newCluster(t, map[string]string{kube.InjectKey: "enabled"}, nil)
	c.service("web", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")})
	c.pod(podSpec{name: "web-1", sa: "web", ip: "10.1.0.1", labels: map[string]string{"app": "web"}, ready: true})
	frontend := "spiffe://weft.local/ns/" + c.ns + "/sa/frontend"
	c.create(&policyapi.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web-readers"},
		Spec: policyapi.AuthorizationPolicySpec{
			TargetRefs: []policyapi.TargetReference{{Kind: "Service", Name: "web"}},
			Action:     "Allow",
			Rules: []policyapi.AuthorizationRule{{Name: "frontend",
				From: &policyapi.AuthorizationSource{Identities: []string{frontend}},
				To:   &policyapi.AuthorizationTarget{Methods: []string{"GET"}}}},
		}})
	c.create(&policyapi.MutualTLSPolicy{ObjectMeta: metav1.ObjectMeta{Name: "strict"},
		Spec: policyapi.MutualTLSPolicySpec{TargetRefs: []policyapi.TargetReference{{Kind: "Service", Name: "web"}}, Mode: "Strict"}})
	stream := connectProxy(t, cp.addr, cp.auth.Current().Anchors(), c, "web", "web-1")
	waitFor(t, "the pod's proxy gets its policies", func() string {
		in := stream.config().GetInbound()
		var got []string
		for _, p := range in.GetAuthorization().GetPolicies() {
			for _, r := range p.GetRules() {
				got = append(got, fmt.Sprintf("%s %s rule %s from %v methods %v", p.GetName(), p.GetAction(), r.GetName(),
					r.GetFrom().GetIdentities(), r.GetTo().GetMethods()))
			}
		}
		want := []string{fmt.Sprintf("%s/web-readers Allow rule frontend from [%s] methods [GET]", c.ns, frontend)}
		if !slices.Equal(got, want) || !in.GetRequireMtls() {
			return fmt.Sprintf("inbound authorization %q, require mTLS %v; want %q and mTLS required", got, in.GetRequireMtls(), want)
		}
		return ""
	})
}
