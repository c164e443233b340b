package kubetoken

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
)

// ErrRefused is wrapped by every error of Verify that says the token does
// not prove a workload identity, as opposed to the review failing.
var ErrRefused = errors.New("service account token refused")

// serviceAccountPrefix starts the username of every ServiceAccount.
const serviceAccountPrefix = "system:serviceaccount:"

// Verifier verifies ServiceAccount tokens through the TokenReview API.
type Verifier struct {
	reviews     authnv1client.TokenReviewInterface
	trustDomain spiffeid.TrustDomain
	audience    string
}

// New returns a Verifier that asks client to review tokens for audience and
// names workloads in trustDomain. client is the authentication/v1 client of a
// clientset (clientset.AuthenticationV1()) or anything that creates
// TokenReviews.
func New(client authnv1client.TokenReviewsGetter, trustDomain spiffeid.TrustDomain, audience string) (*Verifier, error) {
	if client == nil {
		return nil, errors.New("kubetoken: no Kubernetes client to create TokenReviews with")
	}
	if trustDomain.IsZero() {
		return nil, errors.New("kubetoken: no trust domain for the workload identities")
	}
	if audience == "" {
		return nil, errors.New("kubetoken: no audience: tokens must be requested for the control plane's own audience " +
			"(an empty one would accept tokens meant for the Kubernetes API itself)")
	}
	return &Verifier{reviews: client.TokenReviews(), trustDomain: trustDomain, audience: audience}, nil
}

// Audience returns the audience tokens must be issued for.
func (v *Verifier) Audience() string { return v.audience }

// Verify reviews token and returns the SPIFFE ID of its ServiceAccount. An
// error that wraps ErrRefused means the token was looked at and does not
// prove an identity; any other error means the review could not be made.
func (v *Verifier) Verify(ctx context.Context, token string) (spiffeid.ID, error) {
	if strings.TrimSpace(token) == "" {
		return spiffeid.ID{}, fmt.Errorf("%w: the token is empty; send the pod's projected ServiceAccount token "+
			"for audience %q", ErrRefused, v.audience)
	}
	review, err := v.reviews.Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{v.audience}},
	}, metav1.CreateOptions{})
	if err != nil {
		if apierrors.IsForbidden(err) {
			return spiffeid.ID{}, fmt.Errorf("reviewing the service account token: the control plane may not create "+
				"TokenReviews (bind its ServiceAccount to the ClusterRole system:auth-delegator): %w", err)
		}
		return spiffeid.ID{}, fmt.Errorf("reviewing the service account token with the Kubernetes API (TokenReview): %w", err)
	}

	st := review.Status
	if !st.Authenticated {
		reason := st.Error
		if reason == "" {
			reason = "no reason given"
		}
		return spiffeid.ID{}, fmt.Errorf("%w by the Kubernetes API (TokenReview): %s; is it the pod's projected token "+
			"with audience %q?", ErrRefused, reason, v.audience)
	}
	if !slices.Contains(st.Audiences, v.audience) {
		return spiffeid.ID{}, fmt.Errorf("%w: the Kubernetes API authenticated it for audiences %q, not %q; "+
			"project the pod's token with audience %q", ErrRefused, st.Audiences, v.audience, v.audience)
	}
	ns, sa, err := serviceAccount(st.User.Username)
	if err != nil {
		return spiffeid.ID{}, err
	}
	id, err := spiffeid.FromSegments(v.trustDomain, "ns", ns, "sa", sa)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("%w: ServiceAccount %s/%s does not make a SPIFFE ID: %w", ErrRefused, ns, sa, err)
	}
	return id, nil
}

// serviceAccount returns the namespace and name in a ServiceAccount's
// username, system:serviceaccount:<namespace>:<name>.
func serviceAccount(username string) (namespace, name string, err error) {
	rest, ok := strings.CutPrefix(username, serviceAccountPrefix)
	if ok {
		namespace, name, ok = strings.Cut(rest, ":")
	}
	if !ok || namespace == "" || name == "" || strings.Contains(name, ":") {
		return "", "", fmt.Errorf("%w: the Kubernetes API authenticated it as %q, which is not a ServiceAccount "+
			"(want %s<namespace>:<name>); only a pod's ServiceAccount token proves a workload identity",
			ErrRefused, username, serviceAccountPrefix)
	}
	return namespace, name, nil
}
