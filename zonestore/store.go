package zonestore

import (
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// DefaultView is the view every client belongs to unless a more specific one
// claims it. Zones in it are visible to all views (public zones).
const DefaultView = ""

// FleetView is the hidden view that holds the fleet feed: each served zone
// in the form follower instances transfer (and its catalog). No client is
// ever mapped to it; only a transfer rule for every view ("*") with a key
// reads it.
const FleetView = "*fleet"

// FleetSuffix is the parent of every fleet zone's name (the zones of
// FleetView, besides its catalog).
const FleetSuffix = "fleet.hybridns."

// Snapshot is one consistent generation of every zone in every view. A query
// loads one Snapshot and uses it for its whole answer, so no reply ever mixes
// two generations. Snapshots are immutable.
type Snapshot struct {
	version uint64
	// views maps a view name to its zone table (origin → zone). The table of
	// a named view already contains the default view's zones that it does
	// not shadow, so Find does one map walk.
	views map[string]map[string]*Zone
	// own holds each view's zones as given, before merging in the defaults.
	own map[string]map[string]*Zone
}

// NewSnapshot builds a snapshot from per-view zone lists. The view
// DefaultView holds zones everyone sees; a zone in a named view shadows a
// default zone of the same name for that view's clients (split horizon).
func NewSnapshot(version uint64, views map[string][]*Zone) (*Snapshot, error) {
	own := make(map[string]map[string]*Zone, len(views))
	for view, zones := range views {
		t := make(map[string]*Zone, len(zones))
		for _, z := range zones {
			if t[z.origin] != nil {
				return nil, fmt.Errorf("view %q: zone %s given twice", view, z.origin)
			}
			t[z.origin] = z
		}
		own[view] = t
	}
	return newSnapshot(version, own), nil
}

func newSnapshot(version uint64, own map[string]map[string]*Zone) *Snapshot {
	if own[DefaultView] == nil {
		own[DefaultView] = map[string]*Zone{}
	}
	s := &Snapshot{version: version, own: own, views: make(map[string]map[string]*Zone, len(own))}
	for view, zones := range own {
		if view == DefaultView {
			s.views[view] = zones
			continue
		}
		merged := maps.Clone(own[DefaultView])
		maps.Copy(merged, zones)
		s.views[view] = merged
	}
	return s
}

// Version is a number that grows with every published snapshot.
func (s *Snapshot) Version() uint64 { return s.version }

// Find returns the most specific zone visible in view that contains qname
// (canonical). Unknown views see the default view. It does not allocate.
func (s *Snapshot) Find(view, qname string) *Zone {
	zones := s.views[view]
	if zones == nil {
		zones = s.views[DefaultView]
	}
	if len(zones) == 0 {
		return nil
	}
	for off, end := 0, false; !end; off, end = dns.NextLabel(qname, off) {
		if z := zones[qname[off:]]; z != nil {
			return z
		}
	}
	return zones["."]
}

// Zone returns the zone with exactly this origin in view (not merged with
// the default view), or nil.
func (s *Snapshot) Zone(view, origin string) *Zone { return s.own[view][origin] }

// Zones returns the zones given for view (not merged with the default view).
func (s *Snapshot) Zones(view string) []*Zone {
	out := make([]*Zone, 0, len(s.own[view]))
	for _, z := range s.own[view] {
		out = append(out, z)
	}
	return out
}

// Views returns the names of the views that hold zones.
func (s *Snapshot) Views() []string {
	out := make([]string, 0, len(s.own))
	for v := range s.own {
		out = append(out, v)
	}
	return out
}

// WithZone returns a copy of s with z put into view (replacing a zone of the
// same origin). Only the zone tables are copied, never zone data.
func (s *Snapshot) WithZone(view string, z *Zone) *Snapshot {
	own := maps.Clone(s.own)
	t := maps.Clone(own[view])
	if t == nil {
		t = map[string]*Zone{}
	}
	t[z.origin] = z
	own[view] = t
	return newSnapshot(s.version+1, own)
}

// WithoutZone returns a copy of s with the zone origin removed from view.
func (s *Snapshot) WithoutZone(view, origin string) *Snapshot {
	own := maps.Clone(s.own)
	t := maps.Clone(own[view])
	delete(t, origin)
	own[view] = t
	return newSnapshot(s.version+1, own)
}

// Store publishes snapshots to readers without locks: Load is a single
// atomic load, so a sync never blocks or slows a query.
type Store struct {
	cur atomic.Pointer[Snapshot]
	mu  sync.Mutex // serializes writers only
	// notify is closed at the next publish (Changed); nmu guards it.
	nmu    sync.Mutex
	notify chan struct{}
	// observers see every (previous, next) pair just before next is
	// published, under mu (see Observe).
	observers []func(prev, next *Snapshot)
}

// Changed returns a channel that is closed when the next snapshot is
// published: a watcher (derived zones) waits on it, then Loads.
func (s *Store) Changed() <-chan struct{} {
	s.nmu.Lock()
	defer s.nmu.Unlock()
	if s.notify == nil {
		s.notify = make(chan struct{})
	}
	return s.notify
}

func (s *Store) wake() {
	s.nmu.Lock()
	if s.notify != nil {
		close(s.notify)
		s.notify = nil
	}
	s.nmu.Unlock()
}

// Observe registers fn to be called with every pair of consecutive
// snapshots, just before the next one is published and under the writers'
// lock: fn sees every version exactly once and in order, and anything it
// records (an IXFR journal entry) is in place before a reader can see the
// new version. fn must be quick and must never do network I/O or call the
// Store's write methods.
func (s *Store) Observe(fn func(prev, next *Snapshot)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observers = append(s.observers, fn)
}

func (s *Store) publish(next *Snapshot) *Snapshot {
	prev := s.cur.Load()
	for _, fn := range s.observers {
		fn(prev, next)
	}
	s.cur.Store(next)
	return prev
}

// NewStore returns a store holding an empty snapshot.
func NewStore() *Store {
	s := &Store{}
	s.cur.Store(newSnapshot(0, map[string]map[string]*Zone{}))
	return s
}

// Load returns the current snapshot; never nil.
func (s *Store) Load() *Snapshot { return s.cur.Load() }

// Swap publishes next and returns the previous snapshot.
func (s *Store) Swap(next *Snapshot) *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.wake()
	return s.publish(next)
}

// Update applies fn to the current snapshot and publishes the result.
// Writers are serialized so concurrent updates of different zones never lose
// each other's changes; fn must not block on the network.
func (s *Store) Update(fn func(cur *Snapshot) (*Snapshot, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, err := fn(s.cur.Load())
	if err != nil {
		return err
	}
	if next != nil {
		s.publish(next)
		s.wake()
	}
	return nil
}

// PutZone publishes z in view, replacing any zone with the same origin.
func (s *Store) PutZone(view string, z *Zone) {
	_ = s.Update(func(cur *Snapshot) (*Snapshot, error) { return cur.WithZone(view, z), nil })
}

// DeleteZone removes the zone origin from view.
func (s *Store) DeleteZone(view, origin string) {
	_ = s.Update(func(cur *Snapshot) (*Snapshot, error) { return cur.WithoutZone(view, origin), nil })
}
