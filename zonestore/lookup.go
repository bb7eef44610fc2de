package zonestore

import (
	"github.com/miekg/dns"
)

// Kind says what kind of answer a lookup produced; the server maps it to
// rcode and flags in one place.
type Kind uint8

const (
	// Answer: records in Answer (possibly a CNAME chain), AA set.
	Answer Kind = iota
	// NoData: the name exists but has no records of the type; SOA in Ns.
	NoData
	// NXDomain: the name does not exist; SOA in Ns.
	NXDomain
	// Referral: the name is at or below a delegation; NS in Ns, glue in
	// Extra, AA clear.
	Referral
	// YXDomain: a DNAME substitution would make a name longer than 255
	// octets (RFC 6672 §2.2).
	YXDomain
	// ServFail: the zone is claimed but has no data to answer with (its
	// file exists and has never loaded); nothing in the sections.
	ServFail
)

func (k Kind) String() string {
	switch k {
	case Answer:
		return "answer"
	case NoData:
		return "nodata"
	case NXDomain:
		return "nxdomain"
	case Referral:
		return "referral"
	case YXDomain:
		return "yxdomain"
	case ServFail:
		return "servfail"
	}
	return "unknown"
}

// maxChain bounds CNAME chasing inside a zone; BIND uses 16, loops end here.
const maxChain = 16

// Result is the outcome of a lookup. Its slices may be shared with the zone
// and must not be modified: callers copy before changing TTLs or owners.
type Result struct {
	Kind Kind
	// Wildcard reports that the answer was synthesized: from a wildcard, or
	// re-owned from an alias target.
	Wildcard bool
	Answer   []dns.RR
	Ns       []dns.RR
	Extra    []dns.RR
	// Chase is set when a CNAME chain left the zone, looped, or reached an
	// alias to an outside resource: the name the chain points to, for a
	// recursive caller to continue with.
	Chase string
	// Alias is set when the answer is an alias to a resource outside the
	// zone (a load balancer, a CloudFront distribution): the server
	// resolves this name for the query type and answers with its records
	// under the query name.
	Alias string

	wire wireRefs // the precomputed wire form behind the sections
	// cname is the target of a CNAME that ends the answer (and wire.an
	// counts the answer's records): what the chain needs to know when
	// Answer is not filled in (LookupWire).
	cname string
}

// Lookup answers qname (canonical: lower-case, fully qualified, at or below
// the origin) and qtype from the zone per RFC 1034 §4.3.2 and RFC 4592.
// For an exact match that needs no CNAME chasing or wildcard synthesis it
// allocates nothing.
func (z *Zone) Lookup(qname string, qtype uint16) Result {
	return z.lookupChain(qname, qtype, nil, true)
}

// LookupFor is Lookup for a particular client: routing policies (weighted,
// failover, geolocation, …) choose with what c says about it.
func (z *Zone) LookupFor(qname string, qtype uint16, c *Client) Result {
	return z.lookupChain(qname, qtype, c, true)
}

// LookupWire is Lookup for callers that only use AppendWire: it skips
// building record slices for CNAME chains and wildcard synthesis, so it
// allocates nothing, and qname need not outlive the call. The Answer of its
// result may be partial.
func (z *Zone) LookupWire(qname string, qtype uint16, c *Client) Result {
	return z.lookupChain(qname, qtype, c, false)
}

func (z *Zone) lookupChain(qname string, qtype uint16, c *Client, full bool) Result {
	if z.unavailable {
		// No wire form: a fast path falls back to the full handler.
		return Result{Kind: ServFail, wire: wireRefs{nans: -1}}
	}
	res := z.lookupDepth(qname, qtype, c, full, 0)
	if res.cname == "" || res.Kind != Answer || res.wire.an == 0 || qtype == dns.TypeCNAME || qtype == dns.TypeANY {
		return res
	}
	// Follow the CNAME chain inside the zone (RFC 1034 §4.3.2 step 3a). The
	// answer accumulates every link; a loop or an exit from the zone stops
	// the chase and reports where it pointed.
	var answer []dns.RR
	if full {
		answer = append([]dns.RR(nil), res.Answer...)
	}
	wire := res.wire
	wild := res.Wildcard
	an := res.wire.an
	target := res.cname
	for i := 0; ; i++ {
		looped := wire.seen(target)
		if full {
			looped = seenOwner(answer, target)
		}
		if i == maxChain || !InZone(target, z.origin) || looped {
			return Result{Kind: Answer, Answer: answer, Chase: target, Wildcard: wild, wire: wire.counted(an)}
		}
		next := z.lookupDepth(target, qtype, c, full, 0)
		if next.Wildcard {
			// The synthesized owner is the chain's target, which no
			// precomputed owner name holds.
			wire.nans = -1
		}
		wild = wild || next.Wildcard
		wire.ns, wire.extra = next.wire.ns, next.wire.extra
		switch next.Kind {
		case Answer:
			if next.Alias != "" || next.wire.an == 0 {
				// The chain reaches an alias to an outside resource: the
				// CNAMEs so far, and the alias's owner to chase, as for a
				// chain that leaves the zone.
				wire.ns, wire.extra = blobRef{}, blobRef{}
				return Result{Kind: Answer, Answer: answer, Chase: target, Wildcard: wild, wire: wire.counted(an)}
			}
			wire.add(next.wire)
			an += next.wire.an
			if full {
				answer = append(answer, next.Answer...)
			}
			if next.cname != "" {
				target = next.cname
				continue
			}
			return Result{Kind: Answer, Answer: answer, Extra: next.Extra, Wildcard: wild, wire: wire.counted(an)}
		case Referral:
			// The chain runs into a delegation: give the CNAMEs and the
			// referral, as BIND does; the resolver follows from there.
			return Result{Kind: Referral, Answer: answer, Ns: next.Ns, Extra: next.Extra, Wildcard: wild, wire: wire.counted(an)}
		default:
			// RFC 6604: the rcode describes the last name of the chain.
			wire.extra = blobRef{}
			return Result{Kind: next.Kind, Answer: answer, Ns: next.Ns, Wildcard: wild, wire: wire.counted(an)}
		}
	}
}

func seenOwner(rrs []dns.RR, name string) bool {
	for _, rr := range rrs {
		if rr.Header().Name == name {
			return true
		}
	}
	return false
}

// lookup resolves one name without following CNAMEs. With full false the
// records are not decoded (for wire use) and a wildcard answer keeps the
// wildcard's own owner (written as a pointer to the question).
func (z *Zone) lookupDepth(qname string, qtype uint16, c *Client, full bool, depth int) Result {
	if n := z.find(qname); n != nil {
		if n.cut >= 0 {
			// DS lives on the parent side of a cut (RFC 4035 §3.1.4.1).
			if &z.nodes[n.cut] == n && qtype == dns.TypeDS {
				return z.answerNode(n, qname, qtype, c, full, depth)
			}
			return z.referral(&z.nodes[n.cut], full)
		}
		return z.answerNode(n, qname, qtype, c, full, depth)
	}
	// The name does not exist: find the closest encloser (RFC 4592 §3.3.1).
	// Empty non-terminals are nodes, so the first existing ancestor is it.
	for off, end := dns.NextLabel(qname, 0); !end && len(qname)-off >= len(z.origin); off, end = dns.NextLabel(qname, off) {
		var ce *node
		if len(qname)-off == len(z.origin) {
			ce = &z.nodes[z.apex] // the apex needs no lookup
		} else if ce = z.find(qname[off:]); ce == nil {
			continue
		}
		if ce.cut >= 0 {
			return z.referral(&z.nodes[ce.cut], full)
		}
		if set := z.get(ce, dns.TypeDNAME); set != nil && set.count > 0 {
			return z.dname(z.setRRs(set).rrs[0].(*dns.DNAME), qname, z.name(ce))
		}
		if ce.wild < 0 {
			break
		}
		res := z.answerNode(&z.nodes[ce.wild], qname, qtype, c, full, depth)
		if res.Kind == Answer && full && !res.Wildcard {
			res.Answer = synthesize(res.Answer, qname)
		}
		res.Wildcard = true
		return res
	}
	return z.negative(NXDomain)
}

// negative is a NODATA or NXDOMAIN answer: the SOA in the authority section.
func (z *Zone) negative(k Kind) Result {
	return Result{Kind: k, Ns: z.negSOA, wire: wireRefs{z: z, ns: z.negWire}}
}

func (z *Zone) referral(cut *node, full bool) Result {
	e := &z.nodeExt[cut.ext]
	res := Result{Kind: Referral, wire: wireRefs{z: z, ns: e.refNS, extra: e.refGlue}}
	if full {
		d := z.referralRRs(e)
		res.Ns, res.Extra = d.rrs, d.extra
	}
	return res
}

// dname answers a name below a DNAME (RFC 6672 §3.2): the DNAME and a CNAME
// synthesized from it, with the DNAME's TTL; the caller chases the CNAME.
func (z *Zone) dname(d *dns.DNAME, qname, owner string) Result {
	target := qname[:len(qname)-len(owner)] + d.Target
	if d.Target == "." {
		target = qname[:len(qname)-len(owner)]
	}
	if _, ok := dns.IsDomainName(target); !ok || len(target) > 254 {
		return Result{Kind: YXDomain, Answer: []dns.RR{d}, wire: wireRefs{nans: -1, an: 1}}
	}
	cname := &dns.CNAME{Hdr: dns.RR_Header{Name: qname, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: d.Hdr.Ttl}, Target: target}
	return Result{Kind: Answer, Answer: []dns.RR{d, cname}, wire: wireRefs{nans: -1, an: 2}, cname: target}
}

// answerSet answers with one plain set.
func (z *Zone) answerSet(set *rrset, full bool) (res Result) {
	z.fillSet(&res, set, full)
	return res
}

// fillSet makes res (a zero Result) an answer with one plain set, in place:
// the common answer is built in its caller's result, not copied there.
func (z *Zone) fillSet(res *Result, set *rrset, full bool) {
	res.Kind = Answer
	res.wire = wireRefs{z: z, nans: 1, an: int32(set.count)}
	res.wire.ans[0] = z.setIndex(set)
	if set.ext >= 0 {
		res.cname = z.cnameTarget(set)
		res.wire.extra = z.setExts[set.ext].extra
	}
	if full {
		d := z.setRRs(set)
		res.Answer, res.Extra = d.rrs, d.extra
	}
}

// answerNode answers from an existing, authoritative node.
func (z *Zone) answerNode(n *node, qname string, qtype uint16, c *Client, full bool, depth int) (res Result) {
	if qtype == dns.TypeANY {
		// RFC 8482 allows a minimal answer; like BIND we give what the node
		// has (for a routing-policy group: the record set this client
		// would get; aliases are left out).
		var all []dns.RR
		sets := z.nodeSets(n)
		for i := range sets {
			set := &sets[i]
			if z.variants(set) == nil {
				all = append(all, z.setRRs(set).rrs...)
				continue
			}
			var buf [maxMultiValue]*variant
			for _, v := range z.choose(set, c, buf[:0]) {
				all = append(all, z.setRRs(v.set).rrs...)
			}
		}
		if len(all) == 0 {
			return z.negative(NoData)
		}
		return Result{Kind: Answer, Answer: all, wire: wireRefs{nans: -1, an: int32(len(all))}}
	}
	if set := z.get(n, qtype); set != nil {
		if z.variants(set) != nil {
			return z.answerVariants(set, qname, c, full, depth)
		}
		z.fillSet(&res, set, full)
		return res
	}
	if set := z.get(n, dns.TypeCNAME); set != nil {
		if z.variants(set) != nil {
			return z.answerVariants(set, qname, c, full, depth)
		}
		res := z.answerSet(set, full)
		res.Extra, res.wire.extra = nil, blobRef{}
		return res
	}
	return z.negative(NoData)
}

// synthesize rewrites wildcard records to the query name (RFC 4592 §3.4).
func synthesize(rrs []dns.RR, qname string) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Name = qname
		out[i] = c
	}
	return out
}
