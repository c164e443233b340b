package balance

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

// Three endpoints; the test sets how a:80 behaves, b:80 and c:80 answer in
// 10ms. Requests arrive every 10ms on a fake clock, DecayTime is 10s.
func p2cSetup(t *testing.T, opts Options) (*Balancer, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	opts.Now = clk.Now
	opts.Rand = seeded(7)
	b := New(P2CPeakEWMA, opts)
	b.Update([]Endpoint{{Addr: "a:80"}, {Addr: "b:80"}, {Addr: "c:80"}})
	return b, clk
}

const dt = 10 * time.Millisecond

func healthyExcept(a latencyFunc) latencyFunc {
	return func(addr string) (time.Duration, error) {
		if addr == "a:80" {
			return a(addr)
		}
		return 10 * time.Millisecond, nil
	}
}

func TestP2CAvoidsSlowEndpoint(t *testing.T) {
	b, clk := p2cSetup(t, Options{})
	slow := healthyExcept(func(string) (time.Duration, error) { return 100 * time.Millisecond, nil })
	serve(t, b, clk, 1000, dt, slow) // warm up: 10s
	got := serve(t, b, clk, 1000, dt, slow)
	if s := share(got, "a:80"); s > 0.02 {
		t.Errorf("slow endpoint got %.3f of requests, want < 0.02 (counts %v)", s, got)
	}
	for _, addr := range []string{"b:80", "c:80"} {
		if s := share(got, addr); s < 0.45 {
			t.Errorf("%s got %.3f of requests, want about half (counts %v)", addr, s, got)
		}
	}
}

func TestP2CRecoversWhenEndpointIsFastAgain(t *testing.T) {
	b, clk := p2cSetup(t, Options{})
	aLatency := 100 * time.Millisecond
	lat := healthyExcept(func(string) (time.Duration, error) { return aLatency, nil })
	serve(t, b, clk, 2000, dt, lat)

	aLatency = 5 * time.Millisecond
	// Not at once: a:80 is only tried again once its estimate has decayed
	// to the others' (DecayTime * ln(100ms/10ms), about 23s).
	if s := share(serve(t, b, clk, 300, dt, lat), "a:80"); s > 0.02 {
		t.Errorf("a:80 got %.3f of the requests in the 3s after it became fast, want < 0.02", s)
	}
	serve(t, b, clk, 3000, dt, lat) // 30s
	// Faster than the others now, so it wins every pair it is drawn in.
	if s := share(serve(t, b, clk, 1000, dt, lat), "a:80"); s < 0.55 {
		t.Errorf("a:80 got %.3f of requests after recovering, want about 2/3", s)
	}
}

func TestP2CAvoidsFailingEndpoint(t *testing.T) {
	fastFailure := healthyExcept(func(string) (time.Duration, error) {
		return time.Millisecond, errors.New("connection refused")
	})
	tests := []struct {
		name     string
		penalty  time.Duration
		min, max float64 // share of a:80
	}{
		{"failures penalised", 0, 0, 0.02},
		// Without the penalty an endpoint that fails in 1ms looks like the
		// fastest and gets most of the traffic.
		{"penalty disabled", -1, 0.5, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, clk := p2cSetup(t, Options{FailurePenalty: tt.penalty})
			serve(t, b, clk, 1000, dt, fastFailure)
			got := serve(t, b, clk, 1000, dt, fastFailure)
			if s := share(got, "a:80"); s < tt.min || s > tt.max {
				t.Errorf("failing endpoint got %.3f of requests, want in [%.2f, %.2f]", s, tt.min, tt.max)
			}
		})
	}
}

func TestP2CCanceledIsNotAFailure(t *testing.T) {
	b, clk := p2cSetup(t, Options{})
	canceled := healthyExcept(func(string) (time.Duration, error) {
		return 10 * time.Millisecond, context.Canceled
	})
	serve(t, b, clk, 1000, dt, canceled)
	if s := share(serve(t, b, clk, 1000, dt, canceled), "a:80"); s < 0.25 {
		t.Errorf("endpoint whose callers cancel got %.3f of requests, want about 1/3", s)
	}
}

func TestP2CAvoidsBusyEndpoint(t *testing.T) {
	b, clk := p2cSetup(t, Options{})
	ok := func(string) (time.Duration, error) { return 10 * time.Millisecond, nil }
	serve(t, b, clk, 300, dt, ok)

	// a:80 gets stuck with 10 requests in flight.
	var stuck []*Pick
	for len(stuck) < 10 {
		clk.Advance(dt)
		p := mustPick(t, b, Key{})
		if p.Addr == "a:80" {
			stuck = append(stuck, p)
		} else {
			p.Done(ok(p.Addr))
		}
	}
	if got := statsByAddr(b)["a:80"].InFlight; got != 10 {
		t.Fatalf("a:80 in flight = %d, want 10", got)
	}
	if s := share(serve(t, b, clk, 300, dt, ok), "a:80"); s > 0.02 {
		t.Errorf("busy endpoint got %.3f of requests, want < 0.02", s)
	}
	for _, p := range stuck {
		p.Done(10*time.Millisecond, nil)
	}
	if s := share(serve(t, b, clk, 600, dt, ok), "a:80"); s < 0.25 {
		t.Errorf("endpoint got %.3f of requests once no longer busy, want about 1/3", s)
	}
}

func TestP2CNewEndpointIsNeitherFloodedNorStarved(t *testing.T) {
	b, clk := p2cSetup(t, Options{})
	ok := func(string) (time.Duration, error) { return 10 * time.Millisecond, nil }
	serve(t, b, clk, 1000, dt, ok)
	b.Update([]Endpoint{{Addr: "a:80"}, {Addr: "b:80"}, {Addr: "c:80"}, {Addr: "d:80"}})

	// A burst arrives before any response: the new endpoint, which has no
	// latency of its own yet, must not take it all.
	burst := map[string]int{}
	var held []*Pick
	for range 40 {
		p := mustPick(t, b, Key{})
		burst[p.Addr]++
		held = append(held, p)
	}
	if s := share(burst, "d:80"); s > 0.35 {
		t.Errorf("new endpoint got %.3f of a burst, want about 1/4 (counts %v)", s, burst)
	}
	for _, p := range held {
		p.Done(ok(p.Addr))
	}
	got := serve(t, b, clk, 400, dt, ok)
	if s := share(got, "d:80"); s < 0.15 || s > 0.35 {
		t.Errorf("new endpoint got %.3f of requests, want about 1/4 (counts %v)", s, got)
	}
}

func TestEWMADecays(t *testing.T) {
	clk := newFakeClock()
	b := New(P2CPeakEWMA, Options{Now: clk.Now, DecayTime: time.Second})
	b.Update(endpoints(1))
	p := mustPick(t, b, Key{})
	p.Done(100*time.Millisecond, nil)
	if got := b.Endpoints()[0].EWMA; absDur(got-100*time.Millisecond) > time.Microsecond {
		t.Fatalf("EWMA = %v right after a 100ms sample, want 100ms (peak)", got)
	}
	clk.Advance(time.Second)
	if got, want := b.Endpoints()[0].EWMA, time.Duration(math.Exp(-1)*float64(100*time.Millisecond)); absDur(got-want) > time.Microsecond {
		t.Errorf("EWMA = %v one DecayTime later, want %v (1/e)", got, want)
	}
	// A lower sample does not pull the estimate below its decayed value.
	p = mustPick(t, b, Key{})
	p.Done(time.Millisecond, nil)
	if got := b.Endpoints()[0].EWMA; got < 36*time.Millisecond {
		t.Errorf("EWMA = %v after a low sample, want unchanged ~36.8ms", got)
	}
}
