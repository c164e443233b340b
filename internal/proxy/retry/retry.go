package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// ErrNotSent is the error an Attempt wraps when the request never left the
// proxy (connect failure, no endpoint reachable): retrying it is always
// safe, whatever the method. Wrap it with errors.Join or two %w verbs, e.g.
// fmt.Errorf("dialing %s: %w: %w", addr, retry.ErrNotSent, err).
var ErrNotSent = errors.New("request not sent")

// ErrPerTryTimeout is wrapped by the error of a try that returned no
// response headers within Policy.PerTryTimeout.
var ErrPerTryTimeout = errors.New("per-try timeout")

// errRetrying is the cause with which a superseded try's context is
// cancelled.
var errRetrying = errors.New("retry: try superseded by a retry")

// drainLimit bounds how much of a retried response's body is read so its
// connection can be reused; a longer body is closed unread.
const drainLimit = 4 << 10

// Attempt sends one try of a request. It picks the endpoint itself, so a
// retry can land on another one, and returns a response or an error; an
// error meaning the request never left must wrap ErrNotSent. Like an
// http.RoundTripper it must close req.Body, and must not keep using req
// after the response's body is closed.
type Attempt func(req *http.Request) (*http.Response, error)

// Result tells what Do did beyond the final try.
type Result struct {
	Retries         int  // tries made after the first
	BudgetExhausted bool // a retry was wanted but the Budget refused it
}

// Do sends req through attempt, retrying failed tries as p allows while b
// has budget. It deposits into b once and withdraws once per retry; a nil b
// disables retries. p is assumed valid (see Policy.Validate). It returns the
// final try's response or error; responses of retried tries are drained (up
// to 4 KiB) and closed. The final response is untouched, except that with a
// PerTryTimeout its Body is wrapped so that closing it releases the try's
// context.
//
// Each try gets req.Clone with the try's context (req's, or a child limited
// by PerTryTimeout) and its own body carrying the same bytes: from
// req.GetBody when set (any size), otherwise recorded while the first try
// streams it, so no body is read ahead and streaming requests are not held
// back. A body longer than MaxBodyBytes is sent once, intact, and not
// retried: at once when its length is known, and once more than MaxBodyBytes
// of it have been read when it is not (a try that failed before that is
// still retried, with the same bytes). Nothing is retried once req's context
// is done; a backoff wait ends early when it is, and Do returns its cause.
func Do(req *http.Request, p Policy, b *Budget, attempt Attempt) (*http.Response, Result, error) {
	var res Result
	ctx := req.Context()
	maxRetries := p.MaxRetries
	if b == nil {
		maxRetries = 0
	} else {
		b.Deposit()
	}

	// Decide how every try gets the body.
	var (
		rp       *replay
		next     io.ReadCloser // body of the next try
		noBody   = req.Body == nil || req.Body == http.NoBody
		canRetry = maxRetries > 0
	)
	switch {
	case noBody || !canRetry || req.GetBody != nil:
		next = req.Body
	case req.ContentLength > int64(p.MaxBodyBytes):
		next, canRetry = req.Body, false
	default:
		rp, next = newReplay(req.Body, p.MaxBodyBytes, req.ContentLength)
	}

	for try := 0; ; try++ {
		tctx, stop := ctx, (*tryTimer)(nil)
		if p.PerTryTimeout > 0 {
			tctx, stop = startTryTimer(ctx, p.PerTryTimeout)
		}
		treq := req.Clone(tctx)
		treq.Body = next
		if rp != nil {
			treq.GetBody = nil // the record is Do's to replay
		}
		resp, err := attempt(treq)
		if resp == nil && err == nil {
			err = errors.New("retry: attempt returned neither a response nor an error")
		}
		if stop != nil && stop.expired() && ctx.Err() == nil && !errors.Is(err, ErrNotSent) {
			discard(resp)
			if err == nil {
				err = fmt.Errorf("%w: no response headers within %v", ErrPerTryTimeout, p.PerTryTimeout)
			} else {
				err = fmt.Errorf("%w: no response headers within %v: %w", ErrPerTryTimeout, p.PerTryTimeout, err)
			}
			resp = nil
		}

		retry := canRetry && try < maxRetries && ctx.Err() == nil && p.wantRetry(req, resp, err)
		if retry && rp != nil && !rp.canRewind() {
			retry = false
		}
		if retry && !b.TryWithdraw() {
			retry, res.BudgetExhausted = false, true
		}
		if retry {
			// The next body is taken before this response is dropped, so a
			// body that cannot be sent again leaves this response final.
			next, retry = nextBody(req, rp)
		}
		if !retry {
			if rp != nil {
				rp.finish()
			}
			if stop != nil {
				stop.keepUntilClose(resp)
			}
			if err != nil {
				err = fmt.Errorf("retry: %s request, try %d: %w", req.Method, try+1, err)
			}
			return resp, res, err
		}

		discard(resp)
		if stop != nil {
			stop.stop(errRetrying)
		}
		n := res.Retries + 1
		if d := p.backoff(n); d > 0 {
			if err := p.sleep(ctx, d); err != nil {
				if next != nil {
					next.Close()
				}
				if rp != nil {
					rp.finish()
				}
				return nil, res, fmt.Errorf("retry: %s request, waiting %v before retry %d: %w", req.Method, d, n, err)
			}
		}
		res.Retries = n
	}
}

// nextBody returns the body for a retry of req, or false when there is none.
func nextBody(req *http.Request, rp *replay) (io.ReadCloser, bool) {
	switch {
	case rp != nil:
		body, ok := rp.rewind()
		if !ok {
			return nil, false
		}
		return body, true
	case req.GetBody != nil && req.Body != nil && req.Body != http.NoBody:
		body, err := req.GetBody()
		if err != nil {
			return nil, false
		}
		return body, true
	}
	return req.Body, true
}

// wantRetry reports whether p retries a try of req that ended in resp or
// err (the try's context being done is checked by the caller).
func (p *Policy) wantRetry(req *http.Request, resp *http.Response, err error) bool {
	if err != nil {
		if errors.Is(err, ErrNotSent) {
			return p.OnConnectFailure
		}
		return p.OnReset && (p.RetryNonIdempotent || idempotent(req))
	}
	// Grpc-Status among the headers means a trailers-only response: the
	// call failed before any message was streamed.
	if len(p.GRPCCodes) > 0 {
		if v := resp.Header["Grpc-Status"]; len(v) > 0 {
			if code, err := strconv.Atoi(v[0]); err == nil && p.grpcListed(code) {
				return true
			}
		}
	}
	return p.statusListed(resp.StatusCode) && (p.RetryNonIdempotent || idempotent(req))
}

// discard drains a bounded amount of resp's body, so the connection can be
// reused, and closes it.
func discard(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	io.CopyN(io.Discard, resp.Body, drainLimit)
	resp.Body.Close()
}

// tryTimer is the per-try timeout of one try.
type tryTimer struct {
	timer  *time.Timer
	cancel context.CancelCauseFunc
	fired  atomic.Bool
}

// startTryTimer returns a child of ctx that is cancelled with
// ErrPerTryTimeout after d.
func startTryTimer(ctx context.Context, d time.Duration) (context.Context, *tryTimer) {
	tctx, cancel := context.WithCancelCause(ctx)
	t := &tryTimer{cancel: cancel}
	t.timer = time.AfterFunc(d, func() {
		t.fired.Store(true)
		cancel(ErrPerTryTimeout)
	})
	return tctx, t
}

// expired reports whether the timer has fired. It keeps running: as Gateway
// API's timeouts.backendRequest says, it bounds the try until the whole
// response has been received, body included (see keepUntilClose).
func (t *tryTimer) expired() bool { return t.fired.Load() }

// keepUntilClose arranges for the try's context to be released when the
// final response's body is closed (at once when there is no body). Until
// then the timer bounds the reading of the body too, except for a 101
// Switching Protocols: a tunnel lives as long as its ends want.
func (t *tryTimer) keepUntilClose(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		t.stop(nil)
		return
	}
	if rw, ok := resp.Body.(io.ReadWriteCloser); ok {
		// A 101 Switching Protocols body is also the writer.
		t.timer.Stop()
		resp.Body = &cancelOnCloseRW{ReadWriteCloser: rw, cancel: t.stop}
		return
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: t.stop}
}

// stop stops the timer and releases the try's context.
func (t *tryTimer) stop(cause error) {
	t.timer.Stop()
	t.cancel(cause)
}

// cancelOnClose releases a try's context when the response body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel(nil)
	return err
}

// cancelOnCloseRW is cancelOnClose for a writable (upgraded) body.
type cancelOnCloseRW struct {
	io.ReadWriteCloser
	cancel context.CancelCauseFunc
}

func (c *cancelOnCloseRW) Close() error {
	err := c.ReadWriteCloser.Close()
	c.cancel(nil)
	return err
}
