package zonestore

import (
	"hash/maphash"
	"math/bits"
)

// table maps zone origins to zones. It is persistent: put and del return a
// new table that shares every untouched node with the old one (a hash
// array mapped trie, path-copying), so publishing one zone in a store of
// many costs O(log n), never a copy of the whole table. Lookups take no
// lock and do not allocate. The zero table is empty.
type table struct {
	root *tnode
	n    int
	// lengths has a bit per length (in bytes) some origin has: Find
	// skips the suffixes of qname no zone can match without hashing them.
	lengths [4]uint64
	// counts backs lengths (origins per length); shared between tables,
	// copied on write.
	counts *[256]int32
}

const (
	tbits = 6 // hash bits per trie level: 64-way nodes
	tmask = 1<<tbits - 1
)

// tnode is one trie level. Below 64 bits of hash it is a bitmap-indexed
// array of slots; at shift ≥ 64 (keys whose whole hash collides) bitmap is
// unused and slots is a plain list.
type tnode struct {
	bitmap uint64
	slots  []tslot
	// edit is the batch (tx) that made this node and may still change it
	// in place; nil, or a finished batch's, for published nodes.
	edit *edit
}

// tslot is a leaf (zone, under its origin) or a subtree (sub != nil).
type tslot struct {
	hash uint64
	zone *Zone
	sub  *tnode
}

// edit identifies one batch of changes. It has a size so that every
// new(edit) is a distinct pointer.
type edit struct{ _ byte }

var tseed = maphash.MakeSeed()

func thash(key string) uint64 { return maphash.String(tseed, key) }

// mayHold reports whether some origin of t is as long as key.
func (t *table) mayHold(key string) bool {
	l := len(key) & 255 // names are at most 255 bytes
	return t.lengths[l>>6]&(1<<(l&63)) != 0
}

// get returns the zone stored under key, or nil.
func (t *table) get(key string) *Zone { return t.getH(key, thash(key)) }

// getH is get with the key's hash given (tests force collisions with it).
func (t *table) getH(key string, h uint64) *Zone {
	n := t.root
	if n == nil {
		return nil
	}
	for shift := uint(0); ; shift += tbits {
		if shift >= 64 {
			for i := range n.slots {
				if n.slots[i].zone.origin == key {
					return n.slots[i].zone
				}
			}
			return nil
		}
		bit := uint64(1) << (h >> shift & tmask)
		if n.bitmap&bit == 0 {
			return nil
		}
		s := &n.slots[bits.OnesCount64(n.bitmap&(bit-1))]
		if s.sub != nil {
			n = s.sub
			continue
		}
		if s.hash == h && s.zone.origin == key {
			return s.zone
		}
		return nil
	}
}

// each calls fn for every zone of t, in trie order.
func (t *table) each(fn func(*Zone)) { t.root.each(fn) }

func (n *tnode) each(fn func(*Zone)) {
	if n == nil {
		return
	}
	for i := range n.slots {
		if s := &n.slots[i]; s.sub != nil {
			s.sub.each(fn)
		} else {
			fn(s.zone)
		}
	}
}

// tx is a batch of changes to a table: nodes it creates belong to it and
// are changed in place by its later operations, so a batch of k changes
// copies each touched node once, not k times. done returns the table;
// the tx must not be used after.
type tx struct {
	t table
	e *edit
	// counted: counts is already this tx's copy.
	counted bool
}

func (t table) tx() *tx { return &tx{t: t, e: new(edit)} }

func (x *tx) done() table {
	x.e = nil
	return x.t
}

func (x *tx) count(origin string, d int32) {
	if !x.counted {
		c := new([256]int32)
		if x.t.counts != nil {
			*c = *x.t.counts
		}
		x.t.counts, x.counted = c, true
	}
	l := len(origin) & 255
	x.t.counts[l] += d
	if x.t.counts[l] > 0 {
		x.t.lengths[l>>6] |= 1 << (l & 63)
	} else {
		x.t.lengths[l>>6] &^= 1 << (l & 63)
	}
}

// own returns n if this tx may change it in place, else a copy that it may
// (with room for one more slot).
func (x *tx) own(n *tnode) *tnode {
	if n.edit == x.e {
		return n
	}
	c := &tnode{bitmap: n.bitmap, slots: make([]tslot, len(n.slots), len(n.slots)+1), edit: x.e}
	copy(c.slots, n.slots)
	return c
}

// put stores z under its origin, replacing any zone of that origin.
func (x *tx) put(z *Zone) { x.putH(z, thash(z.origin)) }

func (x *tx) putH(z *Zone, h uint64) {
	key := z.origin
	root, added := x.putNode(x.t.root, h, 0, key, z)
	x.t.root = root
	if added {
		x.t.n++
		x.count(key, 1)
	}
}

func (x *tx) putNode(n *tnode, h uint64, shift uint, key string, z *Zone) (*tnode, bool) {
	if n == nil {
		return &tnode{bitmap: uint64(1) << (h >> shift & tmask), slots: []tslot{{hash: h, zone: z}}, edit: x.e}, true
	}
	if shift >= 64 {
		for i := range n.slots {
			if n.slots[i].zone.origin == key {
				if n.slots[i].zone == z {
					return n, false
				}
				n = x.own(n)
				n.slots[i].zone = z
				return n, false
			}
		}
		n = x.own(n)
		n.slots = append(n.slots, tslot{hash: h, zone: z})
		return n, true
	}
	bit := uint64(1) << (h >> shift & tmask)
	pos := bits.OnesCount64(n.bitmap & (bit - 1))
	if n.bitmap&bit == 0 {
		n = x.own(n)
		n.slots = append(n.slots, tslot{})
		copy(n.slots[pos+1:], n.slots[pos:])
		n.slots[pos] = tslot{hash: h, zone: z}
		n.bitmap |= bit
		return n, true
	}
	s := n.slots[pos]
	switch {
	case s.sub != nil:
		sub, added := x.putNode(s.sub, h, shift+tbits, key, z)
		if sub != s.sub {
			n = x.own(n)
			n.slots[pos].sub = sub
		}
		return n, added
	case s.zone.origin == key:
		if s.zone != z {
			n = x.own(n)
			n.slots[pos].zone = z
		}
		return n, false
	default:
		// Two keys share this slot: push both one level down.
		n = x.own(n)
		n.slots[pos] = tslot{sub: x.pair(s, tslot{hash: h, zone: z}, shift+tbits)}
		return n, true
	}
}

// pair makes the subtree at shift holding the leaves a and b.
func (x *tx) pair(a, b tslot, shift uint) *tnode {
	if shift >= 64 {
		return &tnode{slots: []tslot{a, b}, edit: x.e}
	}
	ia, ib := a.hash>>shift&tmask, b.hash>>shift&tmask
	switch {
	case ia == ib:
		return &tnode{bitmap: 1 << ia, slots: []tslot{{sub: x.pair(a, b, shift+tbits)}}, edit: x.e}
	case ia < ib:
		return &tnode{bitmap: 1<<ia | 1<<ib, slots: []tslot{a, b}, edit: x.e}
	default:
		return &tnode{bitmap: 1<<ia | 1<<ib, slots: []tslot{b, a}, edit: x.e}
	}
}

// del removes the zone of origin key, if any.
func (x *tx) del(key string) { x.delH(key, thash(key)) }

func (x *tx) delH(key string, h uint64) {
	root, removed := x.delNode(x.t.root, h, 0, key)
	if !removed {
		return
	}
	if root != nil && len(root.slots) == 0 {
		root = nil
	}
	x.t.root = root
	x.t.n--
	x.count(key, -1)
}

// delNode returns n without key. A subtree left with a single leaf is
// replaced by that leaf in its parent, and an empty one is dropped, so the
// trie stays as shallow as its keys need.
func (x *tx) delNode(n *tnode, h uint64, shift uint, key string) (*tnode, bool) {
	if n == nil {
		return nil, false
	}
	if shift >= 64 {
		for i := range n.slots {
			if n.slots[i].zone.origin == key {
				n = x.own(n)
				n.slots = append(n.slots[:i], n.slots[i+1:]...)
				return n, true
			}
		}
		return n, false
	}
	bit := uint64(1) << (h >> shift & tmask)
	if n.bitmap&bit == 0 {
		return n, false
	}
	pos := bits.OnesCount64(n.bitmap & (bit - 1))
	s := n.slots[pos]
	if s.sub == nil {
		if s.zone.origin != key {
			return n, false
		}
		n = x.own(n)
		n.slots = append(n.slots[:pos], n.slots[pos+1:]...)
		n.bitmap &^= bit
		return n, true
	}
	sub, removed := x.delNode(s.sub, h, shift+tbits, key)
	if !removed {
		return n, false
	}
	n = x.own(n)
	switch {
	case len(sub.slots) == 0:
		n.slots = append(n.slots[:pos], n.slots[pos+1:]...)
		n.bitmap &^= bit
	case len(sub.slots) == 1 && sub.slots[0].sub == nil:
		n.slots[pos] = sub.slots[0]
	default:
		n.slots[pos].sub = sub
	}
	return n, true
}

// diffTables calls fn for every origin whose zone differs between a and b
// (nil old: added; nil new: removed). Subtrees the two tables share are
// skipped, so the cost follows what changed, not the table size.
func diffTables(a, b *table, fn func(origin string, old, new *Zone)) {
	diffNodes(a.root, b.root, 0, fn)
}

func diffNodes(a, b *tnode, shift uint, fn func(origin string, old, new *Zone)) {
	if a == b {
		return
	}
	if a == nil || b == nil || shift >= 64 {
		diffLeaves(leaves(a, nil), leaves(b, nil), fn)
		return
	}
	for set := a.bitmap | b.bitmap; set != 0; set &= set - 1 {
		bit := set & -set
		var sa, sb *tslot
		if a.bitmap&bit != 0 {
			sa = &a.slots[bits.OnesCount64(a.bitmap&(bit-1))]
		}
		if b.bitmap&bit != 0 {
			sb = &b.slots[bits.OnesCount64(b.bitmap&(bit-1))]
		}
		switch {
		case sa != nil && sb != nil && sa.sub != nil && sb.sub != nil:
			diffNodes(sa.sub, sb.sub, shift+tbits, fn)
		case sa != nil && sb != nil && sa.sub == nil && sb.sub == nil && sa.zone.origin == sb.zone.origin:
			if sa.zone != sb.zone {
				fn(sa.zone.origin, sa.zone, sb.zone)
			}
		default:
			diffLeaves(slotLeaves(sa), slotLeaves(sb), fn)
		}
	}
}

func slotLeaves(s *tslot) []tslot {
	switch {
	case s == nil:
		return nil
	case s.sub != nil:
		return leaves(s.sub, nil)
	}
	return []tslot{*s}
}

func leaves(n *tnode, out []tslot) []tslot {
	if n == nil {
		return out
	}
	for _, s := range n.slots {
		if s.sub != nil {
			out = leaves(s.sub, out)
		} else {
			out = append(out, s)
		}
	}
	return out
}

// diffLeaves compares two lists of leaves (the keys under one slot; few,
// unless the two tries took different shapes there).
func diffLeaves(a, b []tslot, fn func(origin string, old, new *Zone)) {
	in := func(list []tslot) func(string) *Zone {
		if len(list) <= 8 {
			return func(key string) *Zone {
				for _, s := range list {
					if s.zone.origin == key {
						return s.zone
					}
				}
				return nil
			}
		}
		m := make(map[string]*Zone, len(list))
		for _, s := range list {
			m[s.zone.origin] = s.zone
		}
		return func(key string) *Zone { return m[key] }
	}
	inA, inB := in(a), in(b)
	for _, s := range b {
		if old := inA(s.zone.origin); old != s.zone {
			fn(s.zone.origin, old, s.zone)
		}
	}
	for _, s := range a {
		if inB(s.zone.origin) == nil {
			fn(s.zone.origin, s.zone, nil)
		}
	}
}
