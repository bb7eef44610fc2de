package r53

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"hybridns/test/r53fake"
	"hybridns/zonestore"
)

// openZone is the import command's first step against the fake.
func openZone(t *testing.T, url, zone string) (*Syncer, ZoneData) {
	t.Helper()
	s, zd, err := OpenZone(context.Background(), newClient(t, url, 1000, 100), zone, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, zd
}

func exportText(t *testing.T, zd ZoneData) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteZoneFile(&b, zd.Name, zd.ID, zd.Sets); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func planText(t *testing.T, zd ZoneData, text string) *ImportPlan {
	t.Helper()
	desired, notes, err := ParseZoneFile(strings.NewReader(text), "test.zone", zd.Name, zd.ID)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	plan, err := PlanImport(zd.Name, zd.ID, zd.Sets, desired, notes)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// describe is a record set as Route 53 compares it: TTL, values in any
// order, alias, routing and health check.
func describe(t *testing.T, rs types.ResourceRecordSet) string {
	t.Helper()
	conv, err := ConvertRecordSet(rs)
	if err != nil {
		t.Fatal(err)
	}
	parts := append([]string{conv.Name, string(rs.Type)}, policyAttrs(conv.Policy)...)
	if a := conv.Alias; a != nil {
		return strings.Join(append(parts, "alias", a.DNSName, a.HostedZoneID, fmt.Sprint(a.EvaluateTargetHealth)), " ")
	}
	parts = append(parts, fmt.Sprint(conv.TTL))
	return strings.Join(append([]string{strings.Join(parts, " ")}, rrTexts(conv.RRs)...), " | ")
}

// described is every set of a zone but the SOA and the apex NS, described.
func described(t *testing.T, origin string, sets []types.ResourceRecordSet) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, rs := range sets {
		name, _ := UnescapeName(aws.ToString(rs.Name))
		if rs.Type == types.RRTypeSoa || rs.Type == types.RRTypeNs && name == zonestore.Canonical(origin) {
			continue
		}
		out[setKey(name, rs.Type, aws.ToString(rs.SetIdentifier))] = describe(t, rs)
	}
	return out
}

func routed(rs types.ResourceRecordSet, id string, set func(*types.ResourceRecordSet)) types.ResourceRecordSet {
	rs.SetIdentifier = aws.String(id)
	set(&rs)
	return rs
}

func aliasSet(name, typ, target, zone string, eval bool) types.ResourceRecordSet {
	return types.ResourceRecordSet{Name: aws.String(name), Type: types.RRType(typ),
		AliasTarget: &types.AliasTarget{DNSName: aws.String(target), HostedZoneId: aws.String(zone), EvaluateTargetHealth: eval}}
}

// seedEveryKind fills a zone with plain sets of many types and a set of
// every routing policy, aliases among them.
func seedEveryKind(t *testing.T, f *r53fake.Fake, zid string) {
	f.AddHealthCheck("hc-1", true)
	f.AddHealthCheck("hc-2", true)
	put(t, f, zid,
		rrset("www.example.com", "A", 300, "192.0.2.1", "192.0.2.2"),
		rrset("www.example.com", "AAAA", 300, "2001:db8::1"),
		rrset("example.com", "MX", 3600, "10 mail.example.com", "20 mail2.example.com."),
		rrset("example.com", "TXT", 300, `"v=spf1 include:amazonses.com ~all"`, `"part one" "part two"`, `"quote \" and semicolon ; and octal \303\251"`),
		rrset("mail.example.com", "A", 300, "192.0.2.25"),
		rrset("_sip._tcp.example.com", "SRV", 60, "10 5 5060 sip.example.com"),
		rrset("example.com", "CAA", 300, `0 issue "amazon.com"`),
		rrset("\\052.wild.example.com", "A", 60, "192.0.2.99"),
		rrset("cname.example.com", "CNAME", 60, "www.example.com"),
		rrset("sub.example.com", "NS", 86400, "ns1.elsewhere.example.", "ns2.elsewhere.example."),
		rrset("simplehc.example.com", "A", 60, "192.0.2.60"),
		routed(rrset("w.example.com", "A", 60, "10.0.0.1"), "a", func(r *types.ResourceRecordSet) { r.Weight = aws.Int64(1) }),
		routed(rrset("w.example.com", "A", 60, "10.0.0.2"), "b b", func(r *types.ResourceRecordSet) { r.Weight = aws.Int64(9); r.HealthCheckId = aws.String("hc-2") }),
		routed(aliasSet("w.example.com", "A", "www.example.com.", zid, true), "c", func(r *types.ResourceRecordSet) { r.Weight = aws.Int64(0) }),
		routed(rrset("f.example.com", "A", 60, "10.1.0.1"), "primary", func(r *types.ResourceRecordSet) {
			r.Failover = types.ResourceRecordSetFailoverPrimary
			r.HealthCheckId = aws.String("hc-1")
		}),
		routed(aliasSet("f.example.com", "A", "www.example.com.", zid, true), "secondary", func(r *types.ResourceRecordSet) {
			r.Failover = types.ResourceRecordSetFailoverSecondary
		}),
		routed(rrset("lat.example.com", "A", 60, "10.2.0.1"), "use1", func(r *types.ResourceRecordSet) { r.Region = "us-east-1" }),
		routed(rrset("lat.example.com", "A", 60, "10.2.0.2"), "euw1", func(r *types.ResourceRecordSet) { r.Region = "eu-west-1" }),
		routed(rrset("geo.example.com", "A", 60, "10.3.0.1"), "de", func(r *types.ResourceRecordSet) {
			r.GeoLocation = &types.GeoLocation{ContinentCode: aws.String("EU")}
		}),
		routed(rrset("geo.example.com", "A", 60, "10.3.0.2"), "us-wa", func(r *types.ResourceRecordSet) {
			r.GeoLocation = &types.GeoLocation{CountryCode: aws.String("US"), SubdivisionCode: aws.String("WA")}
		}),
		routed(rrset("geo.example.com", "A", 60, "10.3.0.3"), "default", func(r *types.ResourceRecordSet) {
			r.GeoLocation = &types.GeoLocation{CountryCode: aws.String("*")}
		}),
		routed(rrset("cidr.example.com", "A", 60, "10.4.0.1"), "office", func(r *types.ResourceRecordSet) {
			r.CidrRoutingConfig = &types.CidrRoutingConfig{CollectionId: aws.String("c-1"), LocationName: aws.String("office")}
		}),
		routed(rrset("cidr.example.com", "A", 60, "10.4.0.2"), "rest", func(r *types.ResourceRecordSet) {
			r.CidrRoutingConfig = &types.CidrRoutingConfig{CollectionId: aws.String("c-1"), LocationName: aws.String("*")}
		}),
		routed(rrset("mv.example.com", "A", 60, "10.5.0.1"), "m1", func(r *types.ResourceRecordSet) { r.MultiValueAnswer = aws.Bool(true) }),
		routed(rrset("mv.example.com", "A", 60, "10.5.0.2"), "m2", func(r *types.ResourceRecordSet) { r.MultiValueAnswer = aws.Bool(true) }),
		routed(rrset("gp.example.com", "A", 60, "10.6.0.1"), "east", func(r *types.ResourceRecordSet) {
			r.GeoProximityLocation = &types.GeoProximityLocation{AWSRegion: aws.String("us-east-1"), Bias: aws.Int32(-20)}
		}),
		routed(rrset("gp.example.com", "A", 60, "10.6.0.2"), "point", func(r *types.ResourceRecordSet) {
			r.GeoProximityLocation = &types.GeoProximityLocation{Coordinates: &types.Coordinates{Latitude: aws.String("49.22"), Longitude: aws.String("-74.01")}}
		}),
		aliasSet("example.com", "A", "www.example.com.", zid, false),
		aliasSet("app.example.com", "A", "dualstack.my-lb-1.us-east-1.elb.amazonaws.com.", "Z35SXDOTRQ7X7K", false),
		aliasSet("app.example.com", "AAAA", "dualstack.my-lb-1.us-east-1.elb.amazonaws.com.", "Z35SXDOTRQ7X7K", true),
	)
	rs := rrset("simplehc.example.com", "A", 60, "192.0.2.60")
	rs.HealthCheckId = aws.String("hc-1")
	put(t, f, zid, rs)
}

// TestImportExportIdentity: export followed by import of a zone holding
// every kind of set is no change at all, and nothing is sent.
func TestImportExportIdentity(t *testing.T) {
	f := r53fake.New()
	url := f.Start(t)
	zid := f.CreateZone("example.com", false)
	seedEveryKind(t, f, zid)
	s, zd := openZone(t, url, "example.com")
	text := exportText(t, zd)
	plan := planText(t, zd, text)
	if plan.Changes() != 0 || len(plan.Batches) != 0 {
		var b strings.Builder
		plan.Write(&b)
		t.Fatalf("export then import changes something:\n%s\nfile:\n%s", b.String(), text)
	}
	if want := len(zd.Sets) - 2; plan.Unchanged != want {
		t.Fatalf("unchanged %d, want %d (every set but SOA and NS)", plan.Unchanged, want)
	}
	if _, err := s.Apply(context.Background(), zd.ID, plan.Batches); err != nil {
		t.Fatal(err)
	}
	if n := f.Calls("ChangeResourceRecordSets"); n != 0 {
		t.Fatalf("%d ChangeResourceRecordSets calls, want 0", n)
	}
	var out strings.Builder
	plan.Write(&out)
	if !strings.Contains(out.String(), "0 changes in 0 batches") || !strings.Contains(out.String(), "SOA and the NS set of example.com.") {
		t.Fatalf("plan:\n%s", out.String())
	}
}

// TestImportCli53Syntax: cli53's export (its routing comments, AWS ALIAS
// records, $self, relative names) imports into an empty zone as the sets
// it describes, and importing it again changes nothing.
func TestImportCli53Syntax(t *testing.T) {
	f := r53fake.New()
	url := f.Start(t)
	zid := f.CreateZone("example.com", false)
	f.AddHealthCheck("6bb57c41-879a-42d0-acdd-ed6472f08eb9", true)
	file := `$ORIGIN example.com.
$TTL 300
@	86400	IN	SOA	ns-1.awsdns-1.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400
@	172800	IN	NS	ns-1.awsdns-1.com.
a	300	IN	A	127.0.0.1
weighted	300	IN	A	127.0.0.1 ; AWS routing="WEIGHTED" weight=1 identifier="One"
weighted	300	IN	A	127.0.0.2 ; AWS routing="WEIGHTED" weight=2 identifier="Two"
failover	300	IN	A	127.0.0.1 ; AWS routing="FAILOVER" failover="PRIMARY" healthCheckId="6bb57c41-879a-42d0-acdd-ed6472f08eb9" identifier="failover-Primary"
failover	300	IN	A	127.0.0.2 ; AWS routing="FAILOVER" failover="SECONDARY" identifier="failover-Secondary"
geo	300	IN	A	127.0.0.2 ; AWS routing="GEOLOCATION" continentCode="AF" identifier="Africa"
geo	86400	AWS	ALIAS	A a $self false ; AWS routing="GEOLOCATION" countryCode="GB" identifier="UK"
latency	300	IN	A	127.0.0.3 ; AWS routing="LATENCY" region="us-west-1" identifier="West"
multi	300	IN	A	127.0.0.4 ; AWS routing="MULTIVALUE" identifier="m"
@	86400	AWS	ALIAS	A dualstack.lb.us-east-1.elb.amazonaws.com. Z35SXDOTRQ7X7K false
www	86400	AWS	ALIAS	A a $self true
`
	s, zd := openZone(t, url, zid)
	plan := planText(t, zd, file)
	if plan.Changes() != 11 {
		var b strings.Builder
		plan.Write(&b)
		t.Fatalf("want 11 CREATEs:\n%s", b.String())
	}
	if _, err := s.Apply(context.Background(), zd.ID, plan.Batches); err != nil {
		t.Fatal(err)
	}
	got := described(t, "example.com", f.RecordSets(zid))
	want := map[string]string{
		setKey("a.example.com.", "A", ""):                          "a.example.com. A 300 | a.example.com.\t300\tIN\tA\t127.0.0.1",
		setKey("weighted.example.com.", "A", "Two"):                `weighted.example.com. A routing=weighted identifier="Two" weight=2 300 | weighted.example.com.` + "\t300\tIN\tA\t127.0.0.2",
		setKey("failover.example.com.", "A", "failover-Primary"):   `failover.example.com. A routing=failover identifier="failover-Primary" failover=PRIMARY health_check=6bb57c41-879a-42d0-acdd-ed6472f08eb9 300 | failover.example.com.` + "\t300\tIN\tA\t127.0.0.1",
		setKey("geo.example.com.", "A", "UK"):                      `geo.example.com. A routing=geolocation identifier="UK" location=/GB/ alias a.example.com. ` + zid + ` false`,
		setKey("geo.example.com.", "A", "Africa"):                  `geo.example.com. A routing=geolocation identifier="Africa" location=AF// 300 | geo.example.com.` + "\t300\tIN\tA\t127.0.0.2",
		setKey("latency.example.com.", "A", "West"):                `latency.example.com. A routing=latency identifier="West" region=us-west-1 300 | latency.example.com.` + "\t300\tIN\tA\t127.0.0.3",
		setKey("multi.example.com.", "A", "m"):                     `multi.example.com. A routing=multivalue identifier="m" 300 | multi.example.com.` + "\t300\tIN\tA\t127.0.0.4",
		setKey("example.com.", "A", ""):                            "example.com. A alias dualstack.lb.us-east-1.elb.amazonaws.com. Z35SXDOTRQ7X7K false",
		setKey("www.example.com.", "A", ""):                        "www.example.com. A alias a.example.com. " + zid + " true",
		setKey("weighted.example.com.", "A", "One"):                `weighted.example.com. A routing=weighted identifier="One" weight=1 300 | weighted.example.com.` + "\t300\tIN\tA\t127.0.0.1",
		setKey("failover.example.com.", "A", "failover-Secondary"): `failover.example.com. A routing=failover identifier="failover-Secondary" failover=SECONDARY 300 | failover.example.com.` + "\t300\tIN\tA\t127.0.0.2",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%q:\n got %q\nwant %q", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d sets, want %d: %v", len(got), len(want), got)
	}
	// Importing the same file again, and the export of the result, are
	// both no change.
	_, zd2 := openZone(t, url, zid)
	if p := planText(t, zd2, file); p.Changes() != 0 {
		t.Fatalf("second import of the cli53 file: %d changes", p.Changes())
	}
	if p := planText(t, zd2, exportText(t, zd2)); p.Changes() != 0 {
		t.Fatalf("export of the imported zone: %d changes", p.Changes())
	}
}

// TestImportMinimalDiff: a file with some sets changed, added and removed
// changes exactly those sets, in one batch, and leaves every other set as
// it was.
func TestImportMinimalDiff(t *testing.T) {
	f := r53fake.New()
	url := f.Start(t)
	zid := f.CreateZone("example.com", false)
	seedEveryKind(t, f, zid)
	s, zd := openZone(t, url, zid)
	before := described(t, zd.Name, zd.Sets)
	text := exportText(t, zd)
	edit := func(old, new string) {
		t.Helper()
		if !strings.Contains(text, old) {
			t.Fatalf("export lacks %q:\n%s", old, text)
		}
		text = strings.Replace(text, old, new, 1)
	}
	// Changed: a value and the TTL of www A (both records), a weight, an
	// alias target. Removed: mail A, a latency set. Added: a plain set, a
	// weighted set, an alias.
	edit("www.example.com.\t300\tIN\tA\t192.0.2.1\n", "www.example.com.\t120\tIN\tA\t192.0.2.10\n")
	edit("www.example.com.\t300\tIN\tA\t192.0.2.2\n", "www.example.com.\t120\tIN\tA\t192.0.2.2\n")
	edit(`identifier="a" weight=1`, `identifier="a" weight=5`)
	edit("; app.example.com. ALIAS AAAA dualstack.my-lb-1.us-east-1.elb.amazonaws.com.", "; app.example.com. ALIAS AAAA dualstack.my-lb-2.us-east-1.elb.amazonaws.com.")
	edit("mail.example.com.\t300\tIN\tA\t192.0.2.25\n", "")
	edit("lat.example.com.\t60\tIN\tA\t10.2.0.2 ; AWS routing=latency identifier=\"euw1\" region=eu-west-1\n", "")
	text += "new 600 IN TXT \"hello world\"\n" +
		"w 60 IN A 10.0.0.3 ; AWS routing=weighted identifier=\"d\" weight=2\n" +
		"; alias.example.com. ALIAS A new-target.example.com. (zone " + zid + ", evaluate_target_health=false)\n" +
		"new-target 60 IN A 192.0.2.77\n"
	plan := planText(t, zd, text)
	var out strings.Builder
	plan.Write(&out)
	wantPlan := []string{
		"UPSERT www.example.com. A 120 192.0.2.10 192.0.2.2",
		`UPSERT w.example.com. A routing=weighted identifier="a" weight=5 60 10.0.0.1`,
		"UPSERT app.example.com. AAAA ALIAS dualstack.my-lb-2.us-east-1.elb.amazonaws.com. (zone Z35SXDOTRQ7X7K, evaluate_target_health=true)",
		"DELETE mail.example.com. A 300 192.0.2.25",
		`DELETE lat.example.com. A routing=latency identifier="euw1" region=eu-west-1 60 10.2.0.2`,
		`CREATE new.example.com. TXT 600 "hello world"`,
		`CREATE w.example.com. A routing=weighted identifier="d" weight=2 60 10.0.0.3`,
		"CREATE new-target.example.com. A 60 192.0.2.77",
		"CREATE alias.example.com. A ALIAS new-target.example.com. (zone " + zid + ", evaluate_target_health=false)",
	}
	for _, w := range wantPlan {
		if !strings.Contains(out.String(), "  "+w+"\n") {
			t.Errorf("plan lacks %q", w)
		}
	}
	if plan.Changes() != len(wantPlan) || len(plan.Batches) != 1 {
		t.Fatalf("%d changes in %d batches, want %d in 1:\n%s", plan.Changes(), len(plan.Batches), len(wantPlan), out.String())
	}
	// The alias's target comes first.
	if strings.Index(out.String(), "CREATE new-target") > strings.Index(out.String(), "CREATE alias") {
		t.Errorf("alias created before its target:\n%s", out.String())
	}
	res, err := s.Apply(context.Background(), zd.ID, plan.Batches)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.Calls("ChangeResourceRecordSets"); n != 1 || len(res) != 1 || res[0].ChangeID == "" || res[0].Changes != len(wantPlan) {
		t.Fatalf("%d calls, results %+v", n, res)
	}
	after := described(t, zd.Name, f.RecordSets(zid))
	changed := map[string]string{
		setKey("www.example.com.", "A", ""):        "www.example.com. A 120 | www.example.com.\t120\tIN\tA\t192.0.2.10 | www.example.com.\t120\tIN\tA\t192.0.2.2",
		setKey("w.example.com.", "A", "a"):         `w.example.com. A routing=weighted identifier="a" weight=5 60 | w.example.com.` + "\t60\tIN\tA\t10.0.0.1",
		setKey("app.example.com.", "AAAA", ""):     "app.example.com. AAAA alias dualstack.my-lb-2.us-east-1.elb.amazonaws.com. Z35SXDOTRQ7X7K true",
		setKey("mail.example.com.", "A", ""):       "",
		setKey("lat.example.com.", "A", "euw1"):    "",
		setKey("new.example.com.", "TXT", ""):      "new.example.com. TXT 600 | new.example.com.\t600\tIN\tTXT\t\"hello world\"",
		setKey("w.example.com.", "A", "d"):         `w.example.com. A routing=weighted identifier="d" weight=2 60 | w.example.com.` + "\t60\tIN\tA\t10.0.0.3",
		setKey("new-target.example.com.", "A", ""): "new-target.example.com. A 60 | new-target.example.com.\t60\tIN\tA\t192.0.2.77",
		setKey("alias.example.com.", "A", ""):      "alias.example.com. A alias new-target.example.com. " + zid + " false",
	}
	for k, w := range changed {
		if after[k] != w {
			t.Errorf("%q after the import:\n got %q\nwant %q", k, after[k], w)
		}
	}
	for k, v := range before {
		if _, ok := changed[k]; !ok && after[k] != v {
			t.Errorf("%q changed: %q -> %q", k, v, after[k])
		}
	}
	if len(after) != len(before)+4-2 {
		t.Errorf("%d sets after, %d before", len(after), len(before))
	}
	// The writer patched the mirror: a plan against it is empty, and so
	// is one against a fresh listing.
	s.mu.Lock()
	local := ZoneData{ID: zd.ID, Name: zd.Name, Sets: s.zones[zd.ID].rsets}
	s.mu.Unlock()
	if p := planText(t, local, text); p.Changes() != 0 {
		t.Errorf("mirror after the import: %d changes left", p.Changes())
	}
	if _, zd2 := openZone(t, url, zid); planText(t, zd2, text).Changes() != 0 {
		t.Errorf("Route 53 after the import: changes left")
	}
}

// TestImportLargeZoneBatches: 10,000 records go in as many batches as the
// limits require (CREATE counted once, UPSERT twice, characters too),
// every one accepted by the fake.
func TestImportLargeZoneBatches(t *testing.T) {
	f := r53fake.New()
	url := f.Start(t)
	zid := f.CreateZone("big.example", false)
	const n = 10000
	file := func(ttl int) string {
		var b strings.Builder
		b.WriteString("$ORIGIN big.example.\n")
		for i := range n {
			fmt.Fprintf(&b, "h%05d %d IN A 10.%d.%d.1\n", i, ttl, 100+i/100, 100+i%100) // 12-character values
		}
		return b.String()
	}
	check := func(name, zid, text string, n, perBatch int) {
		t.Helper()
		s, zd := openZone(t, url, zid)
		plan := planText(t, zd, text)
		want := (n + perBatch - 1) / perBatch
		if plan.Changes() != n || len(plan.Batches) != want {
			t.Fatalf("%s: %d changes in %d batches, want %d in %d", name, plan.Changes(), len(plan.Batches), n, want)
		}
		for i, b := range plan.Batches {
			records, chars := 0, 0
			for _, c := range b {
				r, ch := changeCost(c)
				records, chars = records+r, chars+ch
			}
			if records > MaxBatchRecords || chars > MaxBatchChars {
				t.Fatalf("%s: batch %d has %d records, %d characters", name, i, records, chars)
			}
		}
		calls := f.Calls("ChangeResourceRecordSets")
		res, err := s.Apply(context.Background(), zd.ID, plan.Batches)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := f.Calls("ChangeResourceRecordSets") - calls; got != want || len(res) != want {
			t.Fatalf("%s: %d calls, %d results, want %d", name, got, len(res), want)
		}
		if _, zd2 := openZone(t, url, zid); planText(t, zd2, text).Changes() != 0 {
			t.Fatalf("%s: changes left after the import", name)
		}
		t.Logf("%s: %d changes in %d batches", name, n, want)
	}
	check("create", zid, file(300), n, MaxBatchRecords)  // 1 record, 12 characters each: the record limit decides
	check("upsert", zid, file(60), n, MaxBatchRecords/2) // counted twice: 500 a batch
	// Long values: the character limit decides (fewer records: the
	// point is the split, not the size).
	var b strings.Builder
	b.WriteString("$ORIGIN txt.example.\n")
	long := strings.Repeat("x", 98)
	const nTXT = 3000
	for i := range nTXT {
		fmt.Fprintf(&b, "h%05d 60 IN TXT \"%s\"\n", i, long) // 100 characters with the quotes
	}
	check("txt", f.CreateZone("txt.example", false), b.String(), nTXT, MaxBatchChars/100) // 320 a batch
}

// TestImportCNAMEOrder: an A set replaced by a CNAME at the same name, a
// CNAME and an alias whose targets the same import creates, a CNAME
// removed with its target, and a simple set replaced by a weighted group. However small the batches, the fake accepts
// every one, and between batches no CNAME or alias points at a name whose
// data is still to come or already gone.
func TestImportCNAMEOrder(t *testing.T) {
	for _, limit := range []int{1, 2, 3, MaxBatchRecords} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			f := r53fake.New()
			url := f.Start(t)
			zid := f.CreateZone("example.com", false)
			put(t, f, zid,
				rrset("x.example.com", "A", 60, "192.0.2.1"),
				rrset("x.example.com", "TXT", 60, `"old"`),
				rrset("old.example.com", "CNAME", 60, "gone.example.com"),
				rrset("gone.example.com", "A", 60, "192.0.2.2"),
				rrset("www.example.com", "A", 60, "192.0.2.3"),
				rrset("r.example.com", "A", 60, "192.0.2.4"),
			)
			s, zd := openZone(t, url, zid)
			file := `$ORIGIN example.com.
x 60 IN CNAME www
www 60 IN A 192.0.2.3
a-new 60 IN CNAME z-fresh
z-fresh 60 IN A 192.0.2.7
; b-alias.example.com. ALIAS A y-fresh.example.com. (zone ` + zid + `, evaluate_target_health=false)
y-fresh 60 IN A 192.0.2.8
r 60 IN A 192.0.2.4 ; AWS routing=weighted identifier="one" weight=1
r 60 IN A 192.0.2.5 ; AWS routing=weighted identifier="two" weight=1
`
			desired, notes, err := ParseZoneFile(strings.NewReader(file), "f", zd.Name, zd.ID)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := planImport(zd.Name, zd.ID, zd.Sets, desired, notes, limit, MaxBatchChars)
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			plan.Write(&out)
			t.Logf("\n%s", out.String())
			first := described(t, zd.Name, zd.Sets)
			final := described(t, zd.Name, desired)
			hasData := func(m map[string]string, name string) bool {
				for k := range m {
					if strings.HasPrefix(k, name+"\x00") {
						return true
					}
				}
				return false
			}
			for i, b := range plan.Batches {
				if _, err := s.Apply(context.Background(), zd.ID, [][]types.Change{b}); err != nil {
					t.Fatalf("batch %d: %v\n%s", i+1, err, out.String())
				}
				now := f.RecordSets(zid)
				state := described(t, zd.Name, now)
				for _, rs := range now {
					conv, err := ConvertRecordSet(rs)
					if err != nil {
						t.Fatal(err)
					}
					for _, target := range pointsAt(&conv, zd.Name, zd.ID) {
						if !hasData(state, target) && (hasData(first, target) || hasData(final, target)) {
							t.Errorf("after batch %d, %s %s points at %s, which has no data yet or any more", i+1, conv.Name, rs.Type, target)
						}
					}
				}
			}
			if got := described(t, zd.Name, f.RecordSets(zid)); !mapsEqual(got, final) {
				t.Fatalf("end state:\n%v\nwant\n%v", got, final)
			}
			if limit == 1 && len(plan.Batches) != 12 {
				t.Errorf("%d batches with one record each, want 12", len(plan.Batches))
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestImportOrderingPure: the ordering rules on their own — a CNAME after
// the creation of its target, the removal of a CNAME before that of its
// target, deletes before writes at one name.
func TestImportOrderingPure(t *testing.T) {
	origin, zid := "example.com.", "ZSELF"
	cur := []types.ResourceRecordSet{
		rrset("a.example.com.", "CNAME", 60, "z.example.com."),
		rrset("z.example.com.", "A", 60, "192.0.2.1"),
		rrset("m.example.com.", "A", 60, "192.0.2.2"),
	}
	want := []types.ResourceRecordSet{
		rrset("b.example.com.", "CNAME", 60, "y.example.com."),
		rrset("y.example.com.", "A", 60, "192.0.2.3"),
		rrset("m.example.com.", "CNAME", 60, "y.example.com."),
	}
	plan, err := planImport(origin, zid, cur, want, nil, 1, MaxBatchChars)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, b := range plan.Batches {
		for _, c := range b {
			order = append(order, string(c.Action)+" "+aws.ToString(c.ResourceRecordSet.Name)+" "+string(c.ResourceRecordSet.Type))
		}
	}
	pos := func(s string) int {
		i := slices.Index(order, s)
		if i < 0 {
			t.Fatalf("%q not in %v", s, order)
		}
		return i
	}
	if !(pos("DELETE a.example.com. CNAME") < pos("DELETE z.example.com. A")) {
		t.Errorf("target deleted before its CNAME: %v", order)
	}
	if !(pos("CREATE y.example.com. A") < pos("CREATE b.example.com. CNAME")) || !(pos("CREATE y.example.com. A") < pos("CREATE m.example.com. CNAME")) {
		t.Errorf("CNAME created before its target: %v", order)
	}
	if !(pos("DELETE m.example.com. A") < pos("CREATE m.example.com. CNAME")) {
		t.Errorf("CNAME created before the data it replaces is gone: %v", order)
	}
	if len(plan.Batches) != 6 {
		t.Errorf("%d batches at one record each, want 6", len(plan.Batches))
	}
}

// TestImportLeavesManagedAlone: SOA and apex NS in the file are not
// imported, and sets a zone file cannot describe are not deleted.
func TestImportLeavesManagedAlone(t *testing.T) {
	origin, zid := "example.com.", "ZSELF"
	cur := []types.ResourceRecordSet{
		rrset("example.com.", "SOA", 900, "ns-1.awsdns-1.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"),
		rrset("example.com.", "NS", 172800, "ns-1.awsdns-1.com."),
		rrset("bad.example.com.", "SPF", 60, `unquoted; broken`),
		{Name: aws.String("tp.example.com."), Type: "A", TrafficPolicyInstanceId: aws.String("tpi-1")},
	}
	file := `$ORIGIN example.com.
@ 3600 IN SOA ns.other. host.other. 5 1 1 1 1
@ 3600 IN NS ns.other.
`
	desired, notes, err := ParseZoneFile(strings.NewReader(file), "f", origin, zid)
	if err != nil {
		t.Fatal(err)
	}
	if len(desired) != 0 || len(notes) != 2 {
		t.Fatalf("desired %v, notes %q", desired, notes)
	}
	plan, err := PlanImport(origin, zid, cur, desired, notes)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	plan.Write(&out)
	if plan.Changes() != 0 {
		t.Fatalf("changes:\n%s", out.String())
	}
	for _, w := range []string{"not imported: example.com. SOA", "not imported: example.com. NS", "left alone: bad.example.com. SPF", "left alone: tp.example.com. A (traffic policy instance tpi-1)"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("plan lacks %q:\n%s", w, out.String())
		}
	}
}

// TestParseZoneFileErrors: what a file must not hold.
func TestParseZoneFileErrors(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"www.other.org. 60 IN A 192.0.2.1\n", "outside the zone"},
		{"www 60 CH TXT \"x\"\n", "class CH"},
		{"www 60 IN DNAME other.org.\n", "does not hold type DNAME"},
		{"w 60 IN A 10.0.0.1 ; AWS routing=weighted weight=1\n", "without identifier"},
		{"w 60 IN A 10.0.0.1 ; AWS routing=weighted identifier=\"a\"\n", "without weight"},
		{"w 60 IN A 10.0.0.1 ; AWS routing=bogus identifier=\"a\"\n", "routing=\"bogus\""},
		{"w 60 IN A 10.0.0.1 ; AWS routing=weighted identifier=\"a\" weight=1 colour=red\n", "colour"},
		{"w 60 IN A 10.0.0.1 ; AWS routing=weighted identifier=\"a\" weight=1\nw 60 IN A 10.0.0.2 ; AWS routing=weighted identifier=\"a\" weight=2\n", "differ"},
		{"w 60 AWS ALIAS A target Z1\n", "want TYPE TARGET ZONE-ID"},
		{"$INCLUDE /etc/passwd\n", "include"},
	} {
		_, _, err := ParseZoneFile(strings.NewReader("$ORIGIN example.com.\n"+tc.file), "f", "example.com.", "ZSELF")
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
			t.Errorf("%q: error %v, want one containing %q", tc.file, err, tc.want)
		}
	}
	// Ordinary comments are not attributes; differing TTLs take the lowest.
	sets, notes, err := ParseZoneFile(strings.NewReader("$ORIGIN example.com.\nw 60 IN A 10.0.0.1 ; web\nw 30 IN A 10.0.0.2\nw 60 IN A 10.0.0.2\n"), "f", "example.com.", "ZSELF")
	if err != nil || len(sets) != 1 || aws.ToInt64(sets[0].TTL) != 30 || len(sets[0].ResourceRecords) != 2 || len(notes) != 1 {
		t.Fatalf("sets %+v notes %q err %v", sets, notes, err)
	}
}

// FuzzImportPlan: any file text either fails to parse or gives a plan
// whose every batch is within the given limits, holds only changes Route
// 53 can read, and never touches the SOA or the apex NS.
func FuzzImportPlan(f *testing.F) {
	for _, s := range []string{
		"www 60 IN A 192.0.2.1 ; AWS routing=weighted identifier=\"a\" weight=1\n",
		"x 60 IN CNAME y\ny 60 IN A 192.0.2.1\n; z.example.com. ALIAS A y.example.com. (zone ZSELF, evaluate_target_health=true)\n",
		"geo 86400 AWS ALIAS A a $self false ; AWS routing=\"GEOLOCATION\" countryCode=\"GB\" identifier=\"UK\"\n",
		"@ 60 IN NS ns.other.\n@ 60 IN SOA a. b. 1 2 3 4 5\nsub 60 IN NS ns.other.\n",
		"t 60 IN TXT \"a;b\" \"c\\\"d\" ; AWS health_check=hc\n",
	} {
		f.Add(s, uint16(2))
	}
	cur := []types.ResourceRecordSet{
		rrset("example.com.", "SOA", 900, "ns-1.awsdns-1.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"),
		rrset("example.com.", "NS", 172800, "ns-1.awsdns-1.com."),
		rrset("x.example.com.", "A", 60, "192.0.2.9"),
		rrset("y.example.com.", "CNAME", 60, "x.example.com."),
	}
	f.Fuzz(func(t *testing.T, text string, limit uint16) {
		desired, notes, err := ParseZoneFile(strings.NewReader("$ORIGIN example.com.\n"+text), "f", "example.com.", "ZSELF")
		if err != nil {
			return
		}
		maxRecords := int(limit%8) + 1
		plan, err := planImport("example.com.", "ZSELF", cur, desired, notes, maxRecords, MaxBatchChars)
		if err != nil {
			return
		}
		for _, b := range plan.Batches {
			records, chars := 0, 0
			for _, c := range b {
				r, ch := changeCost(c)
				records, chars = records+r, chars+ch
				rs := *c.ResourceRecordSet
				if _, err := ConvertRecordSet(rs); err != nil && c.Action != types.ChangeActionDelete {
					t.Fatalf("%s of a set Route 53 cannot read: %v", c.Action, err)
				}
				if rs.Type == types.RRTypeSoa || rs.Type == types.RRTypeNs && aws.ToString(rs.Name) == "example.com." && rs.SetIdentifier == nil {
					t.Fatalf("%s of %s %s", c.Action, aws.ToString(rs.Name), rs.Type)
				}
			}
			if records > maxRecords || chars > MaxBatchChars {
				t.Fatalf("batch of %d records, %d characters (limit %d)", records, chars, maxRecords)
			}
		}
	})
}
