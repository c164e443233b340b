package retry

import (
	"errors"
	"io"
	"sync"
)

var (
	errSuperseded = errors.New("retry: request body read by a try that was superseded by a retry")
	errBodyClosed = errors.New("retry: read of a closed request body")
)

// replay lets several tries send the same request body, whose length may be
// unknown, without reading it ahead: the first try streams it from src while
// every byte is recorded, and a retry replays the record and then goes on
// reading src where the record ends. Once src has given more than limit
// bytes, recording stops and there is no more replay (rewind fails), so at
// most limit bytes (plus one read's worth, see Read) are held.
//
// Only the body of the current try (cur) may read; a body whose try was
// superseded gets errSuperseded. src is read by one reader at a time; bytes a
// superseded reader had already asked src for are recorded for the current
// one, so no byte is lost.
type replay struct {
	src   io.ReadCloser
	limit int

	readMu sync.Mutex // held across src.Read: one reader of src at a time

	mu           sync.Mutex
	buf          []byte
	over         bool  // src gave more than limit bytes; buf was dropped
	srcErr       error // first error src returned, io.EOF included
	cur          *replayBody
	done         bool // Do makes no more tries
	reading      bool // a src.Read is in progress
	srcClosed    bool
	closePending bool // close src when the read in progress returns
}

// replayBody is the request body of one try.
type replayBody struct {
	r      *replay
	pos    int  // bytes delivered, guarded by r.mu
	closed bool // guarded by r.mu
}

// newReplay returns a replay of src and the body of the first try. sizeHint
// is the expected length (0 when unknown).
func newReplay(src io.ReadCloser, limit int, sizeHint int64) (*replay, *replayBody) {
	r := &replay{src: src, limit: limit}
	if sizeHint > 0 && sizeHint <= int64(limit) {
		r.buf = make([]byte, 0, sizeHint)
	}
	r.cur = &replayBody{r: r}
	return r, r.cur
}

// canRewindLocked reports whether a retry could still send the whole body.
func (r *replay) canRewindLocked() bool {
	return !r.done && !r.over && len(r.buf) <= r.limit && (r.srcErr == nil || r.srcErr == io.EOF)
}

// canRewind reports whether rewind would succeed now.
func (r *replay) canRewind() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.canRewindLocked()
}

// rewind supersedes the current try's body and returns the body for the next
// try, or false when the body can no longer be replayed.
func (r *replay) rewind() (*replayBody, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.canRewindLocked() {
		return nil, false
	}
	r.cur = &replayBody{r: r}
	return r.cur, true
}

// finish records that no more tries will be made; src is closed once the
// last try's body is closed (now, if it already is).
func (r *replay) finish() {
	r.mu.Lock()
	r.done = true
	closeNow := r.cur.closed && r.closeSrcLocked()
	r.mu.Unlock()
	if closeNow {
		r.src.Close()
	}
}

// closeSrcLocked reports whether the caller must close src now (after
// unlocking); with a read in progress the reader closes it instead.
func (r *replay) closeSrcLocked() bool {
	if r.srcClosed {
		return false
	}
	if r.reading {
		r.closePending = true
		return false
	}
	r.srcClosed = true
	return true
}

// fromRecordLocked serves a read without touching src when it can, reporting
// ok = false when the caller must read src.
func (t *replayBody) fromRecordLocked(p []byte) (n int, err error, ok bool) {
	r := t.r
	switch {
	case t.closed:
		return 0, errBodyClosed, true
	case t != r.cur:
		return 0, errSuperseded, true
	case t.pos < len(r.buf):
		n = copy(p, r.buf[t.pos:])
		t.pos += n
		return n, nil, true
	case r.srcErr != nil:
		return 0, r.srcErr, true
	case r.srcClosed:
		return 0, errBodyClosed, true
	}
	return 0, nil, false
}

// Read implements io.Reader.
func (t *replayBody) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r := t.r
	r.mu.Lock()
	n, err, ok := t.fromRecordLocked(p)
	r.mu.Unlock()
	if ok {
		return n, err
	}

	r.readMu.Lock()
	defer r.readMu.Unlock()
	r.mu.Lock()
	// While this reader waited for readMu, a superseded reader may have
	// recorded bytes, or src may have ended or been closed.
	if n, err, ok := t.fromRecordLocked(p); ok {
		r.mu.Unlock()
		return n, err
	}
	r.reading = true
	r.mu.Unlock()

	n, err = r.src.Read(p)

	r.mu.Lock()
	r.reading = false
	superseded := t != r.cur
	if n > 0 && !r.over {
		// A superseded reader's bytes are recorded whatever the limit: the
		// current try needs them. The record may then exceed limit by one
		// read, and canRewind refuses any further retry.
		if superseded || len(r.buf)+n <= r.limit {
			r.buf = append(r.buf, p[:n]...)
		} else {
			r.over = true
			r.buf = nil
		}
	}
	if err != nil && r.srcErr == nil {
		r.srcErr = err
	}
	closeNow := r.closePending && r.closeSrcLocked()
	if !superseded {
		t.pos += n
	}
	r.mu.Unlock()
	if closeNow {
		r.src.Close()
	}
	if superseded {
		return 0, errSuperseded
	}
	return n, err
}

// Close implements io.Closer. Closing the last try's body closes src.
func (t *replayBody) Close() error {
	r := t.r
	r.mu.Lock()
	t.closed = true
	closeNow := r.done && t == r.cur && r.closeSrcLocked()
	r.mu.Unlock()
	if closeNow {
		return r.src.Close()
	}
	return nil
}
