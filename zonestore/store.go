package zonestore

import (
	"fmt"
	"maps"
	"slices"
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
//
// Zone tables are persistent hash tries (table.go): a snapshot with one zone
// more or less shares all the rest with its parent, so a swap costs
// O(log zones) per table it touches — one for a named view's zone, one per
// view for a default-view zone — and Changed finds what two snapshots
// differ in by skipping what they share.
type Snapshot struct {
	version uint64
	// views holds every view's tables; DefaultView is always present.
	views map[string]*viewTables
	def   *viewTables // views[DefaultView], for Find without a map lookup
}

// viewTables are one view's zones: own as given, and merged with the
// default view's zones it does not shadow, so Find walks one table. For
// DefaultView both are the same.
type viewTables struct {
	own, merged table
}

// NewSnapshot builds a snapshot from per-view zone lists. The view
// DefaultView holds zones everyone sees; a zone in a named view shadows a
// default zone of the same name for that view's clients (split horizon).
func NewSnapshot(version uint64, views map[string][]*Zone) (*Snapshot, error) {
	for view, zones := range views {
		seen := make(map[string]bool, len(zones))
		for _, z := range zones {
			if seen[z.origin] {
				return nil, fmt.Errorf("view %q: zone %s given twice", view, z.origin)
			}
			seen[z.origin] = true
		}
	}
	s := emptySnapshot(version)
	// The default view first: the named views' merged tables start from
	// it and share its nodes.
	s = s.with(DefaultView, views[DefaultView], nil)
	for _, view := range slices.Sorted(maps.Keys(views)) {
		if view != DefaultView {
			s = s.with(view, views[view], nil)
		}
	}
	s.version = version
	return s, nil
}

func emptySnapshot(version uint64) *Snapshot {
	def := &viewTables{}
	return &Snapshot{version: version, views: map[string]*viewTables{DefaultView: def}, def: def}
}

// at returns s as version v (a snapshot value is never changed once made).
func (s *Snapshot) at(v uint64) *Snapshot {
	return &Snapshot{version: v, views: s.views, def: s.def}
}

// with returns a copy of s (same version) with puts put into view and the
// origins dels removed from it. It costs O(k log n) for k changes in a
// named view, O(views · k log n) in the default view, whose zones every
// named view's merged table carries.
func (s *Snapshot) with(view string, puts []*Zone, dels []string) *Snapshot {
	if len(puts) == 0 && len(dels) == 0 {
		return s
	}
	def := s.views[DefaultView]
	cur := s.views[view]
	if cur == nil {
		// A new view sees every default zone until it shadows one.
		cur = &viewTables{merged: def.merged}
	}
	own := cur.own.tx()
	for _, z := range puts {
		own.put(z)
	}
	for _, origin := range dels {
		own.del(origin)
	}
	next := &Snapshot{version: s.version, views: make(map[string]*viewTables, len(s.views)+1), def: s.def}
	maps.Copy(next.views, s.views)
	if view == DefaultView {
		t := own.done()
		next.def = &viewTables{own: t, merged: t}
		next.views[DefaultView] = next.def
		for name, vt := range s.views {
			if name == DefaultView {
				continue
			}
			// The view sees the change where its own zones do not
			// shadow the name.
			m := vt.merged.tx()
			for _, z := range puts {
				if vt.own.get(z.origin) == nil {
					m.put(z)
				}
			}
			for _, origin := range dels {
				if vt.own.get(origin) == nil {
					m.del(origin)
				}
			}
			next.views[name] = &viewTables{own: vt.own, merged: m.done()}
		}
		return next
	}
	m := cur.merged.tx()
	for _, z := range puts {
		m.put(z)
	}
	for _, origin := range dels {
		if d := def.own.get(origin); d != nil {
			m.put(d) // the default zone it shadowed shows again
		} else {
			m.del(origin)
		}
	}
	next.views[view] = &viewTables{own: own.done(), merged: m.done()}
	return next
}

// Version is a number that grows with every published snapshot.
func (s *Snapshot) Version() uint64 { return s.version }

// Find returns the most specific zone visible in view that contains qname
// (canonical). Unknown views see the default view. It does not allocate.
func (s *Snapshot) Find(view, qname string) *Zone {
	vt := s.def
	if view != DefaultView {
		if v := s.views[view]; v != nil {
			vt = v
		}
	}
	t := &vt.merged
	if t.n == 0 {
		return nil
	}
	for off, end := 0, false; !end; off, end = dns.NextLabel(qname, off) {
		if suffix := qname[off:]; t.mayHold(suffix) {
			if z := t.get(suffix); z != nil {
				return z
			}
		}
	}
	if t.mayHold(".") {
		return t.get(".")
	}
	return nil
}

// Zone returns the zone with exactly this origin in view (not merged with
// the default view), or nil.
func (s *Snapshot) Zone(view, origin string) *Zone {
	vt := s.views[view]
	if vt == nil {
		return nil
	}
	return vt.own.get(origin)
}

// Zones returns the zones given for view (not merged with the default view).
func (s *Snapshot) Zones(view string) []*Zone {
	vt := s.views[view]
	if vt == nil {
		return nil
	}
	out := make([]*Zone, 0, vt.own.n)
	vt.own.each(func(z *Zone) { out = append(out, z) })
	return out
}

// Views returns the names of the views that hold zones.
func (s *Snapshot) Views() []string {
	out := make([]string, 0, len(s.views))
	for v := range s.views {
		out = append(out, v)
	}
	return out
}

// WithZone returns a copy of s with z put into view (replacing a zone of the
// same origin). Only the zone tables' paths to z are copied, never zone
// data.
func (s *Snapshot) WithZone(view string, z *Zone) *Snapshot {
	return s.WithZones(view, []*Zone{z})
}

// WithZones returns a copy of s with every zone of zones put into view
// (a later zone of the same origin wins), as one new version.
func (s *Snapshot) WithZones(view string, zones []*Zone) *Snapshot {
	return s.with(view, zones, nil).at(s.version + 1)
}

// WithoutZone returns a copy of s with the zone origin removed from view.
func (s *Snapshot) WithoutZone(view, origin string) *Snapshot {
	return s.with(view, nil, []string{origin}).at(s.version + 1)
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
	// published see the same pairs just after next is published, still
	// under mu (see OnPublished).
	published []func(prev, next *Snapshot)
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

// OnPublished registers fn to be called with every pair of consecutive
// snapshots just after the next one is published, under the writers' lock:
// what fn hands on (a NOTIFY to secondaries) can never reach a peer that
// then asks this server and still finds the previous version. The same
// rules as Observe apply.
func (s *Store) OnPublished(fn func(prev, next *Snapshot)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.published = append(s.published, fn)
}

func (s *Store) publish(next *Snapshot) *Snapshot {
	prev := s.cur.Load()
	for _, fn := range s.observers {
		fn(prev, next)
	}
	s.cur.Store(next)
	for _, fn := range s.published {
		fn(prev, next)
	}
	return prev
}

// NewStore returns a store holding an empty snapshot.
func NewStore() *Store {
	s := &Store{}
	s.cur.Store(emptySnapshot(0))
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

// Edits collects zone changes to publish as one snapshot. The last change
// of a (view, origin) wins, as it would publishing them one by one.
type Edits struct {
	views map[string]map[string]*Zone // nil zone: delete
}

// Put puts z into view.
func (e *Edits) Put(view string, z *Zone) { e.set(view, z.origin, z) }

// Delete removes the zone origin from view.
func (e *Edits) Delete(view, origin string) { e.set(view, origin, nil) }

func (e *Edits) set(view, origin string, z *Zone) {
	if e.views == nil {
		e.views = map[string]map[string]*Zone{}
	}
	if e.views[view] == nil {
		e.views[view] = map[string]*Zone{}
	}
	e.views[view][origin] = z
}

// Len is the number of changes held.
func (e *Edits) Len() int {
	n := 0
	for _, m := range e.views {
		n += len(m)
	}
	return n
}

// WithEdits returns a copy of s with every change of e applied, as one new
// version.
func (s *Snapshot) WithEdits(e *Edits) *Snapshot {
	next := s
	for _, view := range slices.Sorted(maps.Keys(e.views)) {
		var puts []*Zone
		var dels []string
		for origin, z := range e.views[view] {
			if z != nil {
				puts = append(puts, z)
			} else {
				dels = append(dels, origin)
			}
		}
		next = next.with(view, puts, dels)
	}
	return next.at(s.version + 1)
}

// Apply publishes every change of e as one new snapshot (nothing when e
// holds none): a cold start or a rescan publishes once, not once per zone.
func (s *Store) Apply(e *Edits) {
	if e.Len() == 0 {
		return
	}
	_ = s.Update(func(cur *Snapshot) (*Snapshot, error) { return cur.WithEdits(e), nil })
}

// PutZones publishes every zone of zones in its view (view → zones) as
// one new snapshot.
func (s *Store) PutZones(zones map[string][]*Zone) {
	var e Edits
	for view, zs := range zones {
		for _, z := range zs {
			e.Put(view, z)
		}
	}
	s.Apply(&e)
}

// DeleteZone removes the zone origin from view.
func (s *Store) DeleteZone(view, origin string) {
	_ = s.Update(func(cur *Snapshot) (*Snapshot, error) { return cur.WithoutZone(view, origin), nil })
}
