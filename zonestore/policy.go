package zonestore

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/miekg/dns"
)

// Route 53 record sets may carry a routing policy: several record sets of one
// name and type, told apart by a set identifier, of which each query gets
// one (or, for multivalue, up to eight). Alias record sets answer with
// another name's records. zonestore models both without knowing AWS: a
// policy set is a list of variants, chosen per query with what the Client
// tells about the asker (address, health of checks, location).

// Policy is the routing policy of a name+type group.
type Policy uint8

// Routing policies (ROUTE53.md §6.4).
const (
	PolicySimple Policy = iota
	PolicyWeighted
	PolicyFailover
	PolicyLatency
	PolicyMultiValue
	PolicyGeo
	PolicyCIDR
)

var policyNames = [...]string{"simple", "weighted", "failover", "latency", "multivalue", "geolocation", "cidr"}

func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return "unknown"
}

// Failover roles.
const (
	FailoverPrimary   = 1
	FailoverSecondary = 2
)

// maxMultiValue is how many record sets a multivalue answer holds at most.
const maxMultiValue = 8

// Location is where a client is, or which clients a geolocation record set
// is for. Country "*" marks the default record set.
type Location struct {
	Continent, Country, Subdivision string
}

// Alias points a record set at another name's records of the same type.
type Alias struct {
	Target string // canonical
	// External targets (AWS resources: load balancers, CloudFront, …) are
	// resolved by the server at answer time; others inside the zone.
	External   bool
	EvalHealth bool
}

// Variant is one record set of a name+type group: its records or an alias,
// and the attributes its routing policy chooses by.
type Variant struct {
	ID          string // SetIdentifier
	RRs         []dns.RR
	Alias       *Alias
	Weight      int64
	Failover    uint8
	Region      string
	Location    Location
	CIDRLoc     string // IP-based routing: the location name ("*" default)
	CIDRColl    string // and its CIDR collection
	HealthCheck string // "" = always healthy
}

// variant is a Variant as stored: its records form an rrset of their own
// (with precomputed wire form), kept in the zone's sets after the nodes'.
type variant struct {
	Variant
	set  *rrset
	tmpl rrset // set while building
}

// Client is what routing policies know of the asker. The zero value (or a
// nil *Client) treats every record set as healthy and the client as
// location-less.
type Client struct {
	Addr   netip.Addr
	Region string // this instance's region, for latency records
	// Healthy reports a health check's status; nil: all healthy.
	Healthy func(checkID string) bool
	// Locate gives the client's location for geolocation records.
	Locate func(netip.Addr) (Location, bool)
	// CIDRLocation gives the location name of the client in a CIDR
	// collection, "" if none.
	CIDRLocation func(collection string, addr netip.Addr) string
}

// AddVariant adds one record set of a routing-policy group (or, with
// PolicySimple, a plain alias). All variants of a name+type share one
// policy; records of a name+type added with Add cannot be mixed in.
func (b *Builder) AddVariant(owner string, qtype uint16, p Policy, v Variant) error {
	if b.built {
		return ErrBuilt
	}
	owner = Canonical(owner)
	if !InZone(owner, b.origin) {
		return fmt.Errorf("%s %s: %w %s", owner, dns.TypeToString[qtype], ErrOutOfZone, b.origin)
	}
	if (v.Alias == nil) == (len(v.RRs) == 0) {
		return fmt.Errorf("%s %s %q: a record set needs records or an alias, not both", owner, dns.TypeToString[qtype], v.ID)
	}
	if v.Alias != nil {
		a := *v.Alias
		a.Target = Canonical(a.Target)
		v.Alias = &a
	}
	n := b.nodeFor(owner)
	key := nodeType{n, qtype}
	g, ok := b.groupOf[key]
	if !ok {
		for r := b.lists[n].head; r >= 0; r = b.recs[r].next {
			if b.recs[r].typ == qtype {
				return fmt.Errorf("%s %s: %s record set mixed with a %s one", owner, dns.TypeToString[qtype], p, PolicySimple)
			}
		}
		if b.groupOf == nil {
			b.groupOf, b.groupWire = map[nodeType]int32{}, map[*variant][]byte{}
		}
		g = int32(len(b.groups))
		b.groups = append(b.groups, nil)
		b.policies = append(b.policies, p)
		b.groupOf[key] = g
		b.addRec(n, brec{off: uint32(g), typ: qtype, rdlen: groupMark})
	} else if b.policies[g] != p {
		return fmt.Errorf("%s %s: %s record set mixed with a %s one", owner, dns.TypeToString[qtype], p, b.policies[g])
	}
	if p == PolicySimple && len(b.groups[g]) > 0 {
		return fmt.Errorf("%s %s: two simple record sets", owner, dns.TypeToString[qtype])
	}
	for _, have := range b.groups[g] {
		if have.ID == v.ID {
			return fmt.Errorf("%s %s: set identifier %q given twice", owner, dns.TypeToString[qtype], v.ID)
		}
	}
	nv := &variant{Variant: v}
	nv.tmpl.typ, nv.tmpl.owner, nv.tmpl.ext = qtype, n, -1
	var wire []byte
	for _, rr := range v.RRs {
		if rr.Header().Rrtype != qtype || Canonical(rr.Header().Name) != owner {
			return fmt.Errorf("%s %s %q: record %s does not belong to the set", owner, dns.TypeToString[qtype], v.ID, rr)
		}
		if needsCanonical(rr) {
			rr = dns.Copy(rr)
			CanonicalRdata(rr)
		}
		var err error
		if wire, err = b.packPointer(rr, wire); err != nil {
			b.errs = append(b.errs, err) // the zone does not build
			return nil
		}
		nv.tmpl.count++
	}
	nv.RRs = nil // the packed copies are the data
	b.groupWire[nv] = wire
	b.groups[g] = append(b.groups[g], nv)
	return nil
}

// validateVariants checks what AddVariant could not see alone.
func validateVariants(name string, typ uint16, policy Policy, vs []*variant) error {
	if len(vs) == 0 {
		return nil
	}
	var errs []error
	if policy == PolicyFailover {
		roles := map[uint8]int{}
		for _, v := range vs {
			roles[v.Failover]++
		}
		if roles[FailoverPrimary] > 1 || roles[FailoverSecondary] > 1 || roles[0] > 0 {
			errs = append(errs, fmt.Errorf("%s %s: failover needs one PRIMARY and at most one SECONDARY", name, dns.TypeToString[typ]))
		}
	}
	if policy == PolicyMultiValue {
		for _, v := range vs {
			if v.Alias != nil {
				errs = append(errs, fmt.Errorf("%s %s: multivalue record sets cannot be aliases", name, dns.TypeToString[typ]))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// healthy reports whether v may be chosen for c.
func (z *Zone) healthy(v *variant, c *Client, depth int) bool {
	if v.HealthCheck != "" && c != nil && c.Healthy != nil && !c.Healthy(v.HealthCheck) {
		return false
	}
	if v.Alias != nil && v.Alias.EvalHealth && !v.Alias.External && depth < maxChain {
		// An alias that evaluates target health is healthy when its
		// target group has a healthy member.
		if n := z.find(v.Alias.Target); n != nil {
			if t := z.get(n, v.set.typ); t != nil && len(z.variants(t)) > 0 {
				for _, tv := range z.variants(t) {
					if z.healthy(tv, c, depth+1) {
						return true
					}
				}
				return false
			}
		}
	}
	return true
}

// choose picks the variants that answer this query: one, up to eight for
// multivalue, none when a geolocation or IP-based group has no match and
// no default (NODATA).
func (z *Zone) choose(set *rrset, c *Client, buf []*variant) []*variant {
	vs := z.variants(set)
	if len(vs) == 1 && set.policy == PolicySimple {
		return append(buf, vs[0])
	}
	ok := func(v *variant) bool { return z.healthy(v, c, 0) }
	switch set.policy {
	case PolicyWeighted:
		// Non-zero weights first; zero weights only when every non-zero
		// one is unhealthy; if nothing is healthy, as if all were.
		for _, pass := range []func(*variant) bool{
			func(v *variant) bool { return v.Weight > 0 && ok(v) },
			func(v *variant) bool { return v.Weight == 0 && ok(v) },
			func(v *variant) bool { return v.Weight > 0 },
			func(v *variant) bool { return true },
		} {
			if v := pickWeighted(vs, pass); v != nil {
				return append(buf, v)
			}
		}
		return buf
	case PolicyFailover:
		var primary, secondary *variant
		for _, v := range vs {
			if v.Failover == FailoverPrimary {
				primary = v
			} else {
				secondary = v
			}
		}
		switch {
		case primary != nil && ok(primary):
			return append(buf, primary)
		case secondary != nil && (ok(secondary) || secondary.HealthCheck == ""):
			return append(buf, secondary)
		case primary != nil:
			return append(buf, primary)
		}
		return append(buf, secondary)
	case PolicyMultiValue:
		start := len(buf)
		for _, v := range vs {
			if ok(v) {
				buf = append(buf, v)
			}
		}
		if len(buf) == start {
			buf = append(buf, vs...)
		}
		pick := buf[start:]
		rand.Shuffle(len(pick), func(i, j int) { pick[i], pick[j] = pick[j], pick[i] })
		return buf[:start+min(len(pick), maxMultiValue)]
	case PolicyLatency:
		region := ""
		if c != nil {
			region = c.Region
		}
		if v := nearest(vs, region, ok); v != nil {
			return append(buf, v)
		}
		return append(buf, nearest(vs, region, func(*variant) bool { return true }))
	case PolicyGeo:
		var loc Location
		known := false
		if c != nil && c.Locate != nil {
			loc, known = c.Locate(c.Addr)
		}
		if v := geoMatch(vs, loc, known, ok); v != nil {
			return append(buf, v)
		}
		if v := geoMatch(vs, loc, known, func(*variant) bool { return true }); v != nil {
			return append(buf, v)
		}
		return buf
	case PolicyCIDR:
		var loc string
		if c != nil && c.CIDRLocation != nil && len(vs) > 0 {
			loc = c.CIDRLocation(vs[0].CIDRColl, c.Addr)
		}
		for _, want := range []string{loc, "*"} {
			for _, v := range vs {
				if want != "" && v.CIDRLoc == want && ok(v) {
					return append(buf, v)
				}
			}
		}
		for _, want := range []string{loc, "*"} {
			for _, v := range vs {
				if want != "" && v.CIDRLoc == want {
					return append(buf, v)
				}
			}
		}
		return buf
	}
	return append(buf, vs[0])
}

// pickWeighted picks among the variants pass accepts with probability
// weight/Σweight, uniformly when every weight is zero.
func pickWeighted(vs []*variant, pass func(*variant) bool) *variant {
	var total int64
	n := 0
	for _, v := range vs {
		if pass(v) {
			total += v.Weight
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if total == 0 {
		k := rand.IntN(n)
		for _, v := range vs {
			if pass(v) {
				if k == 0 {
					return v
				}
				k--
			}
		}
	}
	r := rand.Int64N(total)
	for _, v := range vs {
		if pass(v) {
			if r < v.Weight {
				return v
			}
			r -= v.Weight
		}
	}
	return nil
}

// nearest picks the latency record set whose region is closest to region:
// the same region, else the same area ("us-east"), else the same continent
// prefix ("us"), else the first in set order — deterministic without a
// latency table.
func nearest(vs []*variant, region string, ok func(*variant) bool) *variant {
	// prefix keeps the first parts dash-separated fields, without allocating.
	prefix := func(s string, parts int) string {
		for i := 0; i < len(s); i++ {
			if s[i] == '-' {
				if parts--; parts == 0 {
					return s[:i]
				}
			}
		}
		return s
	}
	for _, parts := range []int{3, 2, 1} {
		for _, v := range vs {
			if region != "" && ok(v) && prefix(v.Region, parts) == prefix(region, parts) {
				return v
			}
		}
	}
	for _, v := range vs {
		if ok(v) {
			return v
		}
	}
	return nil
}

// geoMatch returns the most specific geolocation record set for loc among
// those ok accepts: subdivision, country, continent, then the default.
func geoMatch(vs []*variant, loc Location, known bool, ok func(*variant) bool) *variant {
	if known {
		for _, v := range vs {
			if loc.Subdivision != "" && v.Location.Country == loc.Country && v.Location.Subdivision == loc.Subdivision && ok(v) {
				return v
			}
		}
		for _, v := range vs {
			if loc.Country != "" && v.Location.Country == loc.Country && v.Location.Subdivision == "" && ok(v) {
				return v
			}
		}
		for _, v := range vs {
			if loc.Continent != "" && v.Location.Continent == loc.Continent && v.Location.Country == "" && ok(v) {
				return v
			}
		}
	}
	for _, v := range vs {
		if v.Location.Country == "*" && ok(v) {
			return v
		}
	}
	return nil
}

// answerVariants answers from a routing-policy or alias group.
func (z *Zone) answerVariants(set *rrset, qname string, c *Client, full bool, depth int) Result {
	var buf [maxMultiValue]*variant
	chosen := z.choose(set, c, buf[:0])
	if len(chosen) == 0 {
		return z.negative(NoData)
	}
	if len(chosen) > 1 {
		var all []dns.RR
		for _, v := range chosen {
			all = append(all, z.setRRs(v.set).rrs...)
		}
		return Result{Kind: Answer, Answer: all, wire: wireRefs{nans: -1, an: int32(len(all))}, cname: z.cnameTarget(chosen[len(chosen)-1].set)}
	}
	v := chosen[0]
	if v.Alias == nil {
		res := z.answerSet(v.set, full)
		res.Extra, res.wire.extra = nil, blobRef{}
		return res
	}
	if v.Alias.External {
		return Result{Kind: Answer, Alias: v.Alias.Target, wire: wireRefs{nans: -1}}
	}
	// Same zone: answer as if asked for the target, with its TTL and
	// policy, under the alias's name.
	if depth >= maxChain || v.Alias.Target == qname {
		return z.negative(NoData)
	}
	res := z.lookupDepth(v.Alias.Target, set.typ, c, full, depth+1)
	switch {
	case res.Kind != Answer || res.Chase != "":
		// A target without records of the type (or one that leaves the
		// zone) leaves the alias with nothing to say.
		return z.negative(NoData)
	case res.Alias != "":
		return res
	}
	if full {
		res.Answer = synthesize(res.Answer, qname)
	}
	if res.wire.nans != 1 {
		res.wire.nans = -1
	}
	res.Wildcard = true // owner rewritten: like a wildcard, the answer is synthesized
	return res
}
