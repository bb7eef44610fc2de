package fleet

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"

	"hybridns/r53"
	"hybridns/zonestore"
)

func vals(v ...string) []types.ResourceRecord {
	var out []types.ResourceRecord
	for _, s := range v {
		out = append(out, types.ResourceRecord{Value: aws.String(s)})
	}
	return out
}

func corpus() []types.ResourceRecordSet {
	long := strings.Repeat(`"`+strings.Repeat("x\\y", 80)+`" `, 4) // strings past 255 bytes, quotes and backslashes
	return []types.ResourceRecordSet{
		{Name: aws.String("example.com."), Type: types.RRTypeSoa, TTL: aws.Int64(900),
			ResourceRecords: vals("ns-1.awsdns-01.org. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400")},
		{Name: aws.String("example.com."), Type: types.RRTypeNs, TTL: aws.Int64(172800), ResourceRecords: vals("ns-1.awsdns-01.org.", "ns-2.awsdns-02.com.")},
		{Name: aws.String("www.example.com."), Type: types.RRTypeA, TTL: aws.Int64(60), ResourceRecords: vals("192.0.2.1")},
		{Name: aws.String("w.example.com."), Type: types.RRTypeA, TTL: aws.Int64(60), SetIdentifier: aws.String("one"), Weight: aws.Int64(1), ResourceRecords: vals("192.0.2.11")},
		{Name: aws.String("w.example.com."), Type: types.RRTypeA, TTL: aws.Int64(60), SetIdentifier: aws.String("zero"), Weight: aws.Int64(0), ResourceRecords: vals("192.0.2.12")},
		{Name: aws.String("f.example.com."), Type: types.RRTypeA, TTL: aws.Int64(60), SetIdentifier: aws.String("p"), Failover: types.ResourceRecordSetFailoverPrimary,
			HealthCheckId: aws.String("hc-1"), ResourceRecords: vals("192.0.2.21")},
		{Name: aws.String("f.example.com."), Type: types.RRTypeA, TTL: aws.Int64(60), SetIdentifier: aws.String("s"), Failover: types.ResourceRecordSetFailoverSecondary,
			ResourceRecords: vals("192.0.2.22")},
		{Name: aws.String("alias.example.com."), Type: types.RRTypeA,
			AliasTarget: &types.AliasTarget{DNSName: aws.String("www.example.com."), HostedZoneId: aws.String("Z1"), EvaluateTargetHealth: true}},
		{Name: aws.String("\\052.wild.example.com."), Type: types.RRTypeTxt, TTL: aws.Int64(300), ResourceRecords: vals(long, `"caf\303\251 ü"`)},
	}
}

var queries = []struct {
	name string
	t    uint16
}{
	{"example.com.", dns.TypeSOA}, {"example.com.", dns.TypeNS}, {"www.example.com.", dns.TypeA},
	{"w.example.com.", dns.TypeA}, {"f.example.com.", dns.TypeA}, {"alias.example.com.", dns.TypeA},
	{"x.wild.example.com.", dns.TypeTXT}, {"nope.example.com.", dns.TypeA},
}

func answers(z *zonestore.Zone, c *zonestore.Client) string {
	var b strings.Builder
	for _, q := range queries {
		r := z.LookupFor(q.name, q.t, c)
		var lines []string
		for _, rr := range append(append([]dns.RR{}, r.Answer...), r.Ns...) {
			lines = append(lines, rr.String())
		}
		slices.Sort(lines)
		fmt.Fprintf(&b, "%s %s %v: %s\n", q.name, dns.TypeToString[q.t], r.Kind, strings.Join(lines, " | "))
	}
	return b.String()
}

// reTransfer passes z through presentation form and back, as a transfer
// (wire) and the follower's copy on disk (text) would.
func reTransfer(t *testing.T, z *zonestore.Zone) *zonestore.Zone {
	t.Helper()
	var buf strings.Builder
	if _, err := z.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	b := zonestore.NewBuilder(z.Origin())
	for _, rr := range z.RRs() {
		wire := make([]byte, 65535)
		n, err := dns.PackRR(rr, wire, 0, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		back, _, err := dns.UnpackRR(wire[:n], 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Add(back); err != nil {
			t.Fatal(err)
		}
	}
	out, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := zonestore.ParseZone(strings.NewReader(buf.String()), z.Origin(), "copy")
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Records() != out.Records() {
		t.Fatalf("text copy has %d records, wire copy %d", parsed.Records(), out.Records())
	}
	return out
}

func TestRoute53RoundTrip(t *testing.T) {
	sets := corpus()
	orig, skipped, err := r53.BuildZone("example.com.", "ZEX", r53.WithSerial(sets, 1234))
	if err != nil || len(skipped) > 0 {
		t.Fatal(err, skipped)
	}
	for _, down := range []bool{false, true} {
		health := map[string]bool{"hc-1": !down, "hc-unused": false}
		fz, err := Route53(Meta{View: "corp", Origin: "example.com.", ZoneID: "ZEX", Private: true, Serial: 1234}, sets, health, 1234)
		if err != nil {
			t.Fatal(err)
		}
		if fz.Origin() != Name("corp", "example.com.") || fz.Serial() != 1234 || fz.SOA().Expire != 2147483646 {
			t.Fatalf("fleet zone %s serial %d", fz.Origin(), fz.Serial())
		}
		d, err := Decode(reTransfer(t, fz))
		if err != nil {
			t.Fatal(err)
		}
		if d.Meta != (Meta{View: "corp", Origin: "example.com.", Kind: KindRoute53, ZoneID: "ZEX", Private: true, Serial: 1234}) {
			t.Fatalf("meta %+v", d.Meta)
		}
		if len(d.Health) != 1 || d.Health["hc-1"] != !down {
			t.Fatalf("health %v", d.Health)
		}
		if d.Zone.Serial() != 1234 || d.Zone.Source() != orig.Source() {
			t.Fatalf("serial %d source %s", d.Zone.Serial(), d.Zone.Source())
		}
		if !slices.EqualFunc(d.Zone.RRs(), orig.RRs(), func(a, b dns.RR) bool { return a.String() == b.String() }) {
			t.Fatalf("records differ:\n%v\n%v", d.Zone.RRs(), orig.RRs())
		}
		// Same answers: the primary's health against the follower's copy of it.
		onPrimary := &zonestore.Client{Healthy: func(id string) bool { return health[id] || id != "hc-1" }}
		onFollower := &zonestore.Client{Healthy: func(id string) bool { v, ok := d.Health[id]; return !ok || v }}
		want, got := answers(orig, onPrimary), answers(d.Zone, onFollower)
		if want != got {
			t.Fatalf("down=%v: answers differ\nprimary:\n%s\nfollower:\n%s", down, want, got)
		}
		if f := d.Zone.LookupFor("f.example.com.", dns.TypeA, onFollower).Answer; len(f) != 1 ||
			(f[0].(*dns.A).A.String() == "192.0.2.21") == down {
			t.Fatalf("down=%v: failover answered %v", down, f)
		}
		if w := d.Zone.LookupFor("w.example.com.", dns.TypeA, onFollower).Answer; len(w) != 1 || w[0].(*dns.A).A.String() != "192.0.2.11" {
			t.Fatalf("weighted (weight 0 never chosen) answered %v", w)
		}
	}
}

// A change of one record set changes exactly one TXT RRset of the fleet
// zone: an IXFR moves only that set.
func TestRoute53OneSetChanges(t *testing.T) {
	sets := corpus()
	a, err := Route53(Meta{Origin: "example.com.", ZoneID: "ZEX"}, sets, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	sets[2].ResourceRecords = vals("192.0.2.99")
	b, err := Route53(Meta{Origin: "example.com.", ZoneID: "ZEX"}, sets, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	in := func(z *zonestore.Zone) map[string]bool {
		m := map[string]bool{}
		for _, rr := range z.RRs() {
			if rr.Header().Rrtype == dns.TypeTXT && !strings.HasPrefix(rr.Header().Name, "meta.") {
				m[rr.String()] = true
			}
		}
		return m
	}
	ma, mb := in(a), in(b)
	diff := 0
	for k := range ma {
		if !mb[k] {
			diff++
		}
	}
	for k := range mb {
		if !ma[k] {
			diff++
		}
	}
	if diff != 2 { // one deleted, one added
		t.Fatalf("%d TXT records differ, want 2", diff)
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	src := `$ORIGIN files.example.
$TTL 300
@ IN SOA ns1 hostmaster 42 3600 600 86400 60
@ IN NS ns1
ns1 IN A 192.0.2.53
www 600 IN AAAA 2001:db8::1
t IN TXT "a \"quoted\" string" "caf\195\169"
sub IN NS ns.sub
ns.sub IN A 192.0.2.54
m IN MX 10 mail
`
	orig, err := zonestore.ParseZone(strings.NewReader(src), "files.example.", "t")
	if err != nil {
		t.Fatal(err)
	}
	fz, err := Records(Meta{Origin: "files.example."}, orig, 42)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(reTransfer(t, fz))
	if err != nil {
		t.Fatal(err)
	}
	if d.Meta.Kind != KindRecords || d.Zone.Serial() != 42 {
		t.Fatalf("%+v serial %d", d.Meta, d.Zone.Serial())
	}
	if !slices.EqualFunc(d.Zone.RRs(), orig.RRs(), func(a, b dns.RR) bool { return a.String() == b.String() }) {
		t.Fatalf("records differ:\n%v\n%v", d.Zone.RRs(), orig.RRs())
	}
	for _, q := range []string{"www.files.example.", "x.sub.files.example.", "t.files.example."} {
		a, b := orig.Lookup(q, dns.TypeAAAA), d.Zone.Lookup(q, dns.TypeAAAA)
		if fmt.Sprint(a.Kind, a.Answer, a.Ns, a.Extra) != fmt.Sprint(b.Kind, b.Answer, b.Ns, b.Extra) {
			t.Fatalf("%s: %v vs %v", q, a, b)
		}
	}
}

func TestMembers(t *testing.T) {
	cat, err := zonestore.BuildCatalog("catalog.hybridns.", 7, []string{Name("", "a."), Name("v", "a.")})
	if err != nil {
		t.Fatal(err)
	}
	got := Members(cat)
	want := []string{Name("", "a."), Name("v", "a.")}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
}
