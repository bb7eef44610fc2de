// Package dynupdate is the data side of RFC 2136 dynamic update: it checks
// the shape of the prerequisite and update sections, evaluates
// prerequisites against a zone's current RRsets and applies the update
// section to a working copy, returning what changed per (name, type). It
// knows nothing of where the zone lives: the Route 53 writer turns the
// changes into one ChangeBatch, a zone-file source could write a file.
package dynupdate

import (
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Source is a zone's current data as the update sees it. Names are
// canonical (lower case, fully qualified).
type Source interface {
	// RRset returns the records of (name, type). exists is true for a set
	// that exists but cannot be given as plain records (a Route 53 alias
	// or routing-policy set): rrs is then nil.
	RRset(name string, t uint16) (rrs []dns.RR, exists bool)
	// Types lists the types present at name (empty: the name holds no
	// data of its own).
	Types(name string) []uint16
}

// Key names one RRset.
type Key struct {
	Name string
	Type uint16
}

// Change is one RRset the update touched: Old as it was, New as it is to be
// (nil: deleted). Unchanged sets are not reported.
type Change struct {
	Key
	Old, New []dns.RR
}

// CheckShape enforces RFC 2136 §3.2.1 and §3.4.1 on the prerequisite and
// update sections against the zone origin: FORMERR for malformed records,
// NOTZONE for names outside the zone; NOERROR when both sections are fine.
func CheckShape(origin string, prereqs, updates []dns.RR) int {
	for _, rr := range prereqs {
		h := rr.Header()
		if !inZone(canonical(h.Name), origin) {
			return dns.RcodeNotZone
		}
		if h.Ttl != 0 {
			return dns.RcodeFormatError
		}
		switch h.Class {
		case dns.ClassANY, dns.ClassNONE:
			if !empty(rr) {
				return dns.RcodeFormatError
			}
		case dns.ClassINET:
			if h.Rrtype == dns.TypeANY || empty(rr) {
				return dns.RcodeFormatError
			}
		default:
			return dns.RcodeFormatError
		}
	}
	for _, rr := range updates {
		h := rr.Header()
		if !inZone(canonical(h.Name), origin) {
			return dns.RcodeNotZone
		}
		switch h.Rrtype {
		case dns.TypeAXFR, dns.TypeIXFR, dns.TypeMAILA, dns.TypeMAILB, dns.TypeOPT, dns.TypeTSIG:
			return dns.RcodeFormatError
		}
		switch h.Class {
		case dns.ClassINET:
			if h.Rrtype == dns.TypeANY || empty(rr) {
				return dns.RcodeFormatError
			}
		case dns.ClassANY:
			if h.Ttl != 0 || !empty(rr) {
				return dns.RcodeFormatError
			}
		case dns.ClassNONE:
			if h.Ttl != 0 || h.Rrtype == dns.TypeANY || empty(rr) {
				return dns.RcodeFormatError
			}
		default:
			return dns.RcodeFormatError
		}
	}
	return dns.RcodeSuccess
}

// Prereqs evaluates the prerequisite section (RFC 2136 §3.2) against src;
// it assumes CheckShape passed. It returns NOERROR when every prerequisite
// holds, else the rcode of the first that fails.
func Prereqs(src Source, prereqs []dns.RR) int {
	// Value-dependent prerequisites (class IN) are collected per RRset and
	// compared as whole sets (§3.2.3).
	want := map[Key][]dns.RR{}
	var order []Key
	for _, rr := range prereqs {
		h := rr.Header()
		name := canonical(h.Name)
		switch h.Class {
		case dns.ClassANY:
			if h.Rrtype == dns.TypeANY {
				if len(src.Types(name)) == 0 {
					return dns.RcodeNameError
				}
			} else if _, ok := src.RRset(name, h.Rrtype); !ok {
				return dns.RcodeNXRrset
			}
		case dns.ClassNONE:
			if h.Rrtype == dns.TypeANY {
				if len(src.Types(name)) > 0 {
					return dns.RcodeYXDomain
				}
			} else if _, ok := src.RRset(name, h.Rrtype); ok {
				return dns.RcodeYXRrset
			}
		case dns.ClassINET:
			k := Key{name, h.Rrtype}
			if _, seen := want[k]; !seen {
				order = append(order, k)
			}
			want[k] = append(want[k], rr)
		}
	}
	for _, k := range order {
		have, ok := src.RRset(k.Name, k.Type)
		if !ok || have == nil || !sameRdataSet(have, want[k]) {
			return dns.RcodeNXRrset
		}
	}
	return dns.RcodeSuccess
}

// Asserted lists the RRsets whose existence or contents the prerequisites
// assert (RRset exists, value-independent or dependent): the sets a
// compare-and-swap must hold still while the update is applied.
func Asserted(prereqs []dns.RR) []Key {
	var out []Key
	for _, rr := range prereqs {
		h := rr.Header()
		if h.Rrtype == dns.TypeANY || h.Class == dns.ClassNONE {
			continue
		}
		k := Key{canonical(h.Name), h.Rrtype}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// Apply applies the update section (RFC 2136 §3.4.2) in order to a working
// copy of src's data for the zone origin and returns the RRsets whose
// contents changed, in the order they were first touched. It assumes
// CheckShape passed. As BIND does: a CNAME that would clash with other data
// (or other data with a CNAME) is skipped, SOA changes are ignored (the
// serial is ours to keep), the apex SOA and NS survive a delete of the whole
// apex, and the last apex NS record is never deleted.
func Apply(src Source, origin string, updates []dns.RR) []Change {
	w := &work{src: src, sets: map[Key][]dns.RR{}, orig: map[Key][]dns.RR{}, opaque: map[Key]bool{}, written: map[Key]bool{}}
	for _, rr := range updates {
		h := rr.Header()
		name := canonical(h.Name)
		apex := name == origin
		switch h.Class {
		case dns.ClassINET:
			if h.Rrtype == dns.TypeSOA {
				continue
			}
			types := w.types(name)
			if h.Rrtype == dns.TypeCNAME && slices.ContainsFunc(types, func(t uint16) bool { return t != dns.TypeCNAME }) {
				continue
			}
			if h.Rrtype != dns.TypeCNAME && slices.Contains(types, dns.TypeCNAME) {
				continue
			}
			k := Key{name, h.Rrtype}
			set := w.get(k)
			add := canonicalRR(rr)
			next := make([]dns.RR, 0, len(set)+1)
			replaced := false
			for _, have := range set {
				if h.Rrtype == dns.TypeCNAME || dns.IsDuplicate(have, add) {
					if !replaced {
						next = append(next, add)
						replaced = true
					}
					continue
				}
				next = append(next, have)
			}
			if !replaced {
				next = append(next, add)
			}
			// One TTL per RRset (RFC 2181 §5.2): the added record's.
			for i, r := range next {
				if r.Header().Ttl != h.Ttl {
					c := dns.Copy(r)
					c.Header().Ttl = h.Ttl
					next[i] = c
				}
			}
			w.put(k, next)
		case dns.ClassANY:
			if h.Rrtype == dns.TypeANY {
				for _, t := range w.types(name) {
					if apex && (t == dns.TypeSOA || t == dns.TypeNS) {
						continue
					}
					w.put(Key{name, t}, nil)
				}
				continue
			}
			if apex && (h.Rrtype == dns.TypeSOA || h.Rrtype == dns.TypeNS) {
				continue
			}
			w.put(Key{name, h.Rrtype}, nil)
		case dns.ClassNONE:
			if h.Rrtype == dns.TypeSOA {
				continue
			}
			k := Key{name, h.Rrtype}
			set := w.get(k)
			var next []dns.RR
			for _, have := range set {
				if !sameRdata(have, rr) {
					next = append(next, have)
				}
			}
			if len(next) == len(set) {
				continue
			}
			if apex && h.Rrtype == dns.TypeNS && len(next) == 0 {
				continue
			}
			w.put(k, next)
		}
	}
	var out []Change
	for _, k := range w.order {
		old, cur := w.orig[k], w.sets[k]
		if w.opaque[k] && w.written[k] {
			// A set without plain records (alias, routing policy) was
			// written to: report it, so the source can refuse.
			out = append(out, Change{Key: k, Old: old, New: cur})
			continue
		}
		if len(old) == len(cur) && (len(old) == 0 || sameRdataSet(old, cur) && old[0].Header().Ttl == cur[0].Header().Ttl) {
			continue
		}
		out = append(out, Change{Key: k, Old: old, New: cur})
	}
	return out
}

// work is the update's working copy: sets touched so far, over src.
type work struct {
	src   Source
	sets  map[Key][]dns.RR
	orig  map[Key][]dns.RR
	order []Key
	// opaque: sets that exist without plain records; written: sets written.
	opaque, written map[Key]bool
	// typesAt caches the types present at a name, kept current by put.
	typesAt map[string][]uint16
}

func (w *work) get(k Key) []dns.RR {
	if set, ok := w.sets[k]; ok {
		return set
	}
	set, exists := w.src.RRset(k.Name, k.Type)
	w.sets[k], w.orig[k] = set, set
	if exists && set == nil {
		w.opaque[k] = true
	}
	w.order = append(w.order, k)
	return set
}

func (w *work) put(k Key, set []dns.RR) {
	w.get(k)
	w.written[k] = true
	w.sets[k] = set
	types := w.types(k.Name)
	i := slices.Index(types, k.Type)
	switch {
	case len(set) == 0 && i >= 0:
		w.typesAt[k.Name] = slices.Delete(slices.Clone(types), i, i+1)
	case len(set) > 0 && i < 0:
		w.typesAt[k.Name] = append(slices.Clone(types), k.Type)
	}
}

func (w *work) types(name string) []uint16 {
	if w.typesAt == nil {
		w.typesAt = map[string][]uint16{}
	}
	if t, ok := w.typesAt[name]; ok {
		return t
	}
	t := w.src.Types(name)
	w.typesAt[name] = t
	return t
}

// empty reports whether rr carries no RDATA, as prerequisites and
// deletions of class ANY must. It reads RDLENGTH, so records must come from
// an unpacked message (miekg keeps RDLENGTH from the wire).
func empty(rr dns.RR) bool { return rr.Header().Rdlength == 0 }

// sameRdata compares two records' RDATA (type included), ignoring owner
// case, class and TTL.
func sameRdata(a, b dns.RR) bool {
	if a.Header().Rrtype != b.Header().Rrtype {
		return false
	}
	ca, cb := canonicalRR(a), canonicalRR(b)
	ca.Header().Class, cb.Header().Class = dns.ClassINET, dns.ClassINET
	return dns.IsDuplicate(ca, cb)
}

func sameRdataSet(a, b []dns.RR) bool {
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y dns.RR) bool { return sameRdata(x, y) }) {
			return false
		}
	}
	for _, y := range b {
		if !slices.ContainsFunc(a, func(x dns.RR) bool { return sameRdata(x, y) }) {
			return false
		}
	}
	return true
}

// canonicalRR returns a copy of rr with its owner and the names in its
// RDATA lower-cased and class IN.
func canonicalRR(rr dns.RR) dns.RR {
	c := dns.Copy(rr)
	c.Header().Name = canonical(c.Header().Name)
	c.Header().Class = dns.ClassINET
	switch v := c.(type) {
	case *dns.CNAME:
		v.Target = canonical(v.Target)
	case *dns.NS:
		v.Ns = canonical(v.Ns)
	case *dns.PTR:
		v.Ptr = canonical(v.Ptr)
	case *dns.MX:
		v.Mx = canonical(v.Mx)
	case *dns.SRV:
		v.Target = canonical(v.Target)
	case *dns.DNAME:
		v.Target = canonical(v.Target)
	}
	return c
}

func canonical(name string) string { return strings.ToLower(dns.Fqdn(name)) }

// inZone is zonestore.InZone's rule (label-wise: an escaped dot does not
// end a label); kept here so this package stands alone.
func inZone(name, origin string) bool { return dns.IsSubDomain(origin, name) }
