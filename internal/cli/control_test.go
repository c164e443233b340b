package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	weftv1 "github.com/weft-mesh/weft/api/gen/weft/v1"
	"github.com/weft-mesh/weft/internal/proxy/config"
	"github.com/weft-mesh/weft/internal/proxy/configclient"
	"github.com/weft-mesh/weft/internal/proxy/renew"
	"github.com/weft-mesh/weft/internal/proxy/tlsid"
)

const meshYAML = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web-1, namespace: default, labels: {app: web}}
spec:
  address: 127.0.0.1
  serviceAccount: web
  ports: [{name: http, port: 8080}]
  proxy: {inboundPort: 4143}
`

const secondWorkload = `---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web-2, namespace: default, labels: {app: web}}
spec:
  address: 127.0.0.2
  serviceAccount: web
  ports: [{name: http, port: 8080}]
  proxy: {inboundPort: 4143}
`

// TestControlServesTheDirectory: `weft control` turns a directory of
// resources into each proxy's config and follows edits; a broken file is
// reported and the last good config stays.
func TestControlServesTheDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(content string) {
		tmp := filepath.Join(dir, ".mesh.tmp")
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "mesh.yaml")); err != nil {
			t.Fatal(err)
		}
	}
	write(meshYAML)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	root := New()
	var logs bytes.Buffer
	root.SetErr(&logs)
	dataDir := t.TempDir()
	root.SetArgs([]string{"control", "--dir", dir, "--listen", addr, "--log-level", "debug", "--data-dir", dataDir})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	// A proxy's way in: a join token from `weft token create`, redeemed for
	// a certificate; then discovery over mTLS.
	anchorFile := filepath.Join(dataDir, "ca", "anchor.crt")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(anchorFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("weft control created no CA in its data directory; logs:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	tokenCmd := New()
	var tok bytes.Buffer
	tokenCmd.SetOut(&tok)
	tokenCmd.SetErr(io.Discard)
	tokenCmd.SetArgs([]string{"token", "create", "--data-dir", dataDir, "-n", "default", "--service-account", "client"})
	if err := tokenCmd.Execute(); err != nil {
		t.Fatal(err)
	}
	anchorPEM, err := os.ReadFile(anchorFile)
	if err != nil {
		t.Fatal(err)
	}
	anchors, err := tlsid.ParseCertificates(anchorPEM)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := renew.New(renew.Options{Address: addr, Anchors: anchors, JoinToken: strings.TrimSpace(tok.String())})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Obtain(ctx); err != nil {
		t.Fatalf("getting a certificate with a join token: %v", err)
	}
	var mu sync.Mutex
	var last *weftv1.ProxyConfig
	client, err := configclient.New(configclient.Options{
		Address: addr,
		Dial:    []grpc.DialOption{grpc.WithTransportCredentials(rc.Credentials())},
		Node: &discoveryv1.Node{
			Identity:        "spiffe://weft.local/ns/default/sa/client",
			WatchedServices: []string{"default/web"},
			Tls:             &weftv1.TLS{Issued: true},
			AdminAddress:    "127.0.0.1:0",
		},
		Backoff: configclient.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		Apply: func(_ context.Context, cfg *weftv1.ProxyConfig, _ string) error {
			if _, err := config.Compile(cfg); err != nil {
				return err
			}
			mu.Lock()
			last = cfg
			mu.Unlock()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	cdone := make(chan error, 1)
	go func() { cdone <- client.Run(cctx) }()
	defer func() {
		ccancel()
		<-cdone
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	endpoints := func() []*weftv1.Endpoint {
		mu.Lock()
		defer mu.Unlock()
		if last == nil || len(last.GetServices()) == 0 {
			return nil
		}
		return last.GetServices()[0].GetEndpoints()
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s; control plane logs:\n%s", what, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("the proxy gets web's endpoint", func() bool { return len(endpoints()) == 1 })
	ep := endpoints()[0]
	if ep.GetAddress() != "127.0.0.1:8080" || ep.GetIdentity() != "spiffe://weft.local/ns/default/sa/web" || ep.GetProxyAddress() != "127.0.0.1:4143" {
		t.Fatalf("endpoint %v: want 127.0.0.1:8080 via its proxy at :4143 with web's identity", ep)
	}

	write(meshYAML + secondWorkload)
	waitFor("the second workload is an endpoint", func() bool { return len(endpoints()) == 2 })

	write(meshYAML + secondWorkload + "---\napiVersion: v1\nkind: Service\nmetadata: {name: broken}\nspec: {ports: [{port: banana}]}\n")
	time.Sleep(500 * time.Millisecond)
	if n := len(endpoints()); n != 2 {
		t.Fatalf("a broken document changed what the proxy runs: %d endpoints", n)
	}
}
