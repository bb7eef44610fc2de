package r53

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// lineSlabs hands out the pointers a record set holds (*string, *int64,
// one-record slices) from blocks, a few allocations per block instead of
// several per line. A block lives as long as any record set using it;
// the sets of a snapshot live and die together.
type lineSlabs struct {
	strs []string
	ints []int64
	recs []types.ResourceRecord
}

// slabSize bounds a block; blocks start small and double, so the few
// sets of a small zone do not take a whole block each.
const slabSize = 256

func slabCap(prev int) int { return min(slabSize, max(4, 2*prev)) }

func (d *lineSlabs) str(v string) *string {
	if len(d.strs) == cap(d.strs) {
		d.strs = make([]string, 0, slabCap(cap(d.strs)))
	}
	d.strs = append(d.strs, v)
	return &d.strs[len(d.strs)-1]
}

func (d *lineSlabs) int(v int64) *int64 {
	if len(d.ints) == cap(d.ints) {
		d.ints = make([]int64, 0, slabCap(cap(d.ints)))
	}
	d.ints = append(d.ints, v)
	return &d.ints[len(d.ints)-1]
}

// oneRecord is a slice of one record whose capacity ends there: an
// append by its user never writes into its neighbour.
func (d *lineSlabs) oneRecord(r types.ResourceRecord) []types.ResourceRecord {
	if len(d.recs) == cap(d.recs) {
		d.recs = make([]types.ResourceRecord, 0, slabCap(cap(d.recs)))
	}
	d.recs = append(d.recs, r)
	n := len(d.recs)
	return d.recs[n-1 : n : n]
}

// decode is decodeSetLine with d's blocks.
func (d *lineSlabs) decode(line []byte, rs *types.ResourceRecordSet) error {
	if decodeSetFast(line, rs, d) {
		return nil
	}
	*rs = types.ResourceRecordSet{}
	return json.Unmarshal(line, rs)
}

// lineScanner reads JSON tokens from one line; ok turns false at the first
// thing the direct path does not take.
type lineScanner struct {
	b  []byte
	i  int
	ok bool
	d  *lineSlabs
}

func (s *lineScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// lit consumes c (after whitespace).
func (s *lineScanner) lit(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// null consumes a null literal, if that is what comes.
func (s *lineScanner) null() bool {
	s.ws()
	if bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += 4
		return true
	}
	return false
}

// str reads a string without escapes, control characters or invalid
// UTF-8 (encoding/json would rewrite those).
func (s *lineScanner) str() []byte {
	if !s.lit('"') {
		s.ok = false
		return nil
	}
	start := s.i
	end := bytes.IndexByte(s.b[start:], '"')
	if end < 0 {
		s.ok = false
		return nil
	}
	v := s.b[start : start+end]
	s.i = start + end + 1
	// One table look-up a byte finds escapes, control characters and
	// bytes outside ASCII; the UTF-8 check runs only when one of the
	// latter was seen (rarely).
	ascii := true
	for _, c := range v {
		switch strByte[c] {
		case 0:
			continue
		case 1:
			s.ok = false
			return nil
		}
		ascii = false
	}
	if !ascii && !utf8.Valid(v) {
		s.ok = false
	}
	return v
}

// strByte classes a byte inside a string: 0 plain ASCII, 1 a control
// character or backslash (the direct path does not take them), 2 a byte
// of a multi-byte UTF-8 sequence.
var strByte = func() (t [256]byte) {
	for c := range t {
		switch {
		case c < 0x20 || c == '\\':
			t[c] = 1
		case c >= utf8.RuneSelf:
			t[c] = 2
		}
	}
	return t
}()

func (s *lineScanner) strPtr() *string {
	if s.null() {
		return nil
	}
	return s.d.str(string(s.str()))
}

// int64Ptr reads an integer (JSON's grammar, no fraction or exponent).
func (s *lineScanner) int64Ptr() *int64 {
	if s.null() {
		return nil
	}
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == digits || (s.b[digits] == '0' && s.i-digits > 1) {
		s.ok = false
		return nil
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.ok = false
		return nil
	}
	if s.i-digits <= 18 { // cannot overflow: no string, no error value
		var v int64
		for _, c := range s.b[digits:s.i] {
			v = v*10 + int64(c-'0')
		}
		if digits > start {
			v = -v
		}
		return s.d.int(v)
	}
	v, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	if err != nil {
		s.ok = false
		return nil
	}
	return s.d.int(v)
}

func (s *lineScanner) boolPtr() *bool {
	if s.null() {
		return nil
	}
	var v bool
	switch rest := s.b[s.i:]; {
	case bytes.HasPrefix(rest, []byte("true")):
		v = true
		s.i += 4
	case bytes.HasPrefix(rest, []byte("false")):
		s.i += 5
	default:
		s.ok = false
	}
	return &v
}

// records reads ResourceRecords: null, or an array of {"Value": ...}.
func (s *lineScanner) records() []types.ResourceRecord {
	if s.null() {
		return nil
	}
	if !s.lit('[') {
		s.ok = false
		return nil
	}
	if s.lit(']') {
		return []types.ResourceRecord{}
	}
	var out []types.ResourceRecord
	for s.ok {
		var rr types.ResourceRecord
		if !s.lit('{') {
			s.ok = false
			return nil
		}
		if !s.lit('}') {
			if k := s.str(); !s.ok || string(k) != "Value" || !s.lit(':') {
				s.ok = false
				return nil
			}
			rr.Value = s.strPtr()
			if !s.lit('}') {
				s.ok = false
				return nil
			}
		}
		if s.lit(']') {
			if out == nil {
				return s.d.oneRecord(rr) // nearly every set
			}
			return append(out, rr)
		}
		out = append(out, rr)
		if !s.lit(',') {
			s.ok = false
		}
	}
	return nil
}

// decodeSetFast is the direct path; false: the line is not one it takes
// (rs may then hold part of it).
func decodeSetFast(line []byte, rs *types.ResourceRecordSet, d *lineSlabs) bool {
	s := &lineScanner{b: line, ok: true, d: d}
	if !s.lit('{') {
		return false
	}
	if s.lit('}') {
		s.ws()
		return s.i == len(s.b)
	}
	for s.ok {
		// The fields json.Encoder writes empty for a plain set come in one
		// run of constant text: skip each run with one comparison instead
		// of reading it key by key (the same fields, the same values).
		if rest := s.b[s.i:]; bytes.HasPrefix(rest, plainMiddle) {
			rs.AliasTarget, rs.CidrRoutingConfig, rs.Failover, rs.GeoLocation = nil, nil, "", nil
			rs.GeoProximityLocation, rs.HealthCheckId, rs.MultiValueAnswer, rs.Region = nil, nil, nil, ""
			s.i += len(plainMiddle)
			continue
		} else if bytes.HasPrefix(rest, plainEnd) {
			rs.TrafficPolicyInstanceId, rs.Weight = nil, nil
			s.i += len(plainEnd)
			s.ws()
			return s.i == len(s.b)
		}
		key := s.str()
		if !s.ok || !s.lit(':') {
			return false
		}
		switch string(key) {
		case "Name":
			rs.Name = s.strPtr()
		case "Type":
			if !s.null() {
				t := s.str()
				if known, ok := rrTypeNames[string(t)]; ok {
					rs.Type = known // no string per line for "A"
				} else {
					rs.Type = types.RRType(t)
				}
			}
		case "TTL":
			rs.TTL = s.int64Ptr()
		case "ResourceRecords":
			rs.ResourceRecords = s.records()
		case "SetIdentifier":
			rs.SetIdentifier = s.strPtr()
		case "Weight":
			rs.Weight = s.int64Ptr()
		case "Failover":
			if !s.null() {
				rs.Failover = types.ResourceRecordSetFailover(s.str())
			}
		case "Region":
			if !s.null() {
				rs.Region = types.ResourceRecordSetRegion(s.str())
			}
		case "HealthCheckId":
			rs.HealthCheckId = s.strPtr()
		case "MultiValueAnswer":
			rs.MultiValueAnswer = s.boolPtr()
		case "TrafficPolicyInstanceId":
			rs.TrafficPolicyInstanceId = s.strPtr()
		case "AliasTarget", "CidrRoutingConfig", "GeoLocation", "GeoProximityLocation":
			// Objects go the general way; null is what most sets hold.
			if !s.null() {
				return false
			}
		default:
			return false
		}
		if s.lit('}') {
			s.ws()
			return s.ok && s.i == len(s.b)
		}
		if !s.lit(',') {
			return false
		}
	}
	return false
}

// plainMiddle and plainEnd are runs of a plain set's line as
// json.Encoder writes it (fields in declaration order, no spaces):
// plainMiddle follows the type, plainEnd the TTL.
var (
	plainMiddle = []byte(`"AliasTarget":null,"CidrRoutingConfig":null,"Failover":"","GeoLocation":null,"GeoProximityLocation":null,"HealthCheckId":null,"MultiValueAnswer":null,"Region":"",`)
	plainEnd    = []byte(`"TrafficPolicyInstanceId":null,"Weight":null}`)
)

// rrTypeNames is every Route 53 type by name.
var rrTypeNames = func() map[string]types.RRType {
	m := make(map[string]types.RRType, len(rrTypes))
	for t := range rrTypes {
		m[string(t)] = t
	}
	return m
}()
