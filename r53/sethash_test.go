package r53

import (
	"crypto/sha256"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// hashSetsJSON is the fingerprint as it was computed before the plain
// sets were encoded by hand: every set's JSON text. hashSets must tell
// apart exactly the zones this tells apart.
func hashSetsJSON(sets []types.ResourceRecordSet) [32]byte {
	lines := make([]string, 0, len(sets))
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	for _, rs := range sets {
		rs.ResourceRecords = sortedRecords(rs.ResourceRecords)
		if n, err := UnescapeName(aws.ToString(rs.Name)); err == nil {
			rs.Name = aws.String(n)
		}
		buf.Reset()
		enc.Encode(rs)
		lines = append(lines, buf.String())
	}
	slices.Sort(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// hashVariants is record sets that differ from each other in one field
// each (presence, value, nil against empty), and sets equal to another
// one but for value order or name spelling.
func hashVariants() []types.ResourceRecordSet {
	base := func() types.ResourceRecordSet { return rrset("www.example.", "A", 300, "192.0.2.1", "192.0.2.2") }
	var out []types.ResourceRecordSet
	for _, f := range []func(*types.ResourceRecordSet){
		func(*types.ResourceRecordSet) {},
		func(r *types.ResourceRecordSet) { r.Name = nil },
		func(r *types.ResourceRecordSet) { r.Name = aws.String("WWW.Example") }, // same name
		func(r *types.ResourceRecordSet) { r.Name = aws.String("ww.example.") },
		func(r *types.ResourceRecordSet) { r.Name = aws.String(`\052.example.`) },
		func(r *types.ResourceRecordSet) { r.Name = aws.String("*.example.") }, // same as above
		func(r *types.ResourceRecordSet) { r.Type = "AAAA" },
		func(r *types.ResourceRecordSet) { r.TTL = nil },
		func(r *types.ResourceRecordSet) { r.TTL = aws.Int64(0) },
		func(r *types.ResourceRecordSet) { r.TTL = aws.Int64(-300) },
		func(r *types.ResourceRecordSet) { slices.Reverse(r.ResourceRecords) }, // same
		func(r *types.ResourceRecordSet) { r.ResourceRecords = r.ResourceRecords[:1] },
		func(r *types.ResourceRecordSet) { r.ResourceRecords = nil },
		func(r *types.ResourceRecordSet) { r.ResourceRecords = []types.ResourceRecord{} },
		func(r *types.ResourceRecordSet) { r.ResourceRecords = []types.ResourceRecord{{}} },
		func(r *types.ResourceRecordSet) { r.ResourceRecords = []types.ResourceRecord{{Value: aws.String("")}} },
		func(r *types.ResourceRecordSet) { r.ResourceRecords[1].Value = aws.String("192.0.2.1") },
		func(r *types.ResourceRecordSet) { r.SetIdentifier = aws.String("") },
		func(r *types.ResourceRecordSet) { r.SetIdentifier = aws.String("a") },
		func(r *types.ResourceRecordSet) { r.Weight = aws.Int64(0) },
		func(r *types.ResourceRecordSet) { r.Weight = aws.Int64(1) },
		func(r *types.ResourceRecordSet) { r.Failover = "PRIMARY" },
		func(r *types.ResourceRecordSet) { r.Region = "eu-west-1" },
		func(r *types.ResourceRecordSet) { r.HealthCheckId = aws.String("") },
		func(r *types.ResourceRecordSet) { r.HealthCheckId = aws.String("hc") },
		func(r *types.ResourceRecordSet) { r.MultiValueAnswer = aws.Bool(false) },
		func(r *types.ResourceRecordSet) { r.MultiValueAnswer = aws.Bool(true) },
		func(r *types.ResourceRecordSet) { r.TrafficPolicyInstanceId = aws.String("tp") },
		func(r *types.ResourceRecordSet) { r.GeoLocation = &types.GeoLocation{CountryCode: aws.String("DE")} },
		func(r *types.ResourceRecordSet) { r.GeoLocation = &types.GeoLocation{} },
		func(r *types.ResourceRecordSet) {
			r.CidrRoutingConfig = &types.CidrRoutingConfig{CollectionId: aws.String("c"), LocationName: aws.String("l")}
		},
		func(r *types.ResourceRecordSet) {
			r.GeoProximityLocation = &types.GeoProximityLocation{Bias: aws.Int32(1)}
		},
		func(r *types.ResourceRecordSet) {
			r.TTL, r.ResourceRecords = nil, nil
			r.AliasTarget = &types.AliasTarget{DNSName: aws.String("lb."), HostedZoneId: aws.String("Z")}
		},
		func(r *types.ResourceRecordSet) {
			r.TTL, r.ResourceRecords = nil, nil
			r.AliasTarget = &types.AliasTarget{DNSName: aws.String("lb."), HostedZoneId: aws.String("Z"), EvaluateTargetHealth: true}
		},
	} {
		rs := base()
		f(&rs)
		out = append(out, rs)
	}
	return out
}

// TestHashSetsDetectsWhatJSONDetects: for every pair of one-set and
// two-set zones of the variants, hashSets says "same" exactly when the
// JSON fingerprint does.
func TestHashSetsDetectsWhatJSONDetects(t *testing.T) {
	vs := hashVariants()
	var zones [][]types.ResourceRecordSet
	for i := range vs {
		zones = append(zones, []types.ResourceRecordSet{vs[i]})
		for j := range vs {
			if j != i {
				zones = append(zones, []types.ResourceRecordSet{vs[i], vs[j]})
			}
		}
	}
	zones = append(zones, nil, []types.ResourceRecordSet{})
	fast := make([][32]byte, len(zones))
	ref := make([][32]byte, len(zones))
	for i, z := range zones {
		fast[i], ref[i] = hashSets(z), hashSetsJSON(z)
	}
	same := 0
	for i := range zones {
		for j := range zones {
			if (fast[i] == fast[j]) != (ref[i] == ref[j]) {
				t.Fatalf("zones %d and %d: hashSets same=%v, JSON fingerprint same=%v\n%v\n%v",
					i, j, fast[i] == fast[j], ref[i] == ref[j], zones[i], zones[j])
			}
			if i != j && ref[i] == ref[j] {
				same++
			}
		}
	}
	// Reordered values, respelled names and swapped pairs must be there.
	if same == 0 {
		t.Error("no two zones compared equal: the test checks nothing about equality")
	}
}
