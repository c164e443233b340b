//go:build !linux

package origdst

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// OriginalDst is not supported on this operating system: recovering the
// pre-NAT destination relies on Linux conntrack. It always returns an error
// wrapping errors.ErrUnsupported.
func OriginalDst(c *net.TCPConn) (netip.AddrPort, error) {
	return netip.AddrPort{}, fmt.Errorf("origdst: transparent mode needs Linux; use explicit mode: %w", errors.ErrUnsupported)
}
