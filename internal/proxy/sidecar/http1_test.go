package sidecar_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// echoApp answers with what it received, so tests can assert what the
// application saw after two proxies.
func echoApp(t testing.TB) string {
	return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("app reading body: %v", err)
		}
		w.Header().Set("X-App-Proto", r.Proto)
		w.Header().Set("X-App-Host", r.Host)
		w.Header().Set("X-App-Method", r.Method)
		w.Header().Set("X-App-Custom", r.Header.Get("X-Custom"))
		w.Header().Set("X-App-TE", strings.Join(r.TransferEncoding, ","))
		w.Header().Set("X-App-Mesh-Headers", r.Header.Get("Weft-Dst-Port")+r.Header.Get("Weft-Orig-Proto"))
		w.Header().Set("X-App-XFF", r.Header.Get("X-Forwarded-For"))
		if r.URL.Path == "/trailers" {
			w.Header().Set("Trailer", "X-Checksum")
			w.Write(body)
			w.Header().Set("X-Checksum", fmt.Sprint(len(body)))
			return
		}
		if r.URL.Path == "/status/503" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		w.Write(body)
	}))
}

func TestHTTP1ThroughMeshedPair(t *testing.T) {
	p := startPair(t, []app{{name: "web", addr: echoApp(t)}}, "")
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	big := make([]byte, 1<<20)
	rand.Read(big)
	cases := []struct {
		name   string
		method string
		path   string
		body   []byte
		chunk  bool // unknown length: sent chunked
		header map[string]string
		status int
	}{
		{name: "GET keeps host and headers", method: "GET", path: "/a?x=1", header: map[string]string{"X-Custom": "v1"}, status: 200},
		{name: "POST with content-length", method: "POST", path: "/p", body: []byte("hello weft"), status: 200},
		{name: "chunked 1MiB body", method: "POST", path: "/big", body: big, chunk: true, status: 200},
		{name: "application status passes through", method: "GET", path: "/status/503", status: 503},
		{name: "forged mesh headers are stripped", method: "GET", path: "/forge", header: map[string]string{"Weft-Dst-Port": "1", "Weft-Orig-Proto": "x"}, status: 200},
		{name: "x-forwarded-for untouched", method: "GET", path: "/xff", header: map[string]string{"X-Forwarded-For": "192.0.2.1"}, status: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != nil {
				body = bytes.NewReader(tc.body)
				if tc.chunk {
					body = io.MultiReader(body) // hides the length
				}
			}
			req, _ := http.NewRequest(tc.method, p.url("web", tc.path), body)
			req.Host = "web.default.svc"
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, got)
			}
			if resp.Header.Get("Weft-Proxy-Error") != "" {
				t.Fatalf("proxy error: %s", resp.Header.Get("Weft-Proxy-Error"))
			}
			if !bytes.Equal(got, tc.body) && !(tc.body == nil && len(got) == 0) {
				t.Errorf("body: got %d bytes, want %d", len(got), len(tc.body))
			}
			if g := resp.Header.Get("X-App-Proto"); g != "HTTP/1.1" {
				t.Errorf("application saw %s, want HTTP/1.1 as the client sent", g)
			}
			if g := resp.Header.Get("X-App-Host"); g != "web.default.svc" {
				t.Errorf("application saw Host %q", g)
			}
			if g := resp.Header.Get("X-App-Mesh-Headers"); g != "" {
				t.Errorf("mesh headers reached the application: %q", g)
			}
			if v := tc.header["X-Custom"]; v != "" && resp.Header.Get("X-App-Custom") != v {
				t.Errorf("custom header lost")
			}
			if tc.chunk && resp.Header.Get("X-App-TE") != "chunked" {
				t.Errorf("application saw transfer-encoding %q, want chunked", resp.Header.Get("X-App-TE"))
			}
			if v := tc.header["X-Forwarded-For"]; v != "" && resp.Header.Get("X-App-XFF") != v {
				t.Errorf("X-Forwarded-For changed to %q", resp.Header.Get("X-App-XFF"))
			}
		})
	}

	t.Run("trailers", func(t *testing.T) {
		resp, err := client.Post(p.url("web", "/trailers"), "text/plain", io.MultiReader(strings.NewReader("abc")))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Trailer.Get("X-Checksum"); got != "3" {
			t.Errorf("trailer X-Checksum = %q, want 3", got)
		}
	})

	t.Run("100-continue", func(t *testing.T) {
		// The client sends only the head, waits for the interim 100, then
		// the body: the proxy must not deadlock either side.
		c, err := net.Dial("tcp", p.listen["web"])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "PUT /c HTTP/1.1\r\nHost: web\r\nContent-Length: 9\r\nExpect: 100-continue\r\n\r\n")
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("interim response %q, %v; want HTTP/1.1 100 Continue", line, err)
		}
		if l, _ := br.ReadString('\n'); l != "\r\n" {
			t.Fatalf("interim response has headers: %q", l)
		}
		io.WriteString(c, "continued")
		var resp *http.Response
		for resp == nil || resp.StatusCode == http.StatusContinue { // more 1xx may follow
			if resp, err = http.ReadResponse(br, nil); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(got) != "continued" {
			t.Fatalf("status %d body %q", resp.StatusCode, got)
		}
	})

	t.Run("keep-alive reuses one client connection", func(t *testing.T) {
		c, err := net.Dial("tcp", p.listen["web"])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for i := range 3 {
			fmt.Fprintf(c, "GET /k%d HTTP/1.1\r\nHost: web\r\n\r\n", i)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("request %d on the same connection: %v", i, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Close {
				t.Fatalf("request %d: status %d close=%v", i, resp.StatusCode, resp.Close)
			}
		}
	})

	v, ok := metric(t, p.clientAdm, "weft_requests_total", `direction="outbound"`, `service="web"`, `peer="`+serverID+`"`)
	if !ok || v < float64(len(cases)) {
		t.Errorf("client proxy counted %v outbound requests to web (found=%v), want >= %d", v, ok, len(cases))
	}
	v, ok = metric(t, p.serverAdm, "weft_responses_total", `direction="inbound"`, `peer="`+clientID+`"`, `status_class="5xx"`)
	if !ok || v < 1 {
		t.Errorf("server proxy counted %v inbound 5xx responses from the client identity, want >= 1", v)
	}
}

func TestHTTP1AmbiguousRequestsRefused(t *testing.T) {
	seen := make(chan string, 10)
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.URL.Path
	}))
	p := startPair(t, []app{{name: "web", addr: addr}}, "")
	cases := []struct{ name, raw string }{
		{"content-length with transfer-encoding", "POST /smuggle HTTP/1.1\r\nHost: a\r\nContent-Length: 30\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /hidden HTTP/1.1\r\n\r\n"},
		{"conflicting content-length", "POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"},
		{"obs-fold", "GET /fold HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", p.listen["web"])
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, tc.raw)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			if resp.Header.Get("Weft-Proxy-Error") == "" {
				t.Errorf("no Weft-Proxy-Error header naming the problem")
			}
		})
	}
	select {
	case path := <-seen:
		t.Fatalf("an ambiguous request reached the application: %s", path)
	default:
	}
}

func TestWebSocketThroughMeshedPair(t *testing.T) {
	addr := serve(t, websocket.Handler(func(ws *websocket.Conn) {
		for {
			var msg string
			if websocket.Message.Receive(ws, &msg) != nil || websocket.Message.Send(ws, msg) != nil {
				return
			}
		}
	}))
	p := startPair(t, []app{{name: "ws", addr: addr}}, "")
	ws, err := websocket.Dial("ws://"+p.listen["ws"]+"/echo", "", "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetDeadline(time.Now().Add(10 * time.Second))
	for _, msg := range []string{"hello", strings.Repeat("x", 100<<10)} {
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil {
			t.Fatal(err)
		}
		if got != msg {
			t.Fatalf("echo mismatch: %d bytes back, sent %d", len(got), len(msg))
		}
	}
}

func TestConnectThroughMeshedPair(t *testing.T) {
	// The application is an HTTP CONNECT proxy whose tunnel echoes bytes.
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || r.Host != "db.example:5432" {
			http.Error(w, "want CONNECT db.example:5432", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		io.Copy(c, brw)
	}))
	p := startPair(t, []app{{name: "tunnel", addr: addr}}, "")
	c, err := net.Dial("tcp", p.listen["tunnel"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT status %d", resp.StatusCode)
	}
	io.WriteString(c, "ping through the tunnel")
	c.(*net.TCPConn).CloseWrite()
	got, _ := io.ReadAll(br)
	if string(got) != "ping through the tunnel" {
		t.Fatalf("tunnel echoed %q", got)
	}
}

// TestStreamingResponseIsNotBuffered: a response of unknown length (chunked,
// server-sent events) reaches the client piece by piece; the application
// only sends its second piece after the client has read the first.
func TestStreamingResponseIsNotBuffered(t *testing.T) {
	gotFirst := make(chan struct{})
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-gotFirst:
		case <-time.After(10 * time.Second):
			return
		}
		io.WriteString(w, "data: second\n\n")
	}))
	p := startPair(t, []app{{name: "events", addr: addr}}, "")
	resp, err := http.Get(p.url("events", "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q, %v (buffered by the proxy?)", line, err)
	}
	close(gotFirst)
	rest, _ := io.ReadAll(br)
	if string(rest) != "\ndata: second\n\n" {
		t.Fatalf("rest %q", rest)
	}
}

// TestSlowlorisAndHeaderLimits: a client that never finishes its headers is
// cut off after timeouts.header_read; oversized headers get 431.
func TestSlowlorisAndHeaderLimits(t *testing.T) {
	p := startPair(t, []app{{name: "web", addr: echoApp(t)}}, "timeouts: {header_read: 200ms}\nmax_header_bytes: 4096\n")
	c, err := net.Dial("tcp", p.listen["web"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: web\r\nX-Slow: ")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	b, err := io.ReadAll(c)
	if err != nil || time.Since(start) > 9*time.Second {
		t.Fatalf("stalled client not cut off: %v after %v", err, time.Since(start))
	}
	if len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 408") {
		t.Fatalf("stalled client got %q", b)
	}

	req, _ := http.NewRequest("GET", p.url("web", "/"), nil)
	req.Header.Set("X-Big", strings.Repeat("a", 8192))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized headers: %d, want 431", resp.StatusCode)
	}
}

// TestGuardOnPortsPinnedToHTTP2: an HTTP/1 client on a port pinned to
// HTTP/2 or gRPC still meets the request-smuggling guard.
func TestGuardOnPortsPinnedToHTTP2(t *testing.T) {
	p := startPair(t, []app{{name: "h2only", protocol: "grpc", addr: echoApp(t)}}, "")
	c, err := net.Dial("tcp", p.listen["h2only"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400 from the guard", resp.StatusCode)
	}
}
