package kubetoken

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestVerifyWithAPIServer verifies tokens issued by a real kube-apiserver
// (TokenRequest API) through its TokenReview API.
func TestVerifyWithAPIServer(t *testing.T) {
	cs := kube.Get(t).Clientset
	ctx := t.Context()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "kubetoken-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	for _, sa := range []string{"web", "gone"} {
		if _, err := cs.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{
			ObjectMeta: metav1.ObjectMeta{Name: sa},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating ServiceAccount %s: %v", sa, err)
		}
	}
	v, err := New(cs.AuthenticationV1(), spiffeid.RequireTrustDomainFromString("cluster.local"), "weft")
	if err != nil {
		t.Fatal(err)
	}
	webToken := requestToken(t, cs, ns.Name, "web", "weft")

	const refusedHint = `; is it the pod's projected token with audience "weft"?`
	tests := []struct {
		name  string
		token func(t *testing.T) string
		// eventually: the apiserver learns of the change through a watch, so
		// the refusal may take a moment.
		eventually bool
		wantID     string
		wantErr    string
	}{
		{
			name:   "projected token for audience weft",
			token:  func(*testing.T) string { return webToken },
			wantID: "spiffe://cluster.local/ns/" + ns.Name + "/sa/web",
		},
		{
			name:    "token for another audience",
			token:   func(t *testing.T) string { return requestToken(t, cs, ns.Name, "web", "vault") },
			wantErr: "refused by the Kubernetes API (TokenReview): ",
		},
		{
			name:    "token for the Kubernetes API's own audience",
			token:   func(t *testing.T) string { return requestToken(t, cs, ns.Name, "web") },
			wantErr: refusedHint,
		},
		{
			name:    "same claims signed by another key",
			token:   func(t *testing.T) string { return forge(t, webToken) },
			wantErr: refusedHint,
		},
		{
			name:    "genuine token, expired",
			token:   func(t *testing.T) string { return expired(t, webToken) },
			wantErr: refusedHint,
		},
		{
			name:   "re-signed with the apiserver's key, not expired (the control case)",
			token:  func(t *testing.T) string { return resign(t, webToken, signingKey(t), nil) },
			wantID: "spiffe://cluster.local/ns/" + ns.Name + "/sa/web",
		},
		{
			name:    "mangled signature",
			token:   func(t *testing.T) string { return mangleSignature(t, webToken) },
			wantErr: refusedHint,
		},
		{
			name: "ServiceAccount deleted after the token was issued",
			token: func(t *testing.T) string {
				tok := requestToken(t, cs, ns.Name, "gone", "weft")
				if err := cs.CoreV1().ServiceAccounts(ns.Name).Delete(t.Context(), "gone", metav1.DeleteOptions{}); err != nil {
					t.Fatalf("deleting ServiceAccount gone: %v", err)
				}
				return tok
			},
			eventually: true,
			wantErr:    refusedHint,
		},
		{
			name:    "not a JWT",
			token:   func(*testing.T) string { return "not-a-token" },
			wantErr: refusedHint,
		},
		{
			name:    "empty token",
			token:   func(*testing.T) string { return "" },
			wantErr: "the token is empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := tt.token(t)
			id, err := v.Verify(t.Context(), token)
			for deadline := time.Now().Add(10 * time.Second); tt.eventually && err == nil && time.Now().Before(deadline); {
				time.Sleep(100 * time.Millisecond)
				id, err = v.Verify(t.Context(), token)
			}
			if tt.wantID != "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if id.String() != tt.wantID {
					t.Fatalf("Verify = %s, want %s", id, tt.wantID)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify = %s, want a refusal", id)
			}
			if !errors.Is(err, ErrRefused) {
				t.Errorf("error does not wrap ErrRefused: %v", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// requestToken returns a token for ServiceAccount ns/sa from the TokenRequest
// API, for audiences (none: the apiserver's own).
func requestToken(t *testing.T, cs kubernetes.Interface, ns, sa string, audiences ...string) string {
	t.Helper()
	expiry := int64(600)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), sa, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token for %s/%s: %v", ns, sa, err)
	}
	return tr.Status.Token
}

// forge returns token's header (with alg ES256) and claims signed by a key
// of its own.
func forge(t *testing.T, token string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return resign(t, token, key, nil)
}

// expired returns token with its validity moved an hour into the past,
// signed with the apiserver's own key: a genuine token that has expired.
func expired(t *testing.T, token string) string {
	t.Helper()
	return resign(t, token, signingKey(t), func(claims map[string]any) {
		past := time.Now().Add(-time.Hour).Unix()
		claims["exp"], claims["nbf"], claims["iat"] = past, past-600, past-600
	})
}

// resign returns token's header (with alg ES256) and claims, changed by
// edit when not nil, signed by key.
func resign(t *testing.T, token string, key *ecdsa.PrivateKey, edit func(claims map[string]any)) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	rawHeader, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatalf("decoding the token header: %v", err)
	}
	var header map[string]any
	if err := json.Unmarshal(rawHeader, &header); err != nil {
		t.Fatalf("decoding the token header: %v", err)
	}
	header["alg"] = "ES256" // kid kept: the token claims the real key
	rawHeader, err = json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	payload := parts[1]
	if edit != nil {
		raw, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatalf("decoding the token claims: %v", err)
		}
		var claims map[string]any
		if err := json.Unmarshal(raw, &claims); err != nil {
			t.Fatalf("decoding the token claims: %v", err)
		}
		edit(claims)
		if raw, err = json.Marshal(claims); err != nil {
			t.Fatal(err)
		}
		payload = base64.RawURLEncoding.EncodeToString(raw)
	}
	signed := base64.RawURLEncoding.EncodeToString(rawHeader) + "." + payload
	digest := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// mangleSignature flips bits in the middle of token's signature.
func mangleSignature(t *testing.T, token string) string {
	t.Helper()
	i := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil || len(sig) == 0 {
		t.Fatalf("decoding the token signature: %v", err)
	}
	sig[len(sig)/2] ^= 0xff
	return token[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// signingKey is the apiserver's ServiceAccount signing key.
func signingKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(kube.Get(t).ServiceAccountKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("the apiserver's signing key file holds no PEM block")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		if parsed, err = x509.ParseECPrivateKey(block.Bytes); err != nil {
			t.Fatalf("parsing the apiserver's signing key: %v", err)
		}
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("the apiserver's signing key is a %T, want ECDSA", parsed)
	}
	return key
}
