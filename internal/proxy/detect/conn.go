package detect

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// peekedConn is the net.Conn returned by Detect: it replays the bytes read
// during detection, then reads from the underlying connection.
type peekedConn struct {
	net.Conn

	drained atomic.Bool // buf is empty for good; Read goes straight to Conn
	mu      sync.Mutex  // guards buf (net.Conn allows concurrent calls)
	buf     []byte
}

// Read returns replayed bytes first, then reads from the underlying conn.
func (c *peekedConn) Read(b []byte) (int, error) {
	if c.drained.Load() {
		return c.Conn.Read(b)
	}
	c.mu.Lock()
	if len(c.buf) == 0 {
		c.mu.Unlock()
		return c.Conn.Read(b)
	}
	n := copy(b, c.buf)
	c.buf = c.buf[n:]
	if len(c.buf) == 0 {
		c.buf = nil
		c.drained.Store(true)
	}
	c.mu.Unlock()
	return n, nil
}

// WriteTo writes the replayed bytes to w and then copies the rest of the
// connection, letting io.Copy keep using the underlying conn's fast paths
// (such as splice between TCP connections).
func (c *peekedConn) WriteTo(w io.Writer) (int64, error) {
	var n int64
	if !c.drained.Load() {
		c.mu.Lock()
		buf := c.buf
		c.buf = nil
		c.drained.Store(true)
		c.mu.Unlock()
		if len(buf) > 0 {
			m, err := w.Write(buf)
			n += int64(m)
			if err != nil {
				return n, err
			}
		}
	}
	m, err := io.Copy(w, c.Conn)
	return n + m, err
}
