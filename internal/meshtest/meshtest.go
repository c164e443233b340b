// Package meshtest holds what the end-to-end tests (test/...) need to run a
// mesh on loopback: the binaries built from this module, free ports, files
// replaced atomically (the file source must never read half a file), waiting
// for a condition, and reading a proxy's metrics.
package meshtest

import (
	"bufio"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Build builds weft, weft-proxy (with the grpcnotrace tag, as shipped) and
// any other of the module's commands named in extra (e.g. "weft-demo") into
// dir, from the module root at root (a path relative to the test's package
// directory, e.g. "../..").
func Build(tb testing.TB, root, dir string, extra ...string) {
	tb.Helper()
	abs, err := filepath.Abs(root)
	if err != nil {
		tb.Fatal(err)
	}
	builds := [][]string{{"build", "-o", dir + "/", "./cmd/weft"}, {"build", "-tags", "grpcnotrace", "-o", dir + "/", "./cmd/weft-proxy"}}
	for _, e := range extra {
		builds = append(builds, []string{"build", "-o", dir + "/", "./cmd/" + e})
	}
	for _, args := range builds {
		cmd := exec.Command("go", args...)
		cmd.Dir = abs
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("go %v: %v\n%s", args, err, out)
		}
	}
}

// FreePort returns a loopback TCP port that was free a moment ago, and so
// were the next three (explicit-mode proxies take consecutive ports from a
// base). It picks below the kernel's ephemeral range (32768 and up on
// Linux), so that the many outgoing connections of a busy test run cannot
// take it between now and when the test binds it.
func FreePort(tb testing.TB) int {
	tb.Helper()
	const lo, hi, span = 20000, 32000, 4
	start := lo + rand.IntN(hi-lo-span)
	for i := range hi - lo {
		p := lo + (start-lo+i*7)%(hi-lo-span)
		if free(p, span) {
			return p
		}
	}
	tb.Fatal("no free loopback port between 20000 and 32000")
	return 0
}

// free reports whether ports p to p+n-1 can be bound on loopback.
func free(p, n int) bool {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+i))
		if err != nil {
			return false
		}
		lns = append(lns, l)
	}
	return true
}

// WriteFile replaces path with content atomically (write, then rename).
func WriteFile(tb testing.TB, path, content string) {
	tb.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
}

// Eventually polls cond until it holds, failing the test after timeout.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Metric reads a sample from a proxy's admin /metrics: name alone, or with
// a label filter in braces exactly as exposed; a name without braces sums
// every labelled sample of it. It returns -1 when the proxy does not answer.
func Metric(tb testing.TB, admin, name string) float64 {
	tb.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}
