//go:build linux

package capture

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/netnstest"
	"github.com/weft-mesh/weft/internal/proxy/origdst"
)

// topology is a pod namespace joined by a veth pair to a peer namespace
// (the rest of the network), with addresses of one family.
type topology struct {
	fam                    Family
	pod, peer, peer2, loop string // peer2: a second address of the peer, in a skipped CIDR
	bits                   int
}

func topologies() []topology {
	return []topology{
		{fam: IPv4, pod: "169.254.78.1", peer: "169.254.78.2", peer2: "169.254.78.3", loop: "127.0.0.1", bits: 24},
		{fam: IPv6, pod: "fd77:7e57::1", peer: "fd77:7e57::2", peer2: "fd77:7e57::3", loop: "::1", bits: 64},
	}
}

func (tp topology) at(host string, port int) string { return net.JoinHostPort(host, fmt.Sprint(port)) }

// Ports of the scenario.
const (
	appPort         = 8080 // an application port: captured inbound
	skippedInPort   = 8081 // --skip-inbound-ports
	peerPort        = 80   // a port of the peer: captured outbound
	skippedOutPort  = 9090 // --skip-outbound-ports
	testProxyUID    = 2102
	testProxyGID    = 2102
	dialTimeout     = 10 * time.Second
	userChain       = "USER_KEEP"
	userChainTarget = "-p tcp -m tcp --dport 7 -j RETURN"
)

// scenario is one family on one backend, set up and ready for traffic.
type scenario struct {
	tp         topology
	pod, peer  *netnstest.Netns
	tables     Tables
	opts       Options
	helper     string // the test binary, runnable by the proxy's UID
	otherSaves []string
}

// TestCaptureWithRealTraffic applies the rules with real iptables in a
// network namespace, on each backend and for each family, and checks by
// sending real connections that they go where the rules say: (a) inbound
// to the inbound listener, with the original destination readable by
// SO_ORIGINAL_DST; (b) outbound to the outbound listener; (c) not the
// proxy's own; (d) not the skipped ports and CIDRs; the application's own
// pod IP and loopback handled as documented. Then (e) applying again (with
// other options, then the same) leaves exactly one set of rules, and (f)
// reverting leaves the table as it was, a user's rule included, and
// traffic uncaptured. (g) IPv6 and (h) both backends are the subtests.
func TestCaptureWithRealTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: creates network namespaces and iptables rules")
	}
	helper := helperBinary(t)
	for _, backend := range []string{BackendNFT, BackendLegacy} {
		for _, tp := range topologies() {
			t.Run(backend+"/"+tp.fam.String(), func(t *testing.T) {
				s := newScenario(t, backend, tp, helper)
				ctx := context.Background()

				// A rule of the user's, which nothing weft does may touch.
				userRule := fmt.Sprintf("*nat\n:%s - [0:0]\n-A %s %s\n-A OUTPUT -p tcp -j %s\nCOMMIT\n", userChain, userChain, userChainTarget, userChain)
				if err := s.tables.restore(ctx, tp.fam, userRule); err != nil {
					t.Fatal(err)
				}
				pristine := s.save(t)

				s.apply(t, s.opts)
				// The rules are in the backend chosen, and only there.
				for _, other := range s.otherSaves {
					out, err := s.tables.Runner.Run(ctx, nil, other, "-t", "nat")
					if err == nil && ParseNAT(string(out)).HasWeft() {
						t.Errorf("%s shows weft's rules, which were written with the %s backend", other, backend)
					}
				}
				t.Run("traffic", s.checkTraffic)

				t.Run("apply again: one set of rules", func(t *testing.T) {
					first := s.save(t)
					other := s.opts
					other.SkipInboundPorts = []PortRange{{8082, 8090}}
					s.apply(t, other)
					if got, want := byChain(s.save(t).Weft()), byChain(Rules(other, tp.fam)); !reflect.DeepEqual(got, want) {
						t.Errorf("after applying other options, weft's chains hold\n%v\nwant\n%v", got, want)
					}
					s.apply(t, s.opts)
					s.apply(t, s.opts)
					again := s.save(t)
					if !reflect.DeepEqual(again, first) {
						t.Errorf("the nat table changed on applying the same rules again:\nfirst %+v\nthen  %+v", first, again)
					}
					if got, want := byChain(again.Weft()), byChain(Rules(s.opts, tp.fam)); !reflect.DeepEqual(got, want) {
						t.Errorf("weft's chains hold\n%v\nwant (as rendered)\n%v", got, want)
					}
					if got := again.JumpsToWeft(); !reflect.DeepEqual(got, Jumps()) {
						t.Errorf("jumps %v, want exactly %v", got, Jumps())
					}
				})
				t.Run("traffic after applying again", s.checkTraffic)

				t.Run("revert", func(t *testing.T) {
					if err := s.tables.Revert(ctx, tp.fam); err != nil {
						t.Fatal(err)
					}
					if after := s.save(t); !reflect.DeepEqual(after, pristine) {
						t.Errorf("revert left\n%+v\nwant the table as it was before\n%+v", after, pristine)
					}
					if err := s.tables.Revert(ctx, tp.fam); err != nil {
						t.Errorf("reverting again: %v", err)
					}
					s.expect(t, "app to peer, no longer captured", s.dialFromPod, tp.at(tp.peer, peerPort), "peer "+tp.at(tp.peer, peerPort))
					s.expect(t, "peer to app, no longer captured", s.dialFromPeer, tp.at(tp.pod, appPort), "app "+tp.at(tp.pod, appPort))
				})
			})
		}
	}
}

func (s *scenario) checkTraffic(t *testing.T) {
	tp := s.tp
	pod, peer, peer2, loop := tp.pod, tp.peer, tp.peer2, tp.loop
	cases := []struct {
		name string
		dial func(context.Context, string) (string, error)
		addr string
		want string
	}{
		{"(a) inbound to an app port goes to the inbound listener", s.dialFromPeer, tp.at(pod, appPort), "inbound " + tp.at(pod, appPort)},
		{"(d) inbound to a skipped port goes to the app", s.dialFromPeer, tp.at(pod, skippedInPort), "app " + tp.at(pod, skippedInPort)},
		{"inbound to the proxy's admin port is not redirected", s.dialFromPeer, tp.at(pod, int(DefaultAdminPort)), "app " + tp.at(pod, int(DefaultAdminPort))},
		{"(b) outbound from the app goes to the outbound listener", s.dialFromPod, tp.at(peer, peerPort), "outbound " + tp.at(peer, peerPort)},
		{"(c) outbound from the proxy's UID goes straight out", s.dialAsProxy, tp.at(peer, peerPort), "peer " + tp.at(peer, peerPort)},
		{"(d) outbound to a skipped port goes straight out", s.dialFromPod, tp.at(peer, skippedOutPort), "peer " + tp.at(peer, skippedOutPort)},
		{"(d) outbound to a skipped CIDR goes straight out", s.dialFromPod, tp.at(peer2, peerPort), "peer " + tp.at(peer2, peerPort)},
		{"the app to its own pod IP goes straight to the app", s.dialFromPod, tp.at(pod, appPort), "app " + tp.at(pod, appPort)},
		{"the proxy to its own pod IP goes through the inbound listener", s.dialAsProxy, tp.at(pod, appPort), "inbound " + tp.at(pod, appPort)},
		{"the proxy to its own pod IP on a skipped port goes to the app", s.dialAsProxy, tp.at(pod, skippedInPort), "app " + tp.at(pod, skippedInPort)},
		{"the app to loopback goes straight to the app", s.dialFromPod, tp.at(loop, appPort), "app " + tp.at(loop, appPort)},
		{"the proxy to loopback goes straight to the app", s.dialAsProxy, tp.at(loop, appPort), "app " + tp.at(loop, appPort)},
	}
	for _, tc := range cases {
		s.expect(t, tc.name, tc.dial, tc.addr, tc.want)
	}
}

func (s *scenario) expect(t *testing.T, name string, dial func(context.Context, string) (string, error), addr, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	got, err := dial(ctx, addr)
	if err != nil {
		t.Errorf("%s: connecting to %s: %v", name, addr, err)
	} else if got != want {
		t.Errorf("%s: connecting to %s reached %q, want %q", name, addr, got, want)
	}
}

func newScenario(t *testing.T, backend string, tp topology, helper string) *scenario {
	s := &scenario{tp: tp, helper: helper}
	s.pod = netnstest.New(t, "wcap-pod")
	s.peer = netnstest.New(t, "wcap-peer")
	netnstest.Link(t, s.pod, "169.254.78.1/24", s.peer, "169.254.78.2/24")
	if tp.fam == IPv6 {
		s.pod.AddAddr(t, fmt.Sprintf("%s/%d", tp.pod, tp.bits))
		s.peer.AddAddr(t, fmt.Sprintf("%s/%d", tp.peer, tp.bits))
	}
	s.peer.AddAddr(t, fmt.Sprintf("%s/%d", tp.peer2, tp.bits))

	runner := Exec{Prefix: []string{"ip", "netns", "exec", s.pod.Name}}
	b, err := DetectBackend(context.Background(), runner, backend)
	if err != nil {
		t.Skipf("skipping: the %s iptables backend is not installed: %v", backend, err)
	}
	if tp.fam == IPv6 && b.Save6 == "" {
		t.Skipf("skipping: ip6tables of the %s backend is not installed", backend)
	}
	for _, other := range []string{BackendNFT, BackendLegacy} {
		if ob, err := programs(context.Background(), runner, other); err == nil && other != backend {
			s.otherSaves = append(s.otherSaves, ob.save(tp.fam))
		}
	}
	s.tables = Tables{Runner: runner, Backend: b, Log: quiet()}

	s.opts = Defaults()
	s.opts.ProxyUID = testProxyUID
	s.opts.SkipInboundPorts = []PortRange{{skippedInPort, skippedInPort}}
	s.opts.SkipOutboundPorts = []PortRange{{skippedOutPort, skippedOutPort}}
	s.opts.SkipOutboundCIDRs = []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr(tp.peer2), tp.fam.bits())}

	// The pod: the proxy's two listeners, reporting the original
	// destination, and the application's ports.
	serve(t, s.pod.Listen(t, "tcp", fmt.Sprintf(":%d", DefaultInboundPort)), "inbound", true)
	serve(t, s.pod.Listen(t, "tcp", tp.at(tp.loop, int(DefaultOutboundPort))), "outbound", true)
	for _, port := range []int{appPort, skippedInPort, int(DefaultAdminPort)} {
		serve(t, s.pod.Listen(t, "tcp", fmt.Sprintf(":%d", port)), "app", false)
	}
	// The peer: what outbound connections reach when not redirected.
	for _, port := range []int{peerPort, skippedOutPort} {
		serve(t, s.peer.Listen(t, "tcp", fmt.Sprintf(":%d", port)), "peer", false)
	}
	return s
}

func (f Family) bits() int {
	if f == IPv6 {
		return 128
	}
	return 32
}

// apply applies o, skipping the test when the kernel lacks IPv6 NAT.
func (s *scenario) apply(t *testing.T, o Options) {
	t.Helper()
	err := s.tables.Apply(context.Background(), o, s.tp.fam)
	if err != nil && s.tp.fam == IPv6 && (strings.Contains(err.Error(), "Table does not exist") || strings.Contains(err.Error(), "can't initialize ip6tables table")) {
		t.Skipf("skipping: this kernel has no IPv6 NAT (ip6table_nat / nft nat for ip6): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func (s *scenario) save(t *testing.T) NAT {
	t.Helper()
	n, err := s.tables.Save(context.Background(), s.tp.fam)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func byChain(rs []Rule) map[string][]string {
	out := map[string][]string{}
	for _, r := range rs {
		out[r.Chain] = append(out[r.Chain], r.Spec)
	}
	return out
}

func (s *scenario) dialFromPeer(ctx context.Context, addr string) (string, error) {
	return dialIn(ctx, s.peer, addr)
}

func (s *scenario) dialFromPod(ctx context.Context, addr string) (string, error) {
	return dialIn(ctx, s.pod, addr)
}

func dialIn(ctx context.Context, ns *netnstest.Netns, addr string) (string, error) {
	c, err := ns.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return readLine(c)
}

// dialAsProxy connects from a process running as the proxy's UID and GID
// in the pod namespace: the test binary, started from a thread that has
// joined the namespace (the child inherits it), with the credentials set
// by exec.
func (s *scenario) dialAsProxy(ctx context.Context, addr string) (string, error) {
	cmd := exec.CommandContext(ctx, s.helper)
	// Under -race the binary would sleep a second at exit (atexit_sleep_ms).
	cmd.Env = append(os.Environ(), helperEnv+"="+addr, "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: testProxyUID, Gid: testProxyGID}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := s.pod.Do(cmd.Start); err != nil {
		return "", fmt.Errorf("starting the client as UID %d: %w", testProxyUID, err)
	}
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("client as UID %d: %w: %s", testProxyUID, err, strings.TrimSpace(out.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// serve answers every connection with "<label> <address>": the original
// destination (SO_ORIGINAL_DST) when origDst, else the address the
// connection reached. It stops when the test ends.
func serve(t *testing.T, ln *net.TCPListener, label string, origDst bool) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			where := c.LocalAddr().String()
			if origDst {
				if ap, err := origdst.OriginalDst(c); err != nil {
					where = "no original destination: " + err.Error()
				} else {
					where = ap.String()
				}
			}
			if ap, err := netip.ParseAddrPort(where); err == nil {
				where = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
			}
			io.WriteString(c, label+" "+where+"\n")
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
}

// helperBinary copies the test binary where the proxy's UID can run it
// (go test's build directory is root's alone).
func helperBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "weft-capture-helper-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dial")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDetectBackendInNamespace: in a fresh namespace auto picks nft; once
// the namespace holds legacy rules, legacy.
func TestDetectBackendInNamespace(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: creates network namespaces")
	}
	ns := netnstest.New(t, "wcap-det")
	runner := Exec{Prefix: []string{"ip", "netns", "exec", ns.Name}}
	ctx := context.Background()
	if _, err := programs(ctx, runner, BackendLegacy); err != nil {
		t.Skipf("skipping: iptables-legacy is not installed: %v", err)
	}
	b, err := DetectBackend(ctx, runner, BackendAuto)
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != BackendNFT {
		t.Errorf("fresh namespace: %s (%s), want nft", b.Name, b.Description)
	}
	if out, err := ns.Command("iptables-legacy", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "--dport", "7", "-j", "RETURN").CombinedOutput(); err != nil {
		t.Skipf("skipping: cannot add a legacy rule: %v: %s", err, out)
	}
	if b, err = DetectBackend(ctx, runner, BackendAuto); err != nil {
		t.Fatal(err)
	}
	if b.Name != BackendLegacy {
		t.Errorf("namespace with a legacy rule: %s (%s), want legacy", b.Name, b.Description)
	}
}
