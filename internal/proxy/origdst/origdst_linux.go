//go:build linux

package origdst

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// ip6tSOOriginalDst is IP6T_SO_ORIGINAL_DST from
// <linux/netfilter_ipv6/ip6_tables.h>; x/sys/unix does not export it. It has
// the same value as SO_ORIGINAL_DST but is read at level SOL_IPV6.
const ip6tSOOriginalDst = 80

// OriginalDst returns the pre-NAT destination of c, as recorded by the
// kernel's connection tracker when an iptables/nftables NAT rule (REDIRECT or
// DNAT) rewrote the connection's destination.
//
// The socket option is chosen from c's local address: an IPv4 or
// IPv4-mapped-IPv6 local address (an IPv4 client accepted on a dual-stack
// listener) uses SO_ORIGINAL_DST at SOL_IP, which returns a sockaddr_in;
// a real IPv6 address uses IP6T_SO_ORIGINAL_DST at SOL_IPV6, which returns a
// sockaddr_in6. IPv4 results are returned as plain IPv4 (never 4-in-6).
//
// For a connection that was not NATed the kernel returns c's own local
// address if conntrack tracks the connection, and ENOENT otherwise (see the
// package documentation).
func OriginalDst(c *net.TCPConn) (netip.AddrPort, error) {
	if c == nil {
		return netip.AddrPort{}, fmt.Errorf("origdst: nil connection")
	}
	local, ok := c.LocalAddr().(*net.TCPAddr)
	if !ok || local == nil {
		return netip.AddrPort{}, fmt.Errorf("origdst: connection has no TCP local address (%v)", c.LocalAddr())
	}
	localIP, ok := netip.AddrFromSlice(local.IP)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("origdst: invalid local address %v", local.IP)
	}
	v4 := localIP.Unmap().Is4()

	rc, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("origdst: getting raw conn: %w", err)
	}
	var (
		dst    netip.AddrPort
		optErr error
	)
	// Control holds a reference on the fd for the duration of the callback,
	// so a concurrent Close cannot make us read a reused descriptor.
	ctlErr := rc.Control(func(fd uintptr) {
		if v4 {
			dst, optErr = originalDst4(int(fd))
		} else {
			dst, optErr = originalDst6(int(fd))
		}
	})
	if ctlErr != nil {
		return netip.AddrPort{}, fmt.Errorf("origdst: accessing socket: %w", ctlErr)
	}
	if optErr != nil {
		return netip.AddrPort{}, optErr
	}
	return dst, nil
}

// originalDst4 reads SO_ORIGINAL_DST. The kernel (getorigdst in
// nf_conntrack_proto.c) copies a struct sockaddr_in (16 bytes) and only
// requires the buffer to be at least that long. x/sys/unix has no typed
// getter for sockaddr_in, so we use GetsockoptIPv6Mreq, whose IPv6Mreq value
// is 20 bytes with a 16-byte array first: after the call Multiaddr holds the
// raw sockaddr_in:
//
//	[0:2] sin_family (host order)  [2:4] sin_port (network order)
//	[4:8] sin_addr                 [8:16] zero padding
//
// This is a common idiom in Go transparent proxies and keeps unsafe out of
// this package.
func originalDst4(fd int) (netip.AddrPort, error) {
	mreq, err := unix.GetsockoptIPv6Mreq(fd, unix.SOL_IP, unix.SO_ORIGINAL_DST)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("origdst: getsockopt(SOL_IP, SO_ORIGINAL_DST): %w", err)
	}
	raw := mreq.Multiaddr
	if fam := binary.NativeEndian.Uint16(raw[0:2]); fam != unix.AF_INET {
		return netip.AddrPort{}, fmt.Errorf("origdst: SO_ORIGINAL_DST returned address family %d, want AF_INET", fam)
	}
	port := binary.BigEndian.Uint16(raw[2:4])
	addr := netip.AddrFrom4([4]byte(raw[4:8]))
	return netip.AddrPortFrom(addr, port), nil
}

// originalDst6 reads IP6T_SO_ORIGINAL_DST. The kernel (ipv6_getorigdst in
// nf_conntrack_proto.c) copies a struct sockaddr_in6 (28 bytes) and requires
// the buffer to be at least that long. GetsockoptIPv6MTUInfo passes a 32-byte
// IPv6MTUInfo whose first field is a RawSockaddrInet6, exactly the layout the
// kernel writes, so the result is read from its Addr field.
func originalDst6(fd int) (netip.AddrPort, error) {
	info, err := unix.GetsockoptIPv6MTUInfo(fd, unix.SOL_IPV6, ip6tSOOriginalDst)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("origdst: getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST): %w", err)
	}
	sa := info.Addr
	if sa.Family != unix.AF_INET6 {
		return netip.AddrPort{}, fmt.Errorf("origdst: IP6T_SO_ORIGINAL_DST returned address family %d, want AF_INET6", sa.Family)
	}
	// Port is stored in network byte order in a host-order uint16 field:
	// reinterpret its in-memory bytes as big-endian.
	var pb [2]byte
	binary.NativeEndian.PutUint16(pb[:], sa.Port)
	port := binary.BigEndian.Uint16(pb[:])
	addr := netip.AddrFrom16(sa.Addr)
	// The kernel sets sin6_scope_id only for scoped (link-local) addresses
	// on sockets bound to a device; keep it as a numeric zone, which the
	// net package accepts when dialling.
	if sa.Scope_id != 0 {
		addr = addr.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
	}
	return netip.AddrPortFrom(addr, port), nil
}
