package r53

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"

	"hybridns/zonestore"
)

// FuzzBuildZone builds zones from fuzzed mixes of record sets — plain,
// aliases (same zone and outside), CNAMEs, wildcards, routing policies —
// and looks up every name and type through both lookup paths: nothing may
// panic, and the wire form, when there is one, must unpack.
func FuzzBuildZone(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte{3, 7, 3, 9, 1, 1, 1, 2, 2, 14, 14, 5})
	names := []string{"z.test.", "a.z.test.", "b.z.test.", "*.w.z.test.", "c.a.z.test.", "x.w.z.test."}
	f.Fuzz(func(t *testing.T, data []byte) {
		sets := []types.ResourceRecordSet{
			{Name: aws.String("z.test."), Type: "SOA", TTL: aws.Int64(900), ResourceRecords: []types.ResourceRecord{{Value: aws.String("ns.z.test. hm.z.test. 1 2 3 4 5")}}},
			{Name: aws.String("z.test."), Type: "NS", TTL: aws.Int64(900), ResourceRecords: []types.ResourceRecord{{Value: aws.String("ns.z.test.")}}},
		}
		for i := 0; i+1 < len(data) && len(sets) < 40; i += 2 {
			name := names[int(data[i])%len(names)]
			target := names[int(data[i+1])%len(names)]
			id := fmt.Sprint(i)
			switch data[i+1] % 8 {
			case 0:
				sets = append(sets, types.ResourceRecordSet{Name: aws.String(name), Type: "A", TTL: aws.Int64(60), ResourceRecords: []types.ResourceRecord{{Value: aws.String("192.0.2.1")}}})
			case 1:
				sets = append(sets, types.ResourceRecordSet{Name: aws.String(name), Type: "CNAME", TTL: aws.Int64(60), ResourceRecords: []types.ResourceRecord{{Value: aws.String(target)}}})
			case 2:
				sets = append(sets, types.ResourceRecordSet{Name: aws.String(name), Type: "A", AliasTarget: &types.AliasTarget{DNSName: aws.String(target), HostedZoneId: aws.String("ZFUZZ")}})
			case 3:
				sets = append(sets, types.ResourceRecordSet{Name: aws.String(name), Type: "A", AliasTarget: &types.AliasTarget{DNSName: aws.String("lb.elb.amazonaws.com."), HostedZoneId: aws.String("ZELB")}})
			case 4:
				sets = append(sets, types.ResourceRecordSet{Name: aws.String(name), Type: "A", TTL: aws.Int64(60), SetIdentifier: aws.String(id), Weight: aws.Int64(int64(data[i] % 3)),
					ResourceRecords: []types.ResourceRecord{{Value: aws.String("192.0.2.2")}}})
			case 5:
				sets = append(sets, types.ResourceRecordSet{Name: aws.String(name), Type: "A", SetIdentifier: aws.String(id), Failover: types.ResourceRecordSetFailoverPrimary,
					AliasTarget: &types.AliasTarget{DNSName: aws.String(target), HostedZoneId: aws.String("ZFUZZ"), EvaluateTargetHealth: true}})
			case 6:
				sets = append(sets, types.ResourceRecordSet{Name: aws.String(name), Type: "CNAME", AliasTarget: &types.AliasTarget{DNSName: aws.String(target), HostedZoneId: aws.String("ZFUZZ")}})
			case 7:
				sets = append(sets, types.ResourceRecordSet{Name: aws.String(name), Type: "NS", TTL: aws.Int64(60), ResourceRecords: []types.ResourceRecord{{Value: aws.String("ns." + target)}}})
			}
		}
		z, _, err := BuildZone("z.test.", "ZFUZZ", sets)
		if err != nil {
			return // invalid mixes (CNAME and other data, …) are rejected
		}
		cl := &zonestore.Client{Addr: netip.MustParseAddr("192.0.2.9"), Healthy: func(id string) bool { return len(id)%2 == 0 }}
		for _, name := range append(names, "nope.z.test.", "q.x.w.z.test.") {
			for _, qt := range []uint16{dns.TypeA, dns.TypeCNAME, dns.TypeNS, dns.TypeANY, dns.TypeAAAA} {
				z.LookupFor(name, qt, cl)
				res := z.LookupWire(name, qt, cl)
				hdr := make([]byte, 12, 512)
				q := new(dns.Msg)
				q.SetQuestion(name, qt)
				wire, _ := q.Pack()
				hdr = append(hdr[:0], wire...)
				out, an, ns, ar, ok := res.AppendWire(hdr, len(wire)-12-4)
				if !ok {
					continue
				}
				out[6], out[7] = byte(an>>8), byte(an)
				out[8], out[9] = byte(ns>>8), byte(ns)
				out[10], out[11] = byte(ar>>8), byte(ar)
				out[2] |= 0x80
				var m dns.Msg
				if err := m.Unpack(out); err != nil {
					t.Fatalf("%s %s: wire form does not unpack: %v", name, dns.TypeToString[qt], err)
				}
			}
		}
	})
}
