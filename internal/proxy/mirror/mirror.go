package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero fields of [Config].
const (
	DefaultPercent      = 100
	DefaultMaxBodyBytes = 64 << 10
	DefaultMaxInFlight  = 64
	DefaultTimeout      = 5 * time.Second

	// drainLimit bounds how much of a mirror's response body is read (so
	// its connection can be reused) before it is closed instead.
	drainLimit = 64 << 10
)

// Config configures a [Mirror]. The zero value of a field selects its
// default.
type Config struct {
	// Percent of requests mirrored, 0 to 100. Default (0) 100: to mirror
	// nothing, configure no mirror.
	Percent float64
	// MaxBodyBytes: requests with a larger body, or an unknown-length body
	// that turns out larger, are not mirrored. Default 64 KiB.
	MaxBodyBytes int
	// MaxInFlight mirrors may be outstanding; beyond that new mirrors are
	// dropped (counted in Stats.Dropped), never queued. Default 64.
	MaxInFlight int
	// Timeout bounds each mirrored request, from its start to the end of
	// reading its response. Default 5s.
	Timeout time.Duration
}

// Validate reports every invalid field of c, naming the field and the fix.
func (c Config) Validate() error {
	var errs []error
	if math.IsNaN(c.Percent) || c.Percent < 0 || c.Percent > 100 {
		errs = append(errs, fmt.Errorf("mirror: Percent is %v: set it from 0 to 100 (0 means the default, 100)", c.Percent))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("mirror: MaxBodyBytes is %d: set it to 0 or more (0 means the default, %d)", c.MaxBodyBytes, DefaultMaxBodyBytes))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("mirror: MaxInFlight is %d: set it to 0 or more (0 means the default, %d)", c.MaxInFlight, DefaultMaxInFlight))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("mirror: Timeout is %v: set it to 0 or more (0 means the default, %v)", c.Timeout, DefaultTimeout))
	}
	return errors.Join(errs...)
}

// Stats counts what a Mirror did. Dropped, TooLarge and Sent exclude each
// other; Failed is part of Sent.
type Stats struct {
	// Sent: mirrored requests handed to send.
	Sent uint64
	// Dropped: requests selected for mirroring but not mirrored because
	// MaxInFlight mirrors were outstanding.
	Dropped uint64
	// TooLarge: requests selected for mirroring but not mirrored because
	// their body exceeded MaxBodyBytes.
	TooLarge uint64
	// Failed: mirrored requests whose send returned an error (including
	// the timeout) or whose response status was 5xx.
	Failed uint64
}

// Mirror shadows one route's requests to one backend. It is safe for
// concurrent use.
type Mirror struct {
	percent float64
	maxBody int64
	timeout time.Duration
	send    func(context.Context, *http.Request) (*http.Response, error)
	rnd     func() float64

	slots chan struct{} // one element per outstanding mirror
	wg    sync.WaitGroup

	sent, dropped, tooLarge, failed atomic.Uint64
}

// New returns a Mirror for c. send does the round trip of a copy to the
// mirror backend: it picks the endpoint and sets the copy's URL scheme and
// host (the copy's URL holds the original's path and query), and must honour
// ctx, which is also the copy's context. It runs on a goroutine of its own,
// never on the client's path. rnd returns numbers in [0, 1) for the Percent
// sampling and must be safe for concurrent use; nil selects math/rand/v2's
// Float64.
func New(c Config, send func(ctx context.Context, r *http.Request) (*http.Response, error), rnd func() float64) (*Mirror, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("mirror: invalid config: %w", err)
	}
	if send == nil {
		return nil, errors.New("mirror: send is nil: pass the function that sends a copy to the mirror backend")
	}
	if c.Percent == 0 {
		c.Percent = DefaultPercent
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	return &Mirror{
		percent: c.Percent,
		maxBody: int64(c.MaxBodyBytes),
		timeout: c.Timeout,
		send:    send,
		rnd:     rnd,
		slots:   make(chan struct{}, c.MaxInFlight),
	}, nil
}

// Tee prepares req for mirroring and returns the request to forward to the
// primary backend in its place: req itself when its body was not touched,
// otherwise a shallow copy whose body yields the same bytes (closing it
// closes req's body). Tee never returns an error: a request that cannot be
// mirrored is forwarded as it is.
//
// When req is selected (Config.Percent) and its body fits in MaxBodyBytes, a
// copy with its own headers, URL and body, RequestURI cleared and Host
// suffixed with "-shadow" is sent asynchronously (see the package
// documentation for bodies of unknown length).
func (m *Mirror) Tee(req *http.Request) *http.Request {
	if m.percent < 100 && m.rnd()*100 >= m.percent {
		return req
	}
	body := req.Body
	switch {
	case body == nil || body == http.NoBody:
		if m.acquire() {
			c := m.copyOf(req)
			c.ContentLength = 0
			m.start(c, nil)
		}
		return req

	case req.ContentLength > m.maxBody:
		m.tooLarge.Add(1)
		return req

	case req.ContentLength > 0:
		// Known length that fits: read it now, before the original is
		// forwarded. The slot is taken first so that no body is read
		// for a mirror that would be dropped.
		if !m.acquire() {
			return req
		}
		buf, err := readUpTo(body, req.ContentLength)
		out := *req
		if err == nil {
			out.Body = &replayBody{r: io.MultiReader(bytes.NewReader(buf), body), c: body}
		} else {
			// io.EOF included: the original sees exactly what was read.
			out.Body = &replayBody{r: io.MultiReader(bytes.NewReader(buf), errReader{err}), c: body}
		}
		if int64(len(buf)) != req.ContentLength || (err != nil && err != io.EOF) {
			m.release() // the client sent less than it announced, or failed
			return &out
		}
		m.start(m.copyOf(req), buf)
		return &out

	default:
		// Unknown length: keep the bytes as the original's body is read,
		// and mirror when it ends within the limit.
		out := *req
		out.Body = &teeBody{rc: body, m: m, mreq: m.copyOf(req)}
		return &out
	}
}

// Stats returns the counters so far.
func (m *Mirror) Stats() Stats {
	return Stats{
		Sent:     m.sent.Load(),
		Dropped:  m.dropped.Load(),
		TooLarge: m.tooLarge.Load(),
		Failed:   m.failed.Load(),
	}
}

// Wait waits until every mirror started so far has finished. Call it once
// no more Tee calls are being made (draining a route, or in tests): like
// sync.WaitGroup, it must not race with the start of new mirrors.
func (m *Mirror) Wait() {
	m.wg.Wait()
}

func (m *Mirror) acquire() bool {
	select {
	case m.slots <- struct{}{}:
		return true
	default:
		m.dropped.Add(1)
		return false
	}
}

func (m *Mirror) release() {
	<-m.slots
}

// copyOf returns the mirror copy of req without a body: its own headers and
// URL (taken now, before the proxy changes req further), a context with
// req's values but not its cancellation, no RequestURI (it is a client
// request) and the shadow Host.
func (m *Mirror) copyOf(req *http.Request) *http.Request {
	c := req.Clone(context.WithoutCancel(req.Context()))
	c.RequestURI = ""
	host := req.Host
	if host == "" && req.URL != nil {
		host = req.URL.Host
	}
	c.Host = shadowHost(host)
	c.Body, c.GetBody = nil, nil // set by start
	return c
}

// start sends mreq with body (nil: none) on a goroutine of its own. The
// caller holds a slot, which the goroutine releases, and has set
// mreq.ContentLength.
func (m *Mirror) start(mreq *http.Request, body []byte) {
	if body == nil {
		mreq.Body = http.NoBody
	} else {
		mreq.Body = io.NopCloser(bytes.NewReader(body))
		mreq.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	m.sent.Add(1)
	m.wg.Go(func() {
		defer m.release()
		ctx, cancel := context.WithTimeout(mreq.Context(), m.timeout)
		defer cancel()
		resp, err := m.send(ctx, mreq.WithContext(ctx))
		if err != nil {
			m.failed.Add(1)
			return
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
		_ = resp.Body.Close()
		if resp.StatusCode >= 500 {
			m.failed.Add(1)
		}
	})
}

// shadowHost appends "-shadow" to the host name of host, before any port,
// as Envoy does.
func shadowHost(host string) string {
	if host == "" {
		return ""
	}
	if i := strings.LastIndexByte(host, ':'); i > strings.LastIndexByte(host, ']') {
		return host[:i] + "-shadow" + host[i:]
	}
	return host + "-shadow"
}

// readUpTo reads n bytes from r. The error is what ended the reading early,
// or io.EOF if r reported its end together with the last byte, or nil.
func readUpTo(r io.Reader, n int64) ([]byte, error) {
	buf := make([]byte, n)
	got := 0
	for got < len(buf) {
		k, err := r.Read(buf[got:])
		got += k
		if err != nil {
			return buf[:got], err
		}
	}
	return buf, nil
}

// replayBody is the original's body after Tee read it ahead.
type replayBody struct {
	r io.Reader
	c io.Closer
}

func (b *replayBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *replayBody) Close() error               { return b.c.Close() }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// teeBody is the original's body when its length is unknown: it keeps the
// bytes read through it and starts the mirror when it ends within the
// limit.
type teeBody struct {
	rc   io.ReadCloser
	m    *Mirror
	mreq *http.Request
	buf  []byte
	// settled is set once the mirror was started or abandoned; Close may
	// set it from another goroutine than Read's.
	settled atomic.Bool
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	if t.settled.Load() {
		return n, err
	}
	switch {
	case int64(len(t.buf)+n) > t.m.maxBody:
		if t.settled.CompareAndSwap(false, true) {
			t.m.tooLarge.Add(1)
		}
		t.buf = nil
	case err == io.EOF:
		t.buf = append(t.buf, p[:n]...)
		if t.settled.CompareAndSwap(false, true) && t.m.acquire() {
			if t.buf == nil {
				t.buf = []byte{} // an empty body of unknown length: still chunked
			}
			t.mreq.ContentLength = -1 // framed like the original
			t.m.start(t.mreq, t.buf)
		}
	case err != nil:
		t.settled.Store(true) // the client failed: mirror nothing
	default:
		t.buf = append(t.buf, p[:n]...)
	}
	return n, err
}

func (t *teeBody) Close() error {
	t.settled.CompareAndSwap(false, true) // ended early: mirror nothing
	return t.rc.Close()
}
