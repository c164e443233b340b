package renew

import (
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-mesh/weft/internal/clocktest"
	"github.com/weft-mesh/weft/internal/proxy/tlsid"
	"github.com/weft-mesh/weft/internal/proxy/tlsid/tlstest"
)

func TestRenewalTimeAndBackoff(t *testing.T) {
	ca := tlstest.NewCA(t, "weft.local")
	f := ca.Issue(t, "spiffe://weft.local/ns/shop/sa/web", 24*time.Hour)
	src, err := tlsid.Load(tlsid.Files{CertFile: f.CertFile, KeyFile: f.KeyFile, TrustBundleFile: f.TrustBundleFile})
	if err != nil {
		t.Fatal(err)
	}
	leaf := src.Certificate().Leaf
	clk := clocktest.New()
	c := &Client{o: Options{Now: func() time.Time { return leaf.NotBefore }, After: clk.After}}
	c.rnd = newRand()
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	for range 200 {
		d := c.renewIn(src)
		if lo, hi := time.Duration(0.65*float64(life)), time.Duration(0.75*float64(life)); d < lo || d > hi {
			t.Fatalf("renewal in %v of a %v certificate, want 65%%-75%%", d, life)
		}
	}
	for _, tc := range []struct {
		attempt int
		max     time.Duration
	}{{0, time.Second}, {1, 2 * time.Second}, {2, 4 * time.Second}, {5, 32 * time.Second}, {6, time.Minute}, {40, time.Minute}} {
		for range 50 {
			if d := c.backoff(tc.attempt); d < tc.max/2 || d > tc.max {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", tc.attempt, d, tc.max/2, tc.max)
			}
		}
	}
}

func TestPermanentErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{status.Error(codes.Unauthenticated, "token replayed"), true},
		{fmt.Errorf("renew: request: %w", status.Error(codes.PermissionDenied, "x")), true},
		{status.Error(codes.Unavailable, "connection refused"), false},
		{fmt.Errorf("dial: %w", x509.UnknownAuthorityError{}), false},
	} {
		if got := permanent(tc.err); got != tc.want {
			t.Errorf("permanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
