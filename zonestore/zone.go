// Package zonestore holds immutable authoritative zones and answers queries from
// them per RFC 1034 §4.3.2 and RFC 4592. It knows nothing of the network or of
// AWS: zones are built once by a Builder, never change afterwards, and are
// published to readers through Store's atomic pointer.
package zonestore

import (
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// rrset is one (owner, type) set. extra holds the additional-section records
// (in-zone addresses of MX/SRV/NS targets), computed once at build time so the
// query path never searches for them.
type rrset struct {
	typ   uint16
	rrs   []dns.RR
	extra []dns.RR
	// wire is rrs packed, each record's owner replaced by a pointer to the
	// question name (offset 12): what an answer section holds when the
	// owner is the query name. owner gives the name for other positions.
	wire      []byte
	owner     *node
	extraWire *blob
	// A routing-policy or alias group keeps its record sets here (and no
	// rrs of its own); each query chooses among them.
	policy   Policy
	variants []*variant
}

// node is one owner name of the tree. Empty non-terminals are nodes with no
// rrsets, so "does this name exist" is a single map hit (RFC 4592 §2.2.2).
type node struct {
	name   string
	rrsets []rrset // few per name: a linear scan beats a map here
	// cut is the topmost delegation point at or above this node (nil when the
	// node is authoritative data). Every name at or below a cut answers with
	// a referral; precomputing it avoids walking up the tree per query.
	cut *node
	// wild is the "*.<name>" child, the source of synthesis for names that do
	// not exist directly below this node.
	wild *node
	// referral holds NS and glue for a node that is itself a cut.
	refNS, refGlue []dns.RR
	// wname is the owner name in uncompressed wire form.
	wname                  []byte
	refNSWire, refGlueWire *blob
}

func (n *node) get(t uint16) *rrset {
	for i := range n.rrsets {
		if n.rrsets[i].typ == t {
			return &n.rrsets[i]
		}
	}
	return nil
}

// Zone is one authoritative zone. It is immutable once built: every method is
// safe for concurrent use and returned slices must be treated as read-only.
type Zone struct {
	origin  string
	soa     *dns.SOA
	negSOA  []dns.RR // SOA with TTL = min(SOA TTL, MINIMUM), RFC 2308 §3
	negWire *blob
	nodes   map[string]*node
	records int
	source  string
	// unavailable marks a claimed zone without data (see Unavailable).
	unavailable bool
	// inOrder caches RRs: computed on the first transfer, then shared by
	// every transfer of this version (it never changes).
	inOrder    sync.Once
	inOrderRRs []dns.RR
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
// zone transfers and zone-file dumps.
func (z *Zone) RRs() []dns.RR {
	if z.unavailable {
		return nil
	}
	z.inOrder.Do(func() { z.inOrderRRs = z.sortedRRs() })
	return z.inOrderRRs[:len(z.inOrderRRs):len(z.inOrderRRs)] // appends copy
}

func (z *Zone) sortedRRs() []dns.RR {
	// Sort by a key computed once per name (labels from the root, each
	// followed by a 0 byte: canonicalLess's order) rather than splitting
	// names in every comparison: a million-record zone sorts in a second.
	type keyed struct {
		key string
		n   *node
	}
	names := make([]keyed, 0, len(z.nodes))
	var kb []byte
	for name, n := range z.nodes {
		names = append(names, keyed{string(canonicalKey(kb[:0], name)), n})
	}
	slices.SortFunc(names, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	out := make([]dns.RR, 0, z.records)
	out = append(out, z.soa)
	for _, k := range names {
		n := k.n
		for _, set := range n.rrsets {
			if set.typ == dns.TypeSOA {
				continue
			}
			out = append(out, set.rrs...)
			for _, v := range set.variants {
				out = append(out, v.set.rrs...)
			}
		}
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
