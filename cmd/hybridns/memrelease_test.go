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

// TestMemReleaserHeld: during a cold start (held) big loads start no
// release; resume runs one for all of them.
func TestMemReleaserHeld(t *testing.T) {
	freed := make(chan struct{}, 10)
	m := &memReleaser{free: func() { freed <- struct{}{} }}
	m.hold()
	m.parsed(bigLoad)
	m.parsed(bigLoad)
	if m.kick != nil {
		t.Fatal("a load while held started the releaser")
	}
	m.resume()
	<-freed
	m.resume() // nothing pending: no second release
	m.parsed(bigLoad)
	<-freed // not held any more: a big load releases at once
	if n := len(freed); n != 0 {
		t.Fatalf("%d releases more than asked for", n)
	}
}
