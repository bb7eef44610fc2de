package r53

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// hashSets fingerprints a zone's record sets independently of their order
// and of the order of values in a set, so data we patched after a write
// and the same data listed by Route 53 compare equal. The hash is compared
// only within one process (a snapshot's is computed when it is loaded), so
// its encoding may change between versions.
//
// Each set becomes one line and the sorted lines are hashed. A plain set
// (no alias, CIDR, geolocation or geoproximity object: nearly all of a
// large zone) is encoded by hand, every field with its presence and
// length, which is several times cheaper than encoding/json; any other set
// is its JSON text. The two kinds cannot collide (a hand-encoded line
// starts with 'P', JSON with '{'), and both are self-delimiting (JSON
// lines end with a newline), so the concatenation identifies the sets.
func hashSets(sets []types.ResourceRecordSet) [32]byte {
	var buf []byte
	ends := make([]int, 0, len(sets))
	var js strings.Builder
	enc := json.NewEncoder(&js)
	var vals []string
	for i := range sets {
		rs := &sets[i]
		name := aws.ToString(rs.Name)
		if n, err := UnescapeName(name); err == nil {
			name = n
		}
		if rs.AliasTarget != nil || rs.CidrRoutingConfig != nil || rs.GeoLocation != nil || rs.GeoProximityLocation != nil {
			c := *rs
			c.ResourceRecords = sortedRecords(rs.ResourceRecords)
			if rs.Name != nil {
				c.Name = aws.String(name)
			}
			js.Reset()
			enc.Encode(c)
			buf = append(buf, js.String()...)
			ends = append(ends, len(buf))
			continue
		}
		buf = append(buf, 'P')
		buf = appendOptString(buf, rs.Name != nil, name)
		buf = appendString(buf, string(rs.Type))
		buf = appendString(buf, string(rs.Failover))
		buf = appendOptString(buf, rs.HealthCheckId != nil, aws.ToString(rs.HealthCheckId))
		switch {
		case rs.MultiValueAnswer == nil:
			buf = append(buf, 0)
		case *rs.MultiValueAnswer:
			buf = append(buf, 2)
		default:
			buf = append(buf, 1)
		}
		buf = appendString(buf, string(rs.Region))
		if rs.ResourceRecords == nil {
			buf = append(buf, 0)
		} else {
			// Values sorted, as their order does not matter; a nil value
			// sorts first, as "" (and is encoded apart from "").
			vals = vals[:0]
			nils := 0
			for _, r := range rs.ResourceRecords {
				if r.Value == nil {
					nils++
				} else {
					vals = append(vals, *r.Value)
				}
			}
			slices.Sort(vals)
			buf = append(buf, 1)
			buf = binary.AppendUvarint(buf, uint64(len(rs.ResourceRecords)))
			for range nils {
				buf = append(buf, 0)
			}
			for _, v := range vals {
				buf = appendOptString(buf, true, v)
			}
		}
		buf = appendOptString(buf, rs.SetIdentifier != nil, aws.ToString(rs.SetIdentifier))
		buf = appendOptInt(buf, rs.TTL)
		buf = appendOptString(buf, rs.TrafficPolicyInstanceId != nil, aws.ToString(rs.TrafficPolicyInstanceId))
		buf = appendOptInt(buf, rs.Weight)
		ends = append(ends, len(buf))
	}
	lines := make([][]byte, len(ends))
	start := 0
	for i, end := range ends {
		lines[i] = buf[start:end:end]
		start = end
	}
	slices.SortFunc(lines, bytes.Compare)
	h := sha256.New()
	for _, l := range lines {
		h.Write(l)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// sortedRecords is rs ordered by value (a copy when that changes it).
func sortedRecords(rs []types.ResourceRecord) []types.ResourceRecord {
	if len(rs) <= 1 {
		return rs
	}
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b types.ResourceRecord) int {
		return strings.Compare(aws.ToString(a.Value), aws.ToString(b.Value))
	})
	return rs
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendOptString encodes an optional string: absent, or present and s.
func appendOptString(b []byte, present bool, s string) []byte {
	if !present {
		return append(b, 0)
	}
	return appendString(append(b, 1), s)
}

func appendOptInt(b []byte, v *int64) []byte {
	if v == nil {
		return append(b, 0)
	}
	return binary.AppendVarint(append(b, 1), *v)
}
