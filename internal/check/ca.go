package check

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/weft-mesh/weft/internal/control/ca"
)

// ExpiryPolicy says when a certificate of a CA is worth a warning, and how
// to fix it where the CA lives (a data directory, a cluster's Secret).
type ExpiryPolicy struct {
	// AnchorWarning and IssuerWarning: warn when a trust anchor, or the
	// issuer, expires within this.
	AnchorWarning, IssuerWarning time.Duration
	// IssuerFix says how to renew the issuer.
	IssuerFix string
	// AnchorFix says how to replace the anchor of the given (short)
	// fingerprint.
	AnchorFix func(fingerprint string) string
}

// UniversalExpiryPolicy is the policy of a CA in a data directory, fixed
// with `weft ca`.
func UniversalExpiryPolicy(anchorWarning, issuerWarning time.Duration) ExpiryPolicy {
	return ExpiryPolicy{
		AnchorWarning: anchorWarning,
		IssuerWarning: issuerWarning,
		IssuerFix:     "run `weft ca rotate-issuer`",
		AnchorFix: func(fp string) string {
			return "roll in a new anchor: `weft ca add-anchor`, then `weft ca rotate-issuer`, then `weft ca remove-anchor " + fp + "`"
		},
	}
}

// Finding is one certificate that expires soon or has expired.
type Finding struct {
	Expiry ca.Expiry
	// Status is Warning (expires within the policy's warning) or Error
	// (expired).
	Status Status
	// What says which certificate and when.
	What string
	// Fix says how to fix it.
	Fix string
}

// Text is the finding as one sentence: what, and how to fix it.
func (f Finding) Text() string { return f.What + "; " + f.Fix }

// shortFP is the fingerprint as reports show it.
func shortFP(fp string) string {
	if len(fp) > 16 {
		return fp[:16]
	}
	return fp
}

// EvaluateExpiries returns the certificates of exps that expire within the
// policy's warnings (Warning) or have expired (Error), at now.
func EvaluateExpiries(exps []ca.Expiry, now time.Time, p ExpiryPolicy) []Finding {
	var out []Finding
	for _, e := range exps {
		left := e.NotAfter.Sub(now)
		fp := shortFP(e.Fingerprint)
		warn, fix := p.IssuerWarning, p.IssuerFix
		if e.What == "trust anchor" {
			warn, fix = p.AnchorWarning, p.AnchorFix(fp)
		}
		switch {
		case left <= 0:
			out = append(out, Finding{Expiry: e, Status: Error, What: fmt.Sprintf("%s %s expired %s ago", e.What, fp, Days(-left)), Fix: fix})
		case left < warn:
			out = append(out, Finding{Expiry: e, Status: Warning, What: fmt.Sprintf("%s %s expires in %s", e.What, fp, Days(left)), Fix: fix})
		}
	}
	return out
}

// errCAExpired is the error of ReportCA when something expired.
var errCAExpired = fmt.Errorf("%w: the certificate authority has expired material (see above)", ErrFailed)

// ReportCA writes a table of the certificates of a CA with their expiry,
// then a WARNING or ERROR line per finding of EvaluateExpiries (or an OK
// line). It returns an error wrapping ErrFailed when something expired.
func ReportCA(out io.Writer, exps []ca.Expiry, now time.Time, p ExpiryPolicy) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CERTIFICATE\tFINGERPRINT\tEXPIRES\tIN\tNOTE")
	for _, e := range exps {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", e.What, shortFP(e.Fingerprint), e.NotAfter.Local().Format(time.RFC3339), Days(e.NotAfter.Sub(now)), e.Note)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	findings := EvaluateExpiries(exps, now, p)
	failed := false
	for _, f := range findings {
		label := "WARNING"
		if f.Status == Error {
			label, failed = "ERROR", true
		}
		fmt.Fprintf(out, "%s: %s\n", label, f.Text())
	}
	if len(findings) == 0 {
		fmt.Fprintln(out, "OK: no anchor or issuer expires soon")
	}
	if failed {
		return errCAExpired
	}
	return nil
}

// ExpiriesFromPEM returns the expiries of the trust anchors of anchorsPEM
// (ca.crt) and of the issuer, the first certificate of issuerPEM (tls.crt),
// as ca.Authority.Expiries reports them for a data directory.
func ExpiriesFromPEM(anchorsPEM, issuerPEM []byte) ([]ca.Expiry, error) {
	anchors, err := parseCerts(anchorsPEM)
	if err != nil {
		return nil, fmt.Errorf("reading the trust anchors: %w", err)
	}
	issuer, err := parseCerts(issuerPEM)
	if err != nil {
		return nil, fmt.Errorf("reading the issuer: %w", err)
	}
	var out []ca.Expiry
	for _, c := range anchors {
		out = append(out, ca.Expiry{What: "trust anchor", Subject: c.Subject.String(), Fingerprint: ca.Fingerprint(c), NotAfter: c.NotAfter})
	}
	c := issuer[0]
	return append(out, ca.Expiry{What: "issuer", Subject: c.Subject.String(), Fingerprint: ca.Fingerprint(c), NotAfter: c.NotAfter}), nil
}

// parseCerts parses the CERTIFICATE blocks of PEM data; there must be one
// at least.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing a certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}

// sameCerts reports whether two PEM bundles hold the same set of
// certificates (order and other blocks aside), as the control plane
// compares a webhook's caBundle with its anchors.
func sameCerts(a, b []byte) (bool, error) {
	xa, err := parseCerts(a)
	if err != nil {
		return false, err
	}
	xb, err := parseCerts(b)
	if err != nil {
		return false, err
	}
	set := map[string]bool{}
	for _, c := range xa {
		set[string(c.Raw)] = true
	}
	other := map[string]bool{}
	for _, c := range xb {
		if !set[string(c.Raw)] {
			return false, nil
		}
		other[string(c.Raw)] = true
	}
	return len(other) == len(set), nil
}

// Days renders a duration for people: "412d", "3d4h", "5h0m0s".
func Days(d time.Duration) string {
	switch {
	case d >= 30*24*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd%dh", int(d.Hours()/24), int(d.Hours())%24)
	default:
		return d.Round(time.Minute).String()
	}
}
