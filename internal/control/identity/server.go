package identity

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/weft-mesh/weft/api/gen/weft/identity/v1"
	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/control/jointoken"
)

// Lifetimes of issued workload certificates.
const (
	DefaultLifetime = 24 * time.Hour
	MinLifetime     = 5 * time.Minute
	MaxLifetime     = 90 * 24 * time.Hour
)

// KubeVerifier checks a projected ServiceAccount token (TokenReview) and
// returns the workload identity the review establishes.
type KubeVerifier interface {
	Verify(ctx context.Context, token string) (spiffeid.ID, error)
}

// Options configure a Server.
type Options struct {
	Authority *Authority
	// Tokens redeems join tokens; nil: join tokens are refused.
	Tokens *jointoken.Store
	// Kube verifies ServiceAccount tokens; nil: the control plane does not
	// run on Kubernetes and such tokens are refused.
	Kube KubeVerifier
	// Lifetime of issued certificates; zero means DefaultLifetime.
	Lifetime time.Duration
	Logger   *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Server is the Identity gRPC service.
type Server struct {
	identityv1.UnimplementedIdentityServer
	o Options
}

// NewServer checks o and returns the service.
func NewServer(o Options) (*Server, error) {
	if o.Authority == nil {
		return nil, errors.New("identity: no certificate authority given")
	}
	if o.Lifetime == 0 {
		o.Lifetime = DefaultLifetime
	}
	if o.Lifetime < MinLifetime || o.Lifetime > MaxLifetime {
		return nil, fmt.Errorf("identity: certificate lifetime %v is out of range; give a duration from %v to %v (default %v)", o.Lifetime, MinLifetime, MaxLifetime, DefaultLifetime)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Server{o: o}, nil
}

// Register registers the service on g.
func (s *Server) Register(g *grpc.Server) { identityv1.RegisterIdentityServer(g, s) }

// Issue signs the CSR for the identity the proof establishes.
func (s *Server) Issue(ctx context.Context, req *identityv1.IssueRequest) (*identityv1.IssueResponse, error) {
	csr, err := ca.CheckCSR(req.GetCsr())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "certificate signing request: %v", err)
	}
	id, how, err := s.attest(ctx, req)
	if err != nil {
		s.o.Logger.Warn("certificate request refused", "proof", how, "error", err)
		return nil, err
	}
	if err := checkNames(csr, id); err != nil {
		s.o.Logger.Warn("certificate request refused", "proof", how, "identity", id.String(), "error", err)
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	auth := s.o.Authority.Current()
	if !id.MemberOf(auth.TrustDomain()) {
		err := status.Errorf(codes.PermissionDenied, "identity %s is not in this mesh's trust domain %s", id, auth.TrustDomain().Name())
		s.o.Logger.Warn("certificate request refused", "proof", how, "identity", id.String(), "error", err)
		return nil, err
	}
	if id == ControlPlaneID(auth.TrustDomain()) {
		return nil, status.Errorf(codes.PermissionDenied, "identity %s is the control plane's own; a workload cannot have it", id)
	}
	leaf, err := auth.SignCSR(req.GetCsr(), id, s.o.Lifetime)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	anchors := make([][]byte, len(auth.Anchors()))
	for i, a := range auth.Anchors() {
		anchors[i] = a.Raw
	}
	s.o.Logger.Info("certificate issued", "identity", id.String(), "proof", how, "serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	return &identityv1.IssueResponse{
		SpiffeId:     id.String(),
		CertChain:    chainDER(leaf, auth),
		TrustAnchors: anchors,
		NotAfter:     timestamppb.New(leaf.NotAfter),
	}, nil
}

// checkNames refuses a CSR that asks for another identity than the proof
// establishes, or for names a weft certificate never carries. A CSR with no
// names at all (what weft-proxy sends) is fine: the identity comes from the
// proof, never from the request.
func checkNames(csr *x509.CertificateRequest, id spiffeid.ID) error {
	for _, u := range csr.URIs {
		if u.String() != id.String() {
			return fmt.Errorf("the CSR asks for %s but the proof of identity establishes %s; send a CSR without names or with exactly that SPIFFE ID", u, id)
		}
	}
	if len(csr.DNSNames)+len(csr.IPAddresses)+len(csr.EmailAddresses) > 0 {
		return fmt.Errorf("the CSR asks for DNS names, IP addresses or e-mail addresses (%v %v %v); a weft certificate carries only its SPIFFE ID (%s): send a CSR without them", csr.DNSNames, csr.IPAddresses, csr.EmailAddresses, id)
	}
	return nil
}

// attest establishes the caller's identity from its proof; how names the
// proof for logs.
func (s *Server) attest(ctx context.Context, req *identityv1.IssueRequest) (id spiffeid.ID, how string, err error) {
	switch p := req.GetProof().(type) {
	case *identityv1.IssueRequest_JoinToken:
		how = "join token"
		if s.o.Tokens == nil {
			return id, how, status.Error(codes.FailedPrecondition, "this control plane does not accept join tokens (it runs on Kubernetes): present the pod's ServiceAccount token")
		}
		id, err = s.o.Tokens.Redeem(p.JoinToken)
		var re *jointoken.RedeemError
		switch {
		case errors.As(err, &re):
			return id, how, status.Error(codes.Unauthenticated, err.Error())
		case err != nil:
			return id, how, status.Errorf(codes.Internal, "checking the join token: %v", err)
		}
		return id, how, nil
	case *identityv1.IssueRequest_KubernetesToken:
		how = "kubernetes service account token"
		if s.o.Kube == nil {
			return id, how, status.Error(codes.FailedPrecondition, "this control plane does not run on Kubernetes and cannot check ServiceAccount tokens: present a join token from `weft token create`")
		}
		id, err = s.o.Kube.Verify(ctx, p.KubernetesToken)
		if err != nil {
			return id, how, status.Error(codes.Unauthenticated, err.Error())
		}
		return id, how, nil
	default:
		how = "current certificate"
		id, ok, err := s.o.Authority.PeerID(ctx, s.o.Now())
		switch {
		case !ok:
			return id, how, status.Error(codes.Unauthenticated, "no proof of identity: send a join token (universal mode), the pod's ServiceAccount token (Kubernetes), or renew over mTLS with the current certificate")
		case err != nil:
			return id, how, status.Errorf(codes.Unauthenticated, "renewal refused: %v; a proxy whose certificate expired must present a new proof of identity", err)
		}
		return id, how, nil
	}
}

// chainDER is the leaf followed by the authority's chain, DER.
func chainDER(leaf *x509.Certificate, auth *ca.Authority) [][]byte {
	out := [][]byte{leaf.Raw}
	for _, c := range auth.Chain() {
		out = append(out, c.Raw)
	}
	return out
}
