package ca

import (
	"fmt"
	"io/fs"

	"github.com/weft-mesh/weft/internal/atomicfile"
)

// File names in the data directory.
const (
	AnchorCertFile = "anchor.crt"
	AnchorKeyFile  = "anchor.key"
	IssuerCertFile = "issuer.crt"
	IssuerKeyFile  = "issuer.key"
)

// Modes of the files and directories written by this package.
const (
	keyMode  fs.FileMode = 0o600
	certMode fs.FileMode = 0o644
)

func ensureDir(dir string) error {
	if err := atomicfile.EnsureDir(dir); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	if err := atomicfile.Write(path, data, perm); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	return nil
}
