package zonestore

import "hash/maphash"

// nameIndex maps owner names to node numbers: an open-addressing hash table
// (linear probing, at most half full) whose slots hold node number + 1 (0
// for empty) and the hash's upper half, so a probe reads a name only when
// its hash matches. It holds no pointers and 16 bytes per name at worst,
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
func (x *nameIndex) find(name, names string, nodes []node) int32 {
	if len(x.slots) == 0 {
		return -1
	}
	mask := uint64(len(x.slots) - 1)
	h := maphash.String(x.seed, name)
	tag := h &^ 0xFFFFFFFF
	for i := h & mask; ; i = (i + 1) & mask {
		s := x.slots[i]
		if s == 0 {
			return -1
		}
		if s&^0xFFFFFFFF != tag {
			continue
		}
		n := &nodes[uint32(s)-1]
		if int(n.nameLen) == len(name) && names[n.nameOff:n.nameOff+uint32(n.nameLen)] == name {
			return int32(uint32(s) - 1)
		}
	}
}

// insert adds node number i under name, which must not be present. It may
// grow the table, rehashing every node's name.
func (x *nameIndex) insert(name string, i int32, names string, nodes []node) {
	if 2*(x.used+1) > len(x.slots) {
		x.rehash(max(2*len(x.slots), slotsFor(x.used+1)), names, nodes)
	}
	x.put(name, i)
	x.used++
}

func (x *nameIndex) put(name string, i int32) {
	mask := uint64(len(x.slots) - 1)
	h := maphash.String(x.seed, name)
	for j := h & mask; ; j = (j + 1) & mask {
		if x.slots[j] == 0 {
			x.slots[j] = h&^0xFFFFFFFF | uint64(uint32(i)+1)
			return
		}
	}
}

func (x *nameIndex) rehash(size int, names string, nodes []node) {
	old := x.slots
	x.slots = make([]uint64, size)
	mask := uint64(size - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		// Rehash without the names: the tag keeps the upper half of the
		// hash, and the old slot's position its lower bits.
		n := &nodes[uint32(s)-1]
		h := maphash.String(x.seed, names[n.nameOff:n.nameOff+uint32(n.nameLen)])
		for j := h & mask; ; j = (j + 1) & mask {
			if x.slots[j] == 0 {
				x.slots[j] = s
				break
			}
		}
	}
}
