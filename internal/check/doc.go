// Package check is `weft check`: what is wrong with a mesh, and how to fix
// it, before it breaks.
//
// A Check is one question with a name ("the control plane Deployment is
// available"); running it gives a Result: OK, a Warning (reported, does not
// fail the run) or an Error, with a message saying what was found and a hint
// saying how to fix it. Run runs a list of checks in order and prints one
// line per check, like `linkerd check`, as text or JSON; it returns an error
// wrapping ErrFailed when any check failed, so the command exits non-zero.
//
// The checks of a Kubernetes cluster are PreInstall (can weft be installed
// here?) and PostInstall (is the installed weft healthy?), built from a
// Cluster. The names of what weft installs come from internal/install, the
// CRDs from the ones embedded in this binary (deploy), so that what is
// checked is what `weft install` applies.
//
// The universal-mode check of a certificate authority in a data directory
// (ReportCA) and the cluster's certificate check share the expiry rules of
// EvaluateExpiries.
package check
