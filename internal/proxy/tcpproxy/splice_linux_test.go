//go:build linux

package tcpproxy

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const spliceChildEnv = "WEFT_TCPPROXY_SPLICE_CHILD"

// pipeInodes returns the "pipe:[N]" targets of the process's open fds.
func pipeInodes(t *testing.T) map[string]bool {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("reading /proc/self/fd: %v", err)
	}
	pipes := map[string]bool{}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, "pipe:") {
			pipes[target] = true
		}
	}
	return pipes
}

// TestSpliceObserved checks from the outside that a TCP-to-TCP relay really
// splices: Go's splice holds a kernel pipe for as long as a ReadFrom runs,
// and the buffered path creates none. It runs in a fresh child process, so no
// earlier test has left pooled splice pipes behind.
func TestSpliceObserved(t *testing.T) {
	if os.Getenv(spliceChildEnv) != "1" {
		if testing.Short() {
			t.Skip("skipping child-process test in -short mode")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestSpliceObserved$", "-test.count=1", "-test.v", "-test.timeout=60s")
		cmd.Env = append(os.Environ(), spliceChildEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "new splice pipes") {
			t.Fatalf("child did not run the check:\n%s", out)
		}
		t.Logf("child:\n%s", out)
		return
	}

	for _, kind := range []legKind{kindBuffered, kindSplice} {
		before := pipeInodes(t)
		ctx, cancel := context.WithCancel(context.Background())
		h := startRelay(t, ctx, kind, Options{})
		// One round trip each way: both copy loops are now inside
		// ReadFrom (splice) or CopyBuffer, waiting for more.
		for _, p := range [][2]interface {
			Write([]byte) (int, error)
			Read([]byte) (int, error)
		}{{h.client, h.upstream}, {h.upstream, h.client}} {
			if _, err := p[0].Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(p[1], make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
		}
		var fresh []string
		deadline := time.Now().Add(5 * time.Second)
		for {
			fresh = fresh[:0]
			for p := range pipeInodes(t) {
				if !before[p] {
					fresh = append(fresh, p)
				}
			}
			if len(fresh) > 0 || kind != kindSplice || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		h.wait(t)
		t.Logf("%s: new splice pipes during relay: %v", kind, fresh)
		switch {
		case kind == kindSplice && len(fresh) == 0:
			t.Errorf("%s relay opened no pipe: splice(2) not used", kind)
		case kind == kindBuffered && len(fresh) != 0:
			t.Errorf("%s relay opened pipes %v: expected plain buffered copy", kind, fresh)
		}
	}
}

// TestTCPQuiet checks the kernel behaviour the splice-path idle timeout
// relies on: TCP_INFO's last-data times grow while silent and reset when
// data moves.
func TestTCPQuiet(t *testing.T) {
	x, y := tcpPair(t)
	rx, err := x.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	ry, err := y.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	qx, ok := tcpQuiet(rx)
	if !ok || qx < 500*time.Millisecond {
		t.Fatalf("silent socket: quiet = %v, %v; want >= 500ms", qx, ok)
	}
	if _, err := x.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(y, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	qx, okx := tcpQuiet(rx) // just sent data
	qy, oky := tcpQuiet(ry) // just received data
	if !okx || !oky || qx >= 500*time.Millisecond || qy >= 500*time.Millisecond {
		t.Fatalf("after data: sender quiet %v (%v), receiver quiet %v (%v); want both < 500ms", qx, okx, qy, oky)
	}
	probe := tcpIdleProbe(x, y)
	if q := probe(); q >= 500*time.Millisecond {
		t.Fatalf("probe after data = %v, want < 500ms", q)
	}
}
