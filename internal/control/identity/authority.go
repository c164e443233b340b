// Package identity is the control plane's side of workload identity: the
// live certificate authority (reloaded when an operator rotates it), the
// Identity gRPC service that signs proxies' CSRs against a proof of
// identity, and the TLS configuration of the control plane's own gRPC
// endpoints, which carry the control plane's own SPIFFE ID.
package identity

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/proxy/renew"
)

// ControlPlanePath is the SPIFFE ID path of the control plane's own
// certificate; proxies expect spiffe://<trust-domain>/ns/weft-system/sa/weft-control.
const ControlPlanePath = renew.ControlPlanePath

// ControlPlaneID returns the control plane's SPIFFE ID in td.
func ControlPlaneID(td spiffeid.TrustDomain) spiffeid.ID {
	id, _ := spiffeid.FromPath(td, ControlPlanePath) // a constant, valid path
	return id
}

// Authority is the CA of a data directory, reloaded when its files change.
// A reload that fails keeps the last good authority and is logged.
type Authority struct {
	dir  string
	opts ca.Options
	log  *slog.Logger
	cur  atomic.Pointer[ca.Authority]
	sum  [sha256.Size]byte
}

// OpenAuthority loads the CA in dir, generating it on first start (see
// ca.LoadOrCreate).
func OpenAuthority(dir string, o ca.Options, log *slog.Logger) (*Authority, error) {
	if log == nil {
		log = slog.Default()
	}
	a, err := ca.LoadOrCreate(dir, o)
	if err != nil {
		return nil, err
	}
	auth := &Authority{dir: dir, opts: o, log: log}
	auth.cur.Store(a)
	auth.sum = auth.digest()
	return auth, nil
}

// Current returns the authority in use.
func (a *Authority) Current() *ca.Authority { return a.cur.Load() }

// Dir is the data directory of the CA.
func (a *Authority) Dir() string { return a.dir }

// Reload re-reads the directory when its files changed and reports whether
// the anchors or the issuer changed. On error the current one stays. It is
// called by one goroutine at a time (Watch).
func (a *Authority) Reload() (bool, error) {
	// A supplied CA (a mounted Secret, often read-only) is never written
	// by weft, so there is no rotation step to wait for: no lock.
	if !a.Current().Supplied() {
		unlock, err := ca.Lock(a.dir)
		if err != nil {
			return false, err
		}
		defer unlock()
	}
	sum := a.digest()
	if sum == a.sum {
		return false, nil
	}
	next, err := ca.LoadOrCreate(a.dir, a.opts)
	if err != nil {
		return false, err
	}
	a.sum = sum
	prev := a.cur.Swap(next)
	changed := prev.IssuerFingerprint() != next.IssuerFingerprint() || len(prev.Anchors()) != len(next.Anchors())
	for i := 0; !changed && i < len(next.Anchors()); i++ {
		changed = !next.Anchors()[i].Equal(prev.Anchors()[i])
	}
	return changed, nil
}

// Watch polls the directory every interval until ctx ends and calls
// onChange with the new authority after each reload that changed the
// anchors or the issuer. Reload errors are logged; the last good authority
// is kept.
func (a *Authority) Watch(ctx context.Context, interval time.Duration, onChange func(*ca.Authority)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := a.Reload()
		if err != nil {
			a.log.Error("the CA files changed but do not load; still using the previous CA", "dir", a.dir, "error", err)
			continue
		}
		if changed {
			cur := a.Current()
			a.log.Info("CA reloaded", "dir", a.dir, "anchors", len(cur.Anchors()), "issuer", cur.IssuerFingerprint()[:16])
			onChange(cur)
		}
	}
}

// digest sums the names, sizes and modification times of the CA files, a
// cheap test of whether they changed.
func (a *Authority) digest() [sha256.Size]byte {
	h := sha256.New()
	for _, n := range []string{ca.AnchorCertFile, ca.AnchorKeyFile, ca.IssuerCertFile, ca.IssuerKeyFile, ca.SuppliedCertFile, ca.SuppliedKeyFile, ca.SuppliedCAFile} {
		fi, err := os.Stat(filepath.Join(a.dir, n))
		if err != nil {
			fmt.Fprintf(h, "%s:missing;", n)
			continue
		}
		fmt.Fprintf(h, "%s:%d:%d;", n, fi.Size(), fi.ModTime().UnixNano())
	}
	var d [sha256.Size]byte
	copy(d[:], h.Sum(nil))
	return d
}
