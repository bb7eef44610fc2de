package zonestore

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Builder collects records for one zone and turns them into an immutable Zone.
// It is not safe for concurrent use.
type Builder struct {
	origin string
	source string
	nodes  map[string]*node
	errs   []error
	// built is set once Build has handed the nodes to a zone: the builder
	// keeps no reference to them, and every later call fails.
	built bool
}

// ErrBuilt is returned by a Builder used after a successful Build: the zone
// owns the data now and must never change.
var ErrBuilt = errors.New("zone builder already built")

// NewBuilder starts a zone for origin (any case, trailing dot optional).
func NewBuilder(origin string) *Builder {
	return &Builder{
		origin: Canonical(origin),
		nodes:  make(map[string]*node),
	}
}

// SetSource records where the zone's data came from, for logs and errors.
func (b *Builder) SetSource(src string) { b.source = src }

// Canonical returns the lower-case fully qualified form of name. It is a
// no-op (and allocation-free) for names that already are canonical.
func Canonical(name string) string {
	return dns.Fqdn(strings.ToLower(name))
}

// Add adds one record. Owner names and the domain names inside rdata are
// lower-cased once here so lookups need no case folding (TXT and other
// free-text rdata keep their case). Records outside the zone, of a class
// other than IN, or duplicating a record already added are rejected or
// ignored as BIND does.
func (b *Builder) Add(rr dns.RR) error {
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
	rr = dns.Copy(rr)
	CanonicalRdata(rr)
	n := b.nodes[owner]
	if n == nil {
		n = &node{name: owner}
		b.nodes[owner] = n
	}
	// Share the node's name string: a million-record zone would otherwise
	// hold a million copies of owner names.
	rr.Header().Name = n.name
	set := n.get(h.Rrtype)
	if set == nil {
		n.rrsets = append(n.rrsets, rrset{typ: h.Rrtype})
		set = &n.rrsets[len(n.rrsets)-1]
	} else if len(set.variants) > 0 {
		return fmt.Errorf("%s %s: plain records mixed with a %s record set", owner, dns.TypeToString[h.Rrtype], set.policy)
	} else {
		for _, have := range set.rrs {
			if dns.IsDuplicate(have, rr) {
				return nil
			}
		}
		// One TTL per RRset (RFC 2181 §5.2): the first record's wins, as
		// BIND and Knot do.
		rr.Header().Ttl = set.rrs[0].Header().Ttl
	}
	set.rrs = append(set.rrs, rr)
	return nil
}

// ErrOutOfZone is returned by Add for a record whose owner is not in the zone.
var ErrOutOfZone = errors.New("record is outside zone")

// CanonicalRdata lower-cases the domain names inside rdata (free text such
// as TXT keeps its case). It is the one place that decides which rdata
// fields are names.
func CanonicalRdata(rr dns.RR) {
	switch r := rr.(type) {
	case *dns.NAPTR:
		r.Replacement = Canonical(r.Replacement)
	case *dns.SVCB:
		r.Target = Canonical(r.Target)
	case *dns.HTTPS:
		r.Target = Canonical(r.Target)
	case *dns.CNAME:
		r.Target = Canonical(r.Target)
	case *dns.DNAME:
		r.Target = Canonical(r.Target)
	case *dns.NS:
		r.Ns = Canonical(r.Ns)
	case *dns.MX:
		r.Mx = Canonical(r.Mx)
	case *dns.SRV:
		r.Target = Canonical(r.Target)
	case *dns.PTR:
		r.Ptr = Canonical(r.Ptr)
	case *dns.SOA:
		r.Ns = Canonical(r.Ns)
		r.Mbox = Canonical(r.Mbox)
	}
}

// Build validates the collected records and produces the zone: it needs
// exactly one SOA at the apex and NS records there, rejects CNAMEs that share
// a name with other data, and materializes empty non-terminals, delegation
// cuts, wildcard pointers, glue and additional-section data.
func (b *Builder) Build() (*Zone, error) {
	if b.built {
		return nil, ErrBuilt
	}
	errs := b.errs
	apex := b.nodes[b.origin]
	var soa *dns.SOA
	if apex != nil {
		if set := apex.get(dns.TypeSOA); set != nil {
			if len(set.rrs) > 1 {
				errs = append(errs, fmt.Errorf("zone %s: %d SOA records at the apex, want 1", b.origin, len(set.rrs)))
			}
			if len(set.rrs) > 0 {
				soa, _ = set.rrs[0].(*dns.SOA)
			}
		}
	}
	if soa == nil {
		errs = append(errs, fmt.Errorf("zone %s: no SOA record at the apex", b.origin))
	}
	if apex == nil || apex.get(dns.TypeNS) == nil || len(apex.get(dns.TypeNS).rrs) == 0 {
		errs = append(errs, fmt.Errorf("zone %s: no NS records at the apex", b.origin))
	}
	records := 0
	for name, n := range b.nodes {
		for i := range n.rrsets {
			set := &n.rrsets[i]
			records += len(set.rrs)
			for _, v := range set.variants {
				records += len(v.set.rrs)
			}
			if err := validateVariants(name, set); err != nil {
				errs = append(errs, err)
			}
			if set.typ == dns.TypeSOA && name != b.origin {
				errs = append(errs, fmt.Errorf("%s: SOA record not at the zone apex %s", name, b.origin))
			}
		}
		if n.get(dns.TypeCNAME) != nil {
			if len(n.get(dns.TypeCNAME).rrs) > 1 || (n.get(dns.TypeCNAME).policy == PolicySimple && len(n.get(dns.TypeCNAME).variants) > 1) {
				errs = append(errs, fmt.Errorf("%s: more than one CNAME record", name))
			}
			if len(n.rrsets) > 1 {
				errs = append(errs, fmt.Errorf("%s: CNAME and other data", name))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	z := &Zone{
		origin:  b.origin,
		soa:     soa,
		nodes:   b.nodes,
		records: records,
		source:  b.source,
	}
	// The zone owns the nodes from here on: the builder forgets them, so
	// nothing done with it later can reach a published zone.
	b.nodes, b.errs, b.built = nil, nil, true
	neg := dns.Copy(soa).(*dns.SOA)
	neg.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	z.negSOA = []dns.RR{neg}

	// Empty non-terminals: every ancestor of a name, up to the origin,
	// exists. Collect first, the map must not grow while ranged over.
	var ents []string
	for name := range z.nodes {
		for off, end := dns.NextLabel(name, 0); !end && len(name)-off > len(z.origin); off, end = dns.NextLabel(name, off) {
			parent := name[off:]
			if z.nodes[parent] == nil {
				ents = append(ents, parent)
			}
		}
	}
	for _, name := range ents {
		if z.nodes[name] == nil {
			z.nodes[name] = &node{name: name}
		}
	}
	// Cuts and wildcards.
	for name, n := range z.nodes {
		if name != z.origin && n.get(dns.TypeNS) != nil && len(n.get(dns.TypeNS).rrs) > 0 {
			n.cut = n // provisional: the topmost cut is resolved below
		}
		if strings.HasPrefix(name, "*.") {
			if parent := z.nodes[name[2:]]; parent != nil {
				parent.wild = n
			}
		}
	}
	for _, n := range z.nodes {
		n.cut = z.topCut(n.name)
		// Full slices: a reply that appends to a section (an OPT record,
		// a chased CNAME target) must reallocate, never write into zone
		// data shared by every concurrent query.
		for i := range n.rrsets {
			n.rrsets[i].rrs = slices.Clip(n.rrsets[i].rrs)
			for _, v := range n.rrsets[i].variants {
				v.set.rrs = slices.Clip(v.set.rrs)
				v.set.owner = n
			}
		}
	}
	for _, n := range z.nodes {
		if n.cut == n {
			n.refNS = n.get(dns.TypeNS).rrs
			n.refGlue = z.glue(n.refNS)
		}
		if n.cut != nil {
			continue
		}
		for i := range n.rrsets {
			set := &n.rrsets[i]
			switch set.typ {
			case dns.TypeMX, dns.TypeSRV, dns.TypeNS:
				set.extra = z.glue(set.rrs)
			}
		}
	}
	if err := z.buildWire(); err != nil {
		return nil, fmt.Errorf("zone %s: %w", z.origin, err)
	}
	return z, nil
}

// topCut returns the highest delegation point at or above name, or nil.
func (z *Zone) topCut(name string) *node {
	var top *node
	for off, end := 0, false; !end && len(name)-off > len(z.origin); off, end = dns.NextLabel(name, off) {
		if n := z.nodes[name[off:]]; n != nil && n.name != z.origin && n.get(dns.TypeNS) != nil && len(n.get(dns.TypeNS).rrs) > 0 {
			top = n
		}
	}
	return top
}

// glue returns the in-zone A and AAAA records of the targets of rrs (NS, MX,
// SRV), including addresses below cuts: those are exactly the glue a
// referral needs.
func (z *Zone) glue(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	seen := map[string]bool{}
	for _, rr := range rrs {
		var target string
		switch r := rr.(type) {
		case *dns.NS:
			target = r.Ns
		case *dns.MX:
			target = r.Mx
		case *dns.SRV:
			target = r.Target
		}
		if target == "" || seen[target] {
			continue
		}
		seen[target] = true
		n := z.nodes[target]
		if n == nil {
			continue
		}
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			if set := n.get(t); set != nil {
				out = append(out, set.rrs...)
			}
		}
	}
	return slices.Clip(out)
}
