package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Status is the outcome of a check.
type Status int

// Statuses, from good to bad.
const (
	// OK: nothing to do.
	OK Status = iota
	// Warning: something to fix, which does not fail the run.
	Warning
	// Error: broken; the run fails.
	Error
)

// String is the status in JSON output.
func (s Status) String() string {
	switch s {
	case OK:
		return "ok"
	case Warning:
		return "warning"
	default:
		return "error"
	}
}

// MarshalText makes a Status a JSON string.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a Status's JSON string.
func (s *Status) UnmarshalText(b []byte) error {
	for _, v := range []Status{OK, Warning, Error} {
		if v.String() == string(b) {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("unknown check status %q", b)
}

// symbol is the status's mark in text output, as linkerd check prints it.
func (s Status) symbol() string {
	switch s {
	case OK:
		return "√"
	case Warning:
		return "‼"
	default:
		return "×"
	}
}

// Result is what one check found.
type Result struct {
	Category string `json:"category"`
	Name     string `json:"name"`
	Status   Status `json:"status"`
	// Message says what was found; may be empty for OK.
	Message string `json:"message,omitempty"`
	// Hint says how to fix it; empty for OK.
	Hint string `json:"hint,omitempty"`
}

// Check is one check.
type Check struct {
	// Category groups checks in the output ("kubernetes-api").
	Category string
	// Name says what is checked, as what should be true.
	Name string
	// Fatal stops the run when the check fails: the checks after it
	// depend on it (no API server, no namespace).
	Fatal bool
	// Run performs the check. Its ctx is bounded by Options.Timeout.
	Run func(ctx context.Context) Outcome
}

// Outcome is what Check.Run returns.
type Outcome struct {
	Status  Status
	Message string
	Hint    string
}

// Pass is an OK outcome with a message (may be empty).
func Pass(format string, args ...any) Outcome {
	return Outcome{Status: OK, Message: fmt.Sprintf(format, args...)}
}

// Fail is an Error outcome: what was found, and how to fix it.
func Fail(hint, format string, args ...any) Outcome {
	return Outcome{Status: Error, Message: fmt.Sprintf(format, args...), Hint: hint}
}

// Warn is a Warning outcome: what was found, and how to fix it.
func Warn(hint, format string, args ...any) Outcome {
	return Outcome{Status: Warning, Message: fmt.Sprintf(format, args...), Hint: hint}
}

// Formats of Run's output.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// Formats lists the output formats, for flag help.
func Formats() []string { return []string{FormatText, FormatJSON} }

// Options configure Run.
type Options struct {
	// Format is FormatText (the default when empty) or FormatJSON.
	Format string
	// Timeout bounds each check; zero means 30 seconds.
	Timeout time.Duration
}

// ErrFailed is wrapped by the error of a run in which a check failed.
var ErrFailed = errors.New("weft check: some checks failed")

// Report is the result of a run, as JSON output shows it.
type Report struct {
	Success bool     `json:"success"`
	Checks  []Result `json:"checks"`
	// Skipped names the checks not run after a fatal failure.
	Skipped []string `json:"skipped,omitempty"`
}

// Run runs checks in order, printing each result to out as it comes (text)
// or the whole report at the end (JSON). After a Fatal check fails, the
// rest are skipped. The error wraps ErrFailed when a check failed.
func Run(ctx context.Context, out io.Writer, checks []Check, opts Options) (Report, error) {
	format := opts.Format
	if format == "" {
		format = FormatText
	}
	if format != FormatText && format != FormatJSON {
		return Report{}, fmt.Errorf("output format %q is not one of %v", format, Formats())
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	rep := Report{Success: true, Checks: []Result{}}
	category := ""
	for i, c := range checks {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("weft check: %w", err)
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		o := c.Run(cctx)
		cancel()
		r := Result{Category: c.Category, Name: c.Name, Status: o.Status, Message: o.Message, Hint: o.Hint}
		rep.Checks = append(rep.Checks, r)
		if r.Status == Error {
			rep.Success = false
		}
		if format == FormatText {
			if c.Category != category {
				if category != "" {
					fmt.Fprintln(out)
				}
				category = c.Category
				fmt.Fprintf(out, "%s\n%s\n", category, strings.Repeat("-", len(category)))
			}
			writeText(out, r)
		}
		if r.Status == Error && c.Fatal {
			for _, s := range checks[i+1:] {
				rep.Skipped = append(rep.Skipped, s.Name)
			}
			break
		}
	}
	switch format {
	case FormatText:
		fmt.Fprintln(out)
		if len(rep.Skipped) > 0 {
			fmt.Fprintf(out, "%d checks not run: they need what failed above\n", len(rep.Skipped))
		}
		if rep.Success {
			fmt.Fprintln(out, "Status check results are √")
		} else {
			fmt.Fprintln(out, "Status check results are ×")
		}
	case FormatJSON:
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return rep, fmt.Errorf("writing the report: %w", err)
		}
	}
	if !rep.Success {
		return rep, fmt.Errorf("%w (see above)", ErrFailed)
	}
	return rep, nil
}

// writeText writes one result: its line, then the message and hint
// indented.
func writeText(out io.Writer, r Result) {
	fmt.Fprintf(out, "%s %s\n", r.Status.symbol(), r.Name)
	indent := func(prefix, s string) {
		for i, l := range strings.Split(s, "\n") {
			if i == 1 {
				prefix = strings.Repeat(" ", len(prefix))
			}
			fmt.Fprintf(out, "    %s%s\n", prefix, l)
		}
	}
	if r.Message != "" {
		indent("", r.Message)
	}
	if r.Hint != "" {
		indent("hint: ", r.Hint)
	}
}
