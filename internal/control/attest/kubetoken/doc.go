// Package kubetoken verifies a pod's projected ServiceAccount token and
// returns the workload's SPIFFE identity.
//
// The token is not parsed or verified here: it is sent to the Kubernetes API
// in a TokenReview with the control plane's audience, and the API server
// checks the signature, the expiry, the audience and that the ServiceAccount
// (and the pod a projected token is bound to) still exists. The identity is
// taken from the review's answer, status.user.username
// (system:serviceaccount:<namespace>:<name>), never from the token's own
// claims:
//
//	spiffe://<trust domain>/ns/<namespace>/sa/<name>
//
// A refusal (the API says the token does not authenticate, is not for the
// audience, or is not a ServiceAccount's) wraps ErrRefused; any other error
// means the review could not be made, and retrying later may succeed.
//
// The control plane's own identity needs permission to create TokenReviews:
// the ClusterRole system:auth-delegator grants it.
package kubetoken
