package breaker

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestNewDetectorValidation(t *testing.T) {
	tests := []struct {
		name string
		c    OutlierConfig
		want []string
	}{
		{"defaults", DefaultOutlierConfig(), nil},
		{"zero value: both detectors off", OutlierConfig{}, nil},
		{"negative base_ejection_time", OutlierConfig{BaseEjectionTime: -time.Second}, []string{"outlier.base_ejection_time: -1s must be positive; remove it to use 30s"}},
		{"negative interval", OutlierConfig{Interval: -time.Second}, []string{"outlier.interval: -1s must be positive; remove it to use 10s"}},
		{"negative max_ejection_time", OutlierConfig{MaxEjectionTime: -time.Second}, []string{"outlier.max_ejection_time: -1s", "remove it to use 5m0s"}},
		{"max below base", OutlierConfig{BaseEjectionTime: time.Minute, MaxEjectionTime: time.Second}, []string{"outlier.max_ejection_time: 1s is shorter than outlier.base_ejection_time 1m0s"}},
		{"max below default base", OutlierConfig{MaxEjectionTime: 10 * time.Second}, []string{"outlier.max_ejection_time: 10s is shorter than outlier.base_ejection_time 30s"}},
		{"negative consecutive_failures", OutlierConfig{ConsecutiveFailures: -1}, []string{"outlier.consecutive_failures: -1", "0 to turn this detector off"}},
		{"negative min requests", OutlierConfig{SuccessRateMinRequests: -5}, []string{"outlier.success_rate_min_requests: -5"}},
		{"negative stdev factor", OutlierConfig{SuccessRateStdevFactor: -1}, []string{"outlier.success_rate_stdev_factor: -1", "1.9"}},
		{"percent above 100", OutlierConfig{MaxEjectionPercent: 101}, []string{"outlier.max_ejection_percent: 101 must be between 1 and 100; remove it to use 50"}},
		{"every problem at once", OutlierConfig{ConsecutiveFailures: -1, Interval: -1, MaxEjectionPercent: -1}, []string{"consecutive_failures", "interval", "max_ejection_percent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewDetector(tt.c)
			checkErr(t, err, tt.want)
		})
	}
}

// newTestDetector returns a Detector on a fake clock over endpoints a, b, c
// (or addrs), recording ejections.
func newTestDetector(t *testing.T, c OutlierConfig, addrs ...string) (*Detector, *fakeClock, *ejectLog) {
	t.Helper()
	clock := newFakeClock()
	c.Now = clock.Now
	d, err := NewDetector(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) == 0 {
		addrs = []string{"a", "b", "c"}
	}
	d.SetEndpoints(addrs)
	log := &ejectLog{}
	d.OnEject(log.add)
	return d, clock, log
}

type ejectLog struct {
	mu     sync.Mutex
	events []string
}

func (l *ejectLog) add(addr, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, addr+" "+reason)
}

func (l *ejectLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

func reportN(d *Detector, addr string, n int, success bool) {
	for range n {
		d.Report(addr, success)
	}
}

func TestConsecutiveFailures(t *testing.T) {
	tests := []struct {
		name        string
		consecutive int
		reports     string // per request to "a": 'F' failure, 'S' success
		wantEjected bool
	}{
		{"four failures keep it", 5, "FFFF", false},
		{"five failures eject it", 5, "FFFFF", true},
		{"a success resets the count", 5, "FFFFSFFFF", false},
		{"failures after a success count anew", 5, "FFSFFFFF", true},
		{"threshold 1", 1, "F", true},
		{"detector off", 0, "FFFFFFFFFFFFFFFFFFFF", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _, log := newTestDetector(t, OutlierConfig{ConsecutiveFailures: tt.consecutive})
			for _, r := range tt.reports {
				d.Report("a", r == 'S')
			}
			if got := !d.Available("a"); got != tt.wantEjected {
				t.Fatalf("ejected = %v after %s, want %v", got, tt.reports, tt.wantEjected)
			}
			var want []string
			if tt.wantEjected {
				want = []string{"a consecutive-failures"}
			}
			if got := log.get(); !slices.Equal(got, want) {
				t.Errorf("OnEject calls = %q, want %q", got, want)
			}
			if !d.Available("b") || !d.Available("c") {
				t.Error("the other endpoints are not available")
			}
		})
	}
}

func TestEjectionAndProbation(t *testing.T) {
	const base = 30 * time.Second
	type step struct {
		advance time.Duration // clock moves first
		report  string        // "S" or "F": report the outcome of a request to a
		// wantAvail is what the next Available("a") calls return, in
		// order; each true is a probe (or a normal request) sent.
		wantAvail []bool
	}
	tests := []struct {
		name  string
		steps []step
		// wantCount and wantUntil (from the first ejection) describe
		// Ejected() at the end; wantCount 0: nothing is ejected.
		wantCount int
		wantUntil time.Duration
		wantHooks int // OnEject calls, if not wantCount
	}{
		{
			name: "ejected for the base time, then one probe at a time",
			steps: []step{
				{wantAvail: []bool{false}},
				{advance: base - time.Nanosecond, wantAvail: []bool{false}},
				{advance: time.Nanosecond, wantAvail: []bool{true, false, false}},
			},
			wantCount: 1, wantUntil: base,
		},
		{
			name: "probe success brings it back fully",
			steps: []step{
				{advance: base, wantAvail: []bool{true, false}},
				{report: "S", wantAvail: []bool{true, true, true}},
			},
		},
		{
			name: "probe failure ejects it for twice the base time",
			steps: []step{
				{advance: base, wantAvail: []bool{true}},
				{report: "F", wantAvail: []bool{false}},
				{advance: 2*base - time.Nanosecond, wantAvail: []bool{false}},
				{advance: time.Nanosecond, wantAvail: []bool{true, false}},
			},
			wantCount: 2, wantUntil: 3 * base,
		},
		{
			name: "third ejection in a row lasts three times the base",
			steps: []step{
				{advance: base, wantAvail: []bool{true}},
				{report: "F"},
				{advance: 2 * base, wantAvail: []bool{true}},
				{report: "F"},
				{advance: 3*base - time.Nanosecond, wantAvail: []bool{false}},
				{advance: time.Nanosecond, wantAvail: []bool{true}},
				{report: "S", wantAvail: []bool{true, true}},
			},
		},
		{
			name: "back-off is capped at max_ejection_time",
			steps: func() []step {
				var s []step
				for n := 1; n <= 12; n++ {
					d := min(time.Duration(n)*base, 300*time.Second)
					s = append(s, step{advance: d, wantAvail: []bool{true}}, step{report: "F"})
				}
				return s
			}(),
			wantCount: 10, // 10*30s = 300s: the count stops growing
			wantHooks: 13,
			wantUntil: (30+60+90+120+150+180+210+240+270+300+300+300)*time.Second + 300*time.Second,
		},
		{
			name: "a probe not reported within the interval is given up",
			steps: []step{
				{advance: base, wantAvail: []bool{true, false}},
				{advance: 10*time.Second - time.Nanosecond, wantAvail: []bool{false}},
				{advance: time.Nanosecond, wantAvail: []bool{true, false}},
			},
			wantCount: 1, wantUntil: base,
		},
		{
			name: "reports of requests sent before the ejection are ignored",
			steps: []step{
				{report: "S", wantAvail: []bool{false}},
				{report: "F", wantAvail: []bool{false}},
				{advance: base, wantAvail: []bool{true}},
			},
			wantCount: 1, wantUntil: base,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, clock, log := newTestDetector(t, OutlierConfig{ConsecutiveFailures: 5})
			start := clock.Now()
			reportN(d, "a", 5, false)
			for i, s := range tt.steps {
				clock.Advance(s.advance)
				if s.report != "" {
					d.Report("a", s.report == "S")
				}
				for j, want := range s.wantAvail {
					if got := d.Available("a"); got != want {
						t.Fatalf("step %d: Available call %d at +%v = %v, want %v", i, j+1, clock.Now().Sub(start), got, want)
					}
				}
				if !d.Available("b") || !d.Available("c") {
					t.Fatalf("step %d: another endpoint is unavailable", i)
				}
			}
			ej := d.Ejected()
			if tt.wantCount == 0 {
				if len(ej) != 0 {
					t.Errorf("Ejected() = %+v, want none", ej)
				}
				return
			}
			if len(ej) != 1 {
				t.Fatalf("Ejected() = %+v, want a", ej)
			}
			want := Ejection{Addr: "a", Since: start, Until: start.Add(tt.wantUntil), Reason: ReasonConsecutiveFailures, Count: tt.wantCount, Probation: !clock.Now().Before(start.Add(tt.wantUntil))}
			if ej[0] != want {
				t.Errorf("Ejected() = %+v\nwant        %+v", ej[0], want)
			}
			if tt.wantHooks == 0 {
				tt.wantHooks = tt.wantCount
			}
			if got := len(log.get()); got != tt.wantHooks {
				t.Errorf("OnEject called %d times, want %d (one per ejection)", got, tt.wantHooks)
			}
		})
	}
}

func TestBackoffDecays(t *testing.T) {
	const base = 30 * time.Second
	tests := []struct {
		name    string
		healthy time.Duration // in service between the second and third ejection
		want    time.Duration // length of the third ejection
	}{
		{"right after returning", 0, 3 * base},
		{"after one base time", base, 2 * base},
		{"after two and a half", 5 * base / 2, base},
		{"after a long time", time.Hour, base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, clock, _ := newTestDetector(t, OutlierConfig{ConsecutiveFailures: 5})
			reportN(d, "a", 5, false)
			clock.Advance(base)
			d.Available("a")
			d.Report("a", false) // second ejection, 2*base
			clock.Advance(2 * base)
			d.Available("a")
			d.Report("a", true) // back
			clock.Advance(tt.healthy)
			reportN(d, "a", 5, false)
			ej := d.Ejected()
			if len(ej) != 1 {
				t.Fatalf("Ejected() = %+v, want a", ej)
			}
			if got := ej[0].Until.Sub(ej[0].Since); got != tt.want {
				t.Errorf("third ejection lasts %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMaxEjectionPercent(t *testing.T) {
	tests := []struct {
		name      string
		endpoints int
		percent   int
		want      int // ejected when every endpoint fails
	}{
		{"two endpoints, 50%: one stays", 2, 50, 1},
		{"one endpoint is never ejected", 1, 50, 0},
		{"three endpoints, 50%: one ejected", 3, 50, 1},
		{"ten endpoints, 50%", 10, 50, 5},
		{"ten endpoints, 10%", 10, 10, 1},
		{"ten endpoints, 5% rounds down to none", 10, 5, 0},
		{"100% still keeps one", 3, 100, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addrs := make([]string, tt.endpoints)
			for i := range addrs {
				addrs[i] = fmt.Sprintf("10.0.0.%d:80", i+1)
			}
			d, _, log := newTestDetector(t, OutlierConfig{ConsecutiveFailures: 5, MaxEjectionPercent: tt.percent}, addrs...)
			for range 3 { // every endpoint keeps failing
				for _, a := range addrs {
					reportN(d, a, 5, false)
				}
			}
			available := 0
			for _, a := range addrs {
				if d.Available(a) {
					available++
				}
			}
			if got := tt.endpoints - available; got != tt.want {
				t.Errorf("%d of %d endpoints ejected, want %d", got, tt.endpoints, tt.want)
			}
			if got := len(d.Ejected()); got != tt.want {
				t.Errorf("len(Ejected()) = %d, want %d", got, tt.want)
			}
			if got := len(log.get()); got != tt.want {
				t.Errorf("OnEject called %d times, want %d", got, tt.want)
			}
		})
	}
}

func TestSuccessRateEjection(t *testing.T) {
	type load struct {
		addr      string
		requests  int
		successes int
	}
	peers := func(n, requests, successes int) []load {
		var ls []load
		for i := range n {
			ls = append(ls, load{fmt.Sprintf("peer%d", i), requests, successes})
		}
		return ls
	}
	tests := []struct {
		name string
		load []load
		want []string // ejected
	}{
		{"60% among five 95% peers", append(peers(5, 100, 95), load{"bad", 100, 60}), []string{"bad"}},
		// One outlier among n is at most sqrt(n-1) stdevs from the mean,
		// so with factor 1.9 it takes 5 endpoints.
		{"60% among three 95% peers is not caught", append(peers(3, 100, 95), load{"bad", 100, 60}), nil},
		{"60% among nine 95% peers", append(peers(9, 200, 190), load{"bad", 200, 120}), []string{"bad"}},
		{"too few requests to judge", append(peers(5, 100, 95), load{"bad", 99, 59}), nil},
		{"fewer than 3 endpoints to compare", []load{{"peer", 100, 95}, {"bad", 100, 60}}, nil},
		{"fewer than 3 with enough requests", append(peers(5, 50, 48), load{"p1", 100, 95}, load{"p2", 100, 95}, load{"bad", 100, 10}), nil},
		{"everyone equal", peers(6, 100, 95), nil},
		{"everyone equally bad", peers(6, 100, 50), nil},
		{"small differences", append(peers(5, 100, 95), load{"meh", 100, 90}), []string{"meh"}},
		{"two bad among ten peers", append(peers(10, 100, 99), load{"bad1", 100, 10}, load{"bad2", 100, 20}), []string{"bad1", "bad2"}},
		// Two bad ones among six widen the spread so much that neither is
		// below mean - 1.9 stdev: the known weakness of the method.
		{"two bad among six peers mask each other", append(peers(6, 100, 99), load{"bad1", 100, 10}, load{"bad2", 100, 20}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addrs []string
			for _, l := range tt.load {
				addrs = append(addrs, l.addr)
			}
			// Consecutive-failure ejection off, to see success rate alone.
			d, clock, log := newTestDetector(t, OutlierConfig{SuccessRateMinRequests: 100}, addrs...)
			for _, l := range tt.load { // failures spread out
				for i := range l.requests {
					d.Report(l.addr, i*l.successes/l.requests != (i+1)*l.successes/l.requests)
				}
			}
			if got := d.Ejected(); len(got) != 0 {
				t.Fatalf("ejected %+v before the interval ended", got)
			}
			clock.Advance(10 * time.Second)
			d.Report(addrs[0], true) // evaluates the interval that ended
			var got, wantLog []string
			for _, a := range addrs {
				if !d.Available(a) {
					got = append(got, a)
				}
			}
			slices.Sort(got)
			for _, a := range tt.want {
				wantLog = append(wantLog, a+" success-rate")
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ejected %q, want %q", got, tt.want)
			}
			if l := log.get(); !slices.Equal(l, wantLog) {
				t.Errorf("OnEject calls %q, want %q", l, wantLog)
			}
			for _, e := range d.Ejected() {
				if e.Reason != ReasonSuccessRate || e.Until.Sub(e.Since) != 30*time.Second {
					t.Errorf("ejection %+v, want reason success-rate for 30s", e)
				}
			}
			// The next interval starts afresh: a quiet interval ejects no one else.
			clock.Advance(10 * time.Second)
			d.Report(addrs[0], true)
			if n := len(d.Ejected()); n != len(tt.want) {
				t.Errorf("%d ejected after a quiet interval, want %d", n, len(tt.want))
			}
		})
	}
}

func TestSetEndpointsKeepsState(t *testing.T) {
	d, clock, _ := newTestDetector(t, OutlierConfig{ConsecutiveFailures: 5}, "a", "b", "c", "d")
	reportN(d, "a", 5, false) // ejected
	reportN(d, "b", 4, false) // one failure from ejection
	since := d.Ejected()[0].Since
	clock.Advance(time.Second)

	d.SetEndpoints([]string{"d", "c", "b", "a", "e"})
	if d.Available("a") {
		t.Error("a came back when the endpoint set changed")
	}
	if ej := d.Ejected(); len(ej) != 1 || ej[0].Since != since {
		t.Errorf("Ejected() = %+v, want a since %v", ej, since)
	}
	d.Report("b", false)
	if d.Available("b") {
		t.Error("b was not ejected by its fifth failure: its count was lost")
	}
	reportN(d, "e", 5, false)
	if !d.Available("e") {
		t.Error("e was ejected although 2 of 5 are out (max 50%)")
	}

	// Removed and added again: a fresh endpoint.
	d.SetEndpoints([]string{"c", "d", "e"})
	d.SetEndpoints([]string{"a", "c", "d", "e"})
	if !d.Available("a") || len(d.Ejected()) != 0 {
		t.Errorf("a added again is not fresh: Ejected() = %+v", d.Ejected())
	}
	d.Report("gone", false) // unknown: ignored
	if !d.Available("gone") {
		t.Error("unknown endpoint not available")
	}

	// Shrinking to ejected endpoints only: one stays in service.
	reportN(d, "a", 5, false)
	d.SetEndpoints([]string{"a"})
	if !d.Available("a") || len(d.Ejected()) != 0 {
		t.Errorf("the only endpoint is ejected: %+v", d.Ejected())
	}
}
