package jointoken_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/internal/clocktest"
	"github.com/weft-mesh/weft/internal/control/jointoken"
)

var web = spiffeid.RequireFromString("spiffe://weft.local/ns/shop/sa/web")

func TestRedeem(t *testing.T) {
	clk := clocktest.New()
	dir := t.TempDir()
	s, err := jointoken.Open(dir, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	once, _, err := s.Create(jointoken.CreateOptions{Identity: web, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	multi, _, err := s.Create(jointoken.CreateOptions{Identity: web, TTL: time.Hour, Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	short, _, err := s.Create(jointoken.CreateOptions{Identity: web, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	revoked, tr, err := s.Create(jointoken.CreateOptions{Identity: web, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(tr.ID); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, jointoken.FileName))
	for _, tok := range []string{once, multi, short} {
		if secret := tok[strings.LastIndex(tok, ".")+1:]; strings.Contains(string(b), secret) {
			t.Fatalf("the token file holds a secret in clear:\n%s", b)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, jointoken.FileName)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	clk.Advance(2 * time.Minute)

	for _, tc := range []struct {
		name, token, wantErr string
	}{
		{"single use", once, ""},
		{"single use, replayed", once, "already used"},
		{"reusable", multi, ""},
		{"reusable again", multi, ""},
		{"expired", short, "expired"},
		{"revoked", revoked, "unknown"},
		{"wrong secret", once[:len(once)-2] + "xx", "secret does not match"},
		{"garbage", "weft-join.abc", "not a weft join token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := s.Redeem(tc.token)
			if tc.wantErr == "" {
				if err != nil || id != web {
					t.Fatalf("Redeem = %v, %v; want %s", id, err, web)
				}
				return
			}
			var re *jointoken.RedeemError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Redeem error %v, want a RedeemError containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestSingleUseUnderRace: many proxies presenting one single-use token at
// once (a leaked token) get exactly one certificate between them.
func TestSingleUseUnderRace(t *testing.T) {
	dir := t.TempDir()
	s, err := jointoken.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := s.Create(jointoken.CreateOptions{Identity: web, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// A second Store on the same directory stands for the CLI or another
	// process.
	s2, _ := jointoken.Open(dir, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 16 {
		wg.Go(func() {
			st := s
			if i%2 == 1 {
				st = s2
			}
			if _, err := st.Redeem(tok); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d redemptions of a single-use token succeeded, want 1", wins)
	}
}

func TestCreateRefuses(t *testing.T) {
	s, err := jointoken.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    jointoken.CreateOptions
		want string
	}{
		{"no identity", jointoken.CreateOptions{TTL: time.Hour}, "no identity"},
		{"trust domain only", jointoken.CreateOptions{Identity: spiffeid.RequireFromString("spiffe://weft.local"), TTL: time.Hour}, "names a trust domain"},
		{"no ttl", jointoken.CreateOptions{Identity: web}, "out of range"},
		{"ttl too long", jointoken.CreateOptions{Identity: web, TTL: 365 * 24 * time.Hour}, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := s.Create(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Create = %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzRedeem(f *testing.F) {
	dir := f.TempDir()
	s, err := jointoken.Open(dir, nil)
	if err != nil {
		f.Fatal(err)
	}
	tok, _, err := s.Create(jointoken.CreateOptions{Identity: web, TTL: time.Hour, Reusable: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add("weft-join.")
	f.Add("weft-join.000000000000.")
	f.Fuzz(func(t *testing.T, in string) {
		id, err := s.Redeem(in)
		if err == nil && (in != tok && strings.TrimSpace(in) != tok) {
			t.Fatalf("%q redeemed as %s", in, id)
		}
	})
}
