package k8stest

import (
	"fmt"
	"strings"
	"testing"
)

func TestTailWriterKeepsTheLatestWholeLines(t *testing.T) {
	var all strings.Builder
	w := newTailWriter(&all)
	for i := range 5000 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	if !strings.HasPrefix(all.String(), "line 0\n") || !strings.HasSuffix(all.String(), "line 4999\n") {
		t.Errorf("output not copied whole to the writer")
	}
	got := strings.Split(w.lastLines(3), "\n")
	if want := []string{"line 4997", "line 4998", "line 4999"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lastLines(3) = %q, want %q", got, want)
	}
	lines := strings.Split(w.lastLines(1<<20), "\n")
	if !strings.HasPrefix(lines[0], "line ") {
		t.Errorf("first kept line %q was cut", lines[0])
	}
	if w.describe("x", 3) == "" || newTailWriter(nil).describe("x", 3) != "" {
		t.Error("describe: want text only when there was output")
	}
}
