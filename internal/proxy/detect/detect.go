package detect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// Protocol is the application protocol detected on a connection.
type Protocol uint8

// Detected protocols. The zero value is Opaque.
const (
	// Opaque is raw TCP: nothing recognisable, or nothing at all, was sent.
	Opaque Protocol = iota
	// HTTP1 is an HTTP/1.x request line.
	HTTP1
	// HTTP2 is HTTP/2 with prior knowledge (the client connection preface).
	HTTP2
	// TLS is a TLS handshake record.
	TLS
)

// String returns "opaque", "http1", "http2" or "tls".
func (p Protocol) String() string {
	switch p {
	case Opaque:
		return "opaque"
	case HTTP1:
		return "http1"
	case HTTP2:
		return "http2"
	case TLS:
		return "tls"
	}
	return "Protocol(" + strconv.Itoa(int(p)) + ")"
}

// Result describes what was detected on a connection.
type Result struct {
	Protocol Protocol
	// SNI is the server name from the TLS ClientHello, if any.
	SNI string
	// ALPN lists the protocols offered in the TLS ClientHello, if any.
	ALPN []string
	// ServerFirst reports that the client sent nothing before the timeout,
	// or that the port is remembered as one where that happened.
	ServerFirst bool
}

// Defaults applied by New for zero (or negative) Config fields.
const (
	DefaultTimeout       = 300 * time.Millisecond
	DefaultRememberTTL   = 10 * time.Minute
	DefaultMaxRemembered = 4096
)

// DefaultOpaquePorts returns the ports on which detection is always skipped:
// SMTP, submission, MySQL, 4444, PostgreSQL, Redis, Elasticsearch transport
// and memcached. The slice is freshly allocated on every call.
func DefaultOpaquePorts() []uint16 {
	return []uint16{25, 587, 3306, 4444, 5432, 6379, 9300, 11211}
}

// Config configures a Detector.
type Config struct {
	// Timeout bounds how long Detect waits for conclusive bytes.
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// OpaquePorts are skipped without reading, in addition to
	// DefaultOpaquePorts, which are always included.
	OpaquePorts []uint16
	// RememberTTL is how long a port on which the client stayed silent is
	// treated as server-first. Zero means DefaultRememberTTL.
	RememberTTL time.Duration
	// MaxRemembered bounds the number of remembered server-first ports; the
	// oldest entry is evicted when full. Zero means DefaultMaxRemembered.
	MaxRemembered int
}

// Detector detects protocols on connections. It is safe for concurrent use.
type Detector struct {
	timeout       time.Duration
	ttl           time.Duration
	maxRemembered int
	opaque        map[uint16]struct{} // read-only after New
	now           func() time.Time    // replaced in tests

	mu         sync.RWMutex
	remembered map[uint16]time.Time // server-first port -> expiry
}

// New returns a Detector for cfg, applying defaults to zero fields.
func New(cfg Config) *Detector {
	d := &Detector{
		timeout:       cfg.Timeout,
		ttl:           cfg.RememberTTL,
		maxRemembered: cfg.MaxRemembered,
		opaque:        make(map[uint16]struct{}),
		now:           time.Now,
		remembered:    make(map[uint16]time.Time),
	}
	if d.timeout <= 0 {
		d.timeout = DefaultTimeout
	}
	if d.ttl <= 0 {
		d.ttl = DefaultRememberTTL
	}
	if d.maxRemembered <= 0 {
		d.maxRemembered = DefaultMaxRemembered
	}
	for _, p := range DefaultOpaquePorts() {
		d.opaque[p] = struct{}{}
	}
	for _, p := range cfg.OpaquePorts {
		d.opaque[p] = struct{}{}
	}
	return d
}

// IsOpaquePort reports whether port is configured (or defaulted) as opaque.
func (d *Detector) IsOpaquePort(port uint16) bool {
	_, ok := d.opaque[port]
	return ok
}

// Remembered reports whether port is currently remembered as server-first.
func (d *Detector) Remembered(port uint16) bool {
	now := d.now()
	d.mu.RLock()
	exp, ok := d.remembered[port]
	d.mu.RUnlock()
	// Expired entries are left in place; remember sweeps them when full.
	return ok && now.Before(exp)
}

// remember records port as server-first until now+ttl, evicting expired
// entries and then the oldest one if the map is full. The linear scan only
// happens when the map is full, and entries are rare (each one costs a client
// a full timeout), so it is not worth a heap.
func (d *Detector) remember(port uint16) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.remembered[port]; !ok && len(d.remembered) >= d.maxRemembered {
		for p, exp := range d.remembered {
			if !now.Before(exp) {
				delete(d.remembered, p)
			}
		}
		for len(d.remembered) >= d.maxRemembered {
			var oldest uint16
			var oldestExp time.Time
			first := true
			for p, exp := range d.remembered {
				if first || exp.Before(oldestExp) {
					oldest, oldestExp, first = p, exp, false
				}
			}
			delete(d.remembered, oldest)
		}
	}
	d.remembered[port] = now.Add(d.ttl)
}

// Detect determines the protocol spoken by the client on conn, which was
// accepted on (or is destined for) port.
//
// On opaque ports and ports remembered as server-first it returns Opaque
// at once, without reading, together with conn itself. Otherwise it reads
// from conn until the bytes are conclusive, the client stalls for the
// configured timeout, or the client closes its side; a stall or close
// before anything conclusive arrived yields Opaque. If nothing at all arrived
// before the timeout, the result has ServerFirst set and port is remembered.
//
// The returned net.Conn must be used instead of conn: it replays every byte
// read during detection before reading from conn. conn's read deadline is
// reset to zero before Detect returns.
//
// Bytes the client sends never cause an error. An error is returned only if
// ctx is done before detection concludes, or if reading from conn (or
// setting its deadline) fails other than by timeout or EOF; the returned
// net.Conn is valid (and should be closed by the caller) even then.
func (d *Detector) Detect(ctx context.Context, conn net.Conn, port uint16) (Result, net.Conn, error) {
	if d.IsOpaquePort(port) {
		return Result{Protocol: Opaque}, conn, nil
	}
	if d.Remembered(port) {
		return Result{Protocol: Opaque, ServerFirst: true}, conn, nil
	}
	if err := ctx.Err(); err != nil {
		return Result{}, conn, fmt.Errorf("detect: context done before reading: %w", err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(d.timeout)); err != nil {
		return Result{}, conn, fmt.Errorf("detect: setting read deadline: %w", err)
	}

	// Interrupt a blocked Read when ctx is done. The deadline set by the
	// callback must not outlive Detect, so if it already started, wait for
	// it before resetting the deadline.
	var stop func() bool
	var interrupted chan struct{}
	if ctx.Done() != nil {
		interrupted = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			// Any non-zero time in the past makes a pending Read fail.
			_ = conn.SetReadDeadline(time.Unix(1, 0))
			close(interrupted)
		})
	}

	p := &peeker{conn: conn, buf: make([]byte, 0, initialPeek)}
	res, err := d.sniff(ctx, p)

	if stop != nil && !stop() {
		<-interrupted
	}
	// Best effort: this only fails once the connection is closed (net.Pipe
	// also refuses after the peer closed), and then the caller's next Read
	// reports that anyway; an EOF is not an error for detection.
	_ = conn.SetReadDeadline(time.Time{})
	if res.ServerFirst && err == nil {
		d.remember(port)
	}
	if len(p.buf) == 0 {
		return res, conn, err
	}
	return res, &peekedConn{Conn: conn, buf: p.buf}, err
}

// sniff reads from p until the protocol is decided.
func (d *Detector) sniff(ctx context.Context, p *peeker) (Result, error) {
	for {
		proto, ok := classify(p.buf)
		if ok {
			if proto == TLS {
				return d.sniffTLS(ctx, p)
			}
			return Result{Protocol: proto}, nil
		}
		if err := p.fill(len(p.buf) + 1); err != nil {
			if err := p.fatal(ctx, err); err != nil {
				return Result{}, err
			}
			// Timeout or EOF before anything conclusive arrived.
			return Result{Protocol: Opaque, ServerFirst: len(p.buf) == 0 && isTimeout(err)}, nil
		}
	}
}

// sniffTLS reads the complete ClientHello (once the record header has been
// recognised) and extracts SNI and ALPN from it. A hello that is truncated,
// oversized or malformed still yields TLS, without SNI or ALPN.
func (d *Detector) sniffTLS(ctx context.Context, p *peeker) (Result, error) {
	for {
		need, complete := clientHelloLen(p.buf)
		if complete {
			return parseClientHello(p.buf[:need]), nil
		}
		if need > maxTLSPeek {
			return Result{Protocol: TLS}, nil
		}
		if err := p.fill(need); err != nil {
			if err := p.fatal(ctx, err); err != nil {
				return Result{Protocol: TLS}, err
			}
			return Result{Protocol: TLS}, nil
		}
	}
}

// isTimeout reports whether err is a read deadline expiry.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Buffer sizes. The initial buffer easily holds everything needed to tell
// HTTP/1, HTTP/2 and TLS apart; it only grows to hold a large ClientHello.
const (
	initialPeek = 1024
	// maxTLSPeek bounds the bytes read to get a complete ClientHello: one
	// maximum-size plaintext record plus its header. Hellos spanning several
	// records are supported as long as they fit.
	maxTLSPeek = 5 + 16384
)

// peeker accumulates bytes read from conn.
type peeker struct {
	conn net.Conn
	buf  []byte
}

// maxEmptyReads bounds consecutive (0, nil) reads before giving up, so a
// misbehaving net.Conn cannot make fill spin forever.
const maxEmptyReads = 100

// fill reads from conn until at least n bytes are buffered. A single Read may
// return more than needed; those bytes are kept too.
func (p *peeker) fill(n int) error {
	if n > cap(p.buf) {
		grown := make([]byte, len(p.buf), n)
		copy(grown, p.buf)
		p.buf = grown
	}
	empty := 0
	for len(p.buf) < n {
		m, err := p.conn.Read(p.buf[len(p.buf):cap(p.buf)])
		p.buf = p.buf[:len(p.buf)+m]
		if err != nil {
			return err
		}
		if m == 0 {
			if empty++; empty >= maxEmptyReads {
				return io.ErrNoProgress
			}
		} else {
			empty = 0
		}
	}
	return nil
}

// fatal maps a read error to the error Detect returns: nil for a timeout or
// EOF (detection just ends with what was read), the context's error if ctx is
// done (the timeout was caused by the cancellation), or the wrapped read
// error otherwise.
func (p *peeker) fatal(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && isTimeout(err) {
		return fmt.Errorf("detect: context done while reading: %w", ctxErr)
	}
	if isTimeout(err) || errors.Is(err, io.EOF) {
		return nil
	}
	return fmt.Errorf("detect: reading from %v: %w", p.conn.RemoteAddr(), err)
}
