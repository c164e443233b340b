package detect

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

// tcpLikePipe gives one end of a net.Pipe TCP's deadline semantics: a TCP
// conn accepts a read deadline after its peer closed, a pipe does not.
type tcpLikePipe struct{ net.Conn }

func (c tcpLikePipe) SetReadDeadline(t time.Time) error {
	if err := c.Conn.SetReadDeadline(t); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		return err
	}
	return nil
}

// detectPipe sends data over net.Pipe in writes of at most chunk bytes, then
// closes, and returns the detection result and every byte read back through
// the returned conn.
func detectPipe(t *testing.T, d *Detector, data []byte, chunk int) (Result, []byte) {
	t.Helper()
	c, s := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer c.Close()
		for b := data; len(b) > 0; {
			n := min(len(b), chunk)
			if _, err := c.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
	}()
	defer func() {
		s.Close()
		<-done
	}()

	res, conn, err := d.Detect(context.Background(), tcpLikePipe{s}, testPort)
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading returned conn: %v", err)
	}
	return res, got
}

// FuzzDetect checks that detection never panics or fails on client bytes,
// always replays exactly what was sent, returns one of the four protocols,
// and does not depend on how the bytes were split into reads.
func FuzzDetect(f *testing.F) {
	// The input always ends with EOF, so the timeout is never reached; it is
	// long so that a detector that waits when it should not is noticed.
	d := New(Config{Timeout: time.Minute})
	f.Fuzz(func(t *testing.T, data []byte) {
		res, got := detectPipe(t, d, data, len(data)+1)
		if !bytes.Equal(got, data) {
			t.Fatalf("replayed %q, want %q", got, data)
		}
		switch res.Protocol {
		case Opaque, HTTP1, HTTP2, TLS:
		default:
			t.Fatalf("unknown protocol %v", res.Protocol)
		}
		if res.ServerFirst {
			t.Fatal("ServerFirst set although the client closed instead of staying silent")
		}
		if res.Protocol != TLS && (res.SNI != "" || len(res.ALPN) > 0) {
			t.Fatalf("%v result has TLS fields: %+v", res.Protocol, res)
		}

		// Byte-at-a-time delivery must reach the same decision.
		res1, got1 := detectPipe(t, d, data, 1)
		if !bytes.Equal(got1, data) {
			t.Fatalf("byte-at-a-time: replayed %q, want %q", got1, data)
		}
		if res1.Protocol != res.Protocol || res1.SNI != res.SNI || !slices.Equal(res1.ALPN, res.ALPN) {
			t.Fatalf("byte-at-a-time result %+v differs from %+v", res1, res)
		}
	})
}
