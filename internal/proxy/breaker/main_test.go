package breaker

import (
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/weft-mesh/weft/internal/clocktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a Now that only moves when told to.
// checkErr fails t unless err is nil when want is empty, or names every
// part of want.
func checkErr(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

// fakeClock is the manual clock shared by weft's tests.
type fakeClock = clocktest.Clock

func newFakeClock() *fakeClock { return clocktest.New() }
