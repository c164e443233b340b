//go:build linux

package origdst

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testNetns is a network namespace created for one test and removed in
// t.Cleanup. Only loopback and addresses configured inside it are used.
type testNetns struct {
	name string
	fd   int // open handle on /run/netns/<name>
}

// newTestNetns creates netns "weft-od-<random>" with lo up, or skips the test
// when that is not possible here (not root, no ip(8), no permission).
func newTestNetns(t *testing.T) *testNetns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: creating network namespaces and NAT rules needs root")
	}
	for _, bin := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skipping: %s not found in PATH (install iproute2 and iptables): %v", bin, err)
		}
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatalf("random netns name: %v", err)
	}
	name := "weft-od-" + hex.EncodeToString(rnd[:])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("skipping: cannot create network namespace %s (no CAP_SYS_ADMIN?): %v: %s", name, err, out)
	}
	// Registered first, so it runs last: after sockets and fds are closed.
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("removing netns %s: %v: %s", name, err, out)
		}
	})
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("opening netns %s: %v", name, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	ns := &testNetns{name: name, fd: fd}
	ns.ip(t, "link", "set", "lo", "up")
	return ns
}

// ip runs `ip netns exec NAME ip ARGS...`.
func (ns *testNetns) ip(t *testing.T, args ...string) {
	t.Helper()
	full := append([]string{"netns", "exec", ns.name, "ip"}, args...)
	if out, err := exec.Command("ip", full...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s (in %s): %v: %s", strings.Join(args, " "), ns.name, err, out)
	}
}

// iptables adds a rule inside the namespace with iptables (or ip6tables),
// falling back to the -legacy variant when the default (nft-based on Debian
// 12) fails, and skipping when neither works (kernel without NAT support).
func (ns *testNetns) iptables(t *testing.T, ipv6 bool, args ...string) {
	t.Helper()
	base := "iptables"
	if ipv6 {
		base = "ip6tables"
	}
	var failures []string
	for _, bin := range []string{base, base + "-legacy"} {
		if _, err := exec.LookPath(bin); err != nil {
			failures = append(failures, fmt.Sprintf("%s: not found", bin))
			continue
		}
		full := append([]string{"netns", "exec", ns.name, bin}, args...)
		out, err := exec.Command("ip", full...).CombinedOutput()
		if err == nil {
			return
		}
		failures = append(failures, fmt.Sprintf("%s: %v: %s", bin, err, strings.TrimSpace(string(out))))
	}
	t.Skipf("skipping: cannot install NAT rule %q in %s (kernel without nat/conntrack?): %s",
		strings.Join(args, " "), ns.name, strings.Join(failures, "; "))
}

// do runs fn on an OS thread that has joined the namespace. Sockets created
// by fn stay in the namespace after the thread switches back. If switching
// back fails the thread stays locked, so the runtime discards it when the
// goroutine exits instead of reusing a thread in the wrong namespace.
func (ns *testNetns) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("opening current netns: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering netns %s: %w", ns.name, err)
			return
		}
		fnErr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("leaving netns %s: %w", ns.name, err) // thread stays locked
			return
		}
		runtime.UnlockOSThread()
		errc <- fnErr
	}()
	return <-errc
}

func (ns *testNetns) listen(t *testing.T, network, addr string) *net.TCPListener {
	t.Helper()
	var ln net.Listener
	if err := ns.do(func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	}); err != nil {
		t.Fatalf("listen %s %s in %s: %v", network, addr, ns.name, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

func (ns *testNetns) dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	var c net.Conn
	if err := ns.do(func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	}); err != nil {
		t.Fatalf("dial %s in %s: %v", addr, ns.name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func accept(t *testing.T, ln *net.TCPListener) *net.TCPConn {
	t.Helper()
	if err := ln.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	c, err := ln.AcceptTCP()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func port(ln net.Listener) string {
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func localAddrPort(t *testing.T, c net.Conn) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(c.LocalAddr().String())
	if err != nil {
		t.Fatalf("parsing local address %v: %v", c.LocalAddr(), err)
	}
	return ap
}

// redirectCase dials a NAT-redirected destination and checks OriginalDst.
func redirectCase(t *testing.T, ipv6 bool, listenNet, listenAddr, target string) {
	ns := newTestNetns(t)
	if ipv6 {
		if _, err := exec.LookPath("ip6tables"); err != nil {
			t.Skipf("skipping: ip6tables not found: %v", err)
		}
		// A global address on lo inside the namespace; nodad makes it
		// usable immediately.
		ns.ip(t, "-6", "addr", "add", "fd00::2/128", "dev", "lo", "nodad")
	}
	ln := ns.listen(t, listenNet, listenAddr)
	want := netip.MustParseAddrPort(target)
	ns.iptables(t, ipv6, "-t", "nat", "-A", "OUTPUT", "-p", "tcp",
		"-d", want.Addr().String(), "--dport", strconv.Itoa(int(want.Port())),
		"-j", "REDIRECT", "--to-ports", port(ln))

	client := ns.dial(t, target)
	server := accept(t, ln)

	if got := localAddrPort(t, server); got.Port() == want.Port() {
		t.Fatalf("accepted conn local address %v: redirect did not happen", got)
	}
	got, err := OriginalDst(server)
	if err != nil {
		t.Fatalf("OriginalDst: %v", err)
	}
	if got != want {
		t.Fatalf("OriginalDst = %v, want %v (server local %v, client local %v)",
			got, want, server.LocalAddr(), client.LocalAddr())
	}
	if want.Addr().Is4() && !got.Addr().Is4() {
		t.Fatalf("OriginalDst = %v: IPv4 result not returned as plain IPv4", got)
	}
}

func TestOriginalDstIPv4Redirect(t *testing.T) {
	redirectCase(t, false, "tcp4", "127.0.0.1:0", "127.0.0.2:8080")
}

func TestOriginalDstIPv6Redirect(t *testing.T) {
	redirectCase(t, true, "tcp6", "[::1]:0", "[fd00::2]:8080")
}

// An IPv4 client accepted on a dual-stack [::] listener has a v4-mapped local
// address on an AF_INET6 socket; SO_ORIGINAL_DST at SOL_IP still works.
func TestOriginalDstIPv4OnDualStackListener(t *testing.T) {
	redirectCase(t, false, "tcp", "[::]:0", "127.0.0.3:8081")
}

// TestOriginalDstNotRedirected records what the kernel reports for a
// connection that no NAT rule touched.
func TestOriginalDstNotRedirected(t *testing.T) {
	t.Run("conntrack active", func(t *testing.T) {
		// A nat rule (matching nothing we dial) makes conntrack track every
		// connection in the namespace, so an entry exists whose original
		// destination is simply the listener's address.
		ns := newTestNetns(t)
		ns.iptables(t, false, "-t", "nat", "-A", "OUTPUT", "-p", "tcp",
			"-d", "127.0.0.2", "--dport", "8080", "-j", "REDIRECT", "--to-ports", "9")
		ln := ns.listen(t, "tcp4", "127.0.0.1:0")
		ns.dial(t, ln.Addr().String())
		server := accept(t, ln)
		got, err := OriginalDst(server)
		if err != nil {
			t.Fatalf("OriginalDst: %v", err)
		}
		if want := localAddrPort(t, server); got != want {
			t.Fatalf("OriginalDst = %v, want the conn's own local address %v", got, want)
		}
	})
	t.Run("no conntrack", func(t *testing.T) {
		// Fresh namespace, no netfilter rules: no conntrack entry exists, so
		// the lookup fails with ENOENT.
		ns := newTestNetns(t)
		ln := ns.listen(t, "tcp4", "127.0.0.1:0")
		ns.dial(t, ln.Addr().String())
		server := accept(t, ln)
		got, err := OriginalDst(server)
		switch {
		case err == nil && got == localAddrPort(t, server):
			// Possible if the host loads conntrack for every namespace
			// (e.g. nf_conntrack hooks registered globally).
			t.Logf("kernel tracks connections without rules: OriginalDst = own local address %v", got)
		case errors.Is(err, unix.ENOENT):
			t.Logf("no conntrack entry: %v", err)
		default:
			t.Fatalf("OriginalDst = %v, %v; want own local address or ENOENT", got, err)
		}
	})
}

func TestOriginalDstNil(t *testing.T) {
	if _, err := OriginalDst(nil); err == nil {
		t.Fatal("OriginalDst(nil) succeeded")
	}
}
