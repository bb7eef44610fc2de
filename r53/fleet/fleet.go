// Package fleet is the form in which a hybridns primary hands every zone
// it serves, in every view, to follower instances over plain zone
// transfers (AXFR/IXFR, NOTIFY, TSIG, an RFC 9432 catalog).
//
// Each served (view, zone) becomes one "fleet zone" named
// <label>.fleet.hybridns., whose records are all TXT:
//
//	@                 SOA   invalid. invalid. SERIAL 3600 600 2147483646 0   (SERIAL: the feed's, by the clock)
//	@                 NS    invalid.
//	meta.@            TXT   {"view":…,"origin":…,"kind":"route53"|"records","zone_id":…,"private":…,"serial":…}
//	<hash>.set.@      TXT   one Route 53 record set, as the API returned it (kind route53)
//	health.@          TXT   {"<health-check-id>":true|false,…} (kind route53)
//	<hash>.rr.@       TXT   one record in presentation form, TTL included (kind records)
//
// A record set's JSON is the form the syncer's snapshot files use: the
// Route 53 API's own ResourceRecordSet. A follower rebuilds the zone with
// r53.BuildZone — the converter the primary uses — so weighted, failover,
// latency, geo sets and aliases answer identically. Each set is its own
// TXT RRset under a name derived from (name, type, set identifier), so an
// IXFR carries only the sets that changed. Long JSON is split into TXT
// strings of at most 255 bytes and joined again on the follower.
package fleet

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"

	"hybridns/r53"
	"hybridns/zonestore"
)

// Suffix is the parent of every fleet zone's name.
const Suffix = zonestore.FleetSuffix

// Source is the Source() of fleet zones.
const Source = "fleet"

// Kinds of fleet zones.
const (
	KindRoute53 = "route53" // record sets as Route 53 holds them
	KindRecords = "records" // plain records (zone files, secondaries, reverse zones)
)

// Meta describes the zone a fleet zone carries.
type Meta struct {
	View    string `json:"view"`
	Origin  string `json:"origin"`
	Kind    string `json:"kind"`
	ZoneID  string `json:"zone_id,omitempty"`
	Private bool   `json:"private"`
	Serial  uint32 `json:"serial"`
}

// Name is the fleet zone's name for zone origin of view: stable, so a
// follower's catalog member never changes while the zone exists.
func Name(view, origin string) string {
	sum := sha256.Sum256([]byte(view + "|" + zonestore.Canonical(origin)))
	return "f" + hex.EncodeToString(sum[:10]) + "." + Suffix
}

func label(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}

// Route53 builds the fleet zone of a Route 53 zone from its record sets
// (exactly as the API returned them) and the status of the health checks
// they use (health may hold others; only those used are kept).
func Route53(meta Meta, sets []types.ResourceRecordSet, health map[string]bool, serial uint32) (*zonestore.Zone, error) {
	meta.Kind = KindRoute53
	name := Name(meta.View, meta.Origin)
	rrs := []dns.RR{}
	used := map[string]bool{}
	for _, rs := range sets {
		b, err := json.Marshal(rs)
		if err != nil {
			return nil, err
		}
		owner := label(aws.ToString(rs.Name)+"\x00"+string(rs.Type)+"\x00"+aws.ToString(rs.SetIdentifier)) + ".set." + name
		rrs = append(rrs, txt(owner, b))
		if id := aws.ToString(rs.HealthCheckId); id != "" {
			used[id] = healthOf(health, id)
		}
	}
	hb, _ := json.Marshal(used)
	rrs = append(rrs, txt("health."+name, hb))
	return build(name, meta, serial, rrs)
}

func healthOf(h map[string]bool, id string) bool {
	v, ok := h[id]
	return !ok || v // unknown checks are healthy, as on the primary
}

// Records builds the fleet zone of any other zone from its records.
func Records(meta Meta, z *zonestore.Zone, serial uint32) (*zonestore.Zone, error) {
	meta.Kind = KindRecords
	name := Name(meta.View, meta.Origin)
	var rrs []dns.RR
	for _, rr := range z.RRs() {
		s := rr.String()
		rrs = append(rrs, txt(label(s)+".rr."+name, []byte(s)))
	}
	return build(name, meta, serial, rrs)
}

func build(name string, meta Meta, serial uint32, rrs []dns.RR) (*zonestore.Zone, error) {
	meta.Origin = zonestore.Canonical(meta.Origin)
	mb, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	b := zonestore.NewBuilder(name)
	b.SetSource(Source)
	head := []dns.RR{
		&dns.SOA{Hdr: hdr(name, dns.TypeSOA), Ns: "invalid.", Mbox: "invalid.", Serial: serial,
			Refresh: 3600, Retry: 600, Expire: 2147483646, Minttl: 0},
		&dns.NS{Hdr: hdr(name, dns.TypeNS), Ns: "invalid."},
		txt("meta."+name, mb),
	}
	for _, rr := range append(head, rrs...) {
		if err := b.Add(rr); err != nil {
			return nil, fmt.Errorf("fleet zone %s (%s in view %q): %w", name, meta.Origin, meta.View, err)
		}
	}
	return b.Build()
}

func hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: 0}
}

// txt makes a TXT record holding data, split into strings of at most 255
// bytes, each in miekg/dns's escaped form.
func txt(owner string, data []byte) *dns.TXT {
	t := &dns.TXT{Hdr: hdr(owner, dns.TypeTXT)}
	for len(data) > 0 || len(t.Txt) == 0 {
		n := min(len(data), 255)
		t.Txt = append(t.Txt, escape(data[:n]))
		data = data[n:]
	}
	return t
}

func escape(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			s.WriteByte('\\')
			s.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&s, "\\%03d", c)
		default:
			s.WriteByte(c)
		}
	}
	return s.String()
}

// unescape reverses miekg/dns's escaping of a TXT string (\X and \DDD).
func unescape(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			out = append(out, c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			n, _ := strconv.Atoi(s[i+1 : i+4])
			out = append(out, byte(n))
			i += 3
			continue
		}
		out = append(out, s[i+1])
		i++
	}
	return out
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func joined(t *dns.TXT) []byte {
	var out []byte
	for _, s := range t.Txt {
		out = append(out, unescape(s)...)
	}
	return out
}

// Decoded is a fleet zone turned back into the zone it carries.
type Decoded struct {
	Meta   Meta
	Zone   *zonestore.Zone
	Health map[string]bool // kind route53: the checks the zone uses
	// Skipped are record sets the converter left out (as on the primary).
	Skipped []r53.Skipped
}

// Decode rebuilds the zone a fleet zone carries: Route 53 record sets with
// r53.BuildZone and the primary's serial, plain records with a builder.
func Decode(fz *zonestore.Zone) (*Decoded, error) {
	name := fz.Origin()
	var meta *Meta
	d := &Decoded{Health: map[string]bool{}}
	type keyed struct {
		key string
		rs  types.ResourceRecordSet
	}
	var sets []keyed
	var rrs []dns.RR
	for _, rr := range fz.RRs() {
		t, ok := rr.(*dns.TXT)
		if !ok {
			continue
		}
		owner := strings.ToLower(t.Hdr.Name)
		rel := strings.TrimSuffix(owner, "."+name)
		data := joined(t)
		switch {
		case rel == "meta":
			meta = new(Meta)
			if err := json.Unmarshal(data, meta); err != nil {
				return nil, fmt.Errorf("fleet zone %s: meta: %w", name, err)
			}
		case rel == "health":
			if err := json.Unmarshal(data, &d.Health); err != nil {
				return nil, fmt.Errorf("fleet zone %s: health: %w", name, err)
			}
		case strings.HasSuffix(rel, ".set"):
			var rs types.ResourceRecordSet
			if err := json.Unmarshal(data, &rs); err != nil {
				return nil, fmt.Errorf("fleet zone %s: record set at %s: %w", name, owner, err)
			}
			sets = append(sets, keyed{aws.ToString(rs.Name) + "\x00" + string(rs.Type) + "\x00" + aws.ToString(rs.SetIdentifier), rs})
		case strings.HasSuffix(rel, ".rr"):
			r, err := dns.NewRR(string(data))
			if err != nil || r == nil {
				return nil, fmt.Errorf("fleet zone %s: record at %s: %q: %v", name, owner, data, err)
			}
			rrs = append(rrs, r)
		}
	}
	if meta == nil {
		return nil, fmt.Errorf("fleet zone %s: no meta record", name)
	}
	d.Meta = *meta
	switch meta.Kind {
	case KindRoute53:
		slices.SortFunc(sets, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
		rs := make([]types.ResourceRecordSet, len(sets))
		for i, k := range sets {
			rs[i] = k.rs
		}
		z, skipped, err := r53.BuildZone(meta.Origin, meta.ZoneID, r53.WithSerial(rs, meta.Serial))
		if err != nil {
			return nil, err
		}
		d.Zone, d.Skipped = z, skipped
	case KindRecords:
		b := zonestore.NewBuilder(meta.Origin)
		b.SetSource("follow")
		for _, rr := range rrs {
			if err := b.Add(rr); err != nil {
				return nil, fmt.Errorf("fleet zone %s (%s): %w", name, meta.Origin, err)
			}
		}
		z, err := b.Build()
		if err != nil {
			return nil, fmt.Errorf("fleet zone %s (%s): %w", name, meta.Origin, err)
		}
		d.Zone = z
	default:
		return nil, fmt.Errorf("fleet zone %s: unknown kind %q", name, meta.Kind)
	}
	return d, nil
}

// Members returns the zones a catalog zone lists (RFC 9432 member PTRs).
func Members(cat *zonestore.Zone) []string {
	var out []string
	suffix := ".zones." + cat.Origin()
	for _, rr := range cat.RRs() {
		if p, ok := rr.(*dns.PTR); ok && strings.HasSuffix(strings.ToLower(p.Hdr.Name), suffix) {
			out = append(out, zonestore.Canonical(p.Ptr))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
