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

// Result is the outcome of a lookup. Its slices are shared with the zone and
// must not be modified: callers copy before changing TTLs or owners.
type Result struct {
	Kind   Kind
	Answer []dns.RR
	Ns     []dns.RR
	Extra  []dns.RR
	// Chase is set when a CNAME chain left the zone, looped, or reached an
	// alias to an outside resource: the name the chain points to, for a
	// recursive caller to continue with.
	Chase string
	// Wildcard reports that the answer was synthesized: from a wildcard, or
	// re-owned from an alias target.
	Wildcard bool
	// Alias is set when the answer is an alias to a resource outside the
	// zone (a load balancer, a CloudFront distribution): the server
	// resolves this name for the query type and answers with its records
	// under the query name.
	Alias string

	wire wireRefs // the precomputed wire form behind the sections
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
	if res.Kind != Answer || len(res.Answer) == 0 || qtype == dns.TypeCNAME || qtype == dns.TypeANY {
		return res
	}
	cn, ok := res.Answer[len(res.Answer)-1].(*dns.CNAME)
	if !ok {
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
	target := cn.Target
	for i := 0; ; i++ {
		looped := wire.seen(target)
		if full {
			looped = seenOwner(answer, target)
		}
		if i == maxChain || !InZone(target, z.origin) || looped {
			return Result{Kind: Answer, Answer: answer, Chase: target, Wildcard: wild, wire: wire}
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
			if next.Alias != "" || len(next.Answer) == 0 {
				// The chain reaches an alias to an outside resource: the
				// CNAMEs so far, and the alias's owner to chase, as for a
				// chain that leaves the zone.
				wire.ns, wire.extra = nil, nil
				return Result{Kind: Answer, Answer: answer, Chase: target, Wildcard: wild, wire: wire}
			}
			wire.add(next.wire)
			if full {
				answer = append(answer, next.Answer...)
			}
			if c, ok := next.Answer[len(next.Answer)-1].(*dns.CNAME); ok {
				target = c.Target
				continue
			}
			return Result{Kind: Answer, Answer: answer, Extra: next.Extra, Wildcard: wild, wire: wire}
		case Referral:
			// The chain runs into a delegation: give the CNAMEs and the
			// referral, as BIND does; the resolver follows from there.
			return Result{Kind: Referral, Answer: answer, Ns: next.Ns, Extra: next.Extra, Wildcard: wild, wire: wire}
		default:
			// RFC 6604: the rcode describes the last name of the chain.
			wire.extra = nil
			return Result{Kind: next.Kind, Answer: answer, Ns: next.Ns, Wildcard: wild, wire: wire}
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

// lookup resolves one name without following CNAMEs. With synth false a
// wildcard answer keeps the wildcard's own records (for wire use, where the
// owner is written as a pointer to the question).
func (z *Zone) lookupDepth(qname string, qtype uint16, c *Client, synth bool, depth int) Result {
	if n := z.nodes[qname]; n != nil {
		if n.cut != nil {
			// DS lives on the parent side of a cut (RFC 4035 §3.1.4.1).
			if n.cut == n && qtype == dns.TypeDS {
				return z.answerNode(n, qname, qtype, c, synth, depth)
			}
			return n.cut.referral()
		}
		return z.answerNode(n, qname, qtype, c, synth, depth)
	}
	// The name does not exist: find the closest encloser (RFC 4592 §3.3.1).
	// Empty non-terminals are nodes, so the first existing ancestor is it.
	for off, end := dns.NextLabel(qname, 0); !end && len(qname)-off >= len(z.origin); off, end = dns.NextLabel(qname, off) {
		ce := z.nodes[qname[off:]]
		if ce == nil {
			continue
		}
		if ce.cut != nil {
			return ce.cut.referral()
		}
		if set := ce.get(dns.TypeDNAME); set != nil && len(set.rrs) > 0 {
			return z.dname(set.rrs[0].(*dns.DNAME), qname, ce.name)
		}
		if ce.wild == nil {
			break
		}
		res := z.answerNode(ce.wild, qname, qtype, c, synth, depth)
		if res.Kind == Answer && synth && !res.Wildcard {
			res.Answer = synthesize(res.Answer, qname)
		}
		res.Wildcard = true
		return res
	}
	return Result{Kind: NXDomain, Ns: z.negSOA, wire: wireRefs{ns: z.negWire}}
}

func (n *node) referral() Result {
	return Result{Kind: Referral, Ns: n.refNS, Extra: n.refGlue, wire: wireRefs{ns: n.refNSWire, extra: n.refGlueWire}}
}

// dname answers a name below a DNAME (RFC 6672 §3.2): the DNAME and a CNAME
// synthesized from it, with the DNAME's TTL; the caller chases the CNAME.
func (z *Zone) dname(d *dns.DNAME, qname, owner string) Result {
	target := qname[:len(qname)-len(owner)] + d.Target
	if d.Target == "." {
		target = qname[:len(qname)-len(owner)]
	}
	if _, ok := dns.IsDomainName(target); !ok || len(target) > 254 {
		return Result{Kind: YXDomain, Answer: []dns.RR{d}, wire: wireRefs{nans: -1}}
	}
	cname := &dns.CNAME{Hdr: dns.RR_Header{Name: qname, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: d.Hdr.Ttl}, Target: target}
	return Result{Kind: Answer, Answer: []dns.RR{d, cname}, wire: wireRefs{nans: -1}}
}

// answerNode answers from an existing, authoritative node.
func (z *Zone) answerNode(n *node, qname string, qtype uint16, c *Client, synth bool, depth int) Result {
	if qtype == dns.TypeANY {
		// RFC 8482 allows a minimal answer; like BIND we give what the node
		// has (for a routing-policy group: the record set this client
		// would get; aliases are left out).
		var all []dns.RR
		for i := range n.rrsets {
			set := &n.rrsets[i]
			if len(set.variants) == 0 {
				all = append(all, set.rrs...)
				continue
			}
			var buf [maxMultiValue]*variant
			for _, v := range z.choose(set, c, buf[:0]) {
				all = append(all, v.set.rrs...)
			}
		}
		if len(all) == 0 {
			return Result{Kind: NoData, Ns: z.negSOA, wire: wireRefs{ns: z.negWire}}
		}
		return Result{Kind: Answer, Answer: all, wire: wireRefs{nans: -1}}
	}
	if set := n.get(qtype); set != nil {
		if len(set.variants) > 0 {
			return z.answerVariants(set, qname, c, synth, depth)
		}
		return Result{Kind: Answer, Answer: set.rrs, Extra: set.extra, wire: wireRefs{ans: [maxWireSets]*rrset{set}, nans: 1, extra: set.extraWire}}
	}
	if set := n.get(dns.TypeCNAME); set != nil {
		if len(set.variants) > 0 {
			return z.answerVariants(set, qname, c, synth, depth)
		}
		return Result{Kind: Answer, Answer: set.rrs, wire: wireRefs{ans: [maxWireSets]*rrset{set}, nans: 1}}
	}
	return Result{Kind: NoData, Ns: z.negSOA, wire: wireRefs{ns: z.negWire}}
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
