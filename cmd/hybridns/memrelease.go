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
}

// parsed is zonedir.Loader.Parsed: a scan parsed n bytes of zone text.
func (m *memReleaser) parsed(n int64) {
	if n < bigLoad {
		return
	}
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
