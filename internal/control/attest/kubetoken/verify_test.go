package kubetoken

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	authnv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
)

// fakeReviews answers every TokenReview with status (or err) and records the
// request.
type fakeReviews struct {
	status authnv1.TokenReviewStatus
	err    error
	got    []*authnv1.TokenReview
}

func (f *fakeReviews) TokenReviews() authnv1client.TokenReviewInterface { return f }

func (f *fakeReviews) Create(_ context.Context, tr *authnv1.TokenReview, _ metav1.CreateOptions) (*authnv1.TokenReview, error) {
	f.got = append(f.got, tr.DeepCopy())
	if f.err != nil {
		return nil, f.err
	}
	out := tr.DeepCopy()
	out.Status = f.status
	return out, nil
}

func authenticated(username string, audiences ...string) authnv1.TokenReviewStatus {
	return authnv1.TokenReviewStatus{
		Authenticated: true,
		Audiences:     audiences,
		User:          authnv1.UserInfo{Username: username},
	}
}

// A JWT whose claims name another ServiceAccount than the review does: the
// identity must come from the review.
const lyingToken = "eyJhbGciOiJSUzI1NiJ9." +
	"eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a3ViZS1zeXN0ZW06YWRtaW4ifQ.c2ln"

func TestVerifyReview(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "authentication.k8s.io", Resource: "tokenreviews"},
		"", errors.New("no RBAC policy matched"))
	tests := []struct {
		name      string
		token     string
		status    authnv1.TokenReviewStatus
		apiErr    error
		wantID    string
		wantErr   []string // substrings of the error
		refused   bool     // the error wraps ErrRefused
		noRequest bool     // Verify must not call the API
	}{
		{
			name:   "service account, identity from the review not the token",
			token:  lyingToken,
			status: authenticated("system:serviceaccount:shop:web", "weft"),
			wantID: "spiffe://example.org/ns/shop/sa/web",
		},
		{
			name:   "audience among others",
			token:  "t",
			status: authenticated("system:serviceaccount:shop:web", "other", "weft"),
			wantID: "spiffe://example.org/ns/shop/sa/web",
		},
		{
			name:    "not authenticated",
			token:   "t",
			status:  authnv1.TokenReviewStatus{Error: "invalid bearer token, token has been invalidated"},
			wantErr: []string{`service account token refused by the Kubernetes API (TokenReview): invalid bearer token, token has been invalidated; is it the pod's projected token with audience "weft"?`},
			refused: true,
		},
		{
			name:    "not authenticated, no reason",
			token:   "t",
			wantErr: []string{"TokenReview): no reason given"},
			refused: true,
		},
		{
			name:    "authenticated for other audiences",
			token:   "t",
			status:  authenticated("system:serviceaccount:shop:web", "https://kubernetes.default.svc"),
			wantErr: []string{`audiences ["https://kubernetes.default.svc"], not "weft"`},
			refused: true,
		},
		{
			name:    "authenticated for no audience",
			token:   "t",
			status:  authenticated("system:serviceaccount:shop:web"),
			wantErr: []string{`audiences [], not "weft"`},
			refused: true,
		},
		{
			name:    "a user, not a service account",
			token:   "t",
			status:  authenticated("alice", "weft"),
			wantErr: []string{`authenticated it as "alice", which is not a ServiceAccount`},
			refused: true,
		},
		{
			name:    "a node",
			token:   "t",
			status:  authenticated("system:node:n1", "weft"),
			wantErr: []string{`"system:node:n1", which is not a ServiceAccount`},
			refused: true,
		},
		{
			name:    "service account username without a name",
			token:   "t",
			status:  authenticated("system:serviceaccount:shop", "weft"),
			wantErr: []string{"which is not a ServiceAccount"},
			refused: true,
		},
		{
			name:    "service account username without a namespace",
			token:   "t",
			status:  authenticated("system:serviceaccount::web", "weft"),
			wantErr: []string{"which is not a ServiceAccount"},
			refused: true,
		},
		{
			name:    "service account username with extra parts",
			token:   "t",
			status:  authenticated("system:serviceaccount:shop:web:x", "weft"),
			wantErr: []string{"which is not a ServiceAccount"},
			refused: true,
		},
		{
			name:    "names that make no SPIFFE ID",
			token:   "t",
			status:  authenticated("system:serviceaccount:shop:we b", "weft"),
			wantErr: []string{"ServiceAccount shop/we b does not make a SPIFFE ID"},
			refused: true,
		},
		{
			name:      "empty token",
			token:     "",
			wantErr:   []string{`the token is empty; send the pod's projected ServiceAccount token for audience "weft"`},
			refused:   true,
			noRequest: true,
		},
		{
			name:      "blank token",
			token:     " \n",
			wantErr:   []string{"the token is empty"},
			refused:   true,
			noRequest: true,
		},
		{
			name:    "the control plane may not review tokens",
			token:   "t",
			apiErr:  forbidden,
			wantErr: []string{"system:auth-delegator", "no RBAC policy matched"},
		},
		{
			name:    "the API cannot be reached",
			token:   "t",
			apiErr:  context.DeadlineExceeded,
			wantErr: []string{"reviewing the service account token with the Kubernetes API (TokenReview)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeReviews{status: tt.status, err: tt.apiErr}
			v, err := New(fake, td, "weft")
			if err != nil {
				t.Fatal(err)
			}
			id, err := v.Verify(t.Context(), tt.token)

			if tt.noRequest {
				if len(fake.got) != 0 {
					t.Errorf("Verify sent %d TokenReviews, want none", len(fake.got))
				}
			} else {
				if len(fake.got) != 1 {
					t.Fatalf("Verify sent %d TokenReviews, want 1", len(fake.got))
				}
				spec := fake.got[0].Spec
				if spec.Token != tt.token || len(spec.Audiences) != 1 || spec.Audiences[0] != "weft" {
					t.Errorf("TokenReview spec = {token %q, audiences %q}, want {%q, [weft]}", spec.Token, spec.Audiences, tt.token)
				}
			}

			if tt.wantID != "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if id.String() != tt.wantID {
					t.Errorf("Verify = %s, want %s", id, tt.wantID)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify = %s, want an error", id)
			}
			if !id.IsZero() {
				t.Errorf("Verify returned ID %s with its error", id)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if got := errors.Is(err, ErrRefused); got != tt.refused {
				t.Errorf("errors.Is(err, ErrRefused) = %v, want %v (err: %v)", got, tt.refused, err)
			}
			if tt.apiErr != nil && !errors.Is(err, tt.apiErr) {
				t.Errorf("error %q does not wrap the API error %q", err, tt.apiErr)
			}
		})
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	tests := []struct {
		name     string
		client   authnv1client.TokenReviewsGetter
		td       spiffeid.TrustDomain
		audience string
		wantErr  string
	}{
		{"no client", nil, td, "weft", "no Kubernetes client"},
		{"no trust domain", &fakeReviews{}, spiffeid.TrustDomain{}, "weft", "no trust domain"},
		{"no audience", &fakeReviews{}, td, "", "no audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(tt.client, tt.td, tt.audience)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, %v; want an error containing %q", v, err, tt.wantErr)
			}
		})
	}
}
