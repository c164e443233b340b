package fault_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/fault"
	"github.com/weft-mesh/weft/internal/validatetest"
)

// seeded is a deterministic rnd for one test (not safe for concurrent use).
func seeded(seed uint64) func() float64 {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)).Float64
}

func TestDecidePercentages(t *testing.T) {
	const n = 200000
	tests := []struct {
		name                 string
		delayPct, abortPct   float64
		seed                 uint64
		exactDelay, exactAbt bool // 0 or 100: counts must be exact
	}{
		{name: "zero", delayPct: 0, abortPct: 0, exactDelay: true, exactAbt: true},
		{name: "hundred", delayPct: 100, abortPct: 100, exactDelay: true, exactAbt: true},
		{name: "hundred and zero", delayPct: 100, abortPct: 0, exactDelay: true, exactAbt: true},
		{name: "small", delayPct: 0.5, abortPct: 1, seed: 1},
		{name: "half and tenth", delayPct: 50, abortPct: 10, seed: 2},
		{name: "mostly", delayPct: 99, abortPct: 75, seed: 3},
		{name: "delay only", delayPct: 30, abortPct: 0, seed: 4, exactAbt: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inj, err := fault.New(fault.Config{
				DelayPercent: tt.delayPct, Delay: time.Second,
				AbortPercent: tt.abortPct, AbortHTTPStatus: 503,
			}, seeded(tt.seed))
			if err != nil {
				t.Fatal(err)
			}
			var delayed, aborted, both int
			for range n {
				d := inj.Decide()
				if d.Delay != 0 {
					if d.Delay != time.Second {
						t.Fatalf("Delay = %v, want 1s", d.Delay)
					}
					delayed++
				}
				if d.Abort {
					if d.HTTPStatus != 503 || d.GRPCStatus != 14 {
						t.Fatalf("abort with statuses %d/%d, want 503/14", d.HTTPStatus, d.GRPCStatus)
					}
					aborted++
				} else if d.HTTPStatus != 0 || d.GRPCStatus != 0 {
					t.Fatalf("no abort but statuses %d/%d, want 0/0", d.HTTPStatus, d.GRPCStatus)
				}
				if d.Delay != 0 && d.Abort {
					both++
				}
			}
			check := func(what string, got int, p float64, exact bool) {
				t.Helper()
				want := float64(n) * p
				if exact {
					if float64(got) != want {
						t.Errorf("%s: %d of %d, want exactly %v", what, got, n, want)
					}
					return
				}
				// Binomial: 5 standard deviations (deterministic with the seed).
				tol := 5 * math.Sqrt(float64(n)*p*(1-p))
				if math.Abs(float64(got)-want) > tol {
					t.Errorf("%s: %d of %d, want %.0f ± %.0f", what, got, n, want, tol)
				}
			}
			pd, pa := tt.delayPct/100, tt.abortPct/100
			check("delayed", delayed, pd, tt.exactDelay)
			check("aborted", aborted, pa, tt.exactAbt)
			// Independent draws: P(both) = P(delay) * P(abort).
			check("delayed and aborted", both, pd*pa, tt.exactDelay && tt.exactAbt)
		})
	}
}

func TestGRPCStatusForHTTP(t *testing.T) {
	tests := []struct{ http, grpc int }{
		{400, 13}, // INTERNAL
		{401, 16}, // UNAUTHENTICATED
		{403, 7},  // PERMISSION_DENIED
		{404, 12}, // UNIMPLEMENTED
		{429, 14}, // UNAVAILABLE
		{502, 14},
		{503, 14},
		{504, 14},
		{200, 2}, // UNKNOWN
		{409, 2},
		{500, 2},
		{501, 2},
	}
	for _, tt := range tests {
		if got := fault.GRPCStatusForHTTP(tt.http); got != tt.grpc {
			t.Errorf("GRPCStatusForHTTP(%d) = %d, want %d", tt.http, got, tt.grpc)
		}
	}
}

func TestAbortStatuses(t *testing.T) {
	tests := []struct {
		name                   string
		httpStatus, grpcStatus int
		wantGRPC               int
	}{
		{name: "mapped", httpStatus: 404, wantGRPC: 12},
		{name: "mapped other", httpStatus: 500, wantGRPC: 2},
		{name: "explicit gRPC status wins", httpStatus: 503, grpcStatus: 8, wantGRPC: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inj, err := fault.New(fault.Config{AbortPercent: 100, AbortHTTPStatus: tt.httpStatus, AbortGRPCStatus: tt.grpcStatus}, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := fault.Decision{Abort: true, HTTPStatus: tt.httpStatus, GRPCStatus: tt.wantGRPC}
			if got := inj.Decide(); got != want {
				t.Fatalf("Decide() = %+v, want %+v", got, want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  fault.Config
		want []string // substrings of the error; none: valid
	}{
		{name: "zero value injects nothing", cfg: fault.Config{}},
		{name: "delay and abort", cfg: fault.Config{DelayPercent: 10, Delay: 2 * time.Second, AbortPercent: 100, AbortHTTPStatus: 503, AbortGRPCStatus: 16}},
		{name: "status set, percent 0", cfg: fault.Config{AbortHTTPStatus: 200}},
		{name: "delay percent above 100", cfg: fault.Config{DelayPercent: 100.5, Delay: time.Second}, want: []string{"DelayPercent is 100.5", "from 0 to 100"}},
		{name: "abort percent negative", cfg: fault.Config{AbortPercent: -1, AbortHTTPStatus: 503}, want: []string{"AbortPercent is -1"}},
		{name: "percent NaN", cfg: fault.Config{DelayPercent: math.NaN(), Delay: time.Second}, want: []string{"DelayPercent is NaN"}},
		{name: "negative delay", cfg: fault.Config{Delay: -time.Second}, want: []string{"Delay is -1s", "0 or more"}},
		{name: "delay percent without delay", cfg: fault.Config{DelayPercent: 5}, want: []string{"DelayPercent is 5 but Delay is 0", "set Delay"}},
		{name: "abort without status", cfg: fault.Config{AbortPercent: 5, AbortGRPCStatus: 14}, want: []string{"AbortHTTPStatus is not set", "200 to 599"}},
		{name: "status too low", cfg: fault.Config{AbortPercent: 5, AbortHTTPStatus: 199}, want: []string{"AbortHTTPStatus is 199", "200 to 599"}},
		{name: "status too high", cfg: fault.Config{AbortPercent: 5, AbortHTTPStatus: 600}, want: []string{"AbortHTTPStatus is 600"}},
		{name: "grpc status too high", cfg: fault.Config{AbortPercent: 5, AbortHTTPStatus: 503, AbortGRPCStatus: 17}, want: []string{"AbortGRPCStatus is 17", "1 to 16"}},
		{name: "grpc status negative", cfg: fault.Config{AbortGRPCStatus: -1}, want: []string{"AbortGRPCStatus is -1"}},
		{name: "every problem reported", cfg: fault.Config{DelayPercent: 101, Delay: -1, AbortHTTPStatus: 1}, want: []string{"DelayPercent", "Delay is -1ns", "AbortHTTPStatus is 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			_, newErr := fault.New(tt.cfg, nil)
			validatetest.Check(t, err, newErr, tt.want)
		})
	}
}

// TestSleep runs in a synctest bubble: time is virtual, so the delays are
// exact and cost no wall time.
func TestSleep(t *testing.T) {
	errCause := errors.New("client went away")
	tests := []struct {
		name      string
		d         time.Duration
		cancelAt  time.Duration // 0: never
		cause     error
		wantTook  time.Duration
		wantErrIs []error
	}{
		{name: "full delay", d: 3 * time.Second, wantTook: 3 * time.Second},
		{name: "zero", d: 0},
		{name: "negative", d: -time.Second},
		{name: "canceled", d: 10 * time.Second, cancelAt: 2 * time.Second, wantTook: 2 * time.Second, wantErrIs: []error{context.Canceled}},
		{name: "canceled with cause", d: 10 * time.Second, cancelAt: time.Second, cause: errCause, wantTook: time.Second, wantErrIs: []error{context.Canceled, errCause}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancelCause(t.Context())
				defer cancel(nil)
				if tt.cancelAt > 0 {
					time.AfterFunc(tt.cancelAt, func() { cancel(tt.cause) })
				}
				start := time.Now()
				err := fault.Sleep(ctx, tt.d)
				if took := time.Since(start); took != tt.wantTook {
					t.Errorf("Sleep took %v, want %v", took, tt.wantTook)
				}
				if len(tt.wantErrIs) == 0 && err != nil {
					t.Fatalf("Sleep() = %v, want nil", err)
				}
				for _, want := range tt.wantErrIs {
					if !errors.Is(err, want) {
						t.Errorf("Sleep() = %v, want it to wrap %v", err, want)
					}
				}
			})
		})
	}
}

func TestSleepDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		if err := fault.Sleep(ctx, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Sleep() = %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestDecideConcurrentDefaultRand(t *testing.T) {
	inj, err := fault.New(fault.Config{DelayPercent: 50, Delay: time.Millisecond, AbortPercent: 50, AbortHTTPStatus: 429}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int)
	for range 4 {
		go func() {
			n := 0
			for range 10000 {
				if inj.Decide().Abort {
					n++
				}
			}
			done <- n
		}()
	}
	total := 0
	for range 4 {
		total += <-done
	}
	// 40000 draws at 50%: 5 standard deviations is 500.
	if total < 19500 || total > 20500 {
		t.Fatalf("aborted %d of 40000 at 50%%", total)
	}
}
