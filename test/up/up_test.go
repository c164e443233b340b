// Package up tests `weft up` as a user runs it: the real binaries, started
// from a shell-like parent, stopped with SIGINT.
package up

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/meshtest"
)

func build(t *testing.T, dir string) { meshtest.Build(t, "../..", dir, "weft-demo") }

func TestWeftUp(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds the binaries and runs the whole mesh")
	}
	bin := t.TempDir()
	build(t, bin)
	data := t.TempDir()
	cmd := exec.Command(filepath.Join(bin, "weft"), "up", "--data-dir", data)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	})

	// Read the hints up to the metrics line.
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	var front, frontendAdmin string
	timeout := time.After(90 * time.Second)
	for front == "" || frontendAdmin == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("weft up exited before it was up:\n%s", stderr.String())
			}
			if m := regexp.MustCompile(`^\s+curl (http://127\.0\.0\.1:\d+/)\s`).FindStringSubmatch(l); m != nil {
				front = m[1]
			}
			if m := regexp.MustCompile(`frontend (127\.0\.0\.1:\d+)`).FindStringSubmatch(l); m != nil && strings.HasPrefix(l, "Metrics endpoints") {
				frontendAdmin = m[1]
			}
		case <-timeout:
			t.Fatalf("weft up did not come up within 90s:\n%s", stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()

	resp, err := http.Get(front + "item/kettle")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "catalog") || !strings.Contains(string(body), "inventory") {
		t.Fatalf("front end through the mesh: %d %q", resp.StatusCode, body)
	}
	// The frontend's proxy saw the entry proxy's SPIFFE identity: mTLS.
	resp, err = http.Get("http://" + frontendAdmin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `peer="spiffe://weft.local/ns/demo/sa/entry"`) {
		t.Fatalf("the frontend's proxy did not see the caller's identity; its metrics:\n%s", grep(string(metrics), "weft_requests_total"))
	}
	pidsRaw, err := os.ReadFile(filepath.Join(data, "pids"))
	if err != nil {
		t.Fatal(err)
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("weft up exited with %v after SIGINT:\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("weft up did not stop after SIGINT")
	}
	for _, f := range strings.Fields(string(pidsRaw)) {
		pid, _ := strconv.Atoi(f)
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d is still running after weft up stopped", pid)
		}
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestWeftUpOwnServices: `weft up -f` runs the user's own commands (here
// the demo's programs, as a user's would be) with their proxies; a called
// service's address reaches the caller in WEFT_SERVICE_<NAME>.
func TestWeftUpOwnServices(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds the binaries and runs the whole mesh")
	}
	bin := t.TempDir()
	build(t, bin)
	ports := freePorts(t, 3)
	spec := filepath.Join(t.TempDir(), "mesh.yaml")
	demo := filepath.Join(bin, "weft-demo")
	os.WriteFile(spec, []byte(`namespace: shop
entry: web
services:
- name: web
  command: ["`+demo+`", "frontend", "--listen", "127.0.0.1:`+ports[0]+`", "--catalog", "${WEFT_SERVICE_PRICES}", "--inventory", "${WEFT_SERVICE_STOCK}"]
  port: `+ports[0]+`
  protocol: http1
  calls: [prices, stock]
- name: prices
  command: ["`+demo+`", "catalog", "--listen", "127.0.0.1:`+ports[1]+`"]
  port: `+ports[1]+`
  protocol: grpc
- name: stock
  command: ["`+demo+`", "inventory", "--listen", "127.0.0.1:`+ports[2]+`"]
  port: `+ports[2]+`
  protocol: opaque
`), 0o600)
	cmd := exec.Command(filepath.Join(bin, "weft"), "up", "-f", spec, "--data-dir", t.TempDir())
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	sc := bufio.NewScanner(stdout)
	var front string
	for front == "" && sc.Scan() {
		if m := regexp.MustCompile(`^\s+curl (http://127\.0\.0\.1:\d+/)\s`).FindStringSubmatch(sc.Text()); m != nil {
			front = m[1]
		}
	}
	if front == "" {
		t.Fatalf("weft up -f never printed its entry URL:\n%s", stderr.String())
	}
	go func() {
		for sc.Scan() {
		}
	}()
	resp, err := http.Get(front + "item/mug")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "mug") {
		t.Fatalf("web through the mesh: %d %q", resp.StatusCode, body)
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("weft up -f after SIGINT: %v\n%s", err, stderr.String())
	}
}

func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		out = append(out, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	return out
}
