package h1guard

// FuzzGuard lives in the package itself so that it can see where the guard
// released each head and check that net/http, reading the released stream,
// starts every request at one of those places.

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fuzzMaxHeader is small so that fuzzing reaches the size limit.
const fuzzMaxHeader = 512

// fuzzConn is an in-memory net.Conn whose Read serves data, at most chunk
// bytes at a time (0: no limit), then io.EOF.
type fuzzConn struct {
	data        []byte
	chunk       int
	eofWithData bool // return io.EOF with the last bytes
}

func (m *fuzzConn) Read(b []byte) (int, error) {
	if len(m.data) == 0 {
		return 0, io.EOF
	}
	if m.chunk > 0 && len(b) > m.chunk {
		b = b[:m.chunk]
	}
	n := copy(b, m.data)
	m.data = m.data[n:]
	if len(m.data) == 0 && m.eofWithData {
		return n, io.EOF
	}
	return n, nil
}

func (m *fuzzConn) Write(b []byte) (int, error)      { return len(b), nil }
func (m *fuzzConn) Close() error                     { return nil }
func (m *fuzzConn) LocalAddr() net.Addr              { return nil }
func (m *fuzzConn) RemoteAddr() net.Addr             { return nil }
func (m *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (m *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (m *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzGuard feeds arbitrary client bytes through the guard, read in several
// ways, and checks that it never panics or stalls; that it either passes the
// input on unchanged (less forged reject fields and a trailing partial head)
// or ends with a rewritten head carrying the reject field, then io.EOF, or
// fails on a malformed chunked body, the same way however the bytes are
// split; and that net/http frames the released stream as the guard did.
func FuzzGuard(f *testing.F) {
	// Each input is read at most chunk bytes at a time from the wrapped
	// conn, and buf bytes at a time from the guard. The first reading
	// (one byte at a time) also records where heads start.
	readings := []struct {
		chunk, buf  int
		eofWithData bool
	}{
		{1, 1, false},
		{0, 4096, false},
		{7, 13, true},
		{3, 4096, true},
		{0, 2, false},
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var first []byte
		var firstErr error
		for i, rd := range readings {
			c := Wrap(&fuzzConn{data: in, chunk: rd.chunk, eofWithData: rd.eofWithData},
				Options{MaxHeaderBytes: fuzzMaxHeader}).(*Conn)
			var out []byte
			var err error
			heads := map[int]bool{} // offsets in out where heads start
			last := -1              // the last of them
			buf := make([]byte, rd.buf)
			for reads := 0; err == nil; reads++ {
				if reads > 3*len(in)+1024 {
					t.Fatalf("no end after %d reads", reads)
				}
				h := c.heads
				var n int
				n, err = c.Read(buf)
				if c.heads != h && n > 0 {
					// A Read that releases a head starts
					// with it.
					heads[len(out)] = true
					last = len(out)
				}
				out = append(out, buf[:n]...)
			}
			checkStream(t, in, out, err, last)
			if n, err2 := c.Read(make([]byte, 8)); n != 0 || err2 != err {
				t.Fatalf("read after end = %d, %v; want 0, %v", n, err2, err)
			}
			if i == 0 {
				first, firstErr = out, err
				checkFraming(t, out, heads)
				continue
			}
			if err != firstErr {
				t.Fatalf("reading %+v: error %v; reading byte by byte: %v", rd, err, firstErr)
			}
			if err == io.EOF && !bytes.Equal(out, first) {
				t.Fatalf("reading %+v:\n%q\nreading byte by byte:\n%q", rd, out, first)
			}
		}
	})
}

// checkStream checks the guard's output out, ended by err, for input in;
// the last head released starts at out[last:].
func checkStream(t *testing.T, in, out []byte, err error, last int) {
	t.Helper()
	if err != io.EOF {
		if err == nil || !strings.HasPrefix(err.Error(), "h1guard: ") {
			t.Fatalf("unexpected error %v", err)
		}
		if _, ok := passedOn(in, out); !ok {
			t.Fatalf("failed with %v after output that is not the input:\nin  %q\nout %q", err, in, out)
		}
		return
	}
	if rest, ok := passedOn(in, out); ok {
		// Accepted so far: what was held back is an incomplete head.
		if len(rest) >= fuzzMaxHeader || bytes.Contains(rest, []byte("\n\n")) || bytes.Contains(rest, []byte("\n\r\n")) {
			t.Fatalf("held back a complete head:\nin   %q\nout  %q\nrest %q", in, out, rest)
		}
		return
	}
	// Refused: the output ends with a rewritten head.
	if last < 0 {
		t.Fatalf("output is neither the input nor ends with a head:\nin  %q\nout %q", in, out)
	}
	pre, head := out[:last], out[last:]
	if _, second, _ := bytes.Cut(head, []byte("\n")); !bytes.HasPrefix(second, []byte(RejectHeader+": ")) {
		t.Fatalf("output is neither the input nor ends with a refusal:\nin  %q\nout %q", in, out)
	}
	if _, ok := passedOn(in, pre); !ok {
		t.Fatalf("output before the refusal is not the input:\nin  %q\nout %q", in, pre)
	}
	br := bufio.NewReader(bytes.NewReader(head))
	req, rerr := http.ReadRequest(br)
	if rerr != nil {
		t.Fatalf("net/http cannot read the rewritten head %q: %v", head, rerr)
	}
	if Reason(req) == "" || len(req.Header[RejectHeader]) != 1 || !req.Close ||
		req.ContentLength != 0 || len(req.TransferEncoding) != 0 || br.Buffered() != 0 {
		t.Fatalf("bad rewritten head %q: %+v", head, req)
	}
}

// passedOn reports whether out is a prefix of in, less any RejectHeader
// field lines, and returns the rest of in.
func passedOn(in, out []byte) (rest []byte, ok bool) {
	for len(out) > 0 {
		if len(in) == 0 {
			return nil, false
		}
		line := in
		if i := bytes.IndexByte(in, '\n'); i >= 0 {
			line = in[:i+1]
		}
		switch {
		case bytes.HasPrefix(out, line):
			in, out = in[len(line):], out[len(line):]
		case bytes.HasPrefix(line, out):
			return in[len(out):], true
		case isRejectField(line):
			in = in[len(line):]
		default:
			return nil, false
		}
	}
	return in, true
}

func isRejectField(line []byte) bool {
	name, _, ok := bytes.Cut(line, []byte(":"))
	return ok && strings.EqualFold(string(name), RejectHeader)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += n
	return n, err
}

// checkFraming reads the released stream out the way net/http's server
// does (skipping up to 4 CR or LF bytes after a POST, reading each request
// and its whole body, stopping at the first error or tunnel) and checks that
// every request it reads starts where the guard released a head.
func checkFraming(t *testing.T, out []byte, heads map[int]bool) {
	t.Helper()
	cr := &countingReader{r: bytes.NewReader(out)}
	br := bufio.NewReader(cr)
	post := false
	for {
		if post {
			peek, _ := br.Peek(4)
			n := 0
			for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
				n++
			}
			br.Discard(n)
		}
		start := cr.n - br.Buffered()
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if !heads[start] {
			t.Fatalf("net/http read a request at offset %d where the guard released no head:\n%q\nheads at %v", start, out, heads)
		}
		if _, up := req.Header["Upgrade"]; up || req.Method == http.MethodConnect {
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		post = req.Method == http.MethodPost
	}
}

// TestValidValue checks validValue against isValueByte for every byte at
// every position of a word, with every other byte in a word.
func TestValidValue(t *testing.T) {
	for b := range 256 {
		for _, other := range []byte{'a', '\t', 0x80, 0xff, ' ', '~'} {
			for pos := range 11 {
				v := bytes.Repeat([]byte{other}, 11)
				v[pos] = byte(b)
				if got, want := validValue(v), isValueByte(byte(b)) && isValueByte(other); got != want {
					t.Fatalf("validValue(%q) = %v; want %v", v, got, want)
				}
			}
		}
	}
}
