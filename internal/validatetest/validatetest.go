// Package validatetest checks, in tests, the two faces of a config type's
// validation: Validate reports every expected problem, and New refuses the
// same config with an error that wraps Validate's.
package validatetest

import (
	"strings"
	"testing"
)

// Check asserts that validateErr and newErr are both nil when want is empty,
// and otherwise that validateErr mentions every string of want and newErr
// carries validateErr's text.
func Check(t testing.TB, validateErr, newErr error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if validateErr != nil || newErr != nil {
			t.Fatalf("Validate() = %v, New() = %v; want both nil", validateErr, newErr)
		}
		return
	}
	if validateErr == nil {
		t.Fatal("Validate() = nil, want an error")
	}
	for _, w := range want {
		if !strings.Contains(validateErr.Error(), w) {
			t.Errorf("Validate() = %q, want it to mention %q", validateErr, w)
		}
	}
	if newErr == nil || !strings.Contains(newErr.Error(), validateErr.Error()) {
		t.Errorf("New() = %v, want it to wrap %q", newErr, validateErr)
	}
}
