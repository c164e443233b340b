package coalesce

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func pair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-acc
	t.Cleanup(func() { s.Close() })
	return New(c), s
}

// TestBytesArriveInOrder: many writers' bytes all arrive, each writer's in
// order, including bursts larger than the pending bound.
func TestBytesArriveInOrder(t *testing.T) {
	c, s := pair(t)
	data := make([]byte, 3<<20)
	rand.Read(data)
	go func() {
		for off := 0; off < len(data); {
			n := min(1+off%5000, len(data)-off)
			if _, err := c.Write(data[off : off+n]); err != nil {
				t.Error(err)
				return
			}
			off += n
		}
		c.CloseWrite()
	}()
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, want %d identical", len(got), len(data))
	}
	c.Close()
}

// TestBurstIsOneWrite: small writes in one burst reach the peer together.
// A burst is what a goroutine writes before it yields; on one P the flusher
// cannot run in parallel with the writer, which is the case weft-proxy runs
// in by default (--cores 1) and keeps the test free of scheduling luck.
func TestBurstIsOneWrite(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	c, s := pair(t)
	for i := 0; i < 10; i++ {
		c.Write([]byte("frame;"))
	}
	buf := make([]byte, 1024)
	n, err := s.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "frame;frame;frame;frame;frame;frame;frame;frame;frame;frame;" {
		t.Fatalf("first read got %q: the burst was split", buf[:n])
	}
	c.Close()
}

// TestCloseFlushes: bytes written just before Close are not lost.
func TestCloseFlushes(t *testing.T) {
	c, s := pair(t)
	c.Write([]byte("last words"))
	c.Close()
	got, _ := io.ReadAll(s)
	if string(got) != "last words" {
		t.Fatalf("got %q", got)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("write after close succeeded")
	}
}

// TestWriteErrorIsSticky: once the peer is gone, writes fail.
func TestWriteErrorIsSticky(t *testing.T) {
	c, s := pair(t)
	s.Close()
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		_, err = c.Write(make([]byte, 64<<10))
	}
	if err == nil {
		t.Fatal("writes to a closed peer kept succeeding")
	}
	c.Close()
}

func TestConcurrentWriters(t *testing.T) {
	c, s := pair(t)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			for i := 0; i < 1000; i++ {
				c.Write([]byte("0123456789"))
			}
		})
	}
	go func() { wg.Wait(); c.CloseWrite() }()
	got, _ := io.ReadAll(s)
	if len(got) != 8*1000*10 {
		t.Fatalf("got %d bytes", len(got))
	}
	c.Close()
}

// TestDeadlineAfterWriteKeepsBytes: crypto/tls writes its close_notify and
// then sets a write deadline of now; the bytes before it must still leave.
func TestDeadlineAfterWriteKeepsBytes(t *testing.T) {
	c, s := pair(t)
	c.Write([]byte("greeting then close"))
	c.SetWriteDeadline(time.Now())
	c.SetWriteDeadline(time.Time{})
	c.CloseWrite()
	got, _ := io.ReadAll(s)
	if string(got) != "greeting then close" {
		t.Fatalf("got %q", got)
	}
	c.Close()
}

// TestCloseDoesNotHangOnAStuckPeer: a peer that never reads cannot hold
// Close (or a deadline change) beyond the bound.
func TestCloseDoesNotHangOnAStuckPeer(t *testing.T) {
	a, b := net.Pipe() // synchronous: every write blocks until read
	defer b.Close()
	c := New(a)
	c.Write([]byte("nobody reads this"))
	done := make(chan struct{})
	go func() { c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)); c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(flushLimit + 5*time.Second):
		t.Fatal("Close hung on a peer that does not read")
	}
}
