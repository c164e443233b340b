package ca

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/weft-mesh/weft/internal/atomicfile"
)

// Rotation of the trust anchor without a failed request, in three steps
// that an operator runs with `weft ca`, each picked up live by the control
// plane:
//
//  1. AddAnchor: a new anchor joins the bundle and its key becomes the
//     anchor key. Proxies receive the bundle at once, so they trust both.
//  2. RotateIssuer: a new issuer signed by the anchor key's anchor. Proxies
//     see the new issuer fingerprint and renew (with jitter); their new
//     certificates chain to the new anchor, which everyone already trusts.
//  3. RemoveAnchor: the old anchor leaves the bundle once no issuer
//     depends on it.
//
// RotateIssuer alone renews the issuer before it expires.

// forRotation takes dir's lock and loads the weft-generated authority that a
// rotation step changes; on success the caller must call unlock.
func forRotation(dir string, o Options) (_ func(), a *Authority, _ Options, err error) {
	unlock, err := Lock(dir)
	if err != nil {
		return nil, nil, o, err
	}
	defer func() {
		if err != nil {
			unlock()
		}
	}()
	if o, err = o.forDir(dir); err != nil {
		return nil, nil, o, err
	}
	if a, err = load(dir, o.td, o.Now); err != nil {
		return nil, nil, o, err
	}
	if a.Supplied() {
		return nil, nil, o, suppliedRotation(dir)
	}
	return unlock, a, o, nil
}

// Lock takes the CA directory's lock, held by every rotation step and by a
// control plane reloading the directory, so that no reader sees a step half
// done. It returns the unlock function.
func Lock(dir string) (func(), error) {
	unlock, err := atomicfile.Lock(filepath.Join(dir, ".lock"))
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	return unlock, nil
}

// forDir is withDefaults with the trust domain read from dir when empty.
func (o Options) forDir(dir string) (Options, error) {
	if o.TrustDomain == "" {
		td, err := TrustDomainOf(dir)
		if err != nil {
			return o, err
		}
		o.TrustDomain = td.Name()
	}
	return o.withDefaults()
}

// Names of the files of an issuer rotation in progress.
const (
	pendingIssuerCert = IssuerCertFile + ".new"
	pendingIssuerKey  = IssuerKeyFile + ".new"
)

// AddAnchor generates a new trust anchor, adds it to the bundle in dir and
// makes it the anchor that signs the next issuer. It returns the new
// anchor's fingerprint. The authority in dir must load.
func AddAnchor(dir string, o Options) (string, error) {
	unlock, a, o, err := forRotation(dir, o)
	if err != nil {
		return "", err
	}
	defer unlock()
	anchor, key, err := newAnchor(a.td, o.Now(), o.AnchorLifetime)
	if err != nil {
		return "", err
	}
	keyPEMBytes, err := keyPEM(key)
	if err != nil {
		return "", err
	}
	// The bundle first, then the key: after a crash between the two the
	// old key still belongs to an anchor of the bundle, and load succeeds.
	// Expired anchors are dropped on the way.
	bundle := certPEM(anchor)
	for _, c := range a.anchors {
		bundle = append(bundle, certPEM(c)...)
	}
	if err := writeFileAtomic(filepath.Join(dir, AnchorCertFile), bundle, certMode); err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(dir, AnchorKeyFile), keyPEMBytes, keyMode); err != nil {
		return "", err
	}
	return Fingerprint(anchor), nil
}

// RotateIssuer replaces the issuer with a new one signed by the current
// anchor (the one the anchor key belongs to) and returns its fingerprint.
// Certificates signed by the old issuer stay valid until they expire;
// proxies renew early when they see the new issuer.
func RotateIssuer(dir string, o Options) (string, error) {
	unlock, a, o, err := forRotation(dir, o)
	if err != nil {
		return "", err
	}
	defer unlock()
	anchorKey, err := readKey(filepath.Join(dir, AnchorKeyFile), filepath.Join(dir, AnchorCertFile), a.Anchor())
	if err != nil {
		return "", err
	}
	issuer, key, err := newIssuer(a.td, a.Anchor(), anchorKey, o.Now(), o.IssuerLifetime)
	if err != nil {
		return "", err
	}
	keyPEMBytes, err := keyPEM(key)
	if err != nil {
		return "", err
	}
	// Both files under temporary names first, then renamed key first:
	// finishIssuerRotation completes an interrupted rotation on load.
	if err := writeFileAtomic(filepath.Join(dir, pendingIssuerKey), keyPEMBytes, keyMode); err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(dir, pendingIssuerCert), certPEM(issuer), certMode); err != nil {
		return "", err
	}
	if err := finishIssuerRotation(dir); err != nil {
		return "", err
	}
	return Fingerprint(issuer), nil
}

// finishIssuerRotation completes a rotation that RotateIssuer started: when
// both pending files exist it renames the key then the certificate; when
// only the certificate is left (the key was renamed) it renames that. A
// pending key without its certificate is an interrupted write and removed.
func finishIssuerRotation(dir string) error {
	pk, pc := filepath.Join(dir, pendingIssuerKey), filepath.Join(dir, pendingIssuerCert)
	hasKey, err := exists(pk)
	if err != nil {
		return err
	}
	hasCert, err := exists(pc)
	if err != nil {
		return err
	}
	switch {
	case hasKey && hasCert:
		if err := os.Rename(pk, filepath.Join(dir, IssuerKeyFile)); err != nil {
			return fmt.Errorf("ca: installing the new issuer key: %w", err)
		}
		fallthrough
	case hasCert:
		if err := os.Rename(pc, filepath.Join(dir, IssuerCertFile)); err != nil {
			return fmt.Errorf("ca: installing the new issuer certificate: %w", err)
		}
	case hasKey:
		if err := os.Remove(pk); err != nil {
			return fmt.Errorf("ca: removing an unfinished issuer key: %w", err)
		}
	default:
		return nil
	}
	return atomicfile.SyncDir(dir)
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("ca: %s: %w", path, err)
	}
}

// RemoveAnchor removes the anchor whose fingerprint starts with prefix (at
// least 8 hex digits) from the bundle. It refuses to remove the anchor that
// signs the current issuer or the one the anchor key belongs to: remove an
// old anchor only after RotateIssuer and after the proxies renewed.
func RemoveAnchor(dir, prefix string, o Options) error {
	prefix = strings.ToLower(strings.TrimSpace(prefix))
	if len(prefix) < 8 {
		return fmt.Errorf("ca: anchor fingerprint %q is too short; give at least 8 hex digits (see `weft check`)", prefix)
	}
	unlock, a, _, err := forRotation(dir, o)
	if err != nil {
		return err
	}
	defer unlock()
	all := slices.Concat(a.anchors, a.expired)
	idx := -1
	for i, c := range all {
		if strings.HasPrefix(Fingerprint(c), prefix) {
			if idx >= 0 {
				return fmt.Errorf("ca: fingerprint prefix %s matches several anchors; give more digits", prefix)
			}
			idx = i
		}
	}
	switch {
	case idx < 0:
		return fmt.Errorf("ca: no trust anchor in %s has a fingerprint starting with %s; `weft check` lists them", filepath.Join(dir, AnchorCertFile), prefix)
	case idx == a.signing:
		return fmt.Errorf("ca: anchor %s is the current anchor (the anchor key belongs to it); add a new anchor and rotate the issuer first", prefix)
	case idx < len(a.anchors) && a.issuer.CheckSignatureFrom(all[idx]) == nil:
		return fmt.Errorf("ca: anchor %s signed the current issuer; rotate the issuer first (`weft ca rotate-issuer`) and let the proxies renew", prefix)
	}
	var bundle []byte
	for i, c := range all {
		if i != idx {
			bundle = append(bundle, certPEM(c)...)
		}
	}
	return writeFileAtomic(filepath.Join(dir, AnchorCertFile), bundle, certMode)
}
