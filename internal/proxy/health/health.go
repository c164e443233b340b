package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults of Options.
const (
	DefaultInterval         = 5 * time.Second
	DefaultTimeout          = time.Second
	DefaultFailureThreshold = 2
	DefaultSuccessThreshold = 1
)

// Kind is what a check does.
type Kind string

// The kinds of check.
const (
	// KindTCP connects to every port; each must accept.
	KindTCP Kind = "tcp"
	// KindHTTP sends GET Path to the first port and expects a 2xx or 3xx
	// status (redirects are not followed).
	KindHTTP Kind = "http"
	// KindNone checks nothing: the workload counts as healthy.
	KindNone Kind = "none"
)

// Spec is a check as weft-proxy's --health-check spells it.
type Spec struct {
	Kind Kind
	// Path is the HTTP path of KindHTTP, starting with /.
	Path string
}

// ParseSpec reads "tcp", "http:<path>" (e.g. http:/healthz) or "none".
func ParseSpec(s string) (Spec, error) {
	switch {
	case s == string(KindTCP):
		return Spec{Kind: KindTCP}, nil
	case s == string(KindNone):
		return Spec{Kind: KindNone}, nil
	case strings.HasPrefix(s, "http:"):
		path := strings.TrimPrefix(s, "http:")
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t\r\n#") {
			return Spec{}, fmt.Errorf("health check %q: the path must start with / and hold no spaces or fragment, e.g. http:/healthz", s)
		}
		return Spec{Kind: KindHTTP, Path: path}, nil
	}
	return Spec{}, fmt.Errorf("health check %q: use tcp, http:<path> (e.g. http:/healthz) or none", s)
}

func (s Spec) String() string {
	if s.Kind == KindHTTP {
		return "http:" + s.Path
	}
	return string(s.Kind)
}

// Status is the application's health as the checks see it.
type Status struct {
	Healthy bool
	// Detail says why: the failed probe's error, or what succeeded.
	Detail string
}

// Options configure a Checker.
type Options struct {
	Spec Spec
	// Host is the application's address, as the proxy reaches it (the
	// inbound app host, 127.0.0.1).
	Host string
	// Ports are the application's ports: every one for KindTCP, the first
	// for KindHTTP.
	Ports []uint16
	// Interval between probes; zero means DefaultInterval.
	Interval time.Duration
	// Timeout of one probe; zero means DefaultTimeout, at most Interval.
	Timeout time.Duration
	// FailureThreshold consecutive failures make a healthy application
	// unhealthy (default 2); SuccessThreshold consecutive successes make
	// an unhealthy one healthy (default 1). The first probe decides at
	// once.
	FailureThreshold, SuccessThreshold int
	// OnChange receives the first status and every change. It is called
	// from Run's goroutine, one call at a time.
	OnChange func(Status)
	// After replaces time.After, for tests; nil: the real clock.
	After  func(time.Duration) <-chan time.Time
	Logger *slog.Logger
}

// Checker probes an application. Run it once.
type Checker struct {
	o      Options
	probe  func(ctx context.Context) error
	client *http.Client

	// The hysteresis state, owned by Run's goroutine.
	known     bool
	healthy   bool
	successes int
	failures  int
}

// New checks o and returns a Checker.
func New(o Options) (*Checker, error) {
	switch o.Spec.Kind {
	case KindTCP, KindHTTP:
	case KindNone:
		return nil, errors.New("health: a check of kind none probes nothing; do not start a Checker")
	default:
		return nil, fmt.Errorf("health: unknown check kind %q", o.Spec.Kind)
	}
	if len(o.Ports) == 0 {
		return nil, fmt.Errorf("health: the %s check probes the workload's ports, and none is given", o.Spec)
	}
	if o.Host == "" {
		return nil, errors.New("health: no host given; pass the application's address (e.g. 127.0.0.1)")
	}
	if o.OnChange == nil {
		return nil, errors.New("health: OnChange is nil")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	o.Timeout = min(o.Timeout, o.Interval)
	if o.FailureThreshold <= 0 {
		o.FailureThreshold = DefaultFailureThreshold
	}
	if o.SuccessThreshold <= 0 {
		o.SuccessThreshold = DefaultSuccessThreshold
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &Checker{o: o}
	if o.Spec.Kind == KindTCP {
		c.probe = c.probeTCP
	} else {
		c.client = &http.Client{
			// A check never reuses a connection: each probe sees whether the
			// application accepts one now.
			Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		c.probe = c.probeHTTP
	}
	return c, nil
}

// Run probes at once, then every Interval, until ctx ends.
func (c *Checker) Run(ctx context.Context) {
	if c.client != nil {
		defer c.client.CloseIdleConnections()
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
		err := c.probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return // stopping: not a verdict on the application
		}
		if st, changed := c.observe(err); changed {
			c.o.Logger.Info("workload health changed", "healthy", st.Healthy, "detail", st.Detail, "check", c.o.Spec.String())
			c.o.OnChange(st)
		}
		select {
		case <-ctx.Done():
			return
		case <-c.o.After(c.o.Interval):
		}
	}
}

// observe applies one probe's result to the hysteresis and reports
// whether the status changed (the first result always does).
func (c *Checker) observe(err error) (Status, bool) {
	if err == nil {
		c.successes++
		c.failures = 0
	} else {
		c.failures++
		c.successes = 0
	}
	changed := false
	switch {
	case !c.known:
		c.known, c.healthy, changed = true, err == nil, true
	case c.healthy && c.failures >= c.o.FailureThreshold:
		c.healthy, changed = false, true
	case !c.healthy && c.successes >= c.o.SuccessThreshold:
		c.healthy, changed = true, true
	}
	st := Status{Healthy: c.healthy}
	if err != nil {
		st.Detail = err.Error()
	} else {
		st.Detail = c.o.Spec.String() + " check passed"
	}
	return st, changed
}

func (c *Checker) probeTCP(ctx context.Context) error {
	var d net.Dialer
	for _, p := range c.o.Ports {
		addr := net.JoinHostPort(c.o.Host, strconv.Itoa(int(p)))
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("tcp check of %s: %w", addr, err)
		}
		_ = conn.Close() // the check only needed the connection to open
	}
	return nil
}

func (c *Checker) probeHTTP(ctx context.Context) error {
	url := "http://" + net.JoinHostPort(c.o.Host, strconv.Itoa(int(c.o.Ports[0]))) + c.o.Spec.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("http check: building GET %s: %w", url, err)
	}
	req.Header.Set("User-Agent", "weft-proxy-health-check")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("http check: GET %s: %w", url, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("http check: GET %s: status %d, want 2xx or 3xx", url, resp.StatusCode)
	}
	return nil
}
