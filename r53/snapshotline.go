package r53

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// decodeSetLine decodes one snapshot line (a record set as json.Encoder
// wrote it) into rs. The lines of plain record sets — every field a plain
// string, number, bool or null, values without escapes — take a direct
// path several times faster than encoding/json's reflection; anything
// else (an alias, a routing location, an escape, a field it does not
// know) goes to json.Unmarshal. Both give the same record set for every
// line the direct path takes (FuzzDecodeSetLine).
func decodeSetLine(line []byte, rs *types.ResourceRecordSet) error {
	if decodeSetFast(line, rs) {
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
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			if !utf8.Valid(v) {
				s.ok = false
			}
			return v
		case c == '\\' || c < 0x20:
			s.ok = false
			return nil
		}
		s.i++
	}
	s.ok = false
	return nil
}

func (s *lineScanner) strPtr() *string {
	if s.null() {
		return nil
	}
	v := string(s.str())
	return &v
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
	v, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	if err != nil {
		s.ok = false
		return nil
	}
	return &v
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
	out := make([]types.ResourceRecord, 0, 1)
	if s.lit(']') {
		return out
	}
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
		out = append(out, rr)
		if s.lit(']') {
			return out
		}
		if !s.lit(',') {
			s.ok = false
		}
	}
	return nil
}

// decodeSetFast is the direct path; false: the line is not one it takes
// (rs may then hold part of it).
func decodeSetFast(line []byte, rs *types.ResourceRecordSet) bool {
	s := &lineScanner{b: line, ok: true}
	if !s.lit('{') {
		return false
	}
	if s.lit('}') {
		s.ws()
		return s.i == len(s.b)
	}
	for s.ok {
		key := s.str()
		if !s.ok || !s.lit(':') {
			return false
		}
		switch string(key) {
		case "Name":
			rs.Name = s.strPtr()
		case "Type":
			if !s.null() {
				rs.Type = types.RRType(s.str())
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
