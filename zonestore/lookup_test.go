package zonestore

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const testZone = `
$ORIGIN example.org.
$TTL 3600
@        IN SOA  ns1.example.org. hostmaster.example.org. 2024010101 7200 900 1209600 300
         IN NS   ns1
         IN NS   ns2.other.net.
         IN MX   10 mail
         IN TXT  "v=spf1 -all"
ns1      IN A    192.0.2.1
mail     IN A    192.0.2.25
         IN AAAA 2001:db8::25
www      IN A    192.0.2.10
         IN A    192.0.2.11
Mixed    IN A    192.0.2.12
alias    IN CNAME www
chain1   IN CNAME chain2
chain2   IN CNAME chain3
chain3   IN CNAME www
loop1    IN CNAME loop2
loop2    IN CNAME loop1
out      IN CNAME www.elsewhere.net.
dangling IN CNAME nothere
tonodata IN CNAME mail
*.wild   IN A    192.0.2.100
*.wild   IN TXT  "wild"
exists.wild IN AAAA 2001:db8::1
a.ent.wild  IN A 192.0.2.101
*.cwild  IN CNAME www
deep.ent.x IN A  192.0.2.102
sub      IN NS   ns.sub
         IN NS   ns.other.net.
         IN DS   12345 8 2 4A6E2D3F5B1C7E9F00112233445566778899AABBCCDDEEFF0011223344556677
ns.sub   IN A    192.0.2.53
intosub  IN CNAME host.sub
_sip._tcp IN SRV 10 5 5060 www
`

func mustZone(t testing.TB, text, origin string) *Zone {
	t.Helper()
	z, err := ParseZone(strings.NewReader(text), origin, "test.zone")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return z
}

func rrs(t testing.TB, texts ...string) []string {
	t.Helper()
	var out []string
	for _, s := range texts {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("bad expectation %q: %v", s, err)
		}
		out = append(out, rr.String())
	}
	sort.Strings(out)
	return out
}

func str(rs []dns.RR) []string {
	var out []string
	for _, rr := range rs {
		out = append(out, rr.String())
	}
	sort.Strings(out)
	return out
}

func TestLookup(t *testing.T) {
	z := mustZone(t, testZone, "example.org.")
	soa := "example.org. 300 IN SOA ns1.example.org. hostmaster.example.org. 2024010101 7200 900 1209600 300"
	tests := []struct {
		qname  string
		qtype  uint16
		kind   Kind
		answer []string
		ns     []string
		extra  []string
		chase  string
	}{
		{qname: "www.example.org.", qtype: dns.TypeA, kind: Answer,
			answer: []string{"www.example.org. 3600 IN A 192.0.2.10", "www.example.org. 3600 IN A 192.0.2.11"}},
		{qname: "mixed.example.org.", qtype: dns.TypeA, kind: Answer,
			answer: []string{"mixed.example.org. 3600 IN A 192.0.2.12"}},
		{qname: "www.example.org.", qtype: dns.TypeAAAA, kind: NoData, ns: []string{soa}},
		{qname: "nope.example.org.", qtype: dns.TypeA, kind: NXDomain, ns: []string{soa}},
		{qname: "example.org.", qtype: dns.TypeMX, kind: Answer,
			answer: []string{"example.org. 3600 IN MX 10 mail.example.org."},
			extra:  []string{"mail.example.org. 3600 IN A 192.0.2.25", "mail.example.org. 3600 IN AAAA 2001:db8::25"}},
		{qname: "example.org.", qtype: dns.TypeNS, kind: Answer,
			answer: []string{"example.org. 3600 IN NS ns1.example.org.", "example.org. 3600 IN NS ns2.other.net."},
			extra:  []string{"ns1.example.org. 3600 IN A 192.0.2.1"}},
		{qname: "_sip._tcp.example.org.", qtype: dns.TypeSRV, kind: Answer,
			answer: []string{"_sip._tcp.example.org. 3600 IN SRV 10 5 5060 www.example.org."},
			extra:  []string{"www.example.org. 3600 IN A 192.0.2.10", "www.example.org. 3600 IN A 192.0.2.11"}},
		// Empty non-terminals exist: NODATA, not NXDOMAIN.
		{qname: "_tcp.example.org.", qtype: dns.TypeA, kind: NoData, ns: []string{soa}},
		{qname: "ent.x.example.org.", qtype: dns.TypeA, kind: NoData, ns: []string{soa}},
		{qname: "x.example.org.", qtype: dns.TypeA, kind: NoData, ns: []string{soa}},
		// CNAMEs.
		{qname: "alias.example.org.", qtype: dns.TypeA, kind: Answer,
			answer: []string{"alias.example.org. 3600 IN CNAME www.example.org.", "www.example.org. 3600 IN A 192.0.2.10", "www.example.org. 3600 IN A 192.0.2.11"}},
		{qname: "alias.example.org.", qtype: dns.TypeCNAME, kind: Answer,
			answer: []string{"alias.example.org. 3600 IN CNAME www.example.org."}},
		{qname: "chain1.example.org.", qtype: dns.TypeA, kind: Answer,
			answer: []string{"chain1.example.org. 3600 IN CNAME chain2.example.org.", "chain2.example.org. 3600 IN CNAME chain3.example.org.",
				"chain3.example.org. 3600 IN CNAME www.example.org.", "www.example.org. 3600 IN A 192.0.2.10", "www.example.org. 3600 IN A 192.0.2.11"}},
		{qname: "loop1.example.org.", qtype: dns.TypeA, kind: Answer, chase: "loop1.example.org.",
			answer: []string{"loop1.example.org. 3600 IN CNAME loop2.example.org.", "loop2.example.org. 3600 IN CNAME loop1.example.org."}},
		{qname: "out.example.org.", qtype: dns.TypeA, kind: Answer, chase: "www.elsewhere.net.",
			answer: []string{"out.example.org. 3600 IN CNAME www.elsewhere.net."}},
		{qname: "dangling.example.org.", qtype: dns.TypeA, kind: NXDomain, ns: []string{soa},
			answer: []string{"dangling.example.org. 3600 IN CNAME nothere.example.org."}},
		{qname: "tonodata.example.org.", qtype: dns.TypeTXT, kind: NoData, ns: []string{soa},
			answer: []string{"tonodata.example.org. 3600 IN CNAME mail.example.org."}},
		// Wildcards (RFC 4592).
		{qname: "foo.wild.example.org.", qtype: dns.TypeA, kind: Answer,
			answer: []string{"foo.wild.example.org. 3600 IN A 192.0.2.100"}},
		{qname: "a.b.wild.example.org.", qtype: dns.TypeTXT, kind: Answer,
			answer: []string{`a.b.wild.example.org. 3600 IN TXT "wild"`}},
		{qname: "foo.wild.example.org.", qtype: dns.TypeMX, kind: NoData, ns: []string{soa}},
		{qname: "exists.wild.example.org.", qtype: dns.TypeA, kind: NoData, ns: []string{soa}},  // existing name blocks the wildcard
		{qname: "ent.wild.example.org.", qtype: dns.TypeA, kind: NoData, ns: []string{soa}},     // ENT blocks it
		{qname: "b.ent.wild.example.org.", qtype: dns.TypeA, kind: NXDomain, ns: []string{soa}}, // closest encloser ent.wild has no *
		{qname: "*.wild.example.org.", qtype: dns.TypeA, kind: Answer,
			answer: []string{"*.wild.example.org. 3600 IN A 192.0.2.100"}},
		{qname: "x.cwild.example.org.", qtype: dns.TypeA, kind: Answer,
			answer: []string{"x.cwild.example.org. 3600 IN CNAME www.example.org.", "www.example.org. 3600 IN A 192.0.2.10", "www.example.org. 3600 IN A 192.0.2.11"}},
		// Delegation.
		{qname: "sub.example.org.", qtype: dns.TypeA, kind: Referral,
			ns:    []string{"sub.example.org. 3600 IN NS ns.sub.example.org.", "sub.example.org. 3600 IN NS ns.other.net."},
			extra: []string{"ns.sub.example.org. 3600 IN A 192.0.2.53"}},
		{qname: "sub.example.org.", qtype: dns.TypeNS, kind: Referral,
			ns:    []string{"sub.example.org. 3600 IN NS ns.sub.example.org.", "sub.example.org. 3600 IN NS ns.other.net."},
			extra: []string{"ns.sub.example.org. 3600 IN A 192.0.2.53"}},
		{qname: "deep.below.sub.example.org.", qtype: dns.TypeA, kind: Referral,
			ns:    []string{"sub.example.org. 3600 IN NS ns.sub.example.org.", "sub.example.org. 3600 IN NS ns.other.net."},
			extra: []string{"ns.sub.example.org. 3600 IN A 192.0.2.53"}},
		{qname: "ns.sub.example.org.", qtype: dns.TypeA, kind: Referral,
			ns:    []string{"sub.example.org. 3600 IN NS ns.sub.example.org.", "sub.example.org. 3600 IN NS ns.other.net."},
			extra: []string{"ns.sub.example.org. 3600 IN A 192.0.2.53"}},
		{qname: "sub.example.org.", qtype: dns.TypeDS, kind: Answer,
			answer: []string{"sub.example.org. 3600 IN DS 12345 8 2 4A6E2D3F5B1C7E9F00112233445566778899AABBCCDDEEFF0011223344556677"}},
		{qname: "intosub.example.org.", qtype: dns.TypeA, kind: Referral,
			answer: []string{"intosub.example.org. 3600 IN CNAME host.sub.example.org."},
			ns:     []string{"sub.example.org. 3600 IN NS ns.sub.example.org.", "sub.example.org. 3600 IN NS ns.other.net."},
			extra:  []string{"ns.sub.example.org. 3600 IN A 192.0.2.53"}},
		// ANY (RFC 8482: we give the node's records).
		{qname: "mail.example.org.", qtype: dns.TypeANY, kind: Answer,
			answer: []string{"mail.example.org. 3600 IN A 192.0.2.25", "mail.example.org. 3600 IN AAAA 2001:db8::25"}},
		{qname: "x.example.org.", qtype: dns.TypeANY, kind: NoData, ns: []string{soa}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s", tc.qname, dns.TypeToString[tc.qtype]), func(t *testing.T) {
			res := z.Lookup(tc.qname, tc.qtype)
			if res.Kind != tc.kind {
				t.Fatalf("kind = %v, want %v", res.Kind, tc.kind)
			}
			check := func(section string, got []dns.RR, want []string) {
				t.Helper()
				g, w := str(got), rrs(t, want...)
				if strings.Join(g, "\n") != strings.Join(w, "\n") {
					t.Errorf("%s:\n got %q\nwant %q", section, g, w)
				}
			}
			check("answer", res.Answer, tc.answer)
			check("ns", res.Ns, tc.ns)
			check("extra", res.Extra, tc.extra)
			if res.Chase != tc.chase {
				t.Errorf("chase = %q, want %q", res.Chase, tc.chase)
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	head := "$ORIGIN example.org.\n@ 60 IN SOA ns hm 1 2 3 4 5\n@ 60 IN NS ns\n"
	tests := []struct {
		name, text, want string
	}{
		{"no soa", "$ORIGIN example.org.\n@ 60 IN NS ns\n", "no SOA"},
		{"no ns", "$ORIGIN example.org.\n@ 60 IN SOA ns hm 1 2 3 4 5\n", "no NS"},
		{"cname and other", head + "a 60 IN CNAME b\na 60 IN A 192.0.2.1\n", "CNAME and other data"},
		{"two cnames", head + "a 60 IN CNAME b\na 60 IN CNAME c\n", "more than one CNAME"},
		{"out of zone", head + "www.example.com. 60 IN A 192.0.2.1\n", "outside zone"},
		{"syntax", head + "a 60 IN A 300.1.1.1\n", "test.zone"},
		{"syntax line", head + "a 60 IN A 300.1.1.1\n", "line: 4"},
		{"include", head + "$INCLUDE /etc/passwd\n", "test.zone"},
		{"soa not at apex", head + "a 60 IN SOA ns hm 1 2 3 4 5\n", "not at the zone apex"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseZone(strings.NewReader(tc.text), "example.org.", "test.zone")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestBuildNormalizes(t *testing.T) {
	z := mustZone(t, `$ORIGIN Example.ORG.
@ 60 IN SOA NS1 hm 1 2 3 4 5
@ 60 IN NS NS1
WWW 60 IN A 192.0.2.1
www 120 IN A 192.0.2.2
www 60 IN A 192.0.2.1
Alias 60 IN CNAME WWW
`, "EXAMPLE.org")
	if z.Origin() != "example.org." {
		t.Errorf("origin %q", z.Origin())
	}
	res := z.Lookup("www.example.org.", dns.TypeA)
	if got, want := str(res.Answer), rrs(t, "www.example.org. 60 IN A 192.0.2.1", "www.example.org. 60 IN A 192.0.2.2"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("dedup/TTL: got %q want %q", got, want)
	}
	res = z.Lookup("alias.example.org.", dns.TypeA)
	if len(res.Answer) != 3 {
		t.Errorf("case-folded CNAME target not chased: %v", res.Answer)
	}
	if z.Records() != 5 {
		t.Errorf("records = %d, want 5", z.Records())
	}
}

func TestLookupZeroAlloc(t *testing.T) {
	z := mustZone(t, testZone, "example.org.")
	for _, q := range []struct {
		name string
		t    uint16
	}{
		{"www.example.org.", dns.TypeA},
		{"nope.example.org.", dns.TypeA},
		{"www.example.org.", dns.TypeAAAA},
		{"deep.below.sub.example.org.", dns.TypeA},
		{"example.org.", dns.TypeMX},
	} {
		if n := testing.AllocsPerRun(100, func() { z.Lookup(q.name, q.t) }); n != 0 {
			t.Errorf("Lookup(%s, %s) allocates %v times", q.name, dns.TypeToString[q.t], n)
		}
	}
}

func TestSnapshotFind(t *testing.T) {
	mk := func(origin string) *Zone {
		return mustZone(t, "@ 60 IN SOA ns hm 1 2 3 4 5\n@ 60 IN NS ns\nns 60 IN A 192.0.2.1\n", origin)
	}
	corp, sub, pub, priv := mk("corp.example."), mk("a.corp.example."), mk("shop.example."), mk("shop.example.")
	snap, err := NewSnapshot(1, map[string][]*Zone{DefaultView: {corp, sub, pub}, "vpc": {priv}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		view, qname string
		want        *Zone
	}{
		{DefaultView, "x.corp.example.", corp},
		{DefaultView, "corp.example.", corp},
		{DefaultView, "x.a.corp.example.", sub},
		{DefaultView, "a.corp.example.", sub},
		{DefaultView, "example.", nil},
		{DefaultView, "www.shop.example.", pub},
		{"vpc", "www.shop.example.", priv},
		{"vpc", "x.a.corp.example.", sub},
		{"unknown", "www.shop.example.", pub},
	}
	for _, tc := range tests {
		if got := snap.Find(tc.view, tc.qname); got != tc.want {
			t.Errorf("Find(%q, %q) = %v, want %v", tc.view, tc.qname, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { snap.Find(DefaultView, "x.a.corp.example.") }); n != 0 {
		t.Errorf("Find allocates %v", n)
	}
	next := snap.WithoutZone(DefaultView, "a.corp.example.")
	if got := next.Find(DefaultView, "x.a.corp.example."); got != corp {
		t.Errorf("after removal: %v", got)
	}
	if got := snap.Find(DefaultView, "x.a.corp.example."); got != sub {
		t.Errorf("old snapshot changed")
	}
}

func TestWriteToRoundTrip(t *testing.T) {
	z := mustZone(t, testZone, "example.org.")
	var sb strings.Builder
	if _, err := z.WriteTo(&sb); err != nil {
		t.Fatal(err)
	}
	z2, err := ParseZone(strings.NewReader(sb.String()), "example.org.", "dump")
	if err != nil {
		t.Fatalf("reparse: %v\n%s", err, sb.String())
	}
	if strings.Join(str(z.RRs()), "\n") != strings.Join(str(z2.RRs()), "\n") {
		t.Errorf("round trip differs")
	}
	if z.RRs()[0].Header().Rrtype != dns.TypeSOA {
		t.Errorf("SOA not first")
	}
}

func TestDNAME(t *testing.T) {
	z := mustZone(t, `$ORIGIN example.org.
@ 60 IN SOA ns hm 1 2 3 4 5
@ 60 IN NS ns
dn 300 IN DNAME target.example.org.
x.target 60 IN A 192.0.2.90
out 300 IN DNAME example.net.
long 300 IN DNAME `+strings.Repeat("a", 63)+"."+strings.Repeat("b", 63)+"."+strings.Repeat("c", 63)+`.
`, "example.org.")
	res := z.Lookup("x.dn.example.org.", dns.TypeA)
	want := rrs(t, "dn.example.org. 300 IN DNAME target.example.org.", "x.dn.example.org. 300 IN CNAME x.target.example.org.", "x.target.example.org. 60 IN A 192.0.2.90")
	if res.Kind != Answer || strings.Join(str(res.Answer), "|") != strings.Join(want, "|") {
		t.Errorf("in-zone DNAME: %v %v", res.Kind, res.Answer)
	}
	if res := z.Lookup("nope.dn.example.org.", dns.TypeA); res.Kind != NXDomain || len(res.Answer) != 2 {
		t.Errorf("DNAME to a missing name: %v %v", res.Kind, res.Answer)
	}
	if res := z.Lookup("a.out.example.org.", dns.TypeA); res.Kind != Answer || res.Chase != "a.example.net." {
		t.Errorf("DNAME out of the zone: %+v", res)
	}
	if res := z.Lookup("dn.example.org.", dns.TypeA); res.Kind != NoData {
		t.Errorf("the DNAME owner itself: %v", res.Kind)
	}
	long := strings.Repeat("d", 63) + "." + strings.Repeat("e", 20) + ".long.example.org."
	if res := z.Lookup(long, dns.TypeA); res.Kind != YXDomain {
		t.Errorf("substitution over 255 octets: %v", res.Kind)
	}
}

// A root zone: its top-level names' parent is the apex. A delegation
// there made the builder walk a cycle of parents forever (the rest of
// "com." after its label is "", which was taken for a name of its own).
func TestRootZone(t *testing.T) {
	src := `$ORIGIN .
$TTL 300
@ SOA a.root. hm.root. 1 3600 600 86400 60
@ NS a.root.
a.root. A 192.0.2.1
com. NS a.gtld.com.
a.gtld.com. A 192.0.2.2
`
	z, err := ParseZone(strings.NewReader(src), ".", "root.zone")
	if err != nil {
		t.Fatal(err)
	}
	if r := z.Lookup("www.com.", dns.TypeA); r.Kind != Referral || len(r.Ns) != 1 || r.Ns[0].(*dns.NS).Ns != "a.gtld.com." {
		t.Fatalf("www.com. A: kind %v, ns %v; want the referral to com.", r.Kind, r.Ns)
	}
	if r := z.Lookup("nothing.", dns.TypeA); r.Kind != NXDomain {
		t.Fatalf("nothing. A: kind %v; want NXDOMAIN", r.Kind)
	}
	if r := z.Lookup("a.root.", dns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("a.root. A: %v", r.Answer)
	}
}
