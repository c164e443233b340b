package h1guard

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
)

// The parser here is hand-written on purpose: no library exposes the raw
// request heads that Go's HTTP/1 server reads (net/http and net/textproto
// only hand out the already normalised result), and the guard must judge the
// bytes exactly as they arrive, incrementally, without buffering bodies and
// without allocating on the hot path. Its line and framing rules mirror
// net/http and net/textproto (see the comments on each rule), so that
// wherever the guard accepts a request, the server frames it identically.

// RejectHeader is the header the guard puts on a request it refuses; any
// copy of it sent by the client is removed first.
const RejectHeader = "Weft-Reject"

// defaultMaxHeaderBytes is the head size limit when Options leaves it zero.
const defaultMaxHeaderBytes = 64 << 10

// initialBufSize is the head buffer's first size; it grows on demand up to
// Options.MaxHeaderBytes. It matches net/http's per-connection read buffer.
const initialBufSize = 4 << 10

// Options configures Wrap.
type Options struct {
	// MaxHeaderBytes bounds the size of a request head: the request line,
	// the header lines and the empty line that ends them. A larger head is
	// refused with the reason "request header too large". Zero or negative
	// means 64 KiB.
	MaxHeaderBytes int
}

// Reason returns the rejection reason recorded on r by the guard, or "".
func Reason(r *http.Request) string {
	return r.Header.Get(RejectHeader)
}

// Tunnel reports whether the guard stopped validating the connection after
// passing on r: r was not refused and has an Upgrade header field (whatever
// its value) or the CONNECT method. A handler that does not tunnel such a
// request must close the connection after responding to it (for example by
// setting the "Connection: close" response header), since the guard no
// longer checks the requests that might follow.
func Tunnel(r *http.Request) bool {
	if Reason(r) != "" {
		return false
	}
	if r.Method == http.MethodConnect {
		return true
	}
	_, ok := r.Header["Upgrade"]
	return ok
}

// state is where in the request stream the guard is.
type state uint8

const (
	stHead     state = iota // reading a request head
	stLength                // in a Content-Length body; remain bytes left
	stChunked               // in a chunked body; cs has the details
	stTunnel                // after an Upgrade or CONNECT: pass everything
	stRejected              // a rewritten head was queued; io.EOF from now on
	stFailed                // malformed chunked body; err from now on
)

// Conn is the net.Conn returned by Wrap. Its Read validates the client's
// request stream as described in the package documentation; every other
// method is the wrapped connection's.
type Conn struct {
	net.Conn

	max int // Options.MaxHeaderBytes, defaulted

	mu  sync.Mutex // serialises Read; guards everything below
	st  state
	err error // set in stFailed

	// buf holds bytes read from Conn and not yet released: buf[r:w].
	// In stHead they are (the start of) the next request head, otherwise
	// they are the bytes that followed a head in the same read.
	buf  []byte
	r, w int

	scan int // stHead: offset from r where the search for the head end resumes
	skip int // stHead: leading CR or LF bytes still to pass over (after a POST)

	pend []byte // bytes queued for release; points into buf or rew
	rew  []byte // reusable buffer for rewritten heads

	remain uint64 // stLength: body bytes left
	chunk  chunkReader

	heads int // heads released so far, rewritten ones included (for tests)
}

// Wrap returns a conn whose Read yields exactly the client's bytes as long
// as every request head is acceptable. See the package documentation.
func Wrap(c net.Conn, opt Options) net.Conn {
	limit := opt.MaxHeaderBytes
	if limit <= 0 {
		limit = defaultMaxHeaderBytes
	}
	return &Conn{Conn: c, max: limit}
}

// Read reads the client's request stream, validating each request head
// before releasing any of it.
func (c *Conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if len(c.pend) > 0 {
			n := copy(b, c.pend)
			c.pend = c.pend[n:]
			return n, nil
		}
		switch c.st {
		case stHead:
			if c.head() {
				continue
			}
			if progress, err := c.fill(); !progress {
				return 0, err
			}
		case stLength, stChunked:
			if c.r < c.w {
				k, err := c.body(c.buf[c.r:c.w])
				if err != nil {
					return 0, c.fail(err)
				}
				c.pend = c.buf[c.r : c.r+k]
				c.r += k
				continue
			}
			// Nothing buffered: read straight into b and keep back
			// whatever follows the end of the body.
			c.r, c.w = 0, 0
			n, err := c.Conn.Read(b)
			k, berr := c.body(b[:n])
			if berr != nil {
				return 0, c.fail(berr)
			}
			if k < n {
				c.keep(b[k:n])
				// The next Read gets the buffered bytes first; a
				// pending error will show up again after them.
				return k, nil
			}
			return n, err
		case stTunnel:
			if c.r < c.w {
				c.pend = c.buf[c.r:c.w]
				c.r, c.w = 0, 0
				continue
			}
			return c.Conn.Read(b)
		case stRejected:
			return 0, io.EOF
		default: // stFailed
			return 0, c.err
		}
	}
}

// ReadFrom is the wrapped connection's ReadFrom, if it has one, so that the
// HTTP server keeps using sendfile or splice when writing responses. It only
// writes to the connection and so bypasses nothing the guard checks.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}

// writerOnly hides a Writer's ReadFrom method from io.Copy.
type writerOnly struct{ io.Writer }

// CloseWrite half-closes the wrapped connection, so that the HTTP server
// can avoid resetting a connection it refuses while the client is still
// sending. It returns errors.ErrUnsupported if the wrapped connection has no
// CloseWrite method.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// fill reads more of a request head from the wrapped connection into buf.
// It reports whether it read anything; if not, err is the wrapped
// connection's error (possibly nil).
//
// When a read returns bytes and an error, the bytes are kept and the error
// is dropped: the guard works on the bytes first, and a lasting condition
// (EOF, a closed or broken connection, a past deadline) is reported again by
// the wrapped connection's next Read.
func (c *Conn) fill() (bool, error) {
	if c.r > 0 {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
	if c.w == len(c.buf) {
		// Here c.w < c.max, or head would have refused the head as
		// too large, so the buffer can grow.
		nb := make([]byte, min(max(2*len(c.buf), initialBufSize), c.max))
		copy(nb, c.buf[:c.w])
		c.buf = nb
	}
	n, err := c.Conn.Read(c.buf[c.w:])
	c.w += n
	return n > 0, err
}

// keep buffers p, the bytes that followed a body in a direct read.
func (c *Conn) keep(p []byte) {
	if len(c.buf) < len(p) {
		c.buf = make([]byte, max(len(p), min(initialBufSize, c.max)))
	}
	c.r, c.w = 0, copy(c.buf, p)
}

// fail puts the conn in stFailed with err and returns err.
func (c *Conn) fail(err error) error {
	c.st, c.err = stFailed, err
	c.buf, c.r, c.w = nil, 0, 0
	return err
}

// head looks for a complete request head at buf[r:w] and once there is one,
// validates it and queues what to release. It reports whether it queued
// anything or changed state; false means more bytes are needed.
func (c *Conn) head() bool {
	if c.skip > 0 {
		// net/http skips up to 4 leading CR or LF bytes after a POST
		// request ("RFC 7230 section 3 tolerance for old buggy
		// clients"); they reach the server and it discards them.
		i := c.r
		for i < c.w && c.skip > 0 && (c.buf[i] == '\r' || c.buf[i] == '\n') {
			i++
			c.skip--
		}
		if i < c.w {
			c.skip = 0 // the head starts at i
		}
		if i > c.r {
			c.pend = c.buf[c.r:i]
			c.r = i
			return true
		}
		if c.skip > 0 {
			return false
		}
	}
	avail := c.buf[c.r:c.w]
	lim := avail
	if len(lim) > c.max {
		lim = lim[:c.max]
	}
	for {
		// A line ends at '\n'; a blank line ("" or "\r") after the
		// request line ends the head, as in net/textproto.
		i := bytes.IndexByte(lim[c.scan:], '\n')
		if i < 0 {
			break
		}
		start, end := c.scan, c.scan+i
		c.scan = end + 1
		if start > 0 && (end == start || end == start+1 && lim[start] == '\r') {
			c.scan = 0
			c.release(lim[:end+1])
			return true
		}
	}
	if len(avail) >= c.max {
		c.scan = 0
		c.heads++
		c.reject(lim, false, reasonTooLarge)
		return true
	}
	return false
}

// release validates the complete head h at buf[r:] and queues it, or its
// rewrite, for release.
func (c *Conn) release(h []byte) {
	c.heads++
	p := parseHead(h)
	if p.reason != "" {
		c.reject(h, true, p.reason)
		return
	}
	if p.forged {
		c.rew = appendWithoutReject(c.rew[:0], h)
		c.pend = c.rew
	} else {
		c.pend = h
	}
	c.r += len(h)
	c.skip = 0
	if string(p.method) == http.MethodPost {
		c.skip = 4
	}
	switch {
	case p.upgrade || string(p.method) == http.MethodConnect:
		c.st = stTunnel
	case p.chunked:
		c.st = stChunked
		c.chunk = chunkReader{max: c.max}
	case p.length > 0:
		c.st = stLength
		c.remain = p.length
	}
}

// reject queues the rewrite of the refused head h (complete reports whether
// h is the whole head) and puts the conn in stRejected.
func (c *Conn) reject(h []byte, complete bool, reason string) {
	c.rew = appendRejected(c.rew[:0], h, complete, reason)
	c.pend = c.rew
	c.st = stRejected
	c.buf, c.r, c.w = nil, 0, 0
}

// body consumes the body bytes at the start of p and reports how many of
// them there are; the rest of p follows the body. When the body ends, the
// conn goes back to stHead.
func (c *Conn) body(p []byte) (int, error) {
	if c.st == stLength {
		if uint64(len(p)) < c.remain {
			c.remain -= uint64(len(p))
			return len(p), nil
		}
		n := int(c.remain)
		c.remain = 0
		c.st = stHead
		return n, nil
	}
	n, done, err := c.chunk.consume(p)
	if done {
		c.st = stHead
	}
	return n, err
}
