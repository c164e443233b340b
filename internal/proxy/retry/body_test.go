package retry

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// pipeSrc is a request body fed by the test, recording Close.
type pipeSrc struct {
	*io.PipeReader
	mu     sync.Mutex
	closed int
}

func (p *pipeSrc) Close() error {
	p.mu.Lock()
	p.closed++
	p.mu.Unlock()
	return p.PipeReader.Close()
}

func (p *pipeSrc) closes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func newPipeSrc() (*pipeSrc, *io.PipeWriter) {
	r, w := io.Pipe()
	return &pipeSrc{PipeReader: r}, w
}

// readAsync reads body to the end in a goroutine.
func readAsync(body io.Reader) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		b, err := io.ReadAll(body)
		ch <- readResult{b, err}
	}()
	return ch
}

// waitReading waits until a reader of rp is blocked in src.Read.
func waitReading(t *testing.T, rp *replay) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rp.mu.Lock()
		reading := rp.reading
		rp.mu.Unlock()
		if reading {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no reader got to src.Read")
		}
		time.Sleep(time.Millisecond)
	}
}

type readResult struct {
	b   []byte
	err error
}

func TestReplaySupersededReaderLosesNoBytes(t *testing.T) {
	// Try 1 streams "hello " and is blocked reading more when it is
	// superseded. Bytes the client sends next reach try 2 after the replayed
	// prefix, whichever reader took them from src.
	src, w := newPipeSrc()
	rp, b1 := newReplay(src, 1<<10, 0)
	go w.Write([]byte("hello "))
	buf := make([]byte, 64)
	n, err := b1.Read(buf)
	if err != nil || string(buf[:n]) != "hello " {
		t.Fatalf("first read %q, %v", buf[:n], err)
	}
	first := readAsync(b1)
	waitReading(t, rp)

	b2, ok := rp.rewind()
	if !ok {
		t.Fatal("rewind refused")
	}
	second := readAsync(b2)
	if _, err := w.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	w.Close()

	if r := <-first; !errors.Is(r.err, errSuperseded) {
		t.Fatalf("superseded reader got %q, %v; want errSuperseded", r.b, r.err)
	}
	if r := <-second; r.err != nil || string(r.b) != "hello world" {
		t.Fatalf("retry read %q, %v; want %q", r.b, r.err, "hello world")
	}
	b1.Close()
	b2.Close()
	if src.closes() != 0 {
		t.Fatal("src closed before finish")
	}
	rp.finish()
	if src.closes() != 1 {
		t.Fatalf("src closed %d times after finish; want 1", src.closes())
	}
}

func TestReplayOverLimitStopsRecording(t *testing.T) {
	src := io.NopCloser(bytes.NewReader([]byte("0123456789")))
	rp, b1 := newReplay(src, 4, 0)
	got, err := io.ReadAll(b1)
	if err != nil || string(got) != "0123456789" {
		t.Fatalf("read %q, %v; want the whole body", got, err)
	}
	if rp.canRewind() {
		t.Fatal("canRewind after the body outgrew the limit")
	}
	if _, ok := rp.rewind(); ok {
		t.Fatal("rewind after the body outgrew the limit")
	}
	if rp.buf != nil {
		t.Fatalf("record of %d bytes kept after the limit was passed", len(rp.buf))
	}
}

func TestReplayRetryAfterPartialRead(t *testing.T) {
	// Try 1 read part of the body, then failed; try 2 gets the part again
	// and the rest, even when the whole body is over the limit, but no try
	// after that.
	body := []byte("abcdefghij")
	rp, b1 := newReplay(io.NopCloser(bytes.NewReader(body)), 6, 0)
	buf := make([]byte, 4)
	if n, _ := io.ReadFull(b1, buf); n != 4 {
		t.Fatalf("read %d bytes", n)
	}
	b2, ok := rp.rewind()
	if !ok {
		t.Fatal("rewind refused with 4 of 6 bytes recorded")
	}
	if _, err := b1.Read(buf); !errors.Is(err, errSuperseded) {
		t.Fatalf("superseded read error %v", err)
	}
	got, err := io.ReadAll(b2)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("retry read %q, %v; want %q", got, err, body)
	}
	if rp.canRewind() {
		t.Fatal("canRewind after the body outgrew the limit")
	}
}

func TestReplayCloseDuringRead(t *testing.T) {
	// Closing the last body while a superseded reader is blocked in src.Read
	// does not block; src is closed when that read returns.
	src, w := newPipeSrc()
	rp, b1 := newReplay(src, 1<<10, 0)
	first := readAsync(b1)
	waitReading(t, rp)
	b2, _ := rp.rewind()
	rp.finish()
	done := make(chan struct{})
	go func() { b2.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a read in progress")
	}
	if src.closes() != 0 {
		t.Fatal("src closed under a read in progress")
	}
	w.Write([]byte("x"))
	if r := <-first; !errors.Is(r.err, errSuperseded) {
		t.Fatalf("superseded reader got %v", r.err)
	}
	if src.closes() != 1 {
		t.Fatalf("src closed %d times after the read returned; want 1", src.closes())
	}
	if _, err := b2.Read(make([]byte, 1)); err == nil {
		t.Fatal("read of a closed body succeeded")
	}
	w.Close()
}

func TestReplayConcurrentRace(t *testing.T) {
	// Many tries superseding each other while the previous one still reads;
	// the last one must see exactly the body. Meant for -race.
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	for range 20 {
		src, w := newPipeSrc()
		go func() {
			for i := 0; i < len(body); i += 1000 {
				w.Write(body[i:min(i+1000, len(body))])
			}
			w.Close()
		}()
		rp, cur := newReplay(src, len(body), int64(len(body)))
		var results []<-chan readResult
		for range 5 {
			results = append(results, readAsync(cur))
			time.Sleep(time.Millisecond)
			next, ok := rp.rewind()
			if !ok {
				t.Fatal("rewind refused")
			}
			cur = next
		}
		rp.finish()
		got, err := io.ReadAll(cur)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("last try read %d bytes, %v; want the %d-byte body", len(got), err, len(body))
		}
		cur.Close()
		for _, ch := range results {
			if r := <-ch; r.err != nil && !errors.Is(r.err, errSuperseded) {
				t.Fatalf("superseded reader error %v", r.err)
			}
		}
		if src.closes() != 1 {
			t.Fatalf("src closed %d times; want 1", src.closes())
		}
	}
}
