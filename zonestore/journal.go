package zonestore

import (
	"bytes"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// The IXFR journal (RFC 1995): for each served zone, the differences between
// its consecutive versions, computed once when a version is published (the
// Store's observer) and kept within bounds. IXFR replies are built from it;
// when it cannot bridge a client's serial to the current one, the reply is
// the whole zone.

// JournalConfig bounds the journal of each zone: at most Versions
// differences and MaxBytes of records (wire size); the oldest go first.
type JournalConfig struct {
	Versions int   // default 100
	MaxBytes int64 // default 64 MiB
}

// Change is the difference between two consecutive versions of a zone.
// It is immutable.
type Change struct {
	From, To       *dns.SOA
	Deleted, Added []dns.RR // never the SOA: From and To carry it
	size           int64
}

// Size is the wire size of the records the change holds.
func (c *Change) Size() int64 { return c.size }

// ZoneChange is one zone that differs between two snapshots.
type ZoneChange struct {
	View, Origin string
	Old, New     *Zone // nil Old: added; nil New: removed
}

// Changed lists the zones (per view, as given, not merged) that differ
// between prev and next, by identity: a rebuilt zone with the same data is
// a change. Tables the snapshots share are skipped, so the cost follows
// what changed, not how many zones there are.
func Changed(prev, next *Snapshot) []ZoneChange {
	var out []ZoneChange
	var empty table
	for view, nv := range next.views {
		pt := &empty
		if pv := prev.views[view]; pv != nil {
			pt = &pv.own
		}
		diffTables(pt, &nv.own, func(origin string, old, new *Zone) {
			out = append(out, ZoneChange{View: view, Origin: origin, Old: old, New: new})
		})
	}
	for view, pv := range prev.views {
		if next.views[view] == nil {
			diffTables(&pv.own, &empty, func(origin string, old, _ *Zone) {
				out = append(out, ZoneChange{View: view, Origin: origin, Old: old})
			})
		}
	}
	return out
}

type journalKey struct{ view, origin string }

type zoneJournal struct {
	changes []*Change // oldest first, contiguous: changes[i].To == changes[i+1].From
	bytes   int64
}

// Journal holds the recent differences of every zone of a Store.
type Journal struct {
	cfg   JournalConfig
	mu    sync.Mutex // held for map and slice edits only, never for I/O
	zones map[journalKey]*zoneJournal
	// Totals, for metrics.
	versions, bytes atomic.Int64
}

// EnableJournal attaches a journal to s: from now on every published
// version of a zone records its difference to the previous one.
func (s *Store) EnableJournal(cfg JournalConfig) *Journal {
	if cfg.Versions <= 0 {
		cfg.Versions = 100
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 64 << 20
	}
	j := &Journal{cfg: cfg, zones: map[journalKey]*zoneJournal{}}
	s.Observe(j.record)
	return j
}

// Stats returns how many differences the journal holds and their size.
func (j *Journal) Stats() (versions, bytes int64) { return j.versions.Load(), j.bytes.Load() }

// record is the Store observer.
func (j *Journal) record(prev, next *Snapshot) {
	for _, c := range Changed(prev, next) {
		k := journalKey{c.View, c.Origin}
		if c.Old == nil || c.New == nil || !c.Old.Available() || !c.New.Available() || !SerialLess(c.Old.Serial(), c.New.Serial()) {
			// New, removed, without data (claimed, expired), or a serial
			// that did not move forward: no
			// secondary can be brought from the old version to this one
			// by IXFR.
			j.reset(k)
			continue
		}
		ch := Diff(c.Old, c.New)
		j.add(k, ch)
	}
}

func (j *Journal) reset(k journalKey) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if zj := j.zones[k]; zj != nil {
		j.versions.Add(-int64(len(zj.changes)))
		j.bytes.Add(-zj.bytes)
		delete(j.zones, k)
	}
}

func (j *Journal) add(k journalKey, ch *Change) {
	j.mu.Lock()
	defer j.mu.Unlock()
	zj := j.zones[k]
	if zj == nil {
		zj = &zoneJournal{}
		j.zones[k] = zj
	}
	if n := len(zj.changes); n > 0 && zj.changes[n-1].To.Serial != ch.From.Serial {
		// A gap (a version we did not see): start over.
		j.versions.Add(-int64(n))
		j.bytes.Add(-zj.bytes)
		zj.changes, zj.bytes = nil, 0
	}
	if ch.size > j.cfg.MaxBytes {
		// Larger than the whole budget: keep nothing, IXFR falls back to
		// the whole zone.
		j.versions.Add(-int64(len(zj.changes)))
		j.bytes.Add(-zj.bytes)
		delete(j.zones, k)
		return
	}
	// Copy on append so a reader's slice (taken under mu) stays valid.
	next := make([]*Change, 0, len(zj.changes)+1)
	next = append(append(next, zj.changes...), ch)
	zj.bytes += ch.size
	j.versions.Add(1)
	j.bytes.Add(ch.size)
	drop := 0
	for len(next)-drop > j.cfg.Versions || zj.bytes > j.cfg.MaxBytes {
		zj.bytes -= next[drop].size
		j.bytes.Add(-next[drop].size)
		j.versions.Add(-1)
		drop++
	}
	zj.changes = next[drop:]
}

// Since returns the changes that lead zone origin of view from serial from
// to serial to, oldest first, or false when the journal cannot bridge them.
// The returned changes are immutable and safe to use after the call.
func (j *Journal) Since(view, origin string, from, to uint32) ([]*Change, bool) {
	j.mu.Lock()
	zj := j.zones[journalKey{view, origin}]
	var changes []*Change
	if zj != nil {
		changes = zj.changes
	}
	j.mu.Unlock()
	start := -1
	for i, c := range changes {
		if c.From.Serial == from {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, false
	}
	for i := start; i < len(changes); i++ {
		if changes[i].To.Serial == to {
			return changes[start : i+1], true
		}
	}
	return nil, false
}

// SerialLess reports a < b in RFC 1982 serial number arithmetic.
func SerialLess(a, b uint32) bool { return a != b && int32(b-a) > 0 }

// Diff returns what turns zone old into zone new (except the SOA, which
// the change's From and To carry). Records are compared with their TTL: a
// TTL change deletes the old record and adds the new one.
func Diff(old, new *Zone) *Change {
	ch := &Change{From: old.soa, To: new.soa}
	var a, b []dns.RR
	for i := range new.nodes {
		nn := &new.nodes[i]
		on := old.find(new.name(nn))
		sets := new.nodeSets(nn)
		for j := range sets {
			t := sets[j].typ
			if t == dns.TypeSOA {
				continue
			}
			if on != nil && sameWire(old, old.get(on, t), new, &sets[j]) {
				continue // the common case: the set did not change
			}
			b = new.allRRs(&sets[j], b[:0])
			a = a[:0]
			if on != nil {
				a = old.nodeRRs(on, t, a)
			}
			diffSets(ch, a, b)
		}
		if on != nil {
			// Types the old name had and the new one does not.
			osets := old.nodeSets(on)
			for j := range osets {
				t := osets[j].typ
				if t != dns.TypeSOA && new.get(nn, t) == nil {
					diffSets(ch, old.allRRs(&osets[j], a[:0]), nil)
				}
			}
		}
	}
	for i := range old.nodes {
		on := &old.nodes[i]
		if new.find(old.name(on)) != nil {
			continue
		}
		osets := old.nodeSets(on)
		for j := range osets {
			if t := osets[j].typ; t != dns.TypeSOA {
				diffSets(ch, old.allRRs(&osets[j], a[:0]), nil)
			}
		}
	}
	ch.size = int64(dns.Len(ch.From) + dns.Len(ch.To))
	for _, rr := range ch.Deleted {
		ch.size += int64(dns.Len(rr))
	}
	for _, rr := range ch.Added {
		ch.size += int64(dns.Len(rr))
	}
	return ch
}

// nodeRRs appends the records of type t at n as a transfer sends them:
// the set's own records and every routing-policy variant's.
func (z *Zone) nodeRRs(n *node, t uint16, out []dns.RR) []dns.RR {
	set := z.get(n, t)
	if set == nil {
		return out
	}
	return z.allRRs(set, out)
}

func sameRR(a, b dns.RR) bool {
	return a == b || (a.Header().Ttl == b.Header().Ttl && dns.IsDuplicate(a, b))
}

// diffSets adds to ch what turns set a into set b.
func diffSets(ch *Change, a, b []dns.RR) {
	if len(a) == len(b) {
		same := true
		for i := range a {
			if !sameRR(a[i], b[i]) {
				same = false
				break
			}
		}
		if same {
			return
		}
	}
	if len(a) == 0 {
		ch.Added = append(ch.Added, b...)
		return
	}
	if len(b) == 0 {
		ch.Deleted = append(ch.Deleted, a...)
		return
	}
	if len(a)*len(b) <= 64 {
		// Small sets (nearly all): compare pairwise, no strings.
		for i, rr := range b {
			if !containsRR(a, rr) && !containsRR(b[:i], rr) {
				ch.Added = append(ch.Added, rr)
			}
		}
		for i, rr := range a {
			if !containsRR(b, rr) && !containsRR(a[:i], rr) {
				ch.Deleted = append(ch.Deleted, rr)
			}
		}
		return
	}
	ka := make(map[string]bool, len(a))
	for _, rr := range a {
		ka[rr.String()] = true
	}
	kb := make(map[string]bool, len(b))
	for _, rr := range b {
		s := rr.String()
		if kb[s] {
			continue
		}
		kb[s] = true
		if !ka[s] {
			ch.Added = append(ch.Added, rr)
		}
	}
	seen := make(map[string]bool, len(a))
	for _, rr := range a {
		s := rr.String()
		if !kb[s] && !seen[s] {
			ch.Deleted = append(ch.Deleted, rr)
		}
		seen[s] = true
	}
}

func containsRR(set []dns.RR, rr dns.RR) bool {
	for _, x := range set {
		if sameRR(x, rr) {
			return true
		}
	}
	return false
}

// sameWire reports whether two sets (a of zone az, b of bz) pack to the
// same bytes (records, TTLs and routing variants alike): one comparison
// instead of record by record.
func sameWire(az *Zone, a *rrset, bz *Zone, b *rrset) bool {
	if a == nil || a.count != b.count || len(az.variants(a)) != len(bz.variants(b)) {
		return false
	}
	if a.count > 0 && !bytes.Equal(az.wire[a.off:a.end], bz.wire[b.off:b.end]) {
		return false
	}
	vb := bz.variants(b)
	for i, va := range az.variants(a) {
		if va.set.count != vb[i].set.count || !bytes.Equal(az.wire[va.set.off:va.set.end], bz.wire[vb[i].set.off:vb[i].set.end]) {
			return false
		}
	}
	return true
}
