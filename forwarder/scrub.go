package forwarder

import (
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// maxChain bounds the CNAME/DNAME links followed in one answer.
const maxChain = 16

// scrub removes from an upstream reply to (qname, qtype) what the upstream
// has no business telling us, before anything is cached or relayed — as
// BIND and Unbound scrub:
//
//   - the answer keeps only the chain that starts at the question: records of
//     qtype at the current name, else the CNAME at it (whose target becomes
//     the current name), else a DNAME at an ancestor (the current name then
//     becomes the substituted one, and the synthesized CNAME is kept only if
//     it points there), with the RRSIGs of what is kept; everything else —
//     A records for other owners, a second chain — is dropped;
//   - authority and additional records are kept only at or below zone, the
//     suffix of the rule the query was forwarded under ("." keeps all).
//
// qname must be canonical. m is changed in place.
func scrub(m *dns.Msg, qname string, qtype uint16, zone string) {
	keep := make([]bool, len(m.Answer))
	type link struct {
		name  string
		rtype uint16
	}
	var kept []link // owner and type of what is kept, for RRSIGs
	cur := qname
	seen := map[string]bool{}
	for hop := 0; hop <= maxChain && !seen[cur]; hop++ {
		seen[cur] = true
		// Data of the asked type ends the chain.
		found := false
		for i, rr := range m.Answer {
			h := rr.Header()
			match := h.Rrtype == qtype || (qtype == dns.TypeANY && h.Rrtype != dns.TypeRRSIG)
			if match && strings.EqualFold(h.Name, cur) {
				keep[i], found = true, true
				kept = append(kept, link{cur, h.Rrtype})
			}
		}
		if found || qtype == dns.TypeCNAME {
			break
		}
		next := ""
		// A DNAME at an ancestor of cur rewrites it (RFC 6672); a CNAME
		// at cur that disagrees with it is not followed.
		for i, rr := range m.Answer {
			d, ok := rr.(*dns.DNAME)
			if !ok {
				continue
			}
			owner := dns.CanonicalName(d.Hdr.Name)
			// Both tests: IsSubDomain knows escaped dots, HasSuffix makes
			// the slicing below safe whatever the escapes.
			if owner == cur || !dns.IsSubDomain(owner, cur) || !strings.HasSuffix(cur, owner) {
				continue
			}
			prefix := cur // the labels below owner, with their dot
			if owner != "." {
				prefix = cur[:len(cur)-len(owner)]
			}
			sub := prefix
			if t := dns.CanonicalName(d.Target); t != "." {
				sub += t
			}
			if _, ok := dns.IsDomainName(sub); !ok || len(sub) > 255 {
				break
			}
			keep[i] = true
			kept = append(kept, link{owner, dns.TypeDNAME})
			next = sub
			// The synthesized CNAME, if it says the same.
			for j, rr := range m.Answer {
				if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, cur) && dns.CanonicalName(c.Target) == sub {
					keep[j] = true
				}
			}
			break
		}
		if next == "" {
			for i, rr := range m.Answer {
				if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, cur) {
					keep[i] = true
					kept = append(kept, link{cur, dns.TypeCNAME})
					next = dns.CanonicalName(c.Target)
					break // one CNAME per owner (RFC 2181 §10.1)
				}
			}
		}
		if next == "" {
			break
		}
		cur = next
	}
	for i, rr := range m.Answer {
		sig, ok := rr.(*dns.RRSIG)
		if !ok {
			continue
		}
		for _, l := range kept {
			if sig.TypeCovered == l.rtype && strings.EqualFold(sig.Hdr.Name, l.name) {
				keep[i] = true
				break
			}
		}
	}
	n := 0
	for i, rr := range m.Answer {
		if keep[i] {
			m.Answer[n] = rr
			n++
		}
	}
	clear(m.Answer[n:])
	m.Answer = m.Answer[:n]
	if zone == "." {
		return
	}
	out := func(rr dns.RR) bool {
		return rr.Header().Rrtype != dns.TypeOPT && !dns.IsSubDomain(zone, dns.CanonicalName(rr.Header().Name))
	}
	m.Ns = slices.DeleteFunc(m.Ns, out)
	m.Extra = slices.DeleteFunc(m.Extra, out)
}
