package registry

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	discoveryv1 "github.com/weft-mesh/weft/api/gen/weft/discovery/v1"
	"github.com/weft-mesh/weft/internal/clocktest"
)

// TestRestart: a new Registry on the same data directory serves the
// persisted registrations at once, with their last health, and removes
// those whose proxies do not come back within the grace period.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	clk := clocktest.New()
	h := start(t, dir, clk)
	back, gone, sick, lost := node("web-1", "10.0.0.1"), node("web-2", "10.0.0.2"), node("web-3", "10.0.0.3"), node("web-4", "10.0.0.4")
	h.connect(back, healthy)
	h.connect(gone, healthy)
	h.connect(sick, unhealthy)
	h.connect(lost, healthy)
	h.reg.Disconnect(lost)
	h.stop()
	// The server ends every stream as it stops: that is no proxy lost.
	for _, n := range []*discoveryv1.Node{back, gone, sick} {
		h.reg.Disconnect(n)
	}
	if got := h.state("web-1"); got != "ready" {
		t.Fatalf("web-1, its stream ended by the stopping control plane: %s, want ready", got)
	}

	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", FileName, fi.Mode().Perm())
	}

	h2 := start(t, dir, clk)
	for name, want := range map[string]string{"web-1": "ready", "web-2": "ready", "web-3": "not ready", "web-4": "not ready"} {
		if got := h2.state(name); got != want {
			t.Errorf("after the restart, %s is %s, want %s", name, got, want)
		}
	}
	h2.connect(node("web-1", "10.0.0.1"), unknown)
	h2.clk.Advance(grace)
	for _, name := range []string{"web-2", "web-3", "web-4"} {
		h2.waitState(name, "absent")
	}
	if got := h2.state("web-1"); got != "ready" {
		t.Errorf("web-1, reconfirmed by its proxy: %s, want ready", got)
	}
	h2.stop()
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); !strings.Contains(s, `"name": "web-1"`) || strings.Contains(s, "web-2") {
		t.Errorf("persisted after expiry:\n%s", s)
	}
}

// TestLoadDropsInvalidRecords: a hand-edited record that no longer passes
// the checks is dropped, the others served; a file that is not JSON stops
// New with the file's name.
func TestLoadDropsInvalidRecords(t *testing.T) {
	cases := []struct {
		name, content string
		wantErr       string
		wantLoaded    []string
	}{
		{"bad address", `{"registrations": [
			{"namespace": "shop", "name": "web-1", "identity": "spiffe://weft.local/ns/shop/sa/web", "address": "10.0.0.1"},
			{"namespace": "shop", "name": "web-2", "identity": "spiffe://weft.local/ns/shop/sa/web", "address": "nowhere"}]}`, "", []string{"web-1"}},
		{"name and identity disagree", `{"registrations": [
			{"namespace": "other", "name": "web-1", "identity": "spiffe://weft.local/ns/shop/sa/web", "address": "10.0.0.1"}]}`, "", nil},
		{"listed twice", `{"registrations": [
			{"namespace": "shop", "name": "web-1", "identity": "spiffe://weft.local/ns/shop/sa/web", "address": "10.0.0.1"},
			{"namespace": "shop", "name": "web-1", "identity": "spiffe://weft.local/ns/shop/sa/web", "address": "10.0.0.2"}]}`, "", []string{"web-1"}},
		{"not JSON", `{"registrations": [`, FileName + " is corrupted", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, FileName), []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := New(Options{DataDir: dir, Logger: quiet()})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for ref := range r.entries {
				got = append(got, ref.Name)
			}
			if strings.Join(got, ",") != strings.Join(tc.wantLoaded, ",") {
				t.Errorf("loaded %v, want %v", got, tc.wantLoaded)
			}
		})
	}
}

// TestRunOnce: a Registry is one source of one store.
func TestRunOnce(t *testing.T) {
	h := start(t, "", clocktest.New())
	if err := h.reg.Run(context.Background(), h.store); err == nil {
		t.Fatal("a second Run did not fail")
	}
}
