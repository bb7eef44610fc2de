package main

import "testing"

// TestMemReleaser: only a big load frees memory; loads that end while a
// release runs ask for one more release, not one each.
func TestMemReleaser(t *testing.T) {
	started := make(chan struct{})
	unblock := make(chan struct{})
	m := &memReleaser{free: func() {
		started <- struct{}{}
		<-unblock
	}}
	m.parsed(bigLoad - 1)
	if m.kick != nil {
		t.Fatal("a small load started the releaser")
	}
	m.parsed(bigLoad)
	<-started // the first release runs (and blocks)
	for range 5 {
		m.parsed(bigLoad)
	}
	if n := len(m.kick); n != 1 {
		t.Fatalf("%d releases pending for five loads during one, want 1", n)
	}
	unblock <- struct{}{}
	<-started // the one more, which took the pending request
	if n := len(m.kick); n != 0 {
		t.Fatalf("%d releases still pending", n)
	}
	unblock <- struct{}{}
}
