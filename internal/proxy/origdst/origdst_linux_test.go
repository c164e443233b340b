//go:build linux

package origdst

import (
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weft-mesh/weft/internal/netnstest"
)

func newTestNetns(t *testing.T) *netnstest.Netns { return netnstest.New(t, "weft-od") }

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
		ns.IP(t, "-6", "addr", "add", "fd00::2/128", "dev", "lo", "nodad")
	}
	ln := ns.Listen(t, listenNet, listenAddr)
	want := netip.MustParseAddrPort(target)
	ns.IPTables(t, ipv6, "-t", "nat", "-A", "OUTPUT", "-p", "tcp",
		"-d", want.Addr().String(), "--dport", strconv.Itoa(int(want.Port())),
		"-j", "REDIRECT", "--to-ports", port(ln))

	client := ns.Dial(t, target)
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
		ns.IPTables(t, false, "-t", "nat", "-A", "OUTPUT", "-p", "tcp",
			"-d", "127.0.0.2", "--dport", "8080", "-j", "REDIRECT", "--to-ports", "9")
		ln := ns.Listen(t, "tcp4", "127.0.0.1:0")
		ns.Dial(t, ln.Addr().String())
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
		ln := ns.Listen(t, "tcp4", "127.0.0.1:0")
		ns.Dial(t, ln.Addr().String())
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
