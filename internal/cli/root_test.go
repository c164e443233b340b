package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	root := New()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "weft ") {
		t.Fatalf("weft version printed %q", out.String())
	}
}

func TestUnknownCommandIsAnError(t *testing.T) {
	root := New()
	root.SetArgs([]string{"frobnicate"})
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Fatalf("got %v, want an error naming the unknown command", err)
	}
}
