package k8stest

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
)

// tailSize is how much of a process's latest output an error can show.
const tailSize = 16 << 10

// tailWriter keeps the last tailSize bytes written to it, for errors, and
// copies everything to out when out is not nil.
type tailWriter struct {
	mu  sync.Mutex
	out io.Writer
	buf []byte
}

func newTailWriter(out io.Writer) *tailWriter { return &tailWriter{out: out} }

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.out != nil {
		// The process must not stop because a test's log writer fails.
		_, _ = w.out.Write(p)
	}
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - tailSize; over > 0 {
		n := copy(w.buf, w.buf[over:])
		w.buf = w.buf[:n]
	}
	return len(p), nil
}

// lastLines returns up to n whole lines of the latest output.
func (w *tailWriter) lastLines(n int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := bytes.TrimRight(w.buf, "\n")
	if len(w.buf) == tailSize {
		// The first line was cut by the buffer's start.
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// describe formats the last lines of a process's output for an error
// message, or nothing when it wrote none.
func (w *tailWriter) describe(name string, lines int) string {
	s := w.lastLines(lines)
	if strings.TrimSpace(s) == "" {
		return ""
	}
	return fmt.Sprintf("\n--- last output of %s ---\n%s\n--- end of %s output ---", name, s, name)
}
