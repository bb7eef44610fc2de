package zonestore

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzParseZone: any input either fails with an error or yields a zone whose
// lookups and dump do not panic.
func FuzzParseZone(f *testing.F) {
	f.Add(testZone)
	f.Add("$ORIGIN example.org.\n@ 60 IN SOA ns hm 1 2 3 4 5\n@ 60 IN NS ns\n*.w 60 IN CNAME w\n")
	f.Add("@ IN SOA ns hm ( 1 2 3 4 5 )\n@ NS ns\nsub NS a.sub\na.sub A 192.0.2.1\n")
	f.Fuzz(func(t *testing.T, text string) {
		z, err := ParseZone(strings.NewReader(text), "example.org.", "fuzz.zone")
		if err != nil {
			return
		}
		for _, name := range []string{"example.org.", "www.example.org.", "a.b.example.org.", "*.example.org."} {
			for _, qt := range []uint16{dns.TypeA, dns.TypeNS, dns.TypeANY, dns.TypeCNAME, dns.TypeDS} {
				z.Lookup(name, qt)
			}
		}
		for _, rr := range z.RRs() {
			z.Lookup(rr.Header().Name, rr.Header().Rrtype)
		}
		var sb strings.Builder
		if _, err := z.WriteTo(&sb); err != nil {
			t.Fatal(err)
		}
	})
}

func BenchmarkLookup(b *testing.B) {
	z := mustZone(b, testZone, "example.org.")
	for _, tc := range []struct {
		name, qname string
		qtype       uint16
	}{
		{"hit", "www.example.org.", dns.TypeA},
		{"nodata", "www.example.org.", dns.TypeAAAA},
		{"nxdomain", "nope.example.org.", dns.TypeA},
		{"referral", "a.b.sub.example.org.", dns.TypeA},
		{"cname", "alias.example.org.", dns.TypeA},
		{"wildcard", "x.wild.example.org.", dns.TypeA},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				z.Lookup(tc.qname, tc.qtype)
			}
		})
	}
}
