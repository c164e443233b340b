// Package coalesce batches the small writes a connection receives in one
// burst into one write(2).
//
// Go's HTTP/2 implementation flushes each frame it writes: a request's
// HEADERS and DATA leave as two TLS records in two system calls and two
// packets, and the peer wakes up twice to read them. Under TLS, a Conn from
// this package collects what is written while the writing goroutine keeps
// running and hands it to the kernel in one call once that goroutine
// yields (it blocks waiting for the answer, usually microseconds later).
// Hand-written: no library offers write coalescing below crypto/tls.
package coalesce

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"time"
)

// maxPending bounds the bytes a Conn holds: past it, Write waits for the
// kernel to take them (back-pressure, as a plain conn would apply).
const maxPending = 256 << 10

// Conn is a net.Conn whose writes are coalesced. Write errors are sticky and
// reported by the next Write or Close.
type Conn struct {
	net.Conn

	mu        sync.Mutex
	cond      sync.Cond // signalled when pending drains or an error is set
	pending   []byte
	spare     []byte
	scheduled bool // a flusher goroutine is on its way
	writing   bool // a flusher is in write(2)
	err       error
	closed    bool
	deadline  time.Time // the write deadline the user set
}

// flushLimit bounds how long Close and deadline changes wait for pending
// bytes to leave when the user set no earlier deadline: a peer that stopped
// reading must not hold them (crypto/tls gives its close_notify 5 s too).
const flushLimit = 5 * time.Second

// New wraps c.
func New(c net.Conn) *Conn {
	cc := &Conn{Conn: c}
	cc.cond.L = &cc.mu
	return cc
}

// Write queues p for the next flush.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	for c.err == nil && !c.closed && len(c.pending) >= maxPending {
		c.cond.Wait()
	}
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	if c.closed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	c.pending = append(c.pending, p...)
	start := !c.scheduled
	c.scheduled = true
	c.mu.Unlock()
	if start {
		// One short-lived goroutine per burst: nothing outlives the
		// connection, whoever closes it and however.
		go c.flushLater()
	}
	return len(p), nil
}

// flushLater lets the goroutine that wrote run on until it blocks, so that
// everything it writes in this burst leaves together, then writes until
// nothing is pending.
func (c *Conn) flushLater() {
	runtime.Gosched()
	for c.flushOnce() {
	}
	c.mu.Lock()
	c.scheduled = false
	again := len(c.pending) > 0 && c.err == nil
	if again {
		c.scheduled = true
	}
	c.mu.Unlock()
	if again {
		go c.flushLater()
	}
}

// flushOnce writes what is pending; it reports whether it wrote anything.
func (c *Conn) flushOnce() bool {
	c.mu.Lock()
	for c.writing {
		c.cond.Wait()
	}
	if len(c.pending) == 0 || c.err != nil {
		c.mu.Unlock()
		return false
	}
	b := c.pending
	c.pending, c.spare = c.spare[:0], nil
	c.writing = true
	c.mu.Unlock()

	_, err := c.Conn.Write(b)

	c.mu.Lock()
	c.writing = false
	if err != nil && c.err == nil {
		c.err = err
	}
	if cap(b) <= maxPending*2 {
		c.spare = b[:0]
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	return true
}

// flush writes everything pending from the calling goroutine.
func (c *Conn) flush() error {
	for c.flushOnce() {
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// CloseWrite flushes, then half-closes the connection when it can.
func (c *Conn) CloseWrite() error {
	if err := c.flush(); err != nil {
		return err
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("coalesce: connection cannot half-close")
}

// boundedFlush writes what is pending, waiting at most until the user's
// deadline or flushLimit, whichever comes first; a write in progress is
// bounded too, since deadlines apply to writes already blocked.
func (c *Conn) boundedFlush() {
	c.mu.Lock()
	d := c.deadline
	c.mu.Unlock()
	limit := time.Now().Add(flushLimit)
	if d.IsZero() || d.After(limit) {
		_ = c.Conn.SetWriteDeadline(limit)
		defer c.Conn.SetWriteDeadline(d)
	}
	_ = c.flush()
}

// Close flushes what is pending (bounded) and closes the connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	c.boundedFlush()
	return c.Conn.Close()
}

// SetWriteDeadline hands what is pending to the kernel first: bytes written
// before a deadline is set must not fall under it (crypto/tls sets a
// deadline of now right after its close_notify alert).
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.boundedFlush()
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline is SetWriteDeadline for both directions.
func (c *Conn) SetDeadline(t time.Time) error {
	c.boundedFlush()
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}
