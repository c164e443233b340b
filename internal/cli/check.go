package cli

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/internal/control/ca"
)

// checkCmd is `weft check`: what will break, and when, before it does.
func checkCmd() *cobra.Command {
	var dataDir, trustDomain string
	var anchorWarn, issuerWarn time.Duration
	c := &cobra.Command{
		Use:   "check",
		Short: "Check the mesh's certificate authority: every trust anchor and issuer with its expiry, and warnings well before one expires",
		Long: `Check the certificate authority in the control plane's data directory: every trust anchor and the
issuer, with fingerprint and expiry. It warns when an anchor expires within --anchor-warning or the issuer within
--issuer-warning, with the command that fixes it, and fails (exit status 1) when something has expired.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := ca.Load(filepath.Join(dataDir, "ca"), ca.Options{TrustDomain: trustDomain})
			if err != nil {
				return err
			}
			return reportCA(cmd.OutOrStdout(), a.Expiries(), time.Now(), anchorWarn, issuerWarn)
		},
	}
	c.Flags().StringVar(&dataDir, "data-dir", defaultDataDir, "the control plane's data directory")
	c.Flags().StringVar(&trustDomain, "trust-domain", "", "the mesh's trust domain (default: read from the trust anchor)")
	c.Flags().DurationVar(&anchorWarn, "anchor-warning", 180*24*time.Hour, "warn when a trust anchor expires within this")
	c.Flags().DurationVar(&issuerWarn, "issuer-warning", 30*24*time.Hour, "warn when the issuer expires within this")
	return c
}

// errCheckFailed makes `weft check` exit with status 1 after its report.
var errCheckFailed = errors.New("weft check: the certificate authority has expired material (see above)")

func reportCA(out io.Writer, exps []ca.Expiry, now time.Time, anchorWarn, issuerWarn time.Duration) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CERTIFICATE\tFINGERPRINT\tEXPIRES\tIN\tNOTE")
	var warnings []string
	failed := false
	for _, e := range exps {
		left := e.NotAfter.Sub(now)
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", e.What, e.Fingerprint[:16], e.NotAfter.Local().Format(time.RFC3339), days(left), e.Note)
		warn := issuerWarn
		fix := "run `weft ca rotate-issuer`"
		if e.What == "trust anchor" {
			warn = anchorWarn
			fix = "roll in a new anchor: `weft ca add-anchor`, then `weft ca rotate-issuer`, then `weft ca remove-anchor " + e.Fingerprint[:16] + "`"
		}
		switch {
		case left <= 0:
			failed = true
			warnings = append(warnings, fmt.Sprintf("ERROR: %s %s expired %s ago; %s", e.What, e.Fingerprint[:16], days(-left), fix))
		case left < warn:
			warnings = append(warnings, fmt.Sprintf("WARNING: %s %s expires in %s; %s", e.What, e.Fingerprint[:16], days(left), fix))
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, s := range warnings {
		fmt.Fprintln(out, s)
	}
	if len(warnings) == 0 {
		fmt.Fprintln(out, "OK: no anchor or issuer expires soon")
	}
	if failed {
		return errCheckFailed
	}
	return nil
}

// days renders a duration for people: "412d", "3d4h", "5h".
func days(d time.Duration) string {
	switch {
	case d >= 30*24*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd%dh", int(d.Hours()/24), int(d.Hours())%24)
	default:
		return d.Round(time.Minute).String()
	}
}
