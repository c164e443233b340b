//go:build linux

package tcpproxy

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// spliceSupported: (*net.TCPConn).ReadFrom uses splice(2) on Linux, and
// tcpIdleProbe can observe activity on it.
const spliceSupported = true

// tcpIdleProbe returns a function reporting how long no payload has been
// sent or received on either connection, per TCP_INFO (see idle.go). Any
// failure reads as zero (active): the probe must never end a relay early.
func tcpIdleProbe(a, b *net.TCPConn) func() time.Duration {
	var raws []syscall.RawConn
	for _, c := range []*net.TCPConn{a, b} {
		rc, err := c.SyscallConn()
		if err != nil {
			return func() time.Duration { return 0 }
		}
		raws = append(raws, rc)
	}
	return func() time.Duration {
		quiet := time.Duration(1<<63 - 1)
		for _, rc := range raws {
			q, ok := tcpQuiet(rc)
			if !ok {
				return 0
			}
			quiet = min(quiet, q)
		}
		return quiet
	}
}

// tcpQuiet reads TCP_INFO and returns the time since data was last sent or
// received on the socket, whichever is more recent.
func tcpQuiet(rc syscall.RawConn) (time.Duration, bool) {
	var (
		info *unix.TCPInfo
		err  error
	)
	// Control keeps the fd referenced during the call, so a concurrent
	// Close cannot make us query a reused descriptor.
	if cerr := rc.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); cerr != nil || err != nil {
		return 0, false
	}
	ms := min(info.Last_data_recv, info.Last_data_sent)
	return time.Duration(ms) * time.Millisecond, true
}
