package install

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/weft-mesh/weft/internal/control/ca"
)

// CAMaterial is the content of the weft-ca Secret, PEM in cert-manager's
// layout: what internal/control/ca loads as an operator-supplied CA.
type CAMaterial struct {
	// IssuerCert is tls.crt: the issuer, then intermediates.
	IssuerCert []byte
	// IssuerKey is tls.key.
	IssuerKey []byte
	// Anchors is ca.crt: the trust anchors.
	Anchors []byte
}

// GenerateCA makes a new trust anchor and issuer of trustDomain with
// internal/control/ca and returns the issuer with the anchor. The anchor's
// key is discarded: the control plane never needs it (it only signs with the
// issuer), and a key that exists nowhere cannot leak. To keep it, for
// `weft ca rotate-issuer` and anchor rolls, use CAFromDir with a directory
// you keep.
func GenerateCA(trustDomain string) (*CAMaterial, error) {
	dir, err := os.MkdirTemp("", "weft-install-ca-")
	if err != nil {
		return nil, fmt.Errorf("generating the trust anchor: creating a temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	m, err := CAFromDir(filepath.Join(dir, "ca"), trustDomain)
	if err != nil {
		return nil, fmt.Errorf("generating the trust anchor: %w", err)
	}
	return m, nil
}

// CAFromDir reads the CA of dir: weft's generated layout (anchor.crt,
// issuer.crt, issuer.key, as `weft control --data-dir` and `weft ca`
// keep it), or cert-manager's (tls.crt, tls.key, ca.crt). A directory with
// neither gets a new CA generated into it, which later runs then reuse. The
// CA is loaded and verified (issuer signed by an anchor, keys matching,
// trust domain) before its files are read.
func CAFromDir(dir, trustDomain string) (*CAMaterial, error) {
	auth, err := ca.LoadOrCreate(dir, ca.Options{TrustDomain: trustDomain})
	if err != nil {
		return nil, fmt.Errorf("loading the CA of %s: %w", dir, err)
	}
	files := [3]string{ca.IssuerCertFile, ca.IssuerKeyFile, ca.AnchorCertFile}
	if auth.Supplied() {
		files = [3]string{ca.SuppliedCertFile, ca.SuppliedKeyFile, ca.SuppliedCAFile}
	}
	var data [3][]byte
	for i, name := range files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reading the CA of %s: %s is missing", dir, name)
		}
		if err != nil {
			return nil, fmt.Errorf("reading the CA of %s: %w", dir, err)
		}
		data[i] = b
	}
	// A generated issuer.crt holds the issuer alone, signed by an anchor:
	// no intermediates to append.
	return &CAMaterial{IssuerCert: data[0], IssuerKey: data[1], Anchors: data[2]}, nil
}
