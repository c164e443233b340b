// Package origdst recovers the original (pre-NAT) destination of a TCP
// connection that iptables/nftables redirected to a local listener with a
// NAT REDIRECT or DNAT rule, as used by weft's transparent-capture mode.
//
// The kernel's connection tracker remembers the destination the client
// actually dialled; OriginalDst reads it with getsockopt(SO_ORIGINAL_DST) for
// IPv4 (including IPv4 connections accepted on a dual-stack IPv6 listener)
// and getsockopt(IP6T_SO_ORIGINAL_DST) for IPv6. It needs only
// golang.org/x/sys/unix, no cgo.
//
// This is for NAT-based redirection only. With TPROXY the socket's local
// address already is the original destination and no lookup is needed.
//
// A connection that was not NATed reports whatever conntrack knows about it:
// when conntrack tracks the connection (any NAT rule in the network namespace
// enables that) the "original destination" is the connection's own local
// address; when no conntrack entry exists the lookup fails with ENOENT.
// Callers that must distinguish redirected from direct connections should
// compare the result with c.LocalAddr().
//
// Transparent capture is Linux-only; on other systems OriginalDst returns an
// error wrapping errors.ErrUnsupported that tells the operator to use
// explicit mode.
package origdst
