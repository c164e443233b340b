package sidecar_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/weft-mesh/weft/internal/proxy/tlsid/tlstest"
)

// Callers of the authorization tests; the server workload is serverID, in
// namespace default.
const (
	frontendID = "spiffe://test.weft/ns/default/sa/frontend"
	batchID    = "spiffe://test.weft/ns/batch/sa/worker"
)

const deniedBody = "weft: access denied by authorization policy"

// tcpEchoApp echoes lines and counts the connections it accepted.
type tcpEchoApp struct {
	addr    string
	accepts atomic.Int64
}

func startTCPEchoApp(t testing.TB) *tcpEchoApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	a := &tcpEchoApp{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.accepts.Add(1)
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return a
}

// meshCaller is a client proxy with its own identity and one explicit
// listener per service of the server workload: web (HTTP), rpc (gRPC) and
// db (opaque TCP).
type meshCaller struct {
	id     string
	admin  string
	listen map[string]string
	http   *http.Client
	grpc   testgrpc.TestServiceClient
}

// authzMesh is one server proxy fronting three applications, called
// through the mesh by several client proxies of different identities. The
// tests change the server's inbound section (authorization, ports) and
// check what the callers see.
type authzMesh struct {
	t         *testing.T
	serverCfg string
	serverAdm string
	inbound   string
	header    string // the server config up to its inbound section
	version   int
	web       *nameApp
	grpcSvc   *testService
	db        *tcpEchoApp
	ports     *strings.Replacer // {web} {rpc} {db} -> the applications' ports
	callers   map[string]*meshCaller
}

func startAuthzMesh(t *testing.T) *authzMesh {
	t.Helper()
	ca := tlstest.NewCA(t, "test.weft")
	dir := t.TempDir()
	m := &authzMesh{
		t:         t,
		serverCfg: filepath.Join(dir, "server.yaml"),
		serverAdm: freeAddr(t),
		inbound:   freeAddr(t),
		web:       startNameApp(t, "api", 200),
		grpcSvc:   &testService{},
		db:        startTCPEchoApp(t),
		callers:   map[string]*meshCaller{},
	}
	rpcAddr := startGRPCApp(t, m.grpcSvc)
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	m.ports = strings.NewReplacer("{web}", port(m.web.addr), "{rpc}", port(rpcAddr), "{db}", port(m.db.addr))
	sf := ca.Issue(t, serverID, time.Hour)
	m.header = fmt.Sprintf("admin: {address: %q}\ntls: {cert_file: %q, key_file: %q, trust_bundle_file: %q}\ndetection: {timeout: 0.2s}\ninbound:\n  address: %q\n",
		m.serverAdm, sf.CertFile, sf.KeyFile, sf.TrustBundleFile, m.inbound)
	writeFile(t, m.serverCfg, "version: authz-0\n"+m.header)

	ctx, cancel := context.WithCancel(context.Background())
	done := []chan error{run(ctx, t, m.serverCfg)}
	for _, id := range []string{frontendID, batchID} {
		c := &meshCaller{id: id, admin: freeAddr(t), listen: map[string]string{}}
		for _, svc := range []string{"web", "rpc", "db"} {
			c.listen[svc] = freeAddr(t)
		}
		cf := ca.Issue(t, id, time.Hour)
		cfg := filepath.Join(dir, strings.ReplaceAll(id[strings.LastIndexByte(id, '/')+1:], "/", "-")+".yaml")
		ep := func(addr string) string {
			return fmt.Sprintf("[{address: %q, proxy_address: %q, identity: %q}]", addr, m.inbound, serverID)
		}
		writeFile(t, cfg, fmt.Sprintf(`version: caller
admin: {address: %q}
tls: {cert_file: %q, key_file: %q, trust_bundle_file: %q}
detection: {timeout: 0.2s}
services:
- {name: web, endpoints: %s}
- {name: rpc, protocol: grpc, endpoints: %s}
- {name: db, protocol: opaque, endpoints: %s}
outbound:
  explicit:
  - {address: %q, service: web}
  - {address: %q, service: rpc}
  - {address: %q, service: db}
`, c.admin, cf.CertFile, cf.KeyFile, cf.TrustBundleFile, ep(m.web.addr), ep(rpcAddr), ep(m.db.addr),
			c.listen["web"], c.listen["rpc"], c.listen["db"]))
		done = append(done, run(ctx, t, cfg))
		tr := &http.Transport{}
		c.http = &http.Client{Transport: tr, Timeout: 10 * time.Second}
		conn, err := grpc.NewClient(c.listen["rpc"], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		c.grpc = testgrpc.NewTestServiceClient(conn)
		t.Cleanup(func() {
			conn.Close()
			tr.CloseIdleConnections()
		})
		m.callers[id] = c
	}
	t.Cleanup(func() {
		cancel()
		for _, d := range done {
			select {
			case err := <-d:
				if err != nil {
					t.Errorf("proxy exit: %v", err)
				}
			case <-time.After(40 * time.Second):
				t.Error("proxy did not stop")
			}
		}
	})
	return m
}

// setInbound replaces the server's inbound settings (YAML lines indented by
// 2, with {web}, {rpc} and {db} standing for the applications' ports) and
// waits until the server runs them.
func (m *authzMesh) setInbound(t *testing.T, inbound string) {
	t.Helper()
	m.version++
	v := "authz-" + strconv.Itoa(m.version)
	writeFile(t, m.serverCfg, "version: "+v+"\n"+m.header+m.ports.Replace(inbound))
	eventually(t, "server config "+v+" is running", func() bool {
		_, dump := get(t, "http://"+m.serverAdm+"/config_dump")
		return strings.Contains(dump, `"version": "`+v+`"`)
	})
}

// call is one thing a caller does, and whether the server workload should
// let it through.
type call struct {
	caller  string // frontendID or batchID
	kind    string // "http", "grpc" or "tcp"
	method  string // HTTP method, or gRPC method: UnaryCall or EmptyCall
	path    string
	header  []string // name, value pairs
	allowed bool
}

func (c call) String() string {
	who := c.caller[strings.LastIndexByte(c.caller, '/')+1:]
	return fmt.Sprintf("%s %s %s %s %v", who, c.kind, c.method, c.path, c.header)
}

func web(caller, method, path string, allowed bool, header ...string) call {
	return call{caller: caller, kind: "http", method: method, path: path, header: header, allowed: allowed}
}

func rpc(caller, method string, allowed bool) call {
	return call{caller: caller, kind: "grpc", method: method, allowed: allowed}
}

func db(caller string, allowed bool) call {
	return call{caller: caller, kind: "tcp", allowed: allowed}
}

// do makes the call and checks what the caller sees: the application's
// answer when allowed; when denied, 403 with the short body, gRPC
// PERMISSION_DENIED, or a TCP connection closed before the application
// accepted anything.
func (m *authzMesh) do(t *testing.T, c call) {
	t.Helper()
	mc := m.callers[c.caller]
	switch c.kind {
	case "http":
		hits := m.web.hits.Load()
		req, err := http.NewRequest(c.method, "http://"+mc.listen["web"]+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(c.header); i += 2 {
			req.Header.Add(c.header[i], c.header[i+1])
		}
		resp, err := mc.http.Do(req)
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		reached := m.web.hits.Load() > hits
		switch {
		case c.allowed && (resp.StatusCode != 200 || resp.Header.Get("X-App") != "api" || !reached):
			t.Errorf("%v: status %d %q, want the application's 200", c, resp.StatusCode, body)
		case !c.allowed && (resp.StatusCode != http.StatusForbidden || strings.TrimSpace(string(body)) != deniedBody || reached):
			t.Errorf("%v: status %d %q (application reached: %v), want 403 %q", c, resp.StatusCode, body, reached, deniedBody)
		}
	case "grpc":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		calls := m.grpcSvc.calls.Load()
		var err error
		if c.method == "EmptyCall" {
			_, err = mc.grpc.EmptyCall(ctx, &testgrpc.Empty{})
		} else {
			_, err = mc.grpc.UnaryCall(ctx, &testgrpc.SimpleRequest{})
		}
		st := status.Convert(err)
		switch {
		case c.allowed && st.Code() == codes.PermissionDenied:
			t.Errorf("%v: %v, want the call to reach the application", c, err)
		case c.allowed && c.method == "UnaryCall" && (err != nil || m.grpcSvc.calls.Load() == calls):
			t.Errorf("%v: %v, want OK from the application", c, err)
		case !c.allowed && (st.Code() != codes.PermissionDenied || st.Message() != deniedBody || m.grpcSvc.calls.Load() != calls):
			t.Errorf("%v: %v, want PERMISSION_DENIED %q", c, err, deniedBody)
		}
	case "tcp":
		accepts := m.db.accepts.Load()
		conn, err := net.Dial("tcp", mc.listen["db"])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, "ping\n")
		line, err := bufio.NewReader(conn).ReadString('\n')
		switch {
		case c.allowed && (err != nil || line != "ping\n"):
			t.Errorf("%v: read %q, %v; want the echo", c, line, err)
		case !c.allowed && (err == nil || line != ""):
			t.Errorf("%v: read %q, %v; want the connection closed", c, line, err)
		case !c.allowed && m.db.accepts.Load() != accepts:
			t.Errorf("%v: the application accepted a connection authorization denied", c)
		}
	}
}

// decisions reads weft_authz_decisions_total on the server.
func (m *authzMesh) decisions(t *testing.T, decision, policy, rule string) float64 {
	t.Helper()
	v, _ := metric(t, m.serverAdm, "weft_authz_decisions_total", `decision="`+decision+`"`, `policy="`+policy+`"`, `rule="`+rule+`"`)
	return v
}

// TestAuthorizationThroughMeshedProxies runs real callers of three
// identities' worth of protocols against each kind of rule, each default
// policy and their combinations.
func TestAuthorizationThroughMeshedProxies(t *testing.T) {
	m := startAuthzMesh(t)
	const fe, batch = frontendID, batchID

	// Each case is one authorization section, with calls it must let
	// through and calls it must deny.
	cases := []struct {
		name  string
		authz string
		calls []call
	}{
		{"rule identity exact", `  authorization: {policies: [{name: ns/p, action: Allow, rules: [{name: fe, from: {identities: ["` + fe + `"]}}]}]}`,
			[]call{web(fe, "GET", "/", true), web(batch, "GET", "/", false), rpc(fe, "UnaryCall", true), rpc(batch, "UnaryCall", false), db(fe, true), db(batch, false)}},
		{"rule namespace", `  authorization: {policies: [{name: ns/p, action: Allow, rules: [{from: {namespaces: [batch]}}]}]}`,
			[]call{web(batch, "GET", "/", true), web(fe, "GET", "/", false), db(batch, true), db(fe, false)}},
		{"rule trust domain matching", `  authorization: {policies: [{name: ns/p, action: Allow, rules: [{from: {trust_domains: [test.weft]}}]}]}`,
			[]call{web(fe, "GET", "/", true), web(batch, "GET", "/", true), db(batch, true)}},
		{"rule trust domain not matching", `  authorization: {policies: [{name: ns/p, action: Allow, rules: [{from: {trust_domains: [other.weft]}}]}]}`,
			[]call{web(fe, "GET", "/", false), rpc(batch, "UnaryCall", false), db(batch, false)}},
		{"rule authenticated", `  authorization: {policies: [{name: ns/p, action: Allow, rules: [{from: {authentication: authenticated}}]}]}`,
			[]call{web(fe, "GET", "/", true), rpc(batch, "UnaryCall", true), db(batch, true)}},
		{"rule unauthenticated", `  authorization: {policies: [{name: ns/p, action: Allow, rules: [{from: {authentication: unauthenticated}}]}]}`,
			[]call{web(fe, "GET", "/", false), rpc(batch, "UnaryCall", false), db(batch, false)}},
		{"rule port", `  authorization: {policies: [{name: ns/p, action: Deny, ports: [{db}, {rpc}]}]}`,
			[]call{web(fe, "GET", "/", true), rpc(fe, "UnaryCall", false), db(fe, false)}},
		{"rule method", `  authorization: {policies: [{name: ns/p, action: Allow, rules: [{to: {methods: [GET, HEAD]}}]}]}`,
			[]call{web(fe, "GET", "/x", true), web(fe, "HEAD", "/x", true), web(fe, "POST", "/x", false), web(batch, "DELETE", "/x", false)}},
		{"rule path", `  authorization: {policies: [{name: ns/p, action: Allow, rules: [{to: {paths: [{value: /api}, {type: Exact, value: /healthz}, {type: RegularExpression, value: "/items/[0-9]+"}]}}]}]}`,
			[]call{web(fe, "GET", "/api", true), web(fe, "GET", "/api/v1/x", true), web(fe, "GET", "/healthz", true), web(fe, "GET", "/items/42", true),
				web(fe, "GET", "/apix", false), web(fe, "GET", "/healthz/x", false), web(fe, "GET", "/items/x", false), web(fe, "GET", "/api/../admin", false)}},
		{"rule header", `  authorization: {policies: [{name: ns/p, action: Allow, rules: [{to: {headers: [{name: x-team, value: payments}, {name: x-env, type: RegularExpression, value: "prod|staging"}]}}]}]}`,
			[]call{web(fe, "GET", "/", true, "X-Team", "payments", "X-Env", "prod"), web(fe, "GET", "/", false, "X-Team", "payments"), web(fe, "GET", "/", false, "X-Team", "search", "X-Env", "prod")}},
		{"rule gRPC service and method", `  authorization: {policies: [{name: ns/p, action: Allow, rules: [{to: {grpc: [{service: grpc.testing.TestService, method: UnaryCall}]}}]}]}`,
			[]call{rpc(fe, "UnaryCall", true), rpc(fe, "EmptyCall", false), web(fe, "GET", "/", false)}},
		{"rule gRPC regular expression", `  authorization: {policies: [{name: ns/p, action: Deny, rules: [{from: {namespaces: [batch]}, to: {grpc: [{type: RegularExpression, service: "grpc\\.testing\\..*", method: "Empty.*"}]}}]}]}`,
			[]call{rpc(batch, "EmptyCall", false), rpc(batch, "UnaryCall", true), rpc(fe, "EmptyCall", true)}},
		{"default allow-all", `  authorization: {default_policy: allow-all}`,
			[]call{web(fe, "GET", "/", true), rpc(batch, "UnaryCall", true), db(batch, true)}},
		{"default deny-all", `  authorization: {default_policy: deny-all}`,
			[]call{web(fe, "GET", "/", false), rpc(fe, "UnaryCall", false), db(fe, false), web(batch, "GET", "/", false)}},
		{"default allow-same-namespace", `  authorization: {default_policy: allow-same-namespace}`,
			[]call{web(fe, "GET", "/", true), rpc(fe, "UnaryCall", true), db(fe, true), web(batch, "GET", "/", false), rpc(batch, "UnaryCall", false), db(batch, false)}},
		{"default allow-authenticated", `  authorization: {default_policy: allow-authenticated}`,
			[]call{web(fe, "GET", "/", true), web(batch, "GET", "/", true), db(batch, true)}},
		{"deny over allow", `  authorization:
    policies:
    - {name: ns/allow-all-ns, action: Allow, rules: [{from: {namespaces: [default, batch]}}]}
    - {name: ns/deny-batch-admin, action: Deny, rules: [{name: admin, from: {namespaces: [batch]}, to: {paths: [{value: /admin}]}}]}`,
			[]call{web(batch, "GET", "/admin/x", false), web(batch, "GET", "/public", true), web(fe, "GET", "/admin/x", true),
				// Opaque TCP: the Deny rule's HTTP condition cannot be
				// checked, so it denies batch (fail closed); frontend
				// does not match its from.
				db(batch, false), db(fe, true)}},
		{"allow with HTTP conditions admits no TCP", `  authorization: {policies: [{name: ns/p, action: Allow, rules: [{to: {methods: [GET]}}]}]}`,
			[]call{web(fe, "GET", "/", true), db(fe, false)}},
		{"strict port still serves the mesh", `  require_mtls: true
  ports: [{port: {web}, mtls: strict}, {port: {db}, protocol: opaque, mtls: strict}]`,
			[]call{web(fe, "GET", "/", true), db(batch, true), rpc(fe, "UnaryCall", true)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m.setInbound(t, tc.authz+"\n")
			for _, c := range tc.calls {
				m.do(t, c)
			}
		})
	}

	t.Run("decisions are counted by policy and rule", func(t *testing.T) {
		m.setInbound(t, `  authorization:
    default_policy: deny-all
    policies:
    - {name: ns/allow-fe, action: Allow, ports: [{web}], rules: [{name: fe, from: {identities: ["`+fe+`"]}}]}
    - {name: ns/deny-post, action: Deny, ports: [{web}], rules: [{name: post, to: {methods: [POST]}}]}
`)
		type counts struct{ allowFE, denyPost, noMatch, denyDefault float64 }
		read := func() counts {
			return counts{
				m.decisions(t, "allow", "ns/allow-fe", "fe"),
				m.decisions(t, "deny", "ns/deny-post", "post"),
				m.decisions(t, "deny", "ns/allow-fe", "no-allow-match"),
				m.decisions(t, "deny", "default", "deny-all"),
			}
		}
		before := read()
		m.do(t, web(fe, "GET", "/", true))
		m.do(t, web(fe, "GET", "/", true))
		m.do(t, web(fe, "POST", "/", false))
		m.do(t, web(batch, "GET", "/", false))
		m.do(t, db(fe, false)) // no policy on the TCP port: the default
		after := read()
		want := counts{2, 1, 1, 1}
		got := counts{after.allowFE - before.allowFE, after.denyPost - before.denyPost, after.noMatch - before.noMatch, after.denyDefault - before.denyDefault}
		if got != want {
			t.Errorf("decisions counted %+v, want %+v", got, want)
		}
	})

	t.Run("dry run denies nothing and counts would_deny", func(t *testing.T) {
		m.setInbound(t, `  authorization:
    policies:
    - {name: ns/trial, action: Deny, dry_run: true, rules: [{name: batch, from: {namespaces: [batch]}}]}
`)
		before := m.decisions(t, "would_deny", "ns/trial", "batch")
		allowed := m.decisions(t, "allow", "default", "allow-all")
		m.do(t, web(batch, "GET", "/", true))
		m.do(t, rpc(batch, "UnaryCall", true))
		m.do(t, db(batch, true))
		m.do(t, web(fe, "GET", "/", true))
		if got := m.decisions(t, "would_deny", "ns/trial", "batch") - before; got != 3 {
			t.Errorf("would_deny counted %v times, want 3 (HTTP, gRPC, TCP of batch)", got)
		}
		if got := m.decisions(t, "allow", "default", "allow-all") - allowed; got != 4 {
			t.Errorf("allow counted %v times, want 4", got)
		}
	})

	t.Run("a policy change applies to open connections", func(t *testing.T) {
		m.setInbound(t, "  authorization: {default_policy: allow-all}\n")
		m.do(t, web(fe, "GET", "/", true)) // the callers' connections to the server are open now
		m.do(t, rpc(fe, "UnaryCall", true))
		m.setInbound(t, "  authorization: {default_policy: deny-all}\n")
		m.do(t, web(fe, "GET", "/", false))
		m.do(t, rpc(fe, "UnaryCall", false))
		m.setInbound(t, "  authorization: {default_policy: allow-all}\n")
		m.do(t, web(fe, "GET", "/", true))
	})
}
