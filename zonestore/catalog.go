package zonestore

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/miekg/dns"
)

// CatalogSource is the Source() of catalog zones: they list zones and are
// never members of a catalog themselves.
const CatalogSource = "catalog"

// CatalogMemberLabel is the stable member label of a zone in a catalog
// (RFC 9432 §4.1): derived from the zone's name alone, so it never changes
// while the zone exists and every instance picks the same one.
func CatalogMemberLabel(zone string) string {
	sum := sha256.Sum256([]byte(Canonical(zone)))
	return "m" + hex.EncodeToString(sum[:10])
}

// BuildCatalog builds an RFC 9432 (schema version 2) catalog zone named
// origin listing members, with the given SOA serial.
func BuildCatalog(origin string, serial uint32, members []string) (*Zone, error) {
	origin = Canonical(origin)
	b := NewBuilder(origin)
	b.SetSource(CatalogSource)
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: 0}
	}
	rrs := []dns.RR{
		&dns.SOA{Hdr: hdr(origin, dns.TypeSOA), Ns: "invalid.", Mbox: "invalid.", Serial: serial,
			Refresh: 3600, Retry: 600, Expire: 2147483646, Minttl: 0},
		&dns.NS{Hdr: hdr(origin, dns.TypeNS), Ns: "invalid."},
		&dns.TXT{Hdr: hdr("version."+origin, dns.TypeTXT), Txt: []string{"2"}},
	}
	sorted := append([]string(nil), members...)
	sort.Strings(sorted)
	for _, m := range sorted {
		rrs = append(rrs, &dns.PTR{Hdr: hdr(CatalogMemberLabel(m)+".zones."+origin, dns.TypePTR), Ptr: Canonical(m)})
	}
	for _, rr := range rrs {
		if err := b.Add(rr); err != nil {
			return nil, fmt.Errorf("catalog %s: %w", origin, err)
		}
	}
	return b.Build()
}
