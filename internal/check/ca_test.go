package check

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/control/ca"
)

func TestReportCA(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	fp := strings.Repeat("ab", 32)
	anchor := func(left time.Duration) ca.Expiry {
		return ca.Expiry{What: "trust anchor", Fingerprint: fp, NotAfter: now.Add(left)}
	}
	issuer := func(left time.Duration) ca.Expiry {
		return ca.Expiry{What: "issuer", Fingerprint: fp, NotAfter: now.Add(left)}
	}
	day := 24 * time.Hour
	for _, tc := range []struct {
		name    string
		exps    []ca.Expiry
		want    []string
		wantErr bool
	}{
		{"all fine", []ca.Expiry{anchor(3000 * day), issuer(300 * day)}, []string{"OK: no anchor or issuer expires soon"}, false},
		{"issuer soon", []ca.Expiry{anchor(3000 * day), issuer(10 * day)}, []string{"WARNING: issuer abababababababab expires in 10d0h; run `weft ca rotate-issuer`"}, false},
		{"anchor soon", []ca.Expiry{anchor(100 * day), issuer(50 * day)}, []string{"WARNING: trust anchor abababababababab expires in 100d; roll in a new anchor: `weft ca add-anchor`"}, false},
		{"issuer expired", []ca.Expiry{anchor(3000 * day), issuer(-time.Hour)}, []string{"ERROR: issuer abababababababab expired 1h0m0s ago"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := ReportCA(&out, tc.exps, now, UniversalExpiryPolicy(180*day, 30*day))
			if (err != nil) != tc.wantErr || (err != nil && !errors.Is(err, ErrFailed)) {
				t.Fatalf("err = %v, want failure %v", err, tc.wantErr)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestExpiriesFromPEM reads a CA's files as the cluster check reads the
// weft-ca Secret, and finds what the Authority itself reports.
func TestExpiriesFromPEM(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	a, err := ca.LoadOrCreate(dir, ca.Options{TrustDomain: "weft.local"})
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	got, err := ExpiriesFromPEM(read(ca.AnchorCertFile), read(ca.IssuerCertFile))
	if err != nil {
		t.Fatal(err)
	}
	want := a.Expiries()
	if len(got) != len(want) {
		t.Fatalf("%d expiries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].What != want[i].What || got[i].Fingerprint != want[i].Fingerprint || !got[i].NotAfter.Equal(want[i].NotAfter) {
			t.Errorf("expiry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, tc := range []struct {
		name            string
		anchors, issuer []byte
	}{
		{"no anchors", nil, read(ca.IssuerCertFile)},
		{"no issuer", read(ca.AnchorCertFile), []byte("not PEM")},
		{"a key, no certificate", read(ca.AnchorCertFile), read(ca.IssuerKeyFile)},
	} {
		if _, err := ExpiriesFromPEM(tc.anchors, tc.issuer); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestSameCerts(t *testing.T) {
	pemOf := func() []byte {
		dir := filepath.Join(t.TempDir(), "ca")
		if _, err := ca.LoadOrCreate(dir, ca.Options{TrustDomain: "weft.local"}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, ca.AnchorCertFile))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := pemOf(), pemOf()
	ab := append(append([]byte{}, a...), b...)
	ba := append(append([]byte{}, b...), a...)
	for _, tc := range []struct {
		name    string
		x, y    []byte
		want    bool
		wantErr bool
	}{
		{"same", a, a, true, false},
		{"other anchor", a, b, false, false},
		{"same set, other order", ab, ba, true, false},
		{"subset", a, ab, false, false},
		{"superset", ab, a, false, false},
		{"garbage", []byte("x"), a, false, true},
	} {
		got, err := sameCerts(tc.x, tc.y)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%s: sameCerts = %v, %v; want %v, error %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}
