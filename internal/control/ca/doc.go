// Package ca is the certificate authority of the weft control plane in
// universal mode.
//
// An Authority is a trust anchor (a self-signed root) and an issuer (an
// intermediate signed by the anchor), both ECDSA P-256, generated on first
// start and kept in the control plane's data directory:
//
//	anchor.crt  the trust anchor(s), PEM; the first one is the current anchor  0644
//	anchor.key  the current anchor's private key (PKCS#8), kept so that the
//	            issuer can be re-signed later                                 0600
//	issuer.crt  the issuer certificate, PEM                                   0644
//	issuer.key  the issuer's private key (PKCS#8); it never leaves the
//	            control plane                                                 0600
//
// The directory is created 0700 and every file is written atomically
// (temporary file, fsync, rename, fsync of the directory). When the four files
// are all absent LoadOrCreate generates them; when they are all present it
// loads and verifies them; any other combination is an error that names the
// present and missing files, because silently generating a new CA would make
// every certificate issued so far untrusted.
//
// The anchor and issuer carry the URI SAN spiffe://<trust-domain> (no path)
// so that loading material of another trust domain is detected. Leaves
// (X509-SVIDs) issued by Sign carry exactly one URI SAN, the SPIFFE ID chosen
// by the caller; names requested in a CSR are ignored. Leaves are what
// internal/proxy/tlsid loads: digitalSignature key usage, serverAuth and
// clientAuth extended key usages, chained leaf then issuer, verified against
// the bundle returned by BundlePEM.
//
// Renewal of the issuer and rotation of the anchor are not implemented yet;
// Expiries reports both so that `weft check` can warn before they expire.
package ca
