package r53

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"

	"hybridns/zonestore"
	"hybridns/zonestore/dynupdate"
)

func fuzzZoneSets() []types.ResourceRecordSet {
	set := func(name string, typ types.RRType, ttl int64, vals ...string) types.ResourceRecordSet {
		rs := types.ResourceRecordSet{Name: aws.String(name), Type: typ, TTL: aws.Int64(ttl)}
		for _, v := range vals {
			rs.ResourceRecords = append(rs.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
		}
		return rs
	}
	return []types.ResourceRecordSet{
		set("example.com.", "SOA", 900, "ns-1.awsdns-1.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"),
		set("example.com.", "NS", 172800, "ns-1.awsdns-1.com.", "ns-2.awsdns-2.net."),
		set("www.example.com.", "A", 300, "192.0.2.1", "192.0.2.2"),
		set("txt.example.com.", "TXT", 300, `"a b" "c\"d"`),
		set("c.example.com.", "CNAME", 300, "www.example.com."),
		set("m.example.com.", "MX", 300, "10 www.example.com."),
		{Name: aws.String("lb.example.com."), Type: "A", AliasTarget: &types.AliasTarget{DNSName: aws.String("www.example.com."), HostedZoneId: aws.String("Z1")}},
		{Name: aws.String("w.example.com."), Type: "A", TTL: aws.Int64(60), SetIdentifier: aws.String("x"), Weight: aws.Int64(1),
			ResourceRecords: []types.ResourceRecord{{Value: aws.String("192.0.2.9")}}},
	}
}

// FuzzUpdateBatch feeds UPDATE messages of any shape through the write
// path's planning — shape check, prerequisites, RFC 2136 apply, change
// batch — and checks that nothing panics and that every batch it would send
// is one Route 53 accepts as well-formed: names in the zone, values that
// parse back to the same records, one change per set, DELETEs that repeat a
// stored set exactly, within the size limits, never an alias or policy set.
func FuzzUpdateBatch(f *testing.F) {
	seed := func(build func(m *dns.Msg)) {
		m := new(dns.Msg)
		m.SetUpdate("example.com.")
		build(m)
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			f.Fatal(err)
		}
		return r
	}
	seed(func(m *dns.Msg) { m.Insert([]dns.RR{rr("new.example.com. 60 IN A 192.0.2.7")}) })
	seed(func(m *dns.Msg) { m.Insert([]dns.RR{rr(`t.example.com. 60 IN TXT "x\001y" "z"`)}) })
	seed(func(m *dns.Msg) { m.Remove([]dns.RR{rr("www.example.com. 60 IN A 192.0.2.1")}) })
	seed(func(m *dns.Msg) { m.RemoveRRset([]dns.RR{rr("www.example.com. 60 IN A 192.0.2.1")}) })
	seed(func(m *dns.Msg) { m.RemoveName([]dns.RR{rr("example.com. 60 IN A 192.0.2.1")}) })
	seed(func(m *dns.Msg) {
		m.NameUsed([]dns.RR{rr("www.example.com. 60 IN A 192.0.2.1")})
		m.Insert([]dns.RR{rr("c.example.com. 60 IN CNAME m.example.com."), rr("lb.example.com. 60 IN A 192.0.2.3")})
	})
	seed(func(m *dns.Msg) {
		m.Used([]dns.RR{rr("www.example.com. 0 IN A 192.0.2.1")})
		m.Insert([]dns.RR{rr("m.example.com. 60 IN MX 20 mx.example.com."), rr("srv.example.com. 60 IN SRV 1 2 3 t.example.com.")})
	})
	sets := fuzzZoneSets()
	f.Fuzz(func(t *testing.T, data []byte) {
		m := new(dns.Msg)
		if err := m.Unpack(data); err != nil || len(m.Question) != 1 {
			return
		}
		origin := "example.com."
		if dynupdate.CheckShape(origin, m.Answer, m.Ns) != dns.RcodeSuccess {
			return
		}
		idx := indexSets(sets)
		if dynupdate.Prereqs(idx, m.Answer) != dns.RcodeSuccess {
			return
		}
		changes := dynupdate.Apply(idx, origin, m.Ns)
		cas := len(m.Answer) > 0
		batch, err := changeBatch(idx, changes, cas)
		if err != nil {
			return // refused: nothing is sent
		}
		records, chars := 0, 0
		var keys []string
		for _, c := range batch {
			rs := c.ResourceRecordSet
			name, err := UnescapeName(aws.ToString(rs.Name))
			if err != nil || !zonestore.InZone(name, origin) {
				t.Fatalf("change for %q outside the zone", aws.ToString(rs.Name))
			}
			key := name + "/" + string(rs.Type)
			if slices.Contains(keys, key) && !(cas && c.Action == types.ChangeActionCreate && slices.Contains(keys, key+"/DELETE")) {
				t.Fatalf("two changes for %s", key)
			}
			keys = append(keys, key, key+"/"+string(c.Action))
			if rs.AliasTarget != nil || rs.SetIdentifier != nil || rs.Type == types.RRTypeSoa {
				t.Fatalf("batch touches %s, which plain updates must not", key)
			}
			if rs.TTL == nil || len(rs.ResourceRecords) == 0 {
				t.Fatalf("%s without TTL or values", key)
			}
			conv, err := ConvertRecordSet(*rs)
			if err != nil {
				t.Fatalf("Route 53 would reject %s: %v", key, err)
			}
			n := 1
			switch c.Action {
			case types.ChangeActionDelete:
				if !slices.ContainsFunc(sets, func(s types.ResourceRecordSet) bool {
					return hashSets([]types.ResourceRecordSet{s}) == hashSets([]types.ResourceRecordSet{*rs})
				}) {
					t.Fatalf("DELETE of %s does not repeat the stored set", key)
				}
			case types.ChangeActionCreate:
				if !cas {
					t.Fatalf("CREATE of %s without prerequisites", key)
				}
			case types.ChangeActionUpsert:
				if cas {
					t.Fatalf("UPSERT of %s in a compare-and-swap batch", key)
				}
				n = 2
				// The values read back are the records the update asked for.
				for _, want := range changes {
					if want.Name == name && dns.TypeToString[want.Type] == string(rs.Type) && len(want.New) != len(conv.RRs) {
						t.Fatalf("%s: %d values sent, %d wanted", key, len(conv.RRs), len(want.New))
					}
				}
			default:
				t.Fatalf("action %s", c.Action)
			}
			records += n * len(rs.ResourceRecords)
			chars += n * valueChars(*rs)
		}
		if records > MaxBatchRecords || chars > MaxBatchChars {
			t.Fatalf("batch over the limits: %d records, %d chars", records, chars)
		}
	})
}
