package explain

import (
	"cmp"
	"context"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/control/model"
	"github.com/weft-mesh/weft/internal/control/source/file"
)

// Model is the mesh as the control plane sees it: a snapshot of the model,
// the problems of the files it was read from, and the trust domain of
// workload identities.
type Model struct {
	Snapshot    *model.Snapshot
	Problems    []file.Problem
	TrustDomain spiffeid.TrustDomain
}

// Load reads the universal-mode resource directory dir once, as `weft
// control --dir` reads it (trustDomain "" is file.DefaultTrustDomain):
// every valid document is in the snapshot, every invalid one is a problem.
// The error is for a directory that cannot be read at all.
func Load(ctx context.Context, dir, trustDomain string) (*Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	trustDomain = cmp.Or(trustDomain, file.DefaultTrustDomain)
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return nil, fmt.Errorf("--trust-domain %q: not a SPIFFE trust domain (e.g. %s): %w", trustDomain, file.DefaultTrustDomain, err)
	}
	src, err := file.New(dir, file.Options{TrustDomain: trustDomain})
	if err != nil {
		return nil, fmt.Errorf("--dir: %w", err)
	}
	objs, problems, err := src.LoadOnce()
	if err != nil {
		return nil, fmt.Errorf("--dir: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st := model.NewStore()
	if err := st.Replace(src.Name(), objs); err != nil {
		return nil, fmt.Errorf("building the mesh model from %s: %w", dir, err)
	}
	return &Model{Snapshot: st.Snapshot(), Problems: problems, TrustDomain: td}, nil
}
