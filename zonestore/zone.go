// Package zonestore holds immutable authoritative zones and answers queries from
// them per RFC 1034 §4.3.2 and RFC 4592. It knows nothing of the network or of
// AWS: zones are built once by a Builder, never change afterwards, and are
// published to readers through Store's atomic pointer.
package zonestore

import (
	"encoding/binary"
	"encoding/hex"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/miekg/dns"
)

// The zone's data lives in a few large arrays without pointers, so a
// million-record zone costs the garbage collector almost nothing to scan and
// little memory (about 120 bytes for an A record under its own name, where a
// dns.RR per record, a node struct with slices and a map entry cost 500):
//
//   - names: every owner name (and CNAME target), concatenated; a node
//     refers to its name by offset and length.
//   - nodes: one per owner name, empty non-terminals included; index is an
//     open-addressing hash table of node numbers for exact-name lookups.
//   - sets: the rrsets of every node, each node's contiguous.
//   - wire: every set's records in wire form, packed back to back. Records
//     are kept only in this form: the fast path copies the bytes; the
//     dns.Msg path decodes a set on first use and keeps it (dec, see
//     decoded); transfers and diffs decode fresh records each time.
//
// Nothing in a Zone changes after Build but the decoded-set cache, which is
// filled with atomic compare-and-swap, so readers share it without locks.

// rrset is one (owner, type) set.
type rrset struct {
	typ    uint16
	policy Policy
	// count is the number of records in wire (0 for a routing-policy
	// group, whose records are its variants').
	count uint32
	owner int32 // node number
	// wire[off:end] holds the records, each owner replaced by a pointer to
	// the question name (offset 12): what an answer section holds when the
	// owner is the query name.
	off, end uint32
	ext      int32 // index in Zone.setExts, -1 for none
}

// setExt is what few sets need: additional-section data (in-zone addresses
// of MX/SRV/NS targets, computed at build time so the query path never
// searches for them), a CNAME's target, routing-policy variants.
type setExt struct {
	extra blobRef
	// target is a CNAME's target: names[targetOff:targetOff+targetLen].
	targetOff uint32
	targetLen uint16
	// variants: Zone.groups[variants] holds a routing-policy or alias
	// group's record sets (-1 for none); each query chooses among them.
	variants int32
}

// node is one owner name of the tree. Empty non-terminals are nodes with no
// rrsets, so "does this name exist" is a single lookup (RFC 4592 §2.2.2).
type node struct {
	nameOff uint32
	nameLen uint16
	nsets   uint16 // sets[set:set+nsets], few per name: a linear scan beats a map
	set     uint32
	// cut is the topmost delegation point at or above this node (-1 when
	// the node is authoritative data). Every name at or below a cut answers
	// with a referral; precomputing it avoids walking up the tree per query.
	cut int32
	// wild is the "*.<name>" child, the source of synthesis for names that
	// do not exist directly below this node (-1 for none).
	wild int32
	// ext holds what only cuts and CNAME targets need (-1 for none).
	ext int32
}

// nodeExt is a node's rarely needed data: the referral (NS and glue) of a
// cut, and the owner in wire form for a node that can be a later link of a
// CNAME chain.
type nodeExt struct {
	refNS, refGlue blobRef
	wname          blobRef // data only
	ref            atomic.Pointer[decoded]
}

// decoded is a set's records (and its additional data, or a referral's NS
// and glue) as dns.RR: made on first use by the paths that need them
// (dns.Msg replies), then shared, read-only, by every later reply. The fast
// path never needs them, so only names asked over TCP or with options the
// fast path leaves to the full handler pay their memory. The slices are
// full (cap = len): a reply that appends must reallocate.
type decoded struct{ rrs, extra []dns.RR }

// Zone is one authoritative zone. It is immutable once built: every method is
// safe for concurrent use and returned slices must be treated as read-only.
type Zone struct {
	origin  string
	soa     *dns.SOA
	negSOA  []dns.RR // SOA with TTL = min(SOA TTL, MINIMUM), RFC 2308 §3
	negWire blobRef
	names   nameArena
	nodes   []node
	index   nameIndex
	sets    []rrset
	setExts []setExt
	nodeExt []nodeExt
	groups  [][]*variant
	wire    []byte
	// dec holds each set's decoded records, made on the first query
	// that needs one: a zone answered only from the fast path never has it.
	decOnce sync.Once
	dec     []atomic.Pointer[decoded] // per set
	apex    int32
	records int
	source  string
	// unavailable marks a claimed zone without data (see Unavailable).
	unavailable bool
	// inOrder caches the canonical order of the nodes: computed on the
	// first transfer, then shared by every transfer of this version.
	inOrder    sync.Once
	inOrderIdx []int32
}

func (z *Zone) name(n *node) string { return z.names.get(n.nameOff, n.nameLen) }

// find returns the node of the canonical name, or nil.
func (z *Zone) find(name string) *node {
	if i := z.index.find(name, &z.names, z.nodes); i >= 0 {
		return &z.nodes[i]
	}
	return nil
}

func (z *Zone) nodeSets(n *node) []rrset { return z.sets[n.set : n.set+uint32(n.nsets)] }

func (z *Zone) get(n *node, t uint16) *rrset {
	sets := z.nodeSets(n)
	for i := range sets {
		if sets[i].typ == t {
			return &sets[i]
		}
	}
	return nil
}

func (z *Zone) owner(set *rrset) string { return z.name(&z.nodes[set.owner]) }

// variants returns the routing-policy group of set (nil for a plain set).
func (z *Zone) variants(set *rrset) []*variant {
	if set.ext < 0 || z.setExts[set.ext].variants < 0 {
		return nil
	}
	return z.groups[z.setExts[set.ext].variants]
}

// cnameTarget returns the target of a CNAME set ("" for other sets).
func (z *Zone) cnameTarget(set *rrset) string {
	if set.typ != dns.TypeCNAME || set.ext < 0 {
		return ""
	}
	e := &z.setExts[set.ext]
	return z.names.get(e.targetOff, e.targetLen)
}

// setIndex returns the index of set in z.sets, where every set lives
// (variants' too).
func (z *Zone) setIndex(set *rrset) int32 {
	return int32((uintptr(unsafe.Pointer(set)) - uintptr(unsafe.Pointer(unsafe.SliceData(z.sets)))) / unsafe.Sizeof(rrset{}))
}

// setRRs returns set's records decoded (see decoded).
func (z *Zone) setRRs(set *rrset) *decoded {
	z.decOnce.Do(func() { z.dec = make([]atomic.Pointer[decoded], len(z.sets)) })
	p := &z.dec[z.setIndex(set)]
	if d := p.Load(); d != nil {
		return d
	}
	d := &decoded{rrs: slices.Clip(z.decodeSet(set, nil))}
	if set.ext >= 0 && z.setExts[set.ext].extra.count > 0 {
		d.extra = slices.Clip(decodeBlob(z.blobData(z.setExts[set.ext].extra), nil))
	}
	if p.CompareAndSwap(nil, d) {
		return d
	}
	return p.Load() // another reader decoded it first: share one copy
}

// referralRRs returns a cut's NS and glue decoded (see decoded).
func (z *Zone) referralRRs(e *nodeExt) *decoded {
	if d := e.ref.Load(); d != nil {
		return d
	}
	d := &decoded{rrs: slices.Clip(decodeBlob(z.blobData(e.refNS), nil)), extra: slices.Clip(decodeBlob(z.blobData(e.refGlue), nil))}
	if e.ref.CompareAndSwap(nil, d) {
		return d
	}
	return e.ref.Load()
}

// decodeSet appends set's records, decoded from their wire form, to out.
// The records are new: the caller may change them.
func (z *Zone) decodeSet(set *rrset, out []dns.RR) []dns.RR {
	if set.count == 0 {
		return out
	}
	return z.decodeWire(z.wire[set.off:set.end], z.owner(set), int(set.count), out)
}

// decodeWire decodes count records of data, each with a two-byte owner
// (a compression pointer) that owner stands for.
func (z *Zone) decodeWire(data []byte, owner string, count int, out []dns.RR) []dns.RR {
	out = slices.Grow(out, count)
	for off := 0; off+12 <= len(data); {
		var rr dns.RR
		rr, off = unpackAfterOwner(owner, data, off+2)
		out = append(out, rr)
	}
	return out
}

// decodeBlob decodes a blob's records (uncompressed owners).
func decodeBlob(data []byte, out []dns.RR) []dns.RR {
	for off := 0; off < len(data); {
		name, n, err := dns.UnpackDomainName(data, off)
		if err != nil || n+10 > len(data) {
			return out // packed by Build: cannot happen
		}
		var rr dns.RR
		rr, off = unpackAfterOwner(name, data, n)
		out = append(out, rr)
	}
	return out
}

// unpackAfterOwner decodes the record of owner whose type, class, TTL,
// rdlength and rdata start at data[off:], and returns it and its end.
func unpackAfterOwner(owner string, data []byte, off int) (dns.RR, int) {
	h := dns.RR_Header{
		Name:     owner,
		Rrtype:   binary.BigEndian.Uint16(data[off:]),
		Class:    binary.BigEndian.Uint16(data[off+2:]),
		Ttl:      binary.BigEndian.Uint32(data[off+4:]),
		Rdlength: binary.BigEndian.Uint16(data[off+8:]),
	}
	end := off + 10 + int(h.Rdlength)
	return unpackRdata(h, data[:end], off+10), end
}

// unpackRdata decodes the rdata at msg[off:] (msg ends with it) for h. The
// bytes were packed from a record, so they decode; should a type's packer
// and unpacker ever disagree, the record is given in the RFC 3597 form,
// which carries the same bytes, rather than failing a query.
func unpackRdata(h dns.RR_Header, msg []byte, off int) dns.RR {
	rr, _, err := dns.UnpackRRWithHeader(h, msg, off)
	if err != nil {
		rr = &dns.RFC3597{Hdr: h, Rdata: hex.EncodeToString(msg[off:])}
	}
	rr.Header().Rdlength = 0 // as the records were added
	return rr
}

// allRRs appends the records of set as a transfer sends them: the set's own
// records and every routing-policy variant's.
func (z *Zone) allRRs(set *rrset, out []dns.RR) []dns.RR {
	out = z.decodeSet(set, out)
	for _, v := range z.variants(set) {
		out = z.decodeSet(v.set, out)
	}
	return out
}

// Unavailable returns a placeholder for a zone that is ours but has no data
// to serve: its source exists and failed to load (a zone file without SOA,
// unreadable, being written). Every lookup in it gives Kind ServFail, so
// names in it are answered SERVFAIL rather than passed to a forwarder that
// would ask someone else about our names. It has no records, SOA or serial.
func Unavailable(origin, source string) *Zone {
	return &Zone{origin: Canonical(origin), source: source, unavailable: true}
}

// Available reports whether the zone has data; false for a placeholder made
// by Unavailable.
func (z *Zone) Available() bool { return !z.unavailable }

// Origin returns the zone's canonical (lower-case, fully qualified) name.
func (z *Zone) Origin() string { return z.origin }

// SOA returns the zone's SOA record (nil for an unavailable zone).
func (z *Zone) SOA() *dns.SOA { return z.soa }

// NegativeSOA returns the SOA as negative answers carry it (TTL
// min(SOA TTL, MINIMUM)); shared, read-only. Nil for an unavailable zone.
func (z *Zone) NegativeSOA() dns.RR {
	if len(z.negSOA) == 0 {
		return nil
	}
	return z.negSOA[0]
}

// Serial returns the SOA serial (0 for an unavailable zone).
func (z *Zone) Serial() uint32 {
	if z.soa == nil {
		return 0
	}
	return z.soa.Serial
}

// Records returns the number of resource records in the zone.
func (z *Zone) Records() int { return z.records }

// Source says where the zone came from (a file path, "route53:Z…"), for logs.
func (z *Zone) Source() string { return z.source }

// Names returns the number of owner names, empty non-terminals included.
func (z *Zone) Names() int { return len(z.nodes) }

// RRs returns every record of the zone in canonical order, SOA first, for
// zone transfers and zone-file dumps. The records are decoded for this call:
// the caller may keep or change them (the SOA is the zone's own, read-only).
func (z *Zone) RRs() []dns.RR {
	if z.unavailable {
		return nil
	}
	return slices.AppendSeq(make([]dns.RR, 0, z.records), z.All())
}

// All yields what RRs returns, in the same order, without holding it all:
// an AXFR of a million-record zone keeps one message's records alive at a
// time, not a million decoded records.
func (z *Zone) All() iter.Seq[dns.RR] {
	return func(yield func(dns.RR) bool) {
		if z.unavailable {
			return
		}
		z.inOrder.Do(func() { z.inOrderIdx = z.sortedNodes() })
		if !yield(z.soa) {
			return
		}
		var buf []dns.RR
		for _, i := range z.inOrderIdx {
			sets := z.nodeSets(&z.nodes[i])
			for j := range sets {
				if sets[j].typ == dns.TypeSOA {
					continue
				}
				buf = z.allRRs(&sets[j], buf[:0])
				for _, rr := range buf {
					if !yield(rr) {
						return
					}
				}
			}
		}
	}
}

// sortedNodes returns the node numbers in canonical order.
func (z *Zone) sortedNodes() []int32 {
	// Sort by a key computed once per name (labels from the root, each
	// followed by a 0 byte: canonicalLess's order) rather than splitting
	// names in every comparison: a million-record zone sorts in a second.
	type keyed struct {
		key string
		i   int32
	}
	names := make([]keyed, 0, len(z.nodes))
	var kb []byte
	for i := range z.nodes {
		names = append(names, keyed{string(canonicalKey(kb[:0], z.name(&z.nodes[i]))), int32(i)})
	}
	slices.SortFunc(names, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	out := make([]int32, len(names))
	for i, k := range names {
		out[i] = k.i
	}
	return out
}

// WriteTo writes the zone as RFC 1035 zone-file text.
func (z *Zone) WriteTo(w interface{ Write([]byte) (int, error) }) (int64, error) {
	var total int64
	n, err := w.Write([]byte("$ORIGIN " + z.origin + "\n"))
	total += int64(n)
	if err != nil {
		return total, err
	}
	for _, rr := range z.RRs() {
		n, err := w.Write([]byte(rr.String() + "\n"))
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// canonicalKey appends name's labels from the root, each followed by a 0
// byte: comparing keys as strings is canonicalLess.
func canonicalKey(kb []byte, name string) []byte {
	if strings.IndexByte(name, '\\') >= 0 {
		labels := dns.SplitDomainName(name)
		for i := len(labels) - 1; i >= 0; i-- {
			kb = append(append(kb, labels[i]...), 0)
		}
		return kb
	}
	end := len(name)
	if end > 0 && name[end-1] == '.' {
		end--
	}
	for end > 0 {
		start := strings.LastIndexByte(name[:end], '.') + 1
		kb = append(append(kb, name[start:end]...), 0)
		end = start - 1
	}
	return kb
}

// CanonicalLess orders names per RFC 4034 §6.1: by labels from the root.
func CanonicalLess(a, b string) bool {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		x, y := strings.ToLower(la[i]), strings.ToLower(lb[j])
		if x != y {
			return x < y
		}
	}
	return len(la) < len(lb)
}

// InZone reports whether the canonical name is at or below origin.
func InZone(name, origin string) bool {
	if origin == "." {
		return true
	}
	if !strings.HasSuffix(name, origin) {
		return false
	}
	if len(name) == len(origin) {
		return true
	}
	// The byte before origin must end a label: a '.' that is not itself
	// escaped ("x\.example." is one label "x.example" under ".").
	i := len(name) - len(origin) - 1
	if name[i] != '.' {
		return false
	}
	slashes := 0
	for j := i - 1; j >= 0 && name[j] == '\\'; j-- {
		slashes++
	}
	return slashes%2 == 0
}
