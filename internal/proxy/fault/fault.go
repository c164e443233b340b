package fault

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// gRPC status codes used by the HTTP-to-gRPC mapping (google.golang.org/grpc/codes).
const (
	grpcUnknown          = 2
	grpcPermissionDenied = 7
	grpcUnimplemented    = 12
	grpcInternal         = 13
	grpcUnavailable      = 14
	grpcUnauthenticated  = 16
)

// Config configures an [Injector]. The zero value injects nothing.
type Config struct {
	// DelayPercent of requests, 0 to 100, are delayed by Delay.
	DelayPercent float64
	Delay        time.Duration
	// AbortPercent of requests, 0 to 100, are aborted with AbortHTTPStatus.
	AbortPercent float64
	// AbortHTTPStatus is the status aborted HTTP requests get, 200 to 599.
	// Required when AbortPercent > 0, for gRPC routes too.
	AbortHTTPStatus int
	// AbortGRPCStatus, 1 to 16, is the status aborted gRPC requests get.
	// 0: mapped from AbortHTTPStatus as gRPC clients map an HTTP status
	// (see [GRPCStatusForHTTP]).
	AbortGRPCStatus int
}

// Validate reports every invalid field of c, naming the field and the fix.
func (c Config) Validate() error {
	var errs []error
	percent := func(name string, v float64) {
		if math.IsNaN(v) || v < 0 || v > 100 {
			errs = append(errs, fmt.Errorf("fault: %s is %v: set it from 0 to 100", name, v))
		}
	}
	percent("DelayPercent", c.DelayPercent)
	percent("AbortPercent", c.AbortPercent)
	switch {
	case c.Delay < 0:
		errs = append(errs, fmt.Errorf("fault: Delay is %v: set it to 0 or more", c.Delay))
	case c.Delay == 0 && c.DelayPercent > 0:
		errs = append(errs, fmt.Errorf("fault: DelayPercent is %v but Delay is 0: set Delay (e.g. 2s), or DelayPercent to 0", c.DelayPercent))
	}
	switch {
	case c.AbortHTTPStatus != 0 && (c.AbortHTTPStatus < 200 || c.AbortHTTPStatus > 599):
		errs = append(errs, fmt.Errorf("fault: AbortHTTPStatus is %d: set it from 200 to 599 (e.g. 503)", c.AbortHTTPStatus))
	case c.AbortHTTPStatus == 0 && c.AbortPercent > 0:
		errs = append(errs, fmt.Errorf("fault: AbortPercent is %v but AbortHTTPStatus is not set: set it from 200 to 599 (e.g. 503; required for gRPC routes too, where AbortGRPCStatus overrides the mapped code), or AbortPercent to 0", c.AbortPercent))
	}
	if c.AbortGRPCStatus < 0 || c.AbortGRPCStatus > 16 {
		errs = append(errs, fmt.Errorf("fault: AbortGRPCStatus is %d: set it from 1 to 16 (e.g. 14 for UNAVAILABLE), or 0 to map it from AbortHTTPStatus", c.AbortGRPCStatus))
	}
	return errors.Join(errs...)
}

// GRPCStatusForHTTP maps an HTTP status to the gRPC status code a gRPC client
// reports for a response that carries that status and no grpc-status, per
// gRPC's "HTTP to gRPC Status Code Mapping" (doc/http-grpc-status-mapping.md
// in grpc/grpc; grpc-go and Envoy use the same table).
func GRPCStatusForHTTP(status int) int {
	switch status {
	case 400:
		return grpcInternal
	case 401:
		return grpcUnauthenticated
	case 403:
		return grpcPermissionDenied
	case 404:
		return grpcUnimplemented
	case 429, 502, 503, 504:
		return grpcUnavailable
	default:
		return grpcUnknown
	}
}

// Decision is what to do to one request.
type Decision struct {
	// Delay before forwarding (or aborting); 0: none.
	Delay time.Duration
	// Abort: answer with HTTPStatus (HTTP) or GRPCStatus (gRPC) instead of
	// forwarding. Both are 0 when Abort is false.
	Abort      bool
	HTTPStatus int
	GRPCStatus int
}

// Injector decides which requests of a route get which fault. It is safe for
// concurrent use when its rnd is.
type Injector struct {
	c    Config
	grpc int
	rnd  func() float64
}

// New returns an Injector for c. rnd returns numbers in [0, 1) and must be
// safe for concurrent use if Decide is called concurrently; nil selects
// math/rand/v2's Float64.
func New(c Config, rnd func() float64) (*Injector, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("fault: invalid config: %w", err)
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	grpc := c.AbortGRPCStatus
	if grpc == 0 {
		grpc = GRPCStatusForHTTP(c.AbortHTTPStatus)
	}
	return &Injector{c: c, grpc: grpc, rnd: rnd}, nil
}

// Decide draws the faults for one request: the delay and the abort are
// drawn independently.
func (i *Injector) Decide() Decision {
	var d Decision
	if i.hit(i.c.DelayPercent) {
		d.Delay = i.c.Delay
	}
	if i.hit(i.c.AbortPercent) {
		d.Abort, d.HTTPStatus, d.GRPCStatus = true, i.c.AbortHTTPStatus, i.grpc
	}
	return d
}

// hit reports whether a draw falls within percent. 0 and 100 are exact and
// draw nothing.
func (i *Injector) hit(percent float64) bool {
	switch {
	case percent <= 0:
		return false
	case percent >= 100:
		return true
	default:
		return i.rnd()*100 < percent
	}
}

// Sleep waits for d, or until ctx is done, whichever comes first; it returns
// an error wrapping ctx.Err() (and its cause, if another) in the second case,
// and the caller then drops the request. A d of 0 or less returns
// nil at once.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		err := ctx.Err()
		if cause := context.Cause(ctx); cause != err {
			return fmt.Errorf("fault: injected delay of %v cut short, the request is over: %w: %w", d, err, cause)
		}
		return fmt.Errorf("fault: injected delay of %v cut short, the request is over: %w", d, err)
	}
}
