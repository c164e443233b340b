package sidecar_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// serverFirstApp behaves like MySQL or SMTP: it greets before the client
// says anything, then echoes lines.
func serverFirstApp(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "220 greeting from a server-first protocol\r\n")
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestServerFirstTCPThroughMeshedPair(t *testing.T) {
	p := startPair(t, []app{
		{name: "db", addr: serverFirstApp(t)},
		{name: "pinned", protocol: "opaque", addr: serverFirstApp(t)},
	}, "")
	for _, svc := range []string{"db", "db", "pinned"} {
		c, err := net.Dial("tcp", p.listen[svc])
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		greeting, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(greeting, "220 greeting") {
			t.Fatalf("%s: greeting %q, %v: a server-first protocol must not hang", svc, greeting, err)
		}
		io.WriteString(c, "ping\n")
		if line, _ := br.ReadString('\n'); line != "ping\n" {
			t.Fatalf("%s: echo %q", svc, line)
		}
		// Half-close: the client's EOF reaches the application, whose
		// own close then reaches the client.
		c.(*net.TCPConn).CloseWrite()
		if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
			t.Fatalf("%s: after half-close: %q, %v", svc, rest, err)
		}
		c.Close()
	}
	if v, _ := metric(t, p.clientAdm, "weft_proxy_protocol_detections_total", `result="timeout"`); v != 1 {
		t.Errorf("detection timed out %v times, want once: the second connection should skip the wait", v)
	}
	if v, _ := metric(t, p.clientAdm, "weft_proxy_protocol_detections_total", `result="skipped"`); v != 1 {
		t.Errorf("detection skipped %v times, want 1 (the remembered server-first port)", v)
	}
	eventually(t, "byte counters recorded", func() bool {
		v, _ := metric(t, p.serverAdm, "weft_tcp_write_bytes_total", `direction="inbound"`)
		return v > 0
	})
}

// TestTLSRelayedOpaque: an application's own TLS (here HTTPS with ALPN h2)
// is not terminated by the mesh; it crosses the proxies as opaque bytes and
// the handshake completes end to end with the application's certificate.
func TestTLSRelayedOpaque(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "tls "+r.Proto+" "+r.TLS.ServerName)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	p := startPair(t, []app{{name: "secure", addr: srv.Listener.Addr().String()}}, "")
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.ServerName = "example.com"
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, p.listen["secure"])
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://example.com/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "tls HTTP/2.0 example.com" {
		t.Fatalf("got %q", body)
	}
	if v, ok := metric(t, p.clientAdm, "weft_tcp_connections_total", `protocol="tls"`, `service="secure"`); !ok || v < 1 {
		t.Errorf("the relayed TLS connection was not counted as tls (%v)", v)
	}
}
