package retry_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/retry"
)

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*retry.Policy)
		wantErr string // substring; "" means valid
	}{
		{"default", func(*retry.Policy) {}, ""},
		{"zero policy", func(p *retry.Policy) { *p = retry.Policy{} }, ""},
		{"everything", func(p *retry.Policy) {
			p.MaxRetries = 10
			p.Statuses = []retry.StatusRange{{502, 504}, {429, 429}}
			p.GRPCCodes = []int{14, 4}
			p.OnReset, p.RetryNonIdempotent = true, true
			p.PerTryTimeout = time.Second
		}, ""},
		{"negative retries", func(p *retry.Policy) { p.MaxRetries = -1 }, "Policy.MaxRetries is -1; set it between 0 (no retries) and 10"},
		{"too many retries", func(p *retry.Policy) { p.MaxRetries = 11 }, "Policy.MaxRetries"},
		{"reversed status range", func(p *retry.Policy) { p.Statuses = []retry.StatusRange{{502, 504}, {504, 502}} }, "Policy.Statuses[1] is 504-502; set From <= To"},
		{"success status", func(p *retry.Policy) { p.Statuses = []retry.StatusRange{{200, 200}} }, "within 400-599"},
		{"status out of range", func(p *retry.Policy) { p.Statuses = []retry.StatusRange{{500, 600}} }, "Policy.Statuses[0]"},
		{"grpc OK", func(p *retry.Policy) { p.GRPCCodes = []int{0} }, "Policy.GRPCCodes[0] is 0; set a gRPC error code between 1 and 16"},
		{"grpc unknown", func(p *retry.Policy) { p.GRPCCodes = []int{14, 17} }, "Policy.GRPCCodes[1]"},
		{"negative body limit", func(p *retry.Policy) { p.MaxBodyBytes = -1 }, "Policy.MaxBodyBytes is -1"},
		{"huge body limit", func(p *retry.Policy) { p.MaxBodyBytes = 1 << 30 }, "Policy.MaxBodyBytes"},
		{"negative backoff", func(p *retry.Policy) { p.Backoff.Base = -time.Millisecond }, "Policy.Backoff"},
		{"backoff max below base", func(p *retry.Policy) { p.Backoff = retry.Backoff{Base: time.Second, Max: time.Millisecond} }, "set 0 <= Base <= Max"},
		{"negative per-try timeout", func(p *retry.Policy) { p.PerTryTimeout = -time.Second }, "Policy.PerTryTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := retry.DefaultPolicy()
			tt.mod(&p)
			err := p.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v; want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestIsIdempotent(t *testing.T) {
	tests := []struct {
		method string
		want   bool
	}{
		{"GET", true}, {"HEAD", true}, {"OPTIONS", true}, {"TRACE", true}, {"PUT", true}, {"DELETE", true},
		{"", true}, // net/http's GET
		{"POST", false}, {"PATCH", false}, {"CONNECT", false}, {"get", false}, {"PROPFIND", false},
	}
	for _, tt := range tests {
		if got := retry.IsIdempotent(tt.method); got != tt.want {
			t.Errorf("IsIdempotent(%q) = %v; want %v", tt.method, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name    string
		backoff retry.Backoff
		retries int
		want    []time.Duration // nil: check bounds only
	}{
		{"full jitter ceiling doubles up to Max", retry.Backoff{Base: 25 * ms, Max: 250 * ms, Rand: func() float64 { return 1 }},
			6, []time.Duration{25 * ms, 50 * ms, 100 * ms, 200 * ms, 250 * ms, 250 * ms}},
		{"jitter scales the ceiling", retry.Backoff{Base: 25 * ms, Max: 250 * ms, Rand: func() float64 { return 0.5 }},
			5, []time.Duration{12500 * time.Microsecond, 25 * ms, 50 * ms, 100 * ms, 125 * ms}},
		{"zero jitter does not wait", retry.Backoff{Base: 25 * ms, Max: 250 * ms, Rand: func() float64 { return 0 }},
			3, []time.Duration{}},
		{"zero base does not wait", retry.Backoff{}, 3, []time.Duration{}},
		{"many retries do not overflow", retry.Backoff{Base: time.Nanosecond, Max: time.Hour, Rand: func() float64 { return 1 }},
			10, []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}},
		{"default random source", retry.Backoff{Base: 25 * ms, Max: 250 * ms}, 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var waits []time.Duration
			p := retry.Policy{
				MaxRetries: tt.retries,
				Statuses:   []retry.StatusRange{{503, 503}},
				Backoff:    tt.backoff,
				Sleep: func(ctx context.Context, d time.Duration) error {
					waits = append(waits, d)
					return nil
				},
			}
			s := &script{outcomes: []outcome{status(503)}}
			resp, res, err := retry.Do(newGet(t), p, plentyBudget(t), s.attempt)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if res.Retries != tt.retries {
				t.Fatalf("Retries = %d; want %d", res.Retries, tt.retries)
			}
			if tt.want != nil {
				if len(waits) != len(tt.want) {
					t.Fatalf("waits = %v; want %v", waits, tt.want)
				}
				for i := range waits {
					if waits[i] != tt.want[i] {
						t.Fatalf("waits = %v; want %v", waits, tt.want)
					}
				}
				return
			}
			ceil := tt.backoff.Base
			for i, d := range waits {
				if d < 0 || d > ceil {
					t.Errorf("wait before retry %d = %v; want within [0, %v]", i+1, d, ceil)
				}
				ceil = min(2*ceil, tt.backoff.Max)
			}
		})
	}
}

// TestBackoffRealSleep checks the default sleep, with generous bounds.
func TestBackoffRealSleep(t *testing.T) {
	p := retry.Policy{
		MaxRetries: 2,
		Statuses:   []retry.StatusRange{{503, 503}},
		Backoff:    retry.Backoff{Base: 10 * time.Millisecond, Max: 20 * time.Millisecond, Rand: func() float64 { return 1 }},
	}
	s := &script{outcomes: []outcome{status(503)}}
	start := time.Now()
	resp, res, err := retry.Do(newGet(t), p, plentyBudget(t), s.attempt)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if res.Retries != 2 {
		t.Fatalf("Retries = %d; want 2", res.Retries)
	}
	if elapsed < 30*time.Millisecond {
		t.Fatalf("Do took %v; the two waits alone are 10ms + 20ms", elapsed)
	}
}
