package r53fake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/smithy-go"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func simple(name, typ string, ttl int64, values ...string) types.ResourceRecordSet {
	rrs := types.ResourceRecordSet{Name: aws.String(name), Type: types.RRType(typ), TTL: aws.Int64(ttl)}
	for _, v := range values {
		rrs.ResourceRecords = append(rrs.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
	}
	return rrs
}

func weighted(name, typ, setID string, weight int64, values ...string) types.ResourceRecordSet {
	rrs := simple(name, typ, 60, values...)
	rrs.SetIdentifier, rrs.Weight = aws.String(setID), aws.Int64(weight)
	return rrs
}

func mustPut(t *testing.T, f *Fake, zoneID string, rrs types.ResourceRecordSet) {
	t.Helper()
	if err := f.PutRecordSet(zoneID, rrs); err != nil {
		t.Fatal(err)
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"":                  ".",
		".":                 ".",
		"Example.COM":       "example.com.",
		"example.com.":      "example.com.",
		"*.example.com":     `\052.example.com.`,
		`\052.example.com.`: `\052.example.com.`,
		"a@b.example.com":   `a\100b.example.com.`,
		`a\.b.example.com`:  `a\056b.example.com.`,
		"_dmarc.Example.":   "_dmarc.example.",
		`\101bc.example`:    "abc.example.", // escaped upper-case A (octal 101) is lower-cased
		`a\344b.example`:    `a\344b.example.`,
		"a\xe4b.example":    `a\344b.example.`,
		"a b.x":             `a\040b.x.`,
		"marketing.*.x":     `marketing.\052.x.`,
	} {
		if got := NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAuthAndEnvelope(t *testing.T) {
	f := New()
	base := f.Start(t)
	resp, err := http.Get(base + "/2013-04-01/hostedzone")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/xml" {
		t.Errorf("Content-Type %q", ct)
	}
	if resp.Header.Get("x-amzn-RequestId") == "" {
		t.Error("no x-amzn-RequestId header")
	}
	for _, want := range []string{`<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">`, "<Code>MissingAuthenticationToken</Code>", "<Message>Request is missing Authentication Token</Message>", "<RequestId>"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if got := f.Requests(); len(got) != 1 || got[0].Op != "ListHostedZones" || got[0].Status != 403 {
		t.Errorf("log = %+v", got)
	}
}

func TestListHostedZonesPaging(t *testing.T) {
	f := New()
	want := map[string]string{}
	for i := range 250 {
		name := fmt.Sprintf("zone%03d.example", i)
		var id string
		if i%10 == 0 {
			id = f.CreateZone(name, true, VPC{"vpc-1", "us-east-1"})
		} else {
			id = f.CreateZone(name, false)
		}
		if len(id) < 14 || len(id) > 22 || id[0] != 'Z' || strings.ToUpper(id) != id {
			t.Fatalf("bad zone id %q", id)
		}
		want[id] = name + "."
	}
	c := f.Client(t)
	for _, pageSize := range []int32{100, 7} {
		seen := map[string]bool{}
		pages := 0
		p := route53.NewListHostedZonesPaginator(c, &route53.ListHostedZonesInput{MaxItems: aws.Int32(pageSize)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if pages > 100 {
				t.Fatal("paginator does not terminate")
			}
			if out.IsTruncated != (out.NextMarker != nil) {
				t.Fatalf("IsTruncated=%v NextMarker=%v", out.IsTruncated, out.NextMarker)
			}
			if len(out.HostedZones) > int(pageSize) {
				t.Fatalf("page of %d > %d", len(out.HostedZones), pageSize)
			}
			for _, z := range out.HostedZones {
				id := strings.TrimPrefix(aws.ToString(z.Id), "/hostedzone/")
				if seen[id] {
					t.Fatalf("zone %s seen twice", id)
				}
				seen[id] = true
				if want[id] != aws.ToString(z.Name) {
					t.Fatalf("zone %s name %q want %q", id, aws.ToString(z.Name), want[id])
				}
				if aws.ToInt64(z.ResourceRecordSetCount) != 2 {
					t.Fatalf("new zone has %d record sets, want 2 (SOA+NS)", aws.ToInt64(z.ResourceRecordSetCount))
				}
			}
		}
		if len(seen) != 250 {
			t.Fatalf("page size %d: saw %d zones", pageSize, len(seen))
		}
		if wantPages := (250 + int(pageSize) - 1) / int(pageSize); pages != wantPages {
			t.Errorf("page size %d: %d pages, want %d", pageSize, pages, wantPages)
		}
	}

	cnt, err := c.GetHostedZoneCount(ctx(t), &route53.GetHostedZoneCountInput{})
	if err != nil || aws.ToInt64(cnt.HostedZoneCount) != 250 {
		t.Fatalf("count %v err %v", cnt, err)
	}

	// ListHostedZonesByName: start position, sorted by reversed name.
	var names []string
	var dns, hzid *string
	for {
		out, err := c.ListHostedZonesByName(ctx(t), &route53.ListHostedZonesByNameInput{DNSName: dns, HostedZoneId: hzid, MaxItems: aws.Int32(40)})
		if err != nil {
			t.Fatal(err)
		}
		for _, z := range out.HostedZones {
			names = append(names, aws.ToString(z.Name))
		}
		if !out.IsTruncated {
			if out.NextDNSName != nil {
				t.Fatal("NextDNSName on last page")
			}
			break
		}
		dns, hzid = out.NextDNSName, out.NextHostedZoneId
	}
	if len(names) != 250 || !sort.StringsAreSorted(names) { // all share "example." so reversed order = plain order here
		t.Fatalf("by-name listing: %d names, sorted=%v", len(names), sort.StringsAreSorted(names))
	}
	out, err := c.ListHostedZonesByName(ctx(t), &route53.ListHostedZonesByNameInput{DNSName: aws.String("ZONE100.example"), MaxItems: aws.Int32(1)})
	if err != nil || len(out.HostedZones) != 1 || aws.ToString(out.HostedZones[0].Name) != "zone100.example." {
		t.Fatalf("by-name start position: %+v %v", out, err)
	}

	// API-created zone.
	cz, err := c.CreateHostedZone(ctx(t), &route53.CreateHostedZoneInput{Name: aws.String("api.example"), CallerReference: aws.String("ref-1")})
	if err != nil {
		t.Fatal(err)
	}
	if cz.DelegationSet == nil || len(cz.DelegationSet.NameServers) != 4 || aws.ToString(cz.Location) == "" || cz.ChangeInfo.Status != types.ChangeStatusPending {
		t.Fatalf("CreateHostedZone: %+v", cz)
	}
	_, err = c.CreateHostedZone(ctx(t), &route53.CreateHostedZoneInput{Name: aws.String("api2.example"), CallerReference: aws.String("ref-1")})
	var exists *types.HostedZoneAlreadyExists
	if !errors.As(err, &exists) {
		t.Fatalf("reused caller reference: %v", err)
	}
	if _, err := c.DeleteHostedZone(ctx(t), &route53.DeleteHostedZoneInput{Id: cz.HostedZone.Id}); err != nil {
		t.Fatal(err)
	}
}

// sortKey is an independent statement of the Route 53 order (ROUTE53.md §3.5).
func sortKey(r types.ResourceRecordSet) string {
	labels := strings.Split(strings.TrimSuffix(aws.ToString(r.Name), "."), ".")
	slices.Reverse(labels)
	return strings.Join(labels, ".") + ".\x00" + string(r.Type) + "\x00" + aws.ToString(r.SetIdentifier)
}

func TestListResourceRecordSetsPaging(t *testing.T) {
	f := New()
	zid := f.CreateZone("Example.com", false)
	mustPut(t, f, zid, simple("*.example.com", "A", 300, "192.0.2.99"))
	mustPut(t, f, zid, simple("*.sub.example.com", "TXT", 300, `"wild"`))
	mustPut(t, f, zid, simple("a-b.example.com", "A", 300, "192.0.2.1"))
	mustPut(t, f, zid, simple("a.example.com", "A", 300, "192.0.2.2"))
	mustPut(t, f, zid, simple("b.a.example.com", "A", 300, "192.0.2.3"))
	mustPut(t, f, zid, simple("UPPER.example.com.", "AAAA", 300, "2001:db8::1"))
	mustPut(t, f, zid, types.ResourceRecordSet{Name: aws.String("alias.example.com"), Type: types.RRTypeA,
		AliasTarget: &types.AliasTarget{HostedZoneId: aws.String("/hostedzone/Z35SXDOTRQ7X7K"), DNSName: aws.String("Dualstack.LB-1.us-east-1.elb.amazonaws.com"), EvaluateTargetHealth: true}})
	for i := range 60 {
		mustPut(t, f, zid, weighted("w.example.com", "A", fmt.Sprintf("set-%02d", i), int64(i), fmt.Sprintf("198.51.100.%d", i)))
	}
	geo := weighted("geo.example.com", "A", "eu", 0, "192.0.2.50")
	geo.Weight, geo.GeoLocation, geo.HealthCheckId = nil, &types.GeoLocation{ContinentCode: aws.String("EU")}, aws.String("abcdef11-2222-3333-4444-555555fedcba")
	mustPut(t, f, zid, geo)
	mv := weighted("mv.example.com", "A", "mv1", 0, "192.0.2.60")
	mv.Weight, mv.MultiValueAnswer = nil, aws.Bool(true)
	mustPut(t, f, zid, mv)
	for i, n := 0, len(f.RecordSets(zid)); n < 2000; i++ {
		mustPut(t, f, zid, simple(fmt.Sprintf("host%04d.example.com", i), "A", 60, fmt.Sprintf("10.0.%d.%d", i/256, i%256)))
		n++
		if i%3 == 0 && n < 2000 {
			mustPut(t, f, zid, simple(fmt.Sprintf("host%04d.example.com", i), "TXT", 60, fmt.Sprintf(`"host %d"`, i)))
			n++
		}
	}
	total := len(f.RecordSets(zid))
	if total != 2000 {
		t.Fatalf("seeded %d", total)
	}
	c := f.Client(t)

	for _, pageSize := range []int32{0, 7, 1000} {
		t.Run(fmt.Sprint("maxitems=", pageSize), func(t *testing.T) {
			in := &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String("/hostedzone/" + zid)}
			if pageSize > 0 {
				in.MaxItems = aws.Int32(pageSize)
			}
			p := route53.NewListResourceRecordSetsPaginator(c, in)
			var all []types.ResourceRecordSet
			pages, withIdent := 0, 0
			for p.HasMorePages() {
				out, err := p.NextPage(ctx(t))
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if pages > 1000 {
					t.Fatal("paginator loops")
				}
				if len(out.ResourceRecordSets) > 300 {
					t.Fatalf("page of %d > 300", len(out.ResourceRecordSets))
				}
				if out.IsTruncated != (out.NextRecordName != nil) || out.IsTruncated != (out.NextRecordType != "") {
					t.Fatalf("truncated=%v next=%v/%q", out.IsTruncated, out.NextRecordName, out.NextRecordType)
				}
				if out.NextRecordIdentifier != nil {
					withIdent++
				}
				all = append(all, out.ResourceRecordSets...)
			}
			if len(all) != total {
				t.Fatalf("saw %d record sets, want %d", len(all), total)
			}
			seen := map[string]bool{}
			for i, r := range all {
				k := sortKey(r)
				if seen[k] {
					t.Fatalf("%s seen twice", k)
				}
				seen[k] = true
				if i > 0 && sortKey(all[i-1]) >= k {
					t.Fatalf("order: %q before %q", sortKey(all[i-1]), k)
				}
				if strings.Contains(aws.ToString(r.Name), "*") || aws.ToString(r.Name) != strings.ToLower(aws.ToString(r.Name)) || !strings.HasSuffix(aws.ToString(r.Name), ".") {
					t.Fatalf("name not in API form: %q", aws.ToString(r.Name))
				}
			}
			if pageSize == 7 && withIdent == 0 {
				t.Error("no page ended inside the weighted group (NextRecordIdentifier never sent)")
			}
			want := pageSizeFor(pageSize)
			if pages != (total+want-1)/want {
				t.Errorf("%d pages for %d sets at %d per page", pages, total, want)
			}
			// Fixed points of the order.
			idx := func(name, typ string) int {
				return slices.IndexFunc(all, func(r types.ResourceRecordSet) bool {
					return aws.ToString(r.Name) == name && string(r.Type) == typ
				})
			}
			if all[0].Type != types.RRTypeNs || all[1].Type != types.RRTypeSoa || aws.ToString(all[0].Name) != "example.com." {
				t.Errorf("apex NS, SOA not first: %v %v", all[0].Type, all[1].Type)
			}
			ab, a, ba, wild := idx("a-b.example.com.", "A"), idx("a.example.com.", "A"), idx("b.a.example.com.", "A"), idx(`\052.example.com.`, "A")
			if ab < 0 || a < 0 || ba < 0 || wild < 0 || !(wild < ab && ab < a && a < ba) {
				t.Errorf("order of \\052, a-b, a, b.a = %d %d %d %d", wild, ab, a, ba)
			}
			if i := idx(`\052.sub.example.com.`, "TXT"); i < 0 {
				t.Error("wildcard below sub missing")
			}
			al := all[idx("alias.example.com.", "A")]
			if al.TTL != nil || len(al.ResourceRecords) != 0 || al.AliasTarget == nil ||
				aws.ToString(al.AliasTarget.DNSName) != "dualstack.lb-1.us-east-1.elb.amazonaws.com." ||
				aws.ToString(al.AliasTarget.HostedZoneId) != "Z35SXDOTRQ7X7K" || !al.AliasTarget.EvaluateTargetHealth {
				t.Errorf("alias: %+v %+v", al, al.AliasTarget)
			}
			g := all[idx("geo.example.com.", "A")]
			if aws.ToString(g.SetIdentifier) != "eu" || g.GeoLocation == nil || aws.ToString(g.GeoLocation.ContinentCode) != "EU" || aws.ToString(g.HealthCheckId) == "" {
				t.Errorf("geo: %+v", g)
			}
			m := all[idx("mv.example.com.", "A")]
			if m.MultiValueAnswer == nil || !*m.MultiValueAnswer {
				t.Errorf("multivalue: %+v", m)
			}
			var ws []types.ResourceRecordSet
			for _, r := range all {
				if aws.ToString(r.Name) == "w.example.com." {
					ws = append(ws, r)
				}
			}
			if len(ws) != 60 || aws.ToString(ws[5].SetIdentifier) != "set-05" || aws.ToInt64(ws[5].Weight) != 5 || aws.ToInt64(ws[5].TTL) != 60 {
				t.Errorf("weighted group: %d sets, [5]=%+v", len(ws), ws[5])
			}
			if idx("upper.example.com.", "AAAA") < 0 {
				t.Error("name not lower-cased")
			}
		})
	}

	// The fake's own view agrees, and start positions accept raw and escaped forms.
	for _, start := range []string{"*.example.com", `\052.example.com.`} {
		out, err := c.ListResourceRecordSets(ctx(t), &route53.ListResourceRecordSetsInput{HostedZoneId: &zid, StartRecordName: aws.String(start), MaxItems: aws.Int32(1)})
		if err != nil || len(out.ResourceRecordSets) != 1 || aws.ToString(out.ResourceRecordSets[0].Name) != `\052.example.com.` {
			t.Fatalf("start at %q: %+v %v", start, out, err)
		}
	}
	out, err := c.ListResourceRecordSets(ctx(t), &route53.ListResourceRecordSetsInput{HostedZoneId: &zid,
		StartRecordName: aws.String("w.example.com"), StartRecordType: types.RRTypeA, StartRecordIdentifier: aws.String("set-57"), MaxItems: aws.Int32(2)})
	if err != nil || len(out.ResourceRecordSets) != 2 || aws.ToString(out.ResourceRecordSets[0].SetIdentifier) != "set-57" || !out.IsTruncated ||
		aws.ToString(out.NextRecordName) != "w.example.com." || out.NextRecordType != types.RRTypeA || aws.ToString(out.NextRecordIdentifier) != "set-59" {
		t.Fatalf("start at identifier: %+v %v", out, err)
	}
	_, err = c.ListResourceRecordSets(ctx(t), &route53.ListResourceRecordSetsInput{HostedZoneId: &zid, StartRecordType: types.RRTypeA})
	var inv *types.InvalidInput
	if !errors.As(err, &inv) {
		t.Fatalf("type without name: %v", err)
	}
}

func pageSizeFor(n int32) int {
	if n == 0 || n > 300 {
		return 300
	}
	return int(n)
}

func TestChangeResourceRecordSets(t *testing.T) {
	f := New()
	zid := f.CreateZone("example.com", false)
	mustPut(t, f, zid, simple("old.example.com", "A", 300, "192.0.2.1", "192.0.2.2"))
	mustPut(t, f, zid, simple("cname.example.com", "CNAME", 300, "target.example.net"))
	c := f.Client(t)
	change := func(action types.ChangeAction, rrs types.ResourceRecordSet) types.Change {
		return types.Change{Action: action, ResourceRecordSet: &rrs}
	}
	apply := func(comment string, changes ...types.Change) (*route53.ChangeResourceRecordSetsOutput, error) {
		return c.ChangeResourceRecordSets(ctx(t), &route53.ChangeResourceRecordSetsInput{
			HostedZoneId: aws.String("/hostedzone/" + zid),
			ChangeBatch:  &types.ChangeBatch{Comment: optString(comment), Changes: changes},
		})
	}

	// Valid batch: everything applied.
	out, err := apply("deploy 1",
		change(types.ChangeActionCreate, simple("new.example.com", "A", 60, "192.0.2.10")),
		change(types.ChangeActionUpsert, simple("txt.example.com", "TXT", 60, `"v=spf1 -all" "a<b&c"`)),
		change(types.ChangeActionCreate, weighted("*.w.example.com", "A", "blue", 10, "192.0.2.20")),
		change(types.ChangeActionCreate, weighted("*.w.example.com", "A", "green", 0, "192.0.2.21")),
		change(types.ChangeActionDelete, simple("old.example.com", "A", 300, "192.0.2.2", "192.0.2.1")), // values in any order
		// DELETE then CREATE of the same set in one batch is the documented swap.
		change(types.ChangeActionDelete, simple("cname.example.com", "CNAME", 300, "target.example.net")),
		change(types.ChangeActionCreate, simple("cname.example.com", "A", 300, "192.0.2.30")),
	)
	if err != nil {
		t.Fatal(err)
	}
	ci := out.ChangeInfo
	if ci.Status != types.ChangeStatusPending || !strings.HasPrefix(aws.ToString(ci.Id), "/change/C") || aws.ToString(ci.Comment) != "deploy 1" || ci.SubmittedAt == nil {
		t.Fatalf("ChangeInfo %+v", ci)
	}
	got, err := c.GetChange(ctx(t), &route53.GetChangeInput{Id: ci.Id})
	if err != nil || got.ChangeInfo.Status != types.ChangeStatusInsync {
		t.Fatalf("GetChange %+v %v", got, err)
	}
	names := map[string]types.ResourceRecordSet{}
	for _, r := range f.RecordSets(zid) {
		names[aws.ToString(r.Name)+" "+string(r.Type)+" "+aws.ToString(r.SetIdentifier)] = r
	}
	for _, k := range []string{"new.example.com. A ", "txt.example.com. TXT ", `\052.w.example.com. A blue`, `\052.w.example.com. A green`, "cname.example.com. A "} {
		if _, ok := names[k]; !ok {
			t.Errorf("missing %q after batch", k)
		}
	}
	for _, k := range []string{"old.example.com. A ", "cname.example.com. CNAME "} {
		if _, ok := names[k]; ok {
			t.Errorf("%q not deleted", k)
		}
	}
	if v := aws.ToString(names["txt.example.com. TXT "].ResourceRecords[0].Value); v != `"v=spf1 -all" "a<b&c"` {
		t.Errorf("TXT value %q", v)
	}
	hz, _ := c.GetHostedZone(ctx(t), &route53.GetHostedZoneInput{Id: &zid})
	if n := aws.ToInt64(hz.HostedZone.ResourceRecordSetCount); n != int64(len(names)) {
		t.Errorf("ResourceRecordSetCount %d, want %d", n, len(names))
	}

	// Invalid batch with two errors (and one valid change): rejected whole.
	before := f.RecordSets(zid)
	_, err = apply("",
		change(types.ChangeActionCreate, simple("ok.example.com", "A", 60, "192.0.2.40")),
		change(types.ChangeActionCreate, simple("NEW.example.com.", "A", 60, "192.0.2.11")),
		change(types.ChangeActionDelete, simple("nothere.example.com", "A", 60, "192.0.2.12")),
	)
	var icb *types.InvalidChangeBatch
	if !errors.As(err, &icb) {
		t.Fatalf("want InvalidChangeBatch, got %v", err)
	}
	msg := icb.ErrorMessage()
	for _, want := range []string{
		"Tried to create resource record set [name='new.example.com.', type='A'] but it already exists",
		"Tried to delete resource record set [name='nothere.example.com.', type='A'] but it was not found",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
	if !strings.HasPrefix(msg, "[") || !strings.HasSuffix(msg, "]") {
		t.Errorf("message not bracketed: %s", msg)
	}
	if !slices.EqualFunc(before, f.RecordSets(zid), func(a, b types.ResourceRecordSet) bool { return sortKey(a) == sortKey(b) }) {
		t.Error("rejected batch changed the zone")
	}

	// DELETE with the wrong TTL.
	_, err = apply("", change(types.ChangeActionDelete, simple("new.example.com", "A", 61, "192.0.2.10")))
	if !errors.As(err, &icb) || !strings.Contains(icb.ErrorMessage(), "[name='new.example.com.', type='A'] but the values provided do not match the current values") {
		t.Fatalf("wrong-TTL delete: %v", err)
	}

	// Other rules, one batch, all reported.
	soa := f.RecordSets(zid)[1]
	_, err = apply("",
		change(types.ChangeActionCreate, simple("x.other.com", "A", 60, "192.0.2.1")),
		change(types.ChangeActionUpsert, simple("new.example.com", "CNAME", 60, "elsewhere.example.net")),
		change(types.ChangeActionUpsert, simple("example.com", "CNAME", 60, "elsewhere.example.net")),
		change(types.ChangeActionDelete, soa),
	)
	if !errors.As(err, &icb) {
		t.Fatalf("want InvalidChangeBatch, got %v", err)
	}
	for _, want := range []string{
		"RRSet with DNS name x.other.com. is not permitted in zone example.com.",
		"RRSet of type CNAME with DNS name new.example.com. is not permitted as it conflicts with other records with the same DNS name in zone example.com.",
		"RRSet of type CNAME with DNS name example.com. is not permitted at apex in zone example.com.",
		"A HostedZone must contain exactly one SOA record.",
	} {
		if !strings.Contains(icb.ErrorMessage(), want) {
			t.Errorf("message lacks %q: %s", want, icb.ErrorMessage())
		}
	}

	// Structural error: alias and TTL together → InvalidInput.
	bad := simple("y.example.com", "A", 60, "192.0.2.1")
	bad.AliasTarget = &types.AliasTarget{HostedZoneId: aws.String(zid), DNSName: aws.String("new.example.com")}
	_, err = apply("", change(types.ChangeActionCreate, bad))
	var inv *types.InvalidInput
	if !errors.As(err, &inv) || !strings.Contains(inv.ErrorMessage(), "Expected exactly one of") {
		t.Fatalf("alias+TTL: %v", err)
	}

	// UPSERT of the apex SOA is allowed; PENDING → INSYNC after the delay.
	f.SetChangeDelay(150 * time.Millisecond)
	soa.ResourceRecords[0].Value = aws.String(strings.Replace(aws.ToString(soa.ResourceRecords[0].Value), " 1 7200", " 2 7200", 1))
	out, err = apply("", change(types.ChangeActionUpsert, soa))
	if err != nil {
		t.Fatal(err)
	}
	got, err = c.GetChange(ctx(t), &route53.GetChangeInput{Id: out.ChangeInfo.Id})
	if err != nil || got.ChangeInfo.Status != types.ChangeStatusPending {
		t.Fatalf("GetChange right away: %+v %v", got, err)
	}
	w := route53.NewResourceRecordSetsChangedWaiter(c, func(o *route53.ResourceRecordSetsChangedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 100*time.Millisecond
	})
	if err := w.Wait(ctx(t), &route53.GetChangeInput{Id: out.ChangeInfo.Id}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetChange(ctx(t), &route53.GetChangeInput{Id: aws.String("/change/CNOPE")})
	var nsc *types.NoSuchChange
	if !errors.As(err, &nsc) {
		t.Fatalf("unknown change: %v", err)
	}
}

func TestThrottlingRetried(t *testing.T) {
	f := New()
	f.CreateZone("example.com", false)
	c := f.Client(t)
	f.ThrottleNext(2)
	out, err := c.ListHostedZones(ctx(t), &route53.ListHostedZonesInput{})
	if err != nil || len(out.HostedZones) != 1 {
		t.Fatalf("%v %v", out, err)
	}
	reqs := f.Requests()
	if len(reqs) != 3 || !reqs[0].Throttled() || !reqs[1].Throttled() || reqs[2].Throttled() || reqs[2].Status != 200 {
		t.Fatalf("log %+v", reqs)
	}
	if reqs[0].Attempt != 1 || reqs[2].Attempt != 3 {
		t.Errorf("attempts %d..%d", reqs[0].Attempt, reqs[2].Attempt)
	}

	// More throttles than attempts: the error decodes as code Throttling.
	f.ThrottleNext(10)
	_, err = c.ListHostedZones(ctx(t), &route53.ListHostedZonesInput{})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "Throttling" || api.ErrorMessage() != "Rate exceeded" {
		t.Fatalf("want Throttling APIError, got %v", err)
	}
	if f.Calls("ListHostedZones") != 3+5 {
		t.Errorf("calls %d, want 8 (5 attempts)", f.Calls("ListHostedZones"))
	}
	f.ThrottleNext(0)

	// Throttle: every request throttled until turned off.
	f.Throttle(true)
	for range 3 {
		if _, err := c.GetHostedZoneCount(ctx(t), &route53.GetHostedZoneCountInput{}); !errors.As(err, &api) || api.ErrorCode() != "Throttling" {
			t.Fatalf("Throttle: %v", err)
		}
	}
	f.Throttle(false)
	if _, err := c.GetHostedZoneCount(ctx(t), &route53.GetHostedZoneCountInput{}); err != nil {
		t.Fatal(err)
	}
}

func TestFailNextRetried(t *testing.T) {
	f := New()
	c := f.Client(t)
	f.FailNext(2, 503)
	if _, err := c.GetHostedZoneCount(ctx(t), &route53.GetHostedZoneCountInput{}); err != nil {
		t.Fatal(err)
	}
	reqs := f.Requests()
	if len(reqs) != 3 || reqs[0].Status != 503 || reqs[1].Status != 503 || reqs[2].Status != 200 {
		t.Fatalf("log %+v", reqs)
	}
	f.FailNext(2, 500)
	if _, err := c.GetHostedZoneCount(ctx(t), &route53.GetHostedZoneCountInput{}); err != nil {
		t.Fatal(err)
	}
	f.DenyNext(1)
	_, err := c.GetHostedZoneCount(ctx(t), &route53.GetHostedZoneCountInput{})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "AccessDenied" {
		t.Fatalf("DenyNext: %v", err)
	}
}

func TestNoSuchHostedZone(t *testing.T) {
	f := New()
	c := f.Client(t)
	_, err := c.GetHostedZone(ctx(t), &route53.GetHostedZoneInput{Id: aws.String("/hostedzone/ZNOPE12345678")})
	var nsz *types.NoSuchHostedZone
	if !errors.As(err, &nsz) || nsz.ErrorMessage() != "No hosted zone found with ID: ZNOPE12345678" {
		t.Fatalf("GetHostedZone: %v", err)
	}
	_, err = c.ListResourceRecordSets(ctx(t), &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String("ZNOPE12345678")})
	if !errors.As(err, &nsz) {
		t.Fatalf("ListResourceRecordSets: %v", err)
	}
	_, err = c.ChangeResourceRecordSets(ctx(t), &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String("ZNOPE12345678"),
		ChangeBatch: &types.ChangeBatch{Changes: []types.Change{{Action: types.ChangeActionCreate, ResourceRecordSet: &types.ResourceRecordSet{Name: aws.String("a.b"), Type: types.RRTypeA, TTL: aws.Int64(1), ResourceRecords: []types.ResourceRecord{{Value: aws.String("192.0.2.1")}}}}}}})
	if !errors.As(err, &nsz) {
		t.Fatalf("ChangeResourceRecordSets: %v", err)
	}
	if f.Calls("GetHostedZone") != 1 {
		t.Errorf("NoSuchHostedZone was retried: %d calls", f.Calls("GetHostedZone"))
	}
}

func TestDeleteZoneAfter(t *testing.T) {
	f := New()
	zid := f.CreateZone("example.com", false)
	for i := range 1000 {
		mustPut(t, f, zid, simple(fmt.Sprintf("h%d.example.com", i), "A", 60, "192.0.2.1"))
	}
	f.DeleteZoneAfter(zid, 2)
	c := f.Client(t)
	p := route53.NewListResourceRecordSetsPaginator(c, &route53.ListResourceRecordSetsInput{HostedZoneId: &zid})
	seen := 0
	var err error
	for p.HasMorePages() {
		var out *route53.ListResourceRecordSetsOutput
		out, err = p.NextPage(ctx(t))
		if err != nil {
			break
		}
		seen += len(out.ResourceRecordSets)
	}
	var nsz *types.NoSuchHostedZone
	if !errors.As(err, &nsz) {
		t.Fatalf("want NoSuchHostedZone mid-listing, got %v", err)
	}
	if seen != 600 {
		t.Errorf("saw %d sets before the zone vanished, want 600", seen)
	}
	if f.RecordSets(zid) != nil {
		t.Error("zone still there")
	}
}

func TestRateLimit(t *testing.T) {
	f := New()
	// A manual clock: the bucket refills only when the test says so.
	var clockMu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	f.SetClock(func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now })
	advance := func(d time.Duration) { clockMu.Lock(); now = now.Add(d); clockMu.Unlock() }
	f.RateLimit(5, 10)
	c := f.Client(t, func(o *route53.Options) { o.Retryer = aws.NopRetryer{} })
	throttled := 0
	for range 20 {
		_, err := c.GetHostedZoneCount(ctx(t), &route53.GetHostedZoneCountInput{})
		var api smithy.APIError
		switch {
		case err == nil:
		case errors.As(err, &api) && api.ErrorCode() == "Throttling":
			throttled++
		default:
			t.Fatal(err)
		}
	}
	if throttled != 10 {
		t.Errorf("%d of 20 throttled with a burst of 10 and a stopped clock, want 10", throttled)
	}
	logged := 0
	for _, r := range f.Requests() {
		if r.Throttled() {
			logged++
		}
	}
	if logged != throttled {
		t.Errorf("log has %d throttled, client saw %d", logged, throttled)
	}
	// The bucket refills at rps: 5 tokens a second.
	advance(time.Second)
	for i := range 5 {
		if _, err := c.GetHostedZoneCount(ctx(t), &route53.GetHostedZoneCountInput{}); err != nil {
			t.Fatalf("request %d after a 1s refill: %v", i, err)
		}
	}
	if _, err := c.GetHostedZoneCount(ctx(t), &route53.GetHostedZoneCountInput{}); err == nil {
		t.Fatal("a 6th request within the same second was not throttled")
	}
	f.RateLimit(0, 0)
	for range 20 {
		if _, err := c.GetHostedZoneCount(ctx(t), &route53.GetHostedZoneCountInput{}); err != nil {
			t.Fatalf("limit off: %v", err)
		}
	}
}

func TestGetHostedZonePrivateAndPublic(t *testing.T) {
	f := New()
	priv := f.CreateZone("corp.internal", true, VPC{"vpc-1a2b3c4d", "us-east-1"}, VPC{"vpc-9", "eu-west-1"})
	pub := f.CreateZone("example.com", false)
	f.SetTags(pub, map[string]string{"env": "prod", "owner": "dns"})
	c := f.Client(t)

	out, err := c.GetHostedZone(ctx(t), &route53.GetHostedZoneInput{Id: aws.String("/hostedzone/" + priv)})
	if err != nil {
		t.Fatal(err)
	}
	if !out.HostedZone.Config.PrivateZone || out.DelegationSet != nil || len(out.VPCs) != 2 ||
		aws.ToString(out.VPCs[0].VPCId) != "vpc-1a2b3c4d" || out.VPCs[0].VPCRegion != types.VPCRegionUsEast1 || out.VPCs[1].VPCRegion != types.VPCRegionEuWest1 {
		t.Fatalf("private zone: %+v vpcs=%+v", out.HostedZone, out.VPCs)
	}
	if aws.ToString(out.HostedZone.Id) != "/hostedzone/"+priv || aws.ToString(out.HostedZone.Name) != "corp.internal." {
		t.Errorf("id/name %q %q", aws.ToString(out.HostedZone.Id), aws.ToString(out.HostedZone.Name))
	}

	out, err = c.GetHostedZone(ctx(t), &route53.GetHostedZoneInput{Id: &pub})
	if err != nil {
		t.Fatal(err)
	}
	if out.HostedZone.Config.PrivateZone || out.DelegationSet == nil || len(out.DelegationSet.NameServers) != 4 || len(out.VPCs) != 0 {
		t.Fatalf("public zone: %+v", out)
	}
	sets := f.RecordSets(pub)
	ns, soa := sets[0], sets[1]
	if ns.Type != types.RRTypeNs || aws.ToInt64(ns.TTL) != 172800 || len(ns.ResourceRecords) != 4 || soa.Type != types.RRTypeSoa || aws.ToInt64(soa.TTL) != 900 {
		t.Fatalf("default records: %+v %+v", ns, soa)
	}
	for i, s := range out.DelegationSet.NameServers {
		if strings.HasSuffix(s, ".") || aws.ToString(ns.ResourceRecords[i].Value) != s+"." || !strings.Contains(s, ".awsdns-") {
			t.Errorf("name server %q vs NS value %q", s, aws.ToString(ns.ResourceRecords[i].Value))
		}
	}
	if want := out.DelegationSet.NameServers[0] + ". awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"; aws.ToString(soa.ResourceRecords[0].Value) != want {
		t.Errorf("SOA %q want %q", aws.ToString(soa.ResourceRecords[0].Value), want)
	}

	byVPC, err := c.ListHostedZonesByVPC(ctx(t), &route53.ListHostedZonesByVPCInput{VPCId: aws.String("vpc-9"), VPCRegion: types.VPCRegionEuWest1})
	if err != nil || len(byVPC.HostedZoneSummaries) != 1 || aws.ToString(byVPC.HostedZoneSummaries[0].HostedZoneId) != priv || aws.ToString(byVPC.HostedZoneSummaries[0].Name) != "corp.internal." {
		t.Fatalf("by VPC: %+v %v", byVPC, err)
	}

	tags, err := c.ListTagsForResource(ctx(t), &route53.ListTagsForResourceInput{ResourceType: types.TagResourceTypeHostedzone, ResourceId: &pub})
	if err != nil || len(tags.ResourceTagSet.Tags) != 2 || aws.ToString(tags.ResourceTagSet.Tags[0].Key) != "env" || aws.ToString(tags.ResourceTagSet.Tags[0].Value) != "prod" {
		t.Fatalf("tags: %+v %v", tags, err)
	}
	multi, err := c.ListTagsForResources(ctx(t), &route53.ListTagsForResourcesInput{ResourceType: types.TagResourceTypeHostedzone, ResourceIds: []string{pub, priv}})
	if err != nil || len(multi.ResourceTagSets) != 2 || len(multi.ResourceTagSets[1].Tags) != 0 {
		t.Fatalf("tags (batch): %+v %v", multi, err)
	}
}

// healthy applies the ROUTE53.md §6 rule: more than 18% Success observations.
func healthy(obs []types.HealthCheckObservation) bool {
	ok := 0
	for _, o := range obs {
		if strings.HasPrefix(aws.ToString(o.StatusReport.Status), "Success") {
			ok++
		}
	}
	return float64(ok) > 0.18*float64(len(obs))
}

func TestHealthChecks(t *testing.T) {
	f := New()
	f.AddHealthCheck("11111111-2222-3333-4444-555555555555", true)
	f.AddHealthCheck("abcdef11-2222-3333-4444-555555fedcba", false)
	c := f.Client(t)

	var ids []string
	p := route53.NewListHealthChecksPaginator(c, &route53.ListHealthChecksInput{MaxItems: aws.Int32(1)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, hc := range out.HealthChecks {
			ids = append(ids, aws.ToString(hc.Id))
			if hc.HealthCheckConfig == nil || hc.HealthCheckConfig.Type != types.HealthCheckTypeHttp {
				t.Errorf("config %+v", hc.HealthCheckConfig)
			}
		}
	}
	if len(ids) != 2 {
		t.Fatalf("health checks %v", ids)
	}
	status := func(id string) []types.HealthCheckObservation {
		out, err := c.GetHealthCheckStatus(ctx(t), &route53.GetHealthCheckStatusInput{HealthCheckId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out.HealthCheckObservations {
			if o.Region == "" || o.StatusReport == nil || o.StatusReport.CheckedTime == nil {
				t.Fatalf("observation %+v", o)
			}
		}
		return out.HealthCheckObservations
	}
	good, bad := status(ids[0]), status(ids[1])
	if len(good) != 8 || !healthy(good) || healthy(bad) {
		t.Fatalf("health: good=%v bad=%v", healthy(good), healthy(bad))
	}
	if s := aws.ToString(good[0].StatusReport.Status); s != "Success: HTTP Status Code 200, OK" {
		t.Errorf("status text %q", s)
	}
	f.SetHealth(ids[1], true)
	f.SetHealthObservations(ids[0], 1) // 12.5%: unhealthy
	if !healthy(status(ids[1])) || healthy(status(ids[0])) {
		t.Error("SetHealth / SetHealthObservations not reflected")
	}
	f.SetHealthObservations(ids[0], 2) // 25%: healthy
	if !healthy(status(ids[0])) {
		t.Error("2 of 8 should be healthy")
	}
	_, err := c.GetHealthCheckStatus(ctx(t), &route53.GetHealthCheckStatusInput{HealthCheckId: aws.String("nope")})
	var nshc *types.NoSuchHealthCheck
	if !errors.As(err, &nshc) {
		t.Fatalf("unknown check: %v", err)
	}

	// CRRS referring to an unknown health check is rejected; a known one works.
	zid := f.CreateZone("example.com", false)
	rr := weighted("hc.example.com", "A", "a", 1, "192.0.2.1")
	rr.HealthCheckId = aws.String("nope")
	batch := &types.ChangeBatch{Changes: []types.Change{{Action: types.ChangeActionCreate, ResourceRecordSet: &rr}}}
	if _, err := c.ChangeResourceRecordSets(ctx(t), &route53.ChangeResourceRecordSetsInput{HostedZoneId: &zid, ChangeBatch: batch}); !errors.As(err, &nshc) {
		t.Fatalf("unknown health check in CRRS: %v", err)
	}
	rr.HealthCheckId = aws.String(ids[0])
	if _, err := c.ChangeResourceRecordSets(ctx(t), &route53.ChangeResourceRecordSetsInput{HostedZoneId: &zid, ChangeBatch: batch}); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentUse(t *testing.T) {
	f := New()
	zid := f.CreateZone("example.com", false)
	c := f.Client(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				rr := simple(fmt.Sprintf("g%d-%d.example.com", g, i), "A", 60, "192.0.2.1")
				_, err := c.ChangeResourceRecordSets(context.Background(), &route53.ChangeResourceRecordSetsInput{HostedZoneId: &zid,
					ChangeBatch: &types.ChangeBatch{Changes: []types.Change{{Action: types.ChangeActionCreate, ResourceRecordSet: &rr}}}})
				if err != nil {
					errs <- err
					return
				}
				if _, err := c.ListResourceRecordSets(context.Background(), &route53.ListResourceRecordSetsInput{HostedZoneId: &zid, MaxItems: aws.Int32(10)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := len(f.RecordSets(zid)); n != 102 {
		t.Fatalf("%d record sets, want 102", n)
	}
	if f.Calls("ChangeResourceRecordSets") != 100 {
		t.Errorf("calls %d", f.Calls("ChangeResourceRecordSets"))
	}
}

func TestPriorRequestNotCompleteAndLatency(t *testing.T) {
	f := New()
	zid := f.CreateZone("example.com", false)
	c := f.Client(t)
	rr := simple("a.example.com", "A", 60, "192.0.2.1")
	in := &route53.ChangeResourceRecordSetsInput{HostedZoneId: &zid,
		ChangeBatch: &types.ChangeBatch{Changes: []types.Change{{Action: types.ChangeActionUpsert, ResourceRecordSet: &rr}}}}
	f.PriorRequestNotComplete(zid, 2)
	if _, err := c.ChangeResourceRecordSets(ctx(t), in); err != nil {
		t.Fatalf("PriorRequestNotComplete should be retried: %v", err)
	}
	reqs := f.Requests()
	if len(reqs) != 3 || reqs[0].ErrorCode != "PriorRequestNotComplete" || reqs[2].Status != 200 {
		t.Fatalf("log %+v", reqs)
	}
	for _, r := range reqs {
		if r.Op != "ChangeResourceRecordSets" || r.ZoneID != zid || r.At.IsZero() {
			t.Fatalf("log entry %+v", r)
		}
	}

	f.Latency(60 * time.Millisecond)
	start := time.Now()
	if _, err := c.GetHostedZone(ctx(t), &route53.GetHostedZoneInput{Id: &zid}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("call took %v with 60ms latency", d)
	}
	f.Latency(0)
	f.ResetRequests()
	if len(f.Requests()) != 0 {
		t.Error("ResetRequests")
	}
}
