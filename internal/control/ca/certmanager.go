package ca

import (
	"crypto/x509"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Files of a CA the operator supplies, in the layout of a kubernetes.io/tls
// Secret written by cert-manager for a CA Certificate (and mounted as a
// volume, or copied to a VM): the issuer weft signs with, and the trust
// anchors.
const (
	// SuppliedCertFile holds the issuer certificate, optionally followed by
	// intermediates up to (not including) an anchor.
	SuppliedCertFile = "tls.crt"
	// SuppliedKeyFile holds the issuer's private key (PKCS#8, SEC1 or
	// PKCS#1 PEM).
	SuppliedKeyFile = "tls.key"
	// SuppliedCAFile holds the trust anchor(s).
	SuppliedCAFile = "ca.crt"
)

// supplied reports whether dir holds an operator-supplied CA.
func supplied(dir string) (bool, error) {
	return exists(filepath.Join(dir, SuppliedCertFile))
}

// loadSupplied reads an operator-supplied CA. Its certificates need not
// carry weft's SPIFFE URI SAN (cert-manager does not add one), but one that
// does must name td. Rotation is the operator's (cert-manager renews the
// issuer and the control plane reloads it); weft's rotation commands refuse
// such a directory.
func loadSupplied(dir string, td spiffeid.TrustDomain, nowFn func() time.Time) (*Authority, error) {
	now := nowFn()
	path := func(n string) string { return filepath.Join(dir, n) }
	for _, n := range []string{SuppliedKeyFile, SuppliedCAFile} {
		if ok, err := exists(path(n)); err != nil {
			return nil, err
		} else if !ok {
			return nil, fmt.Errorf("ca: %s has %s but no %s; an operator-supplied CA needs tls.crt (issuer), tls.key (its key) and ca.crt (trust anchors), as in cert-manager's Secret of a CA Certificate", dir, SuppliedCertFile, n)
		}
	}
	all, err := readCerts(path(SuppliedCAFile))
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	var anchors, expired []*x509.Certificate
	for i, a := range all {
		what := fmt.Sprintf("trust anchor %d of %d", i+1, len(all))
		if now.After(a.NotAfter) {
			expired = append(expired, a)
			continue
		}
		if err := checkSupplied(path(SuppliedCAFile), what, a, td, now); err != nil {
			return nil, err
		}
		roots.AddCert(a)
		anchors = append(anchors, a)
	}
	if len(anchors) == 0 {
		return nil, fmt.Errorf("ca: %s: every trust anchor has expired; supply a valid one", path(SuppliedCAFile))
	}
	chain, err := readCerts(path(SuppliedCertFile))
	if err != nil {
		return nil, err
	}
	issuer := chain[0]
	if err := checkSupplied(path(SuppliedCertFile), "issuer", issuer, td, now); err != nil {
		return nil, err
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := issuer.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("ca: %s: the issuer does not chain to the trust anchors in %s: %w; tls.crt must hold the issuer (and its intermediates) and ca.crt the root(s)", path(SuppliedCertFile), path(SuppliedCAFile), err)
	}
	key, err := readKey(path(SuppliedKeyFile), path(SuppliedCertFile), issuer)
	if err != nil {
		return nil, err
	}
	return &Authority{
		dir:           dir,
		td:            td,
		anchors:       anchors,
		signing:       -1,
		expired:       expired,
		issuer:        issuer,
		intermediates: chain[1:],
		issuerKey:     key,
		now:           nowFn,
	}, nil
}

// checkSupplied is checkCA without the requirement of a SPIFFE URI SAN.
func checkSupplied(file, what string, c *x509.Certificate, td spiffeid.TrustDomain, now time.Time) error {
	switch {
	case !c.BasicConstraintsValid || !c.IsCA:
		return fmt.Errorf("ca: %s: %s (subject %q) is not a CA certificate (basic constraints CA:TRUE); issue it with isCA: true", file, what, c.Subject)
	case c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0:
		return fmt.Errorf("ca: %s: %s (subject %q) lacks the keyCertSign key usage; add usage \"cert sign\"", file, what, c.Subject)
	case now.After(c.NotAfter):
		return fmt.Errorf("ca: %s: %s (subject %q) expired at %s; renew it", file, what, c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		return fmt.Errorf("ca: %s: %s (subject %q) is not valid before %s; check the clock of this machine", file, what, c.Subject, c.NotBefore.UTC().Format(time.RFC3339))
	}
	for _, u := range c.URIs {
		if id, err := spiffeid.FromURI(u); err == nil && id.TrustDomain() != td {
			return fmt.Errorf("ca: %s: %s names trust domain %q, not %q; set the trust domain to %q", file, what, id.TrustDomain().Name(), td.Name(), id.TrustDomain().Name())
		}
	}
	return nil
}

// suppliedRotation is the error of weft's rotation commands on a supplied CA.
func suppliedRotation(dir string) error {
	return fmt.Errorf("ca: the CA in %s is supplied by the operator (tls.crt, tls.key, ca.crt): rotate it where it comes from (e.g. cert-manager renews the issuer; add a new root to ca.crt, then re-issue the issuer from it, then drop the old root); the control plane reloads it", dir)
}
