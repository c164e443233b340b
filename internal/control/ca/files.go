package ca

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
	dirMode  fs.FileMode = 0o700
	keyMode  fs.FileMode = 0o600
	certMode fs.FileMode = 0o644
)

// ensureDir creates dir with mode 0700 if it does not exist yet. An existing
// directory is left as it is.
func ensureDir(dir string) error {
	if dir == "" {
		return errors.New("ca: no directory given; pass the data directory of the control plane")
	}
	if _, err := os.Stat(dir); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ca: directory %s: %w; check that it is accessible", dir, err)
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("ca: creating directory %s: %w; check the permissions of its parent", dir, err)
	}
	// MkdirAll is subject to the umask; make the mode exact.
	if err := os.Chmod(dir, dirMode); err != nil {
		return fmt.Errorf("ca: setting mode of directory %s: %w", dir, err)
	}
	return nil
}

// writeFileAtomic replaces path with data: it writes a temporary file in the
// same directory with mode perm, syncs it, renames it over path and syncs the
// directory, so that readers see either the old or the new content, also
// after a crash.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("ca: writing %s: %w; check that the directory exists and is writable", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// Chmod explicitly: CreateTemp uses 0600 and the umask would mask perm.
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("ca: writing %s: setting mode: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("ca: writing %s: %w; check free disk space", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("ca: writing %s: fsync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("ca: writing %s: close: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("ca: writing %s: rename: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("ca: writing %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory %s for fsync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync of directory %s: %w", dir, err)
	}
	return nil
}
