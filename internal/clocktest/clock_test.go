package clocktest

import (
	"testing"
	"time"
)

func TestAfterOrReal(t *testing.T) {
	c := New()
	// A short wait fires by real time without Advance, and stops counting.
	ch := c.AfterOrReal(10 * time.Millisecond)
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("a 10ms AfterOrReal did not fire by real time")
	}
	if n := c.Waiters(); n != 0 {
		t.Fatalf("%d waiters after it fired, want 0", n)
	}
	// A long wait follows the fake clock only.
	long := c.AfterOrReal(17 * time.Hour)
	if n := c.Waiters(); n != 1 {
		t.Fatalf("%d waiters, want 1", n)
	}
	select {
	case <-long:
		t.Fatal("a 17h wait fired without Advance")
	case <-time.After(20 * time.Millisecond):
	}
	c.Advance(17 * time.Hour)
	select {
	case <-long:
	case <-time.After(5 * time.Second):
		t.Fatal("Advance did not fire the 17h wait")
	}
}
