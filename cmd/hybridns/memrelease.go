package main

import (
	"runtime/debug"
	"sync"
)

// bigLoad is how much zone text a scan must have parsed for its garbage
// to be worth returning to the OS at once: about 300,000 records. Parsing
// and building leave several times the text's size behind, which the
// runtime would otherwise hand back only over minutes, so a process that
// loaded a million records looks twice its size meanwhile.
const bigLoad = 16 << 20

// memReleaser runs debug.FreeOSMemory after big loads, on its own
// goroutine (a forced collection takes a while, and nobody should wait
// for it), at most one at a time: loads that end while one runs ask for
// one more, not one each.
type memReleaser struct {
	once sync.Once
	kick chan struct{}
	// free is debug.FreeOSMemory; tests replace it.
	free func()

	mu      sync.Mutex
	held    bool // a cold start is loading: releases wait for resume
	pending bool // a big load asked for one while held
}

// hold defers releases until resume: a cold start loads the zone files,
// then the snapshots, with the collector relaxed, and a forced collection
// in between would hand back pages the next load faults in again.
func (m *memReleaser) hold() {
	m.mu.Lock()
	m.held = true
	m.mu.Unlock()
}

// resume ends hold, with one release if a big load asked for it meanwhile.
func (m *memReleaser) resume() {
	m.mu.Lock()
	pending := m.pending
	m.held, m.pending = false, false
	m.mu.Unlock()
	if pending {
		m.request()
	}
}

// parsed is zonedir.Loader.Parsed: a scan parsed n bytes of zone text.
func (m *memReleaser) parsed(n int64) {
	if n < bigLoad {
		return
	}
	m.mu.Lock()
	if m.held {
		m.pending = true
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	m.request()
}

// request starts a release, or leaves the one already pending.
func (m *memReleaser) request() {
	m.once.Do(func() {
		m.kick = make(chan struct{}, 1)
		free := m.free
		if free == nil {
			free = debug.FreeOSMemory
		}
		go func() {
			for range m.kick {
				free()
			}
		}()
	})
	select {
	case m.kick <- struct{}{}:
	default: // one is pending already; it will see this load's garbage too
	}
}
