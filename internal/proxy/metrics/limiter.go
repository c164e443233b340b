package metrics

import (
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// Overflow is the label value recorded in place of a new value once its
// label name has reached [Options.MaxLabelValues] distinct values.
const Overflow = "overflow"

// maxLabelValueLen caps the length in bytes of a recorded label value (a
// SPIFFE ID may be up to 2048 bytes, but such values are pathological).
const maxLabelValueLen = 1024

// limiter bounds the number of distinct values recorded for one label name.
// Values are admitted first come, first served and never evicted, so a value
// once admitted stays valid for cached child metrics.
type limiter struct {
	limit    int
	overflow prometheus.Counter

	mu   sync.RWMutex
	seen map[string]struct{}
}

func newLimiter(limit int, overflow prometheus.Counter) *limiter {
	return &limiter{limit: limit, overflow: overflow, seen: make(map[string]struct{})}
}

// admit returns v (cleaned up by sanitize) if it is already known or there
// is room for it, and Overflow otherwise. The empty value is always admitted
// and not counted. The returned string never aliases v's memory when v is
// newly admitted, so callers may pass strings backed by reused buffers.
func (l *limiter) admit(v string) string {
	v = sanitize(v)
	if v == "" {
		return v
	}
	l.mu.RLock()
	_, ok := l.seen[v]
	l.mu.RUnlock()
	if ok {
		return v
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[v]; ok {
		return v
	}
	if len(l.seen) >= l.limit {
		l.overflow.Inc()
		return Overflow
	}
	v = strings.Clone(v)
	l.seen[v] = struct{}{}
	return v
}

// sanitize makes v acceptable as a Prometheus label value: valid UTF-8
// (client_golang panics otherwise) and at most maxLabelValueLen bytes.
func sanitize(v string) string {
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	if len(v) > maxLabelValueLen {
		i := maxLabelValueLen
		for i > 0 && !utf8.RuneStart(v[i]) {
			i--
		}
		v = v[:i]
	}
	return v
}
