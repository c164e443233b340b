package identity_test

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weft-mesh/weft/internal/control/attest/kubetoken"
	"github.com/weft-mesh/weft/internal/control/ca"
	"github.com/weft-mesh/weft/internal/control/identity"
	"github.com/weft-mesh/weft/internal/proxy/renew"
)

// TestIssueWithServiceAccountToken: on Kubernetes a proxy proves its
// identity with the pod's projected ServiceAccount token (audience weft),
// which the control plane checks with TokenReview against a real
// kube-apiserver; the certificate carries the identity of the review.
func TestIssueWithServiceAccountToken(t *testing.T) {
	cs := kube.Get(t).Clientset
	ctx := t.Context()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "shop-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token := func(audience string) string {
		exp := int64(600)
		tr, err := cs.CoreV1().ServiceAccounts(ns.Name).CreateToken(ctx, "web", &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: &exp}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}

	log := slog.New(slog.DiscardHandler)
	auth, err := identity.OpenAuthority(filepath.Join(t.TempDir(), "ca"), ca.Options{TrustDomain: td}, log)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := kubetoken.New(cs.AuthenticationV1(), spiffeid.RequireTrustDomainFromString(td), "weft")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := identity.NewServer(identity.Options{Authority: auth, Kube: verifier, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(auth.ServerTLS(nil))))
	srv.Register(g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	defer g.Stop()

	for _, tc := range []struct {
		name, token, wantID, wantErr string
	}{
		{"projected token, audience weft", token("weft"), "spiffe://weft.local/ns/" + ns.Name + "/sa/web", ""},
		{"token for another audience", token("vault"), "", "TokenReview"},
		{"not a token", "hello", "", "TokenReview"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(file, []byte(tc.token), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := renew.New(renew.Options{Address: ln.Addr().String(), Anchors: auth.Current().Anchors(), TokenFile: file, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			src, err := c.Obtain(ctxTimeout(t, 10*time.Second))
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Obtain = %v, want an error mentioning %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case src.ID().String() != tc.wantID:
				t.Fatalf("certificate for %s, want %s", src.ID(), tc.wantID)
			}
		})
	}
}
