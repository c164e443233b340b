//go:build linux

// Package netnstest gives tests real network namespaces: a test creates its
// own namespaces, links them with veth pairs, installs iptables rules in
// them, and opens sockets or runs processes inside them. Everything is
// removed in t.Cleanup, even when the test fails. Only loopback and
// addresses configured inside the test's own namespaces are ever used.
package netnstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Netns is a network namespace created for one test.
type Netns struct {
	Name string
	fd   int // open handle on /run/netns/<Name>
}

// New creates netns "<prefix>-<random>" with lo up, or skips the test when
// that is not possible here (not root, no ip(8) or iptables, no permission).
func New(t testing.TB, prefix string) *Netns {
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
	name := prefix + "-" + hex.EncodeToString(rnd[:])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("skipping: cannot create network namespace %s (no CAP_SYS_ADMIN?): %v: %s", name, err, out)
	}
	// Registered first, so it runs last: after sockets, fds and processes.
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
	ns := &Netns{Name: name, fd: fd}
	ns.IP(t, "link", "set", "lo", "up")
	return ns
}

// IP runs `ip ARGS...` inside the namespace.
func (ns *Netns) IP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := ns.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s (in %s): %v: %s", strings.Join(args, " "), ns.Name, err, out)
	}
}

// Command returns a command that runs inside the namespace.
func (ns *Netns) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// IPTables adds a rule inside the namespace with iptables (or ip6tables),
// falling back to the -legacy variant when the default (nft-based on Debian
// 12) fails, and skipping when neither works (kernel without NAT support).
func (ns *Netns) IPTables(t testing.TB, ipv6 bool, args ...string) {
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
		out, err := ns.Command(bin, args...).CombinedOutput()
		if err == nil {
			return
		}
		failures = append(failures, fmt.Sprintf("%s: %v: %s", bin, err, strings.TrimSpace(string(out))))
	}
	t.Skipf("skipping: cannot install rule %q in %s (kernel without nat/conntrack?): %s",
		strings.Join(args, " "), ns.Name, strings.Join(failures, "; "))
}

// Link joins a and b with a veth pair and gives each end an address (CIDR
// form, e.g. 169.254.77.1/24).
func Link(t testing.TB, a *Netns, addrA string, b *Netns, addrB string) {
	t.Helper()
	ea, eb := "v"+a.Name[len(a.Name)-8:], "v"+b.Name[len(b.Name)-8:]
	if out, err := exec.Command("ip", "link", "add", ea, "netns", a.Name, "type", "veth", "peer", "name", eb, "netns", b.Name).CombinedOutput(); err != nil {
		t.Skipf("skipping: cannot create a veth pair: %v: %s", err, out)
	}
	a.IP(t, "addr", "add", addrA, "dev", ea)
	b.IP(t, "addr", "add", addrB, "dev", eb)
	a.IP(t, "link", "set", ea, "up")
	b.IP(t, "link", "set", eb, "up")
}

// Do runs fn on an OS thread that has joined the namespace. Sockets created
// by fn stay in the namespace after the thread switches back. If switching
// back fails the thread stays locked, so the runtime discards it when the
// goroutine exits instead of reusing a thread in the wrong namespace.
func (ns *Netns) Do(fn func() error) error {
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
			errc <- fmt.Errorf("entering netns %s: %w", ns.Name, err)
			return
		}
		fnErr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("leaving netns %s: %w", ns.Name, err) // thread stays locked
			return
		}
		runtime.UnlockOSThread()
		errc <- fnErr
	}()
	return <-errc
}

// Listen opens a TCP listener inside the namespace, closed at cleanup.
func (ns *Netns) Listen(t testing.TB, network, addr string) *net.TCPListener {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	}); err != nil {
		t.Fatalf("listen %s %s in %s: %v", network, addr, ns.Name, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// DialContext connects from inside the namespace; usable as an
// http.Transport's DialContext.
func (ns *Netns) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Dial connects from inside the namespace, closed at cleanup.
func (ns *Netns) Dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := ns.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s in %s: %v", addr, ns.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}
