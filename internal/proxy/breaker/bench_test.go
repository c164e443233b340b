package breaker

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestHotPathsDoNotAllocate checks what the benchmarks measure, so that a
// change that makes the per-request path allocate fails the tests.
func TestHotPathsDoNotAllocate(t *testing.T) {
	limits, err := NewLimits(LimitsConfig{MaxRequests: 10})
	if err != nil {
		t.Fatal(err)
	}
	full, err := NewLimits(LimitsConfig{MaxRequests: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := full.Acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	det, err := NewDetector(DefaultOutlierConfig())
	if err != nil {
		t.Fatal(err)
	}
	det.SetEndpoints([]string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"})
	ad, err := NewAdaptive(AdaptiveConfig{})
	if err != nil {
		t.Fatal(err)
	}
	adFull, err := NewAdaptive(AdaptiveConfig{InitialLimit: 1})
	if err != nil {
		t.Fatal(err)
	}
	adFull.Acquire()
	ctx := t.Context()
	tests := []struct {
		name string
		f    func()
	}{
		{"Limits admitted", func() {
			release, _ := limits.Acquire(ctx)
			release()
		}},
		{"Limits refused", func() { _, _ = full.Acquire(ctx) }},
		{"Detector success", func() {
			if det.Available("10.0.0.1:80") {
				det.Report("10.0.0.1:80", true)
			}
		}},
		{"Detector failure below the threshold", func() {
			det.Report("10.0.0.2:80", false)
			det.Report("10.0.0.2:80", true)
		}},
		{"Adaptive admitted", func() {
			done, _ := ad.Acquire()
			done(time.Millisecond, false)
		}},
		{"Adaptive refused", func() { _, _ = adFull.Acquire() }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(1000, tt.f); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", tt.name, n)
		}
	}
}

func BenchmarkLimitsAcquire(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  LimitsConfig
	}{
		{"unlimited", LimitsConfig{}},
		{"max_requests", LimitsConfig{MaxRequests: 1 << 20, MaxPending: 100, PendingTimeout: time.Second}},
	} {
		l, err := NewLimits(c.cfg)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				release, err := l.Acquire(ctx)
				if err != nil {
					b.Fatal(err)
				}
				release()
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					release, err := l.Acquire(ctx)
					if err != nil {
						b.Error(err)
						return
					}
					release()
				}
			})
		})
	}
	b.Run("refused", func(b *testing.B) {
		l, err := NewLimits(LimitsConfig{MaxRequests: 1})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Acquire(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := l.Acquire(context.Background()); err == nil {
				b.Fatal("admitted")
			}
		}
	})
}

func BenchmarkDetector(b *testing.B) {
	addrs := make([]string, 10)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("10.0.0.%d:8080", i+1)
	}
	for _, c := range []struct {
		name string
		cfg  OutlierConfig
	}{
		{"defaults", DefaultOutlierConfig()},
		{"consecutive-only", OutlierConfig{ConsecutiveFailures: 5}},
	} {
		d, err := NewDetector(c.cfg)
		if err != nil {
			b.Fatal(err)
		}
		d.SetEndpoints(addrs)
		// 1 in 50 requests fails, never 5 in a row.
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				a := addrs[i%len(addrs)]
				if d.Available(a) {
					d.Report(a, i%50 != 0)
				}
				i++
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					a := addrs[i%len(addrs)]
					if d.Available(a) {
						d.Report(a, i%50 != 0)
					}
					i++
				}
			})
		})
	}
}

func BenchmarkAdaptive(b *testing.B) {
	a, err := NewAdaptive(AdaptiveConfig{InitialLimit: 1000, MaxLimit: 1000})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			done, ok := a.Acquire()
			if !ok {
				b.Fatal("refused")
			}
			done(time.Millisecond, false)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if done, ok := a.Acquire(); ok {
					done(time.Millisecond, false)
				}
			}
		})
	})
}
