package demo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testLog(t *testing.T) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return ln
}

// start runs serve in the background and, at cleanup, cancels its context
// and checks that it returns nil promptly.
func start(t *testing.T, name string, serve func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("%s returned %v after cancel, want nil", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not stop after cancel", name)
		}
	})
}

func startCatalog(t *testing.T) string {
	ln := listen(t)
	start(t, "Catalog", func(ctx context.Context) error { return Catalog(ctx, ln, testLog(t)) })
	return ln.Addr().String()
}

func startInventory(t *testing.T) string {
	ln := listen(t)
	start(t, "Inventory", func(ctx context.Context) error { return Inventory(ctx, ln, testLog(t)) })
	return ln.Addr().String()
}

func startFrontend(t *testing.T, catalogAddr, inventoryAddr string) string {
	ln := listen(t)
	start(t, "Frontend", func(ctx context.Context) error {
		return Frontend(ctx, ln, catalogAddr, inventoryAddr, testLog(t))
	})
	return ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	ln := listen(t)
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return addr
}

func TestFrontendCombinesCatalogAndInventory(t *testing.T) {
	front := startFrontend(t, startCatalog(t), startInventory(t))
	tests := []struct {
		path string
		want string
	}{
		{"/", fmt.Sprintf("frontend: item teapot | catalog: {\"item\":\"teapot\",\"price\":42} | inventory: teapot %d\n", Stock("teapot"))},
		{"/item/kettle", fmt.Sprintf("frontend: item kettle | catalog: {\"item\":\"kettle\",\"price\":42} | inventory: kettle %d\n", Stock("kettle"))},
		{"/healthz", "ok\n"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			code, body := get(t, "http://"+front+tt.path)
			if code != http.StatusOK || body != tt.want {
				t.Errorf("GET %s = %d %q, want 200 %q", tt.path, code, body, tt.want)
			}
		})
	}
}

func TestFrontendReportsFailedDependency(t *testing.T) {
	tests := []struct {
		name      string
		catalog   func(t *testing.T) string
		inventory func(t *testing.T) string
		want      string
	}{
		{"inventory down", startCatalog, deadAddr, "frontend: inventory failed"},
		{"catalog down", deadAddr, startInventory, "frontend: catalog failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			front := startFrontend(t, tt.catalog(t), tt.inventory(t))
			code, body := get(t, "http://"+front+"/")
			if code != http.StatusBadGateway || !strings.HasPrefix(body, tt.want) {
				t.Errorf("GET / = %d %q, want 502 starting %q", code, body, tt.want)
			}
		})
	}
}

func TestInventoryProtocol(t *testing.T) {
	addr := startInventory(t)
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer func() { _ = c.Close() }()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	r := bufio.NewReader(c)
	// All on one connection, in order.
	tests := []struct {
		send string
		want string
	}{
		{"STOCK teapot\n", fmt.Sprintf("teapot %d\n", Stock("teapot"))},
		{"STOCK kettle\r\n", fmt.Sprintf("kettle %d\n", Stock("kettle"))},
		{"STOCK teapot\n", fmt.Sprintf("teapot %d\n", Stock("teapot"))},
		{"PRICE teapot\n", "ERR unknown command\n"},
		{"\n", "ERR unknown command\n"},
		{"stock teapot\n", "ERR unknown command\n"},
		{"STOCK\n", "ERR missing item\n"},
		{"STOCK cup\n", fmt.Sprintf("cup %d\n", Stock("cup"))},
	}
	for _, tt := range tests {
		if _, err := io.WriteString(c, tt.send); err != nil {
			t.Fatalf("send %q: %v", tt.send, err)
		}
		got, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read answer to %q: %v", tt.send, err)
		}
		if got != tt.want {
			t.Errorf("answer to %q = %q, want %q", tt.send, got, tt.want)
		}
	}
}

func TestStockIsDeterministic(t *testing.T) {
	for _, item := range []string{"teapot", "kettle", ""} {
		if a, b := Stock(item), Stock(item); a != b || a < 0 || a >= 100 {
			t.Errorf("Stock(%q) = %d then %d, want equal and in [0,100)", item, a, b)
		}
	}
}

// TestStopsOnCancelWithOpenConnections checks that each service returns nil
// promptly when its context is cancelled, even with a client connection
// still open.
func TestStopsOnCancelWithOpenConnections(t *testing.T) {
	tests := []struct {
		name  string
		serve func(ctx context.Context, ln net.Listener) error
	}{
		{"catalog", func(ctx context.Context, ln net.Listener) error { return Catalog(ctx, ln, testLog(t)) }},
		{"inventory", func(ctx context.Context, ln net.Listener) error { return Inventory(ctx, ln, testLog(t)) }},
		{"frontend", func(ctx context.Context, ln net.Listener) error {
			return Frontend(ctx, ln, "127.0.0.1:1", "127.0.0.1:1", testLog(t))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := listen(t)
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() { errc <- tt.serve(ctx, ln) }()

			c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer func() { _ = c.Close() }()
			time.Sleep(50 * time.Millisecond) // let the server accept it

			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("returned %v, want nil", err)
				}
			case <-time.After(shutdownGrace + 5*time.Second):
				t.Fatal("did not stop after cancel")
			}
			if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
				t.Error("listener still accepts after stop")
			}
		})
	}
}
