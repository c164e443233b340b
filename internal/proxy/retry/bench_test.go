package retry_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/weft-mesh/weft/internal/proxy/retry"
)

// reusableBody is a request body the benchmark rewinds instead of
// allocating one per iteration.
type reusableBody struct{ bytes.Reader }

func (*reusableBody) Close() error { return nil }

// BenchmarkDo measures the retry layer on the happy path: the first try
// succeeds. "direct" is the same attempt called without Do (one allocation:
// the response).
func BenchmarkDo(b *testing.B) {
	header := http.Header{"Content-Type": {"text/plain"}}
	attempt := func(req *http.Request) (*http.Response, error) {
		if req.Body != nil {
			io.Copy(io.Discard, req.Body)
			req.Body.Close()
		}
		return &http.Response{StatusCode: 200, Header: header, Body: http.NoBody}, nil
	}
	p := retry.DefaultPolicy()
	p.Statuses = []retry.StatusRange{{502, 504}}
	budget := newBudget(b, retry.DefaultBudgetConfig())
	data := payload(1 << 10)

	get := newRequest(b, context.Background(), "GET", nil)
	get.Header.Set("User-Agent", "bench")
	get.Header.Set("Accept", "*/*")
	get.Header.Set("X-Request-Id", "0123456789abcdef")

	b.Run("direct/GET", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			attempt(get)
		}
	})
	b.Run("Do/GET", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := retry.Do(get, p, budget, attempt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Do/GET-no-budget", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := retry.Do(get, p, nil, attempt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Do/GET-per-try-timeout", func(b *testing.B) {
		p := p
		p.PerTryTimeout = 1e9
		b.ReportAllocs()
		for b.Loop() {
			resp, _, err := retry.Do(get, p, budget, attempt)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
		}
	})

	body := &reusableBody{}
	put := serverSide(newRequest(b, context.Background(), "PUT", body))
	put.ContentLength = int64(len(data))
	put.Header = get.Header
	b.Run("direct/PUT-1KiB", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			body.Reset(data)
			attempt(put)
		}
	})
	b.Run("Do/PUT-1KiB", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			body.Reset(data)
			if _, _, err := retry.Do(put, p, budget, attempt); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkBudget(b *testing.B) {
	budget := newBudget(b, retry.DefaultBudgetConfig())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			budget.Deposit()
			budget.TryWithdraw()
		}
	})
}
