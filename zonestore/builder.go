package zonestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Builder collects records for one zone and turns them into an immutable Zone.
// It is not safe for concurrent use.
//
// Records are packed to wire form as they are added (no dns.RR is kept), into
// a few growing arrays: names, one entry per owner name, one per record and
// the rdata bytes. Build groups them into the zone's arrays in one pass.
type Builder struct {
	origin string
	source string
	names  nameArena // owner names
	index  nameIndex
	nodes  []node // nameOff and nameLen; Build fills in the rest
	lists  []recList
	recs   []brec
	data   []byte // rdata of recs
	// groups are the routing-policy groups added by AddVariant.
	groups    [][]*variant
	policies  []Policy // of groups
	groupOf   map[nodeType]int32
	groupWire map[*variant][]byte // a variant's records, packed
	buf       []byte              // packing scratch
	// last and lastName are the node of the previous Add.
	last     int32
	lastName string
	errs     []error
	// built is set once Build has handed the data to a zone: the builder
	// keeps no reference to it, and every later call fails.
	built bool
}

type nodeType struct {
	node int32
	typ  uint16
}

// recList is a node's records while building, a list in the order they
// were added (indexes in recs, -1 for none).
type recList struct{ head, tail int32 }

// brec is one added record, or the place where a routing-policy group
// joined its node (rdlen groupMark, off the group), which orders the group
// among the node's sets.
type brec struct {
	next  int32
	off   uint32 // rdata: data[off:off+rdlen]
	ttl   uint32
	typ   uint16
	rdlen uint16
}

// groupMark is the rdlen of a group's place: no rdata is that long (it
// would not fit a message).
const groupMark = 0xFFFF

// group returns the routing-policy group r stands for, or -1.
func (r *brec) group() int32 {
	if r.rdlen == groupMark {
		return int32(r.off)
	}
	return -1
}

// ErrBuilt is returned by a Builder used after a successful Build: the zone
// owns the data now and must never change.
var ErrBuilt = errors.New("zone builder already built")

// NewBuilder starts a zone for origin (any case, trailing dot optional).
func NewBuilder(origin string) *Builder {
	return &Builder{
		origin: Canonical(origin),
		index:  newNameIndex(0),
		last:   -1,
	}
}

// Grow makes room for about n more records (and as many names), for a
// caller that knows roughly how many are coming (from a file's size, say):
// a million-record zone then builds without growing its arrays.
func (b *Builder) Grow(n int) {
	if b.built || n <= 0 {
		return
	}
	const rdataLen = 8 // typical
	b.nodes = grow(b.nodes, n)
	b.lists = grow(b.lists, n)
	b.recs = grow(b.recs, n)
	b.data = grow(b.data, n*rdataLen)
	if want := slotsFor(len(b.nodes) + n); want > len(b.index.slots) {
		b.index.rehash(want)
	}
}

// SetSource records where the zone's data came from, for logs and errors.
func (b *Builder) SetSource(src string) { b.source = src }

// Canonical returns the lower-case fully qualified form of name. It is a
// no-op (and allocation-free) for names that already are canonical.
func Canonical(name string) string {
	return dns.Fqdn(strings.ToLower(name))
}

func (b *Builder) find(name string) int32 {
	return b.index.find(name, &b.names, b.nodes)
}

// nodeFor returns the node number of the canonical name, adding it.
func (b *Builder) nodeFor(name string) int32 {
	if b.last >= 0 && b.lastName == name {
		return b.last // zone files list a name's records together
	}
	i := b.index.findOrInsert(name, &b.names, b.nodes, int32(len(b.nodes)))
	if int(i) == len(b.nodes) {
		b.newNode(b.names.add(name), len(name))
	}
	b.last, b.lastName = i, name
	return i
}

// addNode adds a node named name, whose bytes are already at names[off:].
func (b *Builder) addNode(off uint32, name string) int32 {
	i := b.newNode(off, len(name))
	b.index.insert(name, i)
	return i
}

// newNode appends a node (not yet indexed) named by names[off:off+n].
func (b *Builder) newNode(off uint32, n int) int32 {
	i := int32(len(b.nodes))
	b.nodes, b.lists = grow(b.nodes, 1), grow(b.lists, 1)
	b.nodes = append(b.nodes, node{nameOff: off, nameLen: uint16(n), cut: -1, wild: -1, ext: -1})
	b.lists = append(b.lists, recList{-1, -1})
	return i
}

// Add adds one record. Owner names and the domain names inside rdata are
// lower-cased once here so lookups need no case folding (TXT and other
// free-text rdata keep their case). Records outside the zone, of a class
// other than IN, or duplicating a record already added are rejected or
// ignored as BIND does. The builder keeps no reference to rr.
func (b *Builder) Add(rr dns.RR) error {
	if needsCanonical(rr) {
		rr = dns.Copy(rr)
	}
	return b.AddOwned(rr)
}

// AddOwned is Add for a caller that hands rr over: the builder may change
// it (lower-case the names in its rdata) instead of copying it first.
func (b *Builder) AddOwned(rr dns.RR) error {
	if b.built {
		return ErrBuilt
	}
	h := rr.Header()
	if h.Class != dns.ClassINET {
		return fmt.Errorf("%s: class %s not supported, only IN", h.Name, dns.ClassToString[h.Class])
	}
	owner := Canonical(h.Name)
	if !InZone(owner, b.origin) {
		return fmt.Errorf("%s %s: %w %s", h.Name, dns.TypeToString[h.Rrtype], ErrOutOfZone, b.origin)
	}
	switch h.Rrtype {
	case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeOPT, dns.TypeTSIG:
		return fmt.Errorf("%s %s: type not supported in zone data", h.Name, dns.TypeToString[h.Rrtype])
	}
	CanonicalRdata(rr)
	rdata, err := b.packRdata(rr)
	if err != nil {
		// As before records were packed at add time: the zone does not
		// build.
		b.errs = append(b.errs, err)
		return nil
	}
	n := b.nodeFor(owner)
	if b.groupOf != nil {
		if g, ok := b.groupOf[nodeType{n, h.Rrtype}]; ok {
			return fmt.Errorf("%s %s: plain records mixed with a %s record set", owner, dns.TypeToString[h.Rrtype], b.policies[g])
		}
	}
	for r := b.lists[n].head; r >= 0; r = b.recs[r].next {
		if have := &b.recs[r]; have.typ == h.Rrtype && have.rdlen != groupMark && string(b.data[have.off:have.off+uint32(have.rdlen)]) == string(rdata) {
			return nil // a duplicate (RFC 2181 §5: a set has no duplicates)
		}
	}
	off := uint32(len(b.data))
	b.data = append(grow(b.data, len(rdata)), rdata...)
	b.addRec(n, brec{off: off, ttl: h.Ttl, typ: h.Rrtype, rdlen: uint16(len(rdata))})
	return nil
}

func (b *Builder) addRec(n int32, r brec) {
	r.next = -1
	i := int32(len(b.recs))
	b.recs = append(grow(b.recs, 1), r)
	bn := &b.lists[n]
	if bn.tail < 0 {
		bn.head = i
	} else {
		b.recs[bn.tail].next = i
	}
	bn.tail = i
}

// grow makes room for n more elements, doubling the capacity: the builder's
// arrays reach millions of elements, and append's gentler growth for large
// slices would copy each several times over. It makes the new array rather
// than letting append grow it: append clears the new capacity at once, make
// leaves fresh memory from the OS untouched until it is written.
func grow[T any](s []T, n int) []T {
	if cap(s)-len(s) >= n {
		return s
	}
	t := make([]T, len(s), max(2*cap(s), len(s)+n, 256))
	copy(t, s)
	return t
}

// packRdata packs rr and returns its rdata (valid until the next pack).
func (b *Builder) packRdata(rr dns.RR) ([]byte, error) {
	// Addresses, most of a large zone, need no packer.
	switch r := rr.(type) {
	case *dns.A:
		if ip := r.A.To4(); ip != nil {
			return ip, nil
		}
	case *dns.AAAA:
		if len(r.AAAA) == net.IPv6len {
			return r.AAAA, nil
		}
	}
	if b.buf == nil {
		b.buf = make([]byte, 2048) // most records; a larger one grows it
	}
	n, err := dns.PackRR(rr, b.buf, 0, nil, false)
	if err != nil && len(b.buf) < dns.MaxMsgSize {
		b.buf = make([]byte, dns.MaxMsgSize)
		n, err = dns.PackRR(rr, b.buf, 0, nil, false)
	}
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", rr.Header().Name, err)
	}
	start := 0
	for b.buf[start] != 0 { // skip the uncompressed owner
		start += int(b.buf[start]) + 1
	}
	start += 11 // root label, type, class, TTL, rdlength
	return b.buf[start:n], nil
}

// packPointer appends rr's record with its owner a pointer to the question.
func (b *Builder) packPointer(rr dns.RR, out []byte) ([]byte, error) {
	rdata, err := b.packRdata(rr)
	if err != nil {
		return nil, err
	}
	h := rr.Header()
	return appendPointerRecord(out, h.Rrtype, h.Ttl, rdata), nil
}

// appendPointerRecord appends one record whose owner is a pointer to the
// question name (offset 12).
func appendPointerRecord(out []byte, typ uint16, ttl uint32, rdata []byte) []byte {
	out = append(out, 0xC0, 12)
	out = binary.BigEndian.AppendUint16(out, typ)
	out = binary.BigEndian.AppendUint16(out, dns.ClassINET)
	out = binary.BigEndian.AppendUint32(out, ttl)
	out = binary.BigEndian.AppendUint16(out, uint16(len(rdata)))
	return append(out, rdata...)
}

// ErrOutOfZone is returned by Add for a record whose owner is not in the zone.
var ErrOutOfZone = errors.New("record is outside zone")

// CanonicalRdata lower-cases the domain names inside rdata (free text such
// as TXT keeps its case).
func CanonicalRdata(rr dns.RR) {
	for _, p := range rdataNames(rr) {
		if p != nil {
			*p = Canonical(*p)
		}
	}
}

// needsCanonical reports whether CanonicalRdata would change rr.
func needsCanonical(rr dns.RR) bool {
	for _, p := range rdataNames(rr) {
		if p != nil && Canonical(*p) != *p {
			return true
		}
	}
	return false
}

// rdataNames returns the domain-name fields of rr's rdata (nil for none):
// the one place that decides which rdata fields are names.
func rdataNames(rr dns.RR) [2]*string {
	switch r := rr.(type) {
	case *dns.NAPTR:
		return [2]*string{&r.Replacement}
	case *dns.SVCB:
		return [2]*string{&r.Target}
	case *dns.HTTPS:
		return [2]*string{&r.Target}
	case *dns.CNAME:
		return [2]*string{&r.Target}
	case *dns.DNAME:
		return [2]*string{&r.Target}
	case *dns.NS:
		return [2]*string{&r.Ns}
	case *dns.MX:
		return [2]*string{&r.Mx}
	case *dns.SRV:
		return [2]*string{&r.Target}
	case *dns.PTR:
		return [2]*string{&r.Ptr}
	case *dns.SOA:
		return [2]*string{&r.Ns, &r.Mbox}
	}
	return [2]*string{}
}

// Build validates the collected records and produces the zone: it needs
// exactly one SOA at the apex and NS records there, rejects CNAMEs that share
// a name with other data, and materializes empty non-terminals, delegation
// cuts, wildcard pointers, glue and additional-section data.
func (b *Builder) Build() (*Zone, error) {
	if b.built {
		return nil, ErrBuilt
	}
	z := &Zone{origin: b.origin, source: b.source, groups: b.groups, apex: -1}
	b.buildSets(z)
	if err := b.validate(z); err != nil {
		return nil, err
	}
	// Every name past this point is an ancestor or a CNAME target: the
	// names arena is complete after them.
	parent := b.addEmptyNonTerminals()
	z.nodes = b.nodes
	z.apex = b.find(b.origin)
	needWire := b.cnameTargets(z)
	// The builder's arrays become the zone's unless they grew far past
	// their length (a copy costs time, fresh memory in particular).
	z.names = b.names
	if slack(len(z.nodes), cap(z.nodes)) {
		z.nodes = slices.Clone(z.nodes)
	}
	z.index = b.index
	z.setCuts(parent)
	// The zone owns the data from here on: the builder forgets it, so
	// nothing done with it later can reach a published zone.
	b.names, b.nodes, b.lists, b.recs, b.data, b.groups, b.policies, b.groupOf, b.groupWire, b.errs, b.built = nameArena{}, nil, nil, nil, nil, nil, nil, nil, nil, nil, true
	b.index, b.lastName, b.buf = nameIndex{}, "", nil

	neg := dns.Copy(z.soa).(*dns.SOA)
	neg.Hdr.Ttl = min(z.soa.Hdr.Ttl, z.soa.Minttl)
	z.negSOA = []dns.RR{neg}
	if err := z.buildExtras(needWire); err != nil {
		return nil, fmt.Errorf("zone %s: %w", z.origin, err)
	}
	z.wire = slices.Clip(z.wire)
	return z, nil
}

// buildSets groups each node's records into rrsets, in the order their
// types were first added, and packs them into z.wire: one TTL per set (RFC
// 2181 §5.2: the first record's wins, as BIND and Knot do).
func (b *Builder) buildSets(z *Zone) {
	size, nsets := 0, 0
	for i := range b.recs {
		size += 12 + int(b.recs[i].rdlen)
	}
	for _, w := range b.groupWire {
		size += len(w)
		nsets++
	}
	var types []uint16
	typesOf := func(n int) []uint16 {
		types = types[:0]
		for r := b.lists[n].head; r >= 0; r = b.recs[r].next {
			if !slices.Contains(types, b.recs[r].typ) {
				types = append(types, b.recs[r].typ)
			}
		}
		return types
	}
	for n := range b.nodes {
		nsets += len(typesOf(n))
	}
	// Room for the negative SOA, glue and referrals that buildExtras adds:
	// in a zone of hosts they are few.
	z.wire = make([]byte, 0, size+512)
	z.sets = make([]rrset, 0, nsets)
	for n := range b.nodes {
		nd := &b.nodes[n]
		nd.set, nd.nsets = uint32(len(z.sets)), uint16(len(typesOf(n)))
		for _, t := range types {
			set := rrset{typ: t, owner: int32(n), off: uint32(len(z.wire)), ext: -1}
			ttl, first := uint32(0), true
			for r := b.lists[n].head; r >= 0; r = b.recs[r].next {
				rec := &b.recs[r]
				switch {
				case rec.typ != t:
				case rec.group() >= 0:
					g := rec.group()
					set.policy = b.policies[g]
					set.ext = int32(len(z.setExts))
					z.setExts = append(z.setExts, setExt{variants: g}) // its variants' owner is n already (AddVariant)
				default:
					if first {
						ttl, first = rec.ttl, false
					}
					z.wire = appendPointerRecord(z.wire, t, ttl, b.data[rec.off:rec.off+uint32(rec.rdlen)])
					set.count++
				}
			}
			set.end = uint32(len(z.wire))
			z.sets = append(z.sets, set)
		}
	}
	// Variants' sets follow the nodes' (their own nodes do not list them).
	first := len(z.sets)
	for _, g := range b.groups {
		for _, v := range g {
			v.tmpl.off = uint32(len(z.wire))
			z.wire = append(z.wire, b.groupWire[v]...)
			v.tmpl.end = uint32(len(z.wire))
			z.sets = append(z.sets, v.tmpl)
		}
	}
	for _, g := range b.groups {
		for _, v := range g {
			v.set = &z.sets[first]
			first++
		}
	}
	z.nodes = b.nodes
}

// validate checks the zone-wide rules and counts the records.
func (b *Builder) validate(z *Zone) error {
	errs := b.errs
	if apex := b.find(b.origin); apex >= 0 {
		if set := z.get(&z.nodes[apex], dns.TypeSOA); set != nil {
			if set.count > 1 {
				errs = append(errs, fmt.Errorf("zone %s: %d SOA records at the apex, want 1", b.origin, set.count))
			}
			if set.count > 0 {
				rrs := z.decodeWire(z.wire[set.off:set.end], b.origin, 1, nil)
				z.soa, _ = rrs[0].(*dns.SOA)
			}
		}
		if set := z.get(&z.nodes[apex], dns.TypeNS); set == nil || set.count == 0 {
			errs = append(errs, fmt.Errorf("zone %s: no NS records at the apex", b.origin))
		}
	} else {
		errs = append(errs, fmt.Errorf("zone %s: no NS records at the apex", b.origin))
	}
	if z.soa == nil {
		errs = append(errs, fmt.Errorf("zone %s: no SOA record at the apex", b.origin))
	}
	records := 0
	for n := range z.nodes {
		nd := &z.nodes[n]
		name := b.names.get(nd.nameOff, nd.nameLen)
		sets := z.nodeSets(nd)
		for i := range sets {
			set := &sets[i]
			records += int(set.count)
			vs := z.variants(set)
			for _, v := range vs {
				records += int(v.set.count)
			}
			if err := validateVariants(name, set.typ, set.policy, vs); err != nil {
				errs = append(errs, err)
			}
			if set.typ == dns.TypeSOA && name != b.origin {
				errs = append(errs, fmt.Errorf("%s: SOA record not at the zone apex %s", name, b.origin))
			}
			if set.typ == dns.TypeCNAME {
				if set.count > 1 || (set.policy == PolicySimple && len(vs) > 1) {
					errs = append(errs, fmt.Errorf("%s: more than one CNAME record", name))
				}
				if len(sets) > 1 {
					errs = append(errs, fmt.Errorf("%s: CNAME and other data", name))
				}
			}
		}
	}
	z.records = records
	return errors.Join(errs...)
}

// addEmptyNonTerminals adds every missing ancestor of a name, up to the
// origin, as a node without records (its name is a suffix of the name
// already stored), and returns each node's parent (-1 for the apex).
func (b *Builder) addEmptyNonTerminals() []int32 {
	parent := make([]int32, 0, len(b.nodes)+len(b.nodes)/64)
	lastName, last := "", int32(-1) // names come mostly sorted: siblings share a parent
	for i := 0; i < len(b.nodes); i++ {
		nd := b.nodes[i]
		name := b.names.get(nd.nameOff, nd.nameLen)
		if len(name) == len(b.origin) {
			parent = append(parent, -1)
			continue
		}
		off, end := dns.NextLabel(name, 0)
		if end {
			// A top-level name of the root zone: its parent is the apex
			// (the rest after its label is "", not ".").
			parent = append(parent, b.find(b.origin))
			continue
		}
		pname := name[off:]
		p := last
		if pname != lastName {
			if p = b.find(pname); p < 0 {
				p = b.addNode(nd.nameOff+uint32(off), pname)
			}
			lastName, last = pname, p
		}
		parent = append(parent, p)
	}
	return parent
}

// slack reports whether a capacity wastes more than a fifth of an array.
func slack(n, capacity int) bool { return capacity-n > n/4+64 }

// setCuts resolves each node's topmost cut and the wildcard children.
func (z *Zone) setCuts(parent []int32) {
	isCut := func(i int32) bool {
		if i == z.apex {
			return false
		}
		set := z.get(&z.nodes[i], dns.TypeNS)
		return set != nil && set.count > 0
	}
	for i := range z.nodes {
		nd := &z.nodes[i]
		nd.cut, nd.wild, nd.ext = -1, -1, -1
	}
	anyCut := false
	for i := range z.nodes {
		nd := &z.nodes[i]
		if isCut(int32(i)) {
			anyCut = true
		}
		if name := z.name(nd); strings.HasPrefix(name, "*.") && parent[i] >= 0 {
			z.nodes[parent[i]].wild = int32(i)
		}
	}
	if !anyCut {
		return
	}
	const unknown = -2
	for i := range z.nodes {
		z.nodes[i].cut = unknown
	}
	z.nodes[z.apex].cut = -1
	var stack []int32
	for i := range z.nodes {
		stack = stack[:0]
		j := int32(i)
		for z.nodes[j].cut == unknown {
			stack = append(stack, j)
			j = parent[j]
		}
		top := z.nodes[j].cut
		for k := len(stack) - 1; k >= 0; k-- {
			if n := stack[k]; top < 0 && isCut(n) {
				top = n
			}
			z.nodes[stack[k]].cut = top
		}
	}
}

// cnameTargets records each CNAME's target (the name of its node when it
// has one, else appended to the names) and returns the nodes that can be a
// later link of a chain, which need their owner name in wire form.
func (b *Builder) cnameTargets(z *Zone) map[int32]bool {
	need := map[int32]bool{}
	target := func(set *rrset) {
		if set.typ != dns.TypeCNAME || set.count == 0 {
			return
		}
		name, _, err := dns.UnpackDomainName(z.wire[:set.end], int(set.off)+12)
		if err != nil {
			return // packed by Add: cannot happen
		}
		e := setExt{variants: -1}
		if j := b.find(name); j >= 0 {
			e.targetOff, e.targetLen = b.nodes[j].nameOff, b.nodes[j].nameLen
			need[j] = true
		} else {
			e.targetOff, e.targetLen = b.names.add(name), uint16(len(name))
		}
		set.ext = int32(len(z.setExts))
		z.setExts = append(z.setExts, e)
	}
	for i := range z.sets {
		target(&z.sets[i])
	}
	return need
}

// buildExtras packs what the wire answers need beyond the sets: the
// negative answer's SOA, referrals (NS and glue) of cuts, additional data
// of MX, SRV and NS sets, owner names of chain links.
func (z *Zone) buildExtras(needWire map[int32]bool) error {
	buf := make([]byte, 2048) // a name, or the SOA (three names at most)
	var err error
	start := len(z.wire)
	if z.wire, err = appendBlob(z.wire, z.negSOA, buf); err != nil {
		return err
	}
	z.negWire = blobRef{off: uint32(start), end: uint32(len(z.wire)), count: 1}
	if z.negWire.suffixLen, err = wireLen(z.origin, buf); err != nil {
		return err
	}
	ext := func(n int32) *nodeExt {
		if z.nodes[n].ext < 0 {
			z.nodes[n].ext = int32(len(z.nodeExt))
			z.nodeExt = append(z.nodeExt, nodeExt{})
		}
		return &z.nodeExt[z.nodes[n].ext]
	}
	for n := range needWire {
		w, err := packName(z.name(&z.nodes[n]), buf)
		if err != nil {
			return err
		}
		e := ext(n)
		e.wname = blobRef{off: uint32(len(z.wire))}
		z.wire = append(z.wire, w...)
		e.wname.end = uint32(len(z.wire))
	}
	for i := range z.nodes {
		nd := &z.nodes[i]
		if nd.cut == int32(i) {
			ns := z.get(nd, dns.TypeNS)
			wname, err := packName(z.name(nd), buf)
			if err != nil {
				return err
			}
			refNS := z.ownedBlob(ns, wname)
			refNS.suffixLen = uint16(len(wname))
			refGlue, err := z.glue(ns, buf)
			if err != nil {
				return err
			}
			e := ext(int32(i))
			e.refNS, e.refGlue = refNS, refGlue
		}
		if nd.cut >= 0 {
			continue
		}
		sets := z.nodeSets(nd)
		for j := range sets {
			set := &sets[j]
			switch set.typ {
			case dns.TypeMX, dns.TypeSRV, dns.TypeNS:
			default:
				continue
			}
			extra, err := z.glue(set, buf)
			if err != nil {
				return err
			}
			if extra.count == 0 {
				continue
			}
			if set.ext < 0 {
				set.ext = int32(len(z.setExts))
				z.setExts = append(z.setExts, setExt{variants: -1})
			}
			z.setExts[set.ext].extra = extra
		}
	}
	return nil
}

// ownedBlob appends set's records with the owner wname (uncompressed) in
// place of the pointer to the question.
func (z *Zone) ownedBlob(set *rrset, wname []byte) blobRef {
	ref := blobRef{off: uint32(len(z.wire)), count: uint16(set.count)}
	for off := set.off; off < set.end; {
		end := off + 12 + uint32(binary.BigEndian.Uint16(z.wire[off+10:]))
		z.wire = append(z.wire, wname...)
		z.wire = append(z.wire, z.wire[off+2:end]...)
		off = end
	}
	ref.end = uint32(len(z.wire))
	return ref
}

// glue appends the in-zone A and AAAA records of the targets of set (NS,
// MX, SRV), including addresses below cuts: those are exactly the glue a
// referral needs.
func (z *Zone) glue(set *rrset, buf []byte) (blobRef, error) {
	skip := map[uint16]int{dns.TypeNS: 0, dns.TypeMX: 2, dns.TypeSRV: 6}[set.typ]
	var seen []string
	ref := blobRef{off: uint32(len(z.wire))}
	for off := set.off; off < set.end; {
		end := off + 12 + uint32(binary.BigEndian.Uint16(z.wire[off+10:]))
		target, _, err := dns.UnpackDomainName(z.wire[:end], int(off)+12+skip)
		off = end
		if err != nil || slices.Contains(seen, target) {
			continue
		}
		seen = append(seen, target)
		n := z.find(target)
		if n == nil {
			continue
		}
		var wname []byte
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			if a := z.get(n, t); a != nil && a.count > 0 {
				if wname == nil {
					if wname, err = packName(target, buf); err != nil {
						return blobRef{}, err
					}
				}
				part := z.ownedBlob(a, wname)
				ref.count += part.count
			}
		}
	}
	ref.end = uint32(len(z.wire))
	return ref, nil
}
