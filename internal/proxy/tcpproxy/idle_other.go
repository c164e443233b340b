//go:build !linux

package tcpproxy

import (
	"net"
	"time"
)

// spliceSupported: outside Linux the standard library has no TCP-to-TCP
// splice, so every relay takes the buffered path and tcpIdleProbe is unused.
const spliceSupported = false

func tcpIdleProbe(a, b *net.TCPConn) func() time.Duration {
	return func() time.Duration { return 0 }
}
