package tcpproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultIdleTimeout is used when Options.IdleTimeout is zero.
const DefaultIdleTimeout = time.Hour

// ErrIdleTimeout is returned by Relay when it ended the relay because no
// bytes moved in either direction for Options.IdleTimeout.
var ErrIdleTimeout = errors.New("tcpproxy: idle timeout")

// bufSize is the copy buffer size of the buffered (non-splice) path.
const bufSize = 32 << 10

// bufPool caches copy buffers for the buffered path. It is package-level
// because sync.Pool is a concurrency-safe cache with no observable state:
// which buffer a relay gets never changes its behaviour.
var bufPool = sync.Pool{New: func() any { return new([bufSize]byte) }}

// Options configures Relay.
type Options struct {
	// IdleTimeout ends the relay when no bytes have moved in either
	// direction for this long. Zero means DefaultIdleTimeout (1h); a
	// negative value disables the idle timeout.
	IdleTimeout time.Duration

	// OnBytes, if set, is called exactly once when Relay returns, with the
	// bytes copied a->b (toUpstream) and b->a (toDownstream). By
	// convention a is the downstream (accepted) connection and b the
	// upstream one.
	OnBytes func(toUpstream, toDownstream int64)
}

// copyMode says how a relay copies bytes.
type copyMode uint8

const (
	// modeBuffered copies through a pooled buffer with io.CopyBuffer.
	modeBuffered copyMode = iota
	// modeSplice copies with (*net.TCPConn).ReadFrom, which uses
	// splice(2) on Linux.
	modeSplice
)

func (m copyMode) String() string {
	if m == modeSplice {
		return "splice"
	}
	return "buffered"
}

// relayResult is what relay reports; Relay exposes all but mode, which
// tests use to check that the zero-copy path was chosen.
type relayResult struct {
	aToB, bToA int64
	err        error
	mode       copyMode
}

// dirResult is what one copy direction reports when it finishes.
type dirResult struct {
	aToB bool
	n    int64
	err  error
}

// Relay copies a->b and b->a until both directions have finished (each side
// sent EOF and the other side was half-closed), ctx is done, or no bytes
// moved in either direction for the idle timeout.
//
// When one side's reader reaches EOF, the other side is half-closed with
// CloseWrite if it has that method (*net.TCPConn, *tls.Conn, ...) and the
// opposite direction keeps copying; a connection without CloseWrite is left
// as is until the relay ends.
//
// Relay returns the bytes copied each way and the first error that ended
// it: a copy error (wrapped, saying which direction failed), ctx.Err() if
// the context ended it, or ErrIdleTimeout. EOF is not an error, and neither
// are the closed-connection errors that Relay's own shutdown causes in the
// other direction. Both connections are closed before Relay returns.
//
// Two *net.TCPConn legs are relayed with splice(2) on Linux; see the package
// documentation.
func Relay(ctx context.Context, a, b net.Conn, opt Options) (aToB, bToA int64, err error) {
	r := relay(ctx, a, b, opt)
	return r.aToB, r.bToA, r.err
}

func relay(ctx context.Context, a, b net.Conn, opt Options) relayResult {
	idle := opt.IdleTimeout
	if idle == 0 {
		idle = DefaultIdleTimeout
	}

	mode := modeBuffered
	aTCP, aOK := a.(*net.TCPConn)
	bTCP, bOK := b.(*net.TCPConn)
	if aOK && bOK && spliceSupported {
		mode = modeSplice
	}

	// The idle clock: on the splice path the kernel keeps it (TCP_INFO),
	// on the buffered path the copy loops stamp it.
	var (
		clock   = newWriteClock()
		idleFor func() time.Duration
	)
	if idle > 0 {
		if mode == modeSplice {
			idleFor = tcpIdleProbe(aTCP, bTCP)
		} else {
			idleFor = clock.idleFor
		}
	}

	results := make(chan dirResult, 2)
	go func() { results <- copyDir(mode, clock, b, a, true) }()
	go func() { results <- copyDir(mode, clock, a, b, false) }()

	var (
		res      = relayResult{mode: mode}
		aborted  bool
		ctxDone  = ctx.Done()
		timer    *time.Timer
		timerC   <-chan time.Time
		closeAll = sync.OnceFunc(func() {
			// Errors from Close are not interesting here: the relay is
			// over and any data-path error was reported by the copy.
			_ = a.Close()
			_ = b.Close()
		})
	)
	abort := func(reason error) {
		if aborted {
			return
		}
		aborted = true
		res.err = reason
		closeAll() // unblocks both copy goroutines
	}
	if idleFor != nil {
		timer = time.NewTimer(idle)
		defer timer.Stop()
		timerC = timer.C
	}

	for pending := 2; pending > 0; {
		select {
		case d := <-results:
			pending--
			if d.aToB {
				res.aToB = d.n
			} else {
				res.bToA = d.n
			}
			// Once aborted, errors are the fallout of our own Close.
			if d.err != nil && !aborted {
				abort(d.err)
			}
		case <-ctxDone:
			ctxDone = nil
			abort(ctx.Err())
		case <-timerC:
			if aborted {
				timerC = nil
				continue
			}
			quiet := idleFor()
			if quiet >= idle {
				timerC = nil
				abort(ErrIdleTimeout)
				continue
			}
			// Nothing can expire before idle-quiet from now.
			timer.Reset(max(idle-quiet, minIdleCheck))
		}
	}
	closeAll()
	if opt.OnBytes != nil {
		opt.OnBytes(res.aToB, res.bToA)
	}
	return res
}

// minIdleCheck bounds how often the idle timer fires.
const minIdleCheck = 5 * time.Millisecond

// copyDir copies src to dst until EOF or error, then half-closes dst on EOF.
func copyDir(mode copyMode, clock *writeClock, dst, src net.Conn, aToB bool) dirResult {
	name := "b->a"
	if aToB {
		name = "a->b"
	}
	var (
		n   int64
		err error
	)
	if mode == modeSplice {
		// Both are *net.TCPConn (checked by relay). Calling ReadFrom
		// directly, with the concrete source, is what makes the standard
		// library use splice(2).
		n, err = dst.(*net.TCPConn).ReadFrom(src.(*net.TCPConn))
	} else {
		buf := bufPool.Get().(*[bufSize]byte)
		// Hide ReaderFrom/WriterTo so io.CopyBuffer really uses buf and
		// every write goes through the activity stamp.
		n, err = io.CopyBuffer(stampingWriter{dst, clock}, readerOnly{src}, buf[:])
		bufPool.Put(buf)
	}
	if err != nil {
		return dirResult{aToB: aToB, n: n, err: fmt.Errorf("tcpproxy: copy %s: %w", name, err)}
	}
	// EOF from src: propagate the half-close so the peer sees EOF too.
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			return dirResult{aToB: aToB, n: n, err: fmt.Errorf("tcpproxy: half-close after %s EOF: %w", name, err)}
		}
	}
	return dirResult{aToB: aToB, n: n}
}

// readerOnly hides a connection's WriteTo method from io.CopyBuffer.
type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

// stampingWriter writes to w and records the time of every successful write.
// It has no ReadFrom, so io.CopyBuffer uses its buffer.
type stampingWriter struct {
	w     io.Writer
	clock *writeClock
}

func (s stampingWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if n > 0 {
		s.clock.stamp()
	}
	return n, err
}

// writeClock records when bytes last moved on the buffered path.
type writeClock struct {
	start time.Time    // monotonic reference
	last  atomic.Int64 // time.Since(start) at the last write, in ns
}

func newWriteClock() *writeClock { return &writeClock{start: time.Now()} }

func (c *writeClock) stamp() { c.last.Store(int64(time.Since(c.start))) }

func (c *writeClock) idleFor() time.Duration {
	return time.Since(c.start) - time.Duration(c.last.Load())
}
