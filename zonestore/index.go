package zonestore

import (
	"hash/maphash"
	"unsafe"
)

// nameArena holds names back to back in chunks that never move: appending
// copies nothing already stored (a growing array would copy it all at every
// doubling, into fresh memory), and the zone takes the chunks as they are.
// A name is addressed by chunk<<chunkBits | offset; chunks start small (a
// zone of a few names stays small) and double up to 1<<chunkBits bytes.
type nameArena struct {
	chunks [][]byte
}

const chunkBits = 20

func (a *nameArena) get(off uint32, n uint16) string {
	if n == 0 {
		return ""
	}
	c := a.chunks[off>>chunkBits]
	o := off & (1<<chunkBits - 1)
	// Bytes once written never change: a string may share them.
	return unsafe.String(&c[o], int(n))
}

// add appends name (at most 65535 bytes) and returns its address.
func (a *nameArena) add(name string) uint32 {
	last := len(a.chunks) - 1
	if last < 0 || cap(a.chunks[last])-len(a.chunks[last]) < len(name) {
		size := 256
		if last >= 0 {
			size = min(2*cap(a.chunks[last]), 1<<chunkBits)
		}
		a.chunks = append(a.chunks, make([]byte, 0, max(size, len(name), 1)))
		last++
	}
	off := uint32(last)<<chunkBits | uint32(len(a.chunks[last]))
	a.chunks[last] = append(a.chunks[last], name...)
	return off
}

// nameIndex maps owner names to node numbers: an open-addressing hash table
// (linear probing, at most half full) whose slots hold node number + 1 (0
// for empty) in the lower half and the hash's lower 32 bits in the upper
// half: a probe reads a name only when its hash matches, and a rehash needs
// no name (the slot's position comes from those bits). It holds no pointers and 16 bytes per name at worst,
// where a Go map[string]*node costs a string header and a pointer per slot
// (and the GC's attention); names are compared against the zone's arena.
type nameIndex struct {
	seed  maphash.Seed
	slots []uint64
	used  int
}

func newNameIndex(hint int) nameIndex {
	x := nameIndex{seed: maphash.MakeSeed()}
	x.slots = make([]uint64, slotsFor(hint))
	return x
}

// slotsFor returns the table size for n names: a power of two at least 2n.
func slotsFor(n int) int {
	size := 16
	for size < 2*n {
		size *= 2
	}
	return size
}

// find returns the node number of name, or -1.
func (x *nameIndex) find(name string, names *nameArena, nodes []node) int32 {
	_, i := x.lookup(name, names, nodes)
	return i
}

// lookup returns name's hash and node number (-1 when absent).
func (x *nameIndex) lookup(name string, names *nameArena, nodes []node) (uint64, int32) {
	h := maphash.String(x.seed, name)
	if len(x.slots) == 0 {
		return h, -1
	}
	mask := uint64(len(x.slots) - 1)
	tag := h << 32
	for i := h & mask; ; i = (i + 1) & mask {
		s := x.slots[i]
		if s == 0 {
			return h, -1
		}
		if s&^0xFFFFFFFF != tag {
			continue
		}
		n := &nodes[uint32(s)-1]
		if int(n.nameLen) == len(name) && names.get(n.nameOff, n.nameLen) == name {
			return h, int32(uint32(s) - 1)
		}
	}
}

// insert adds node number i under name, which must not be present. It may
// grow the table, rehashing every node's name.
func (x *nameIndex) insert(name string, i int32) {
	x.insertHash(maphash.String(x.seed, name), i)
}

// findOrInsert returns the node number of name, or inserts next under it
// and returns next: one hash for both.
func (x *nameIndex) findOrInsert(name string, names *nameArena, nodes []node, next int32) int32 {
	h, i := x.lookup(name, names, nodes)
	if i >= 0 {
		return i
	}
	x.insertHash(h, next)
	return next
}

func (x *nameIndex) insertHash(h uint64, i int32) {
	if 2*(x.used+1) > len(x.slots) {
		x.rehash(max(2*len(x.slots), slotsFor(x.used+1)))
	}
	mask := uint64(len(x.slots) - 1)
	for j := h & mask; ; j = (j + 1) & mask {
		if x.slots[j] == 0 {
			x.slots[j] = h<<32 | uint64(uint32(i)+1)
			break
		}
	}
	x.used++
}

// rehash moves every slot to a table of size slots, by the hash bits the
// slot keeps (size is at most 2^32).
func (x *nameIndex) rehash(size int) {
	old := x.slots
	x.slots = make([]uint64, size)
	mask := uint64(size - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		for j := s >> 32 & mask; ; j = (j + 1) & mask {
			if x.slots[j] == 0 {
				x.slots[j] = s
				break
			}
		}
	}
}
