package r53

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"

	"hybridns/zonestore"
)

// Sentinel errors for conditions the caller counts separately; test with errors.Is.
var (
	// ErrUnsupportedType: the record set's type is not one this converter handles.
	ErrUnsupportedType = errors.New("unsupported record type")
	// ErrTrafficPolicy: the record set is managed by a traffic policy instance and
	// carries neither records nor an alias target.
	ErrTrafficPolicy = errors.New("traffic policy record set without records")
)

// Routing-policy kinds returned by Policy.Kind.
const (
	KindSimple       = "simple"
	KindWeighted     = "weighted"
	KindFailover     = "failover"
	KindLatency      = "latency"
	KindMultiValue   = "multivalue"
	KindGeolocation  = "geolocation"
	KindCIDR         = "cidr"
	KindGeoProximity = "geoproximity"
)

// Alias is an alias record set's target.
type Alias struct {
	DNSName              string // canonical: lower-case FQDN in miekg presentation form, octal escapes decoded (\052 -> *)
	HostedZoneID         string // bare ID ("Z…"), prefix "/hostedzone/" stripped
	EvaluateTargetHealth bool
}

// Policy is the routing-policy part of a record set; the zero value is simple routing.
type Policy struct {
	SetIdentifier string
	Weight        *int64        // weighted
	Failover      string        // "PRIMARY" | "SECONDARY"
	Region        string        // latency
	MultiValue    bool          // multivalue answer
	Geo           *GeoLocation  // geolocation
	CIDR          *CIDRRouting  // IP-based
	GeoProximity  *GeoProximity // geoproximity
	HealthCheckID string
}

// GeoLocation is a geolocation routing location. Country "*" is the default location.
type GeoLocation struct{ Continent, Country, Subdivision string }

// CIDRRouting is an IP-based routing location. LocationName "*" is the default location.
type CIDRRouting struct{ CollectionID, LocationName string }

// GeoProximity is a geoproximity routing location: one of Region, LocalZoneGroup or
// Latitude+Longitude (kept as the API's decimal strings), plus Bias (-99..99).
type GeoProximity struct {
	Region, LocalZoneGroup string
	Latitude, Longitude    string
	Bias                   int32
}

// Kind names the routing policy. ConvertRecordSet guarantees at most one policy is set.
func (p Policy) Kind() string {
	switch {
	case p.Weight != nil:
		return KindWeighted
	case p.Failover != "":
		return KindFailover
	case p.Region != "":
		return KindLatency
	case p.Geo != nil:
		return KindGeolocation
	case p.CIDR != nil:
		return KindCIDR
	case p.GeoProximity != nil:
		return KindGeoProximity
	case p.MultiValue:
		return KindMultiValue
	}
	return KindSimple
}

// policies counts how many routing policies are set (valid record sets have 0 or 1).
func (p Policy) policies() int {
	n := 0
	for _, set := range []bool{p.Weight != nil, p.Failover != "", p.Region != "", p.Geo != nil,
		p.CIDR != nil, p.GeoProximity != nil, p.MultiValue} {
		if set {
			n++
		}
	}
	return n
}

// RecordSet is one Route 53 record set, converted.
type RecordSet struct {
	Name   string   // canonical owner: lower-case FQDN, exactly as miekg unpacks the same wire name
	Type   uint16   // dns.TypeA, ...
	TTL    uint32   // 0 for alias sets (they take the target's TTL)
	RRs    []dns.RR // nil for alias sets; owner Name, class IN, TTL set, in value order
	Alias  *Alias
	Policy Policy
}

// rrTypes maps every type Route 53 offers to its miekg code. SPF stays SPF.
var rrTypes = map[types.RRType]uint16{
	types.RRTypeA:     dns.TypeA,
	types.RRTypeAaaa:  dns.TypeAAAA,
	types.RRTypeCaa:   dns.TypeCAA,
	types.RRTypeCname: dns.TypeCNAME,
	types.RRTypeDs:    dns.TypeDS,
	types.RRTypeHttps: dns.TypeHTTPS,
	types.RRTypeMx:    dns.TypeMX,
	types.RRTypeNaptr: dns.TypeNAPTR,
	types.RRTypeNs:    dns.TypeNS,
	types.RRTypePtr:   dns.TypePTR,
	types.RRTypeSoa:   dns.TypeSOA,
	types.RRTypeSpf:   dns.TypeSPF,
	types.RRTypeSrv:   dns.TypeSRV,
	types.RRTypeSshfp: dns.TypeSSHFP,
	types.RRTypeSvcb:  dns.TypeSVCB,
	types.RRTypeTlsa:  dns.TypeTLSA,
	types.RRTypeTxt:   dns.TypeTXT,
}

const (
	maxTTL            = 1<<31 - 1 // RFC 2181 §8; also the Route 53 maximum
	hostedZonePrefix  = "/hostedzone/"
	maxValueInMessage = 80
)

// ConvertRecordSet converts one record set as returned by ListResourceRecordSets.
// It is pure. Errors name the record set (name, type, set identifier) and, for a bad
// value, its 1-based position and text; unsupported types wrap ErrUnsupportedType.
//
// Values are zone-file rdata. Domain names in them are fully qualified whether or
// not they end in a dot, and are lower-cased; TXT and SPF strings keep their case,
// and their \ddd escapes are octal, as Route 53 documents (other types' values are
// read with RFC 1035 decimal \DDD escapes). Every RR is packed and unpacked once so
// that its text equals what miekg gives for the same wire data.
func ConvertRecordSet(in types.ResourceRecordSet) (RecordSet, error) {
	return convertSetPtr(&in)
}

// convertSetPtr is ConvertRecordSet without copying the (168-byte) set:
// a snapshot load converts a million of them.
func convertSetPtr(in *types.ResourceRecordSet) (RecordSet, error) {
	rs, err := convertRecordSet(in)
	if err != nil {
		setID := ""
		if in.SetIdentifier != nil {
			setID = fmt.Sprintf(" (set-id %s)", aws.ToString(in.SetIdentifier))
		}
		return RecordSet{}, fmt.Errorf("convert %s %s%s: %w", aws.ToString(in.Name), in.Type, setID, err)
	}
	return rs, nil
}

func convertRecordSet(in *types.ResourceRecordSet) (RecordSet, error) {
	var rs RecordSet
	if in.Name == nil {
		return rs, errors.New("missing name")
	}
	name, err := UnescapeName(*in.Name)
	if err != nil {
		return rs, fmt.Errorf("name: %w", err)
	}
	rs.Name = name
	rrtype, ok := rrTypes[in.Type]
	if !ok {
		return rs, fmt.Errorf("%w %q", ErrUnsupportedType, string(in.Type))
	}
	rs.Type = rrtype
	if rs.Policy, err = convertPolicy(in); err != nil {
		return rs, err
	}

	if in.AliasTarget != nil {
		switch {
		case len(in.ResourceRecords) > 0:
			return rs, fmt.Errorf("alias record set has %d resource records", len(in.ResourceRecords))
		case in.TTL != nil:
			return rs, errors.New("alias record set has a TTL")
		}
		rs.Alias, err = convertAlias(in.AliasTarget)
		return rs, err
	}
	if len(in.ResourceRecords) == 0 {
		if in.TrafficPolicyInstanceId != nil {
			return rs, fmt.Errorf("%w (instance %s)", ErrTrafficPolicy, *in.TrafficPolicyInstanceId)
		}
		return rs, errors.New("neither resource records nor alias target")
	}
	if in.TTL == nil {
		return rs, errors.New("missing TTL")
	}
	if *in.TTL < 0 || *in.TTL > maxTTL {
		return rs, fmt.Errorf("TTL %d out of range 0..%d", *in.TTL, maxTTL)
	}
	rs.TTL = uint32(*in.TTL)
	if (rrtype == dns.TypeCNAME || rrtype == dns.TypeSOA) && len(in.ResourceRecords) > 1 {
		return rs, fmt.Errorf("%s record set has %d values, want 1", in.Type, len(in.ResourceRecords))
	}
	rs.RRs = make([]dns.RR, 0, len(in.ResourceRecords))
	for i, r := range in.ResourceRecords {
		v := aws.ToString(r.Value)
		rr, err := parseValue(rs.Name, rs.TTL, rrtype, v)
		if err != nil {
			return rs, fmt.Errorf("value %d %s: %w", i+1, shorten(v), err)
		}
		rs.RRs = append(rs.RRs, rr)
	}
	return rs, nil
}

func convertAlias(at *types.AliasTarget) (*Alias, error) {
	if at.DNSName == nil || *at.DNSName == "" {
		return nil, errors.New("alias target without DNS name")
	}
	if at.HostedZoneId == nil || *at.HostedZoneId == "" {
		return nil, errors.New("alias target without hosted zone ID")
	}
	target, err := UnescapeName(*at.DNSName)
	if err != nil {
		return nil, fmt.Errorf("alias target %s: %w", shorten(*at.DNSName), err)
	}
	return &Alias{
		DNSName:              target,
		HostedZoneID:         strings.TrimPrefix(*at.HostedZoneId, hostedZonePrefix),
		EvaluateTargetHealth: at.EvaluateTargetHealth,
	}, nil
}

func convertPolicy(in *types.ResourceRecordSet) (Policy, error) {
	p := Policy{
		SetIdentifier: aws.ToString(in.SetIdentifier),
		Failover:      string(in.Failover),
		Region:        string(in.Region),
		MultiValue:    aws.ToBool(in.MultiValueAnswer),
		HealthCheckID: aws.ToString(in.HealthCheckId),
	}
	if in.Weight != nil {
		w := *in.Weight
		p.Weight = &w
	}
	if g := in.GeoLocation; g != nil {
		p.Geo = &GeoLocation{
			Continent:   aws.ToString(g.ContinentCode),
			Country:     aws.ToString(g.CountryCode),
			Subdivision: aws.ToString(g.SubdivisionCode),
		}
		if *p.Geo == (GeoLocation{}) {
			return p, errors.New("empty geolocation")
		}
	}
	if c := in.CidrRoutingConfig; c != nil {
		p.CIDR = &CIDRRouting{CollectionID: aws.ToString(c.CollectionId), LocationName: aws.ToString(c.LocationName)}
		if p.CIDR.CollectionID == "" || p.CIDR.LocationName == "" {
			return p, errors.New("CIDR routing config without collection ID or location name")
		}
	}
	if g := in.GeoProximityLocation; g != nil {
		p.GeoProximity = &GeoProximity{
			Region:         aws.ToString(g.AWSRegion),
			LocalZoneGroup: aws.ToString(g.LocalZoneGroup),
			Bias:           aws.ToInt32(g.Bias),
		}
		if c := g.Coordinates; c != nil {
			p.GeoProximity.Latitude = aws.ToString(c.Latitude)
			p.GeoProximity.Longitude = aws.ToString(c.Longitude)
		}
	}
	switch p.Failover {
	case "", string(types.ResourceRecordSetFailoverPrimary), string(types.ResourceRecordSetFailoverSecondary):
	default:
		return p, fmt.Errorf("failover %q is neither PRIMARY nor SECONDARY", p.Failover)
	}
	switch n := p.policies(); {
	case n > 1:
		return p, fmt.Errorf("%d routing policies set, want at most 1", n)
	case n == 1 && p.SetIdentifier == "":
		return p, fmt.Errorf("%s record set without set identifier", p.Kind())
	case n == 0 && p.SetIdentifier != "":
		return p, errors.New("set identifier without routing policy")
	}
	return p, nil
}

// parseValue parses one ResourceRecord.Value as the rdata of an RR owned by owner.
func parseValue(owner string, ttl uint32, rrtype uint16, value string) (dns.RR, error) {
	if strings.TrimSpace(value) == "" {
		return nil, errors.New("empty value")
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return nil, fmt.Errorf("unescaped control character %#02x at offset %d", c, i)
		}
	}
	// Addresses are most of a large zone: parse them directly (the same
	// result as the zone parser and wire round trip below, at a fraction
	// of the cost; TestFastAddressParse checks both agree).
	if rr := parseAddress(owner, ttl, rrtype, value); rr != nil {
		return rr, nil
	}
	if rrtype == dns.TypeTXT || rrtype == dns.TypeSPF {
		var err error
		if value, err = octalToDecimalEscapes(value); err != nil {
			return nil, err
		}
	}
	// Origin "." makes names without a trailing dot fully qualified.
	zp := dns.NewZoneParser(strings.NewReader(owner+" "+strconv.FormatUint(uint64(ttl), 10)+" IN "+
		dns.TypeToString[rrtype]+" "+value+"\n"), ".", "")
	zp.SetIncludeAllowed(false)
	rr, ok := zp.Next()
	if err := zp.Err(); err != nil {
		return nil, err
	}
	if !ok || rr == nil {
		return nil, errors.New("no record parsed")
	}
	if c := zp.Comment(); c != "" {
		// An unquoted ';' starts a comment: the rest of the value would be lost.
		return nil, fmt.Errorf("unquoted ';' (the text %q would be dropped as a comment)", c)
	}
	if _, more := zp.Next(); more || zp.Err() != nil {
		return nil, errors.New("value holds more than one record")
	}
	if rr.Header().Rrtype != rrtype {
		return nil, fmt.Errorf("parsed type %s, want %s", dns.TypeToString[rr.Header().Rrtype], dns.TypeToString[rrtype])
	}
	rr, err := wireCanonical(rr)
	if err != nil {
		return nil, err
	}
	zonestore.CanonicalRdata(rr)
	rr.Header().Name = owner
	return rr, nil
}

// parseAddress handles plain A and AAAA values; nil for anything else
// (the general parser then decides, errors included).
func parseAddress(owner string, ttl uint32, rrtype uint16, value string) dns.RR {
	hdr := dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
	switch rrtype {
	case dns.TypeA:
		ip, err := netip.ParseAddr(value)
		if err != nil || !ip.Is4() {
			return nil
		}
		b := ip.As4()
		return &dns.A{Hdr: hdr, A: net.IP(b[:])}
	case dns.TypeAAAA:
		ip, err := netip.ParseAddr(value)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return nil
		}
		b := ip.As16()
		return &dns.AAAA{Hdr: hdr, AAAA: net.IP(b[:])}
	}
	return nil
}

// wireCanonical packs rr and unpacks it again, so that every field has the text
// miekg gives for the wire data (escapes in names and strings, hex case, ...).
func wireCanonical(rr dns.RR) (dns.RR, error) {
	buf := make([]byte, dns.Len(rr)+64)
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		buf = make([]byte, dns.MaxMsgSize)
		if n, err = dns.PackRR(rr, buf, 0, nil, false); err != nil {
			return nil, fmt.Errorf("pack: %w", err)
		}
	}
	out, _, err := dns.UnpackRR(buf[:n], 0)
	if err != nil {
		return nil, fmt.Errorf("unpack: %w", err)
	}
	return out, nil
}

// octalToDecimalEscapes rewrites Route 53's \ooo (octal) escapes as the \DDD
// (decimal) escapes of RFC 1035 zone files. Other escapes (\" \\ \;) are kept.
func octalToDecimalEscapes(v string) (string, error) {
	if !strings.Contains(v, `\`) {
		return v, nil
	}
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\\' || i+1 >= len(v) {
			b.WriteByte(c)
			continue
		}
		if !isDigit(v[i+1]) {
			b.WriteByte(c)
			b.WriteByte(v[i+1])
			i++
			continue
		}
		n, err := octalEscape(v, i)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, `\%03d`, n)
		i += 3
	}
	return b.String(), nil
}

// octalEscape decodes the \ooo escape that starts at s[i].
func octalEscape(s string, i int) (byte, error) {
	if i+4 > len(s) {
		return 0, fmt.Errorf("short escape %q at offset %d: want \\ and three octal digits", s[i:], i)
	}
	n := 0
	for _, d := range []byte(s[i+1 : i+4]) {
		if d < '0' || d > '7' {
			return 0, fmt.Errorf("bad escape %q at offset %d: want \\ and three octal digits", s[i:i+4], i)
		}
		n = n*8 + int(d-'0')
	}
	if n > 0377 {
		return 0, fmt.Errorf("escape %q at offset %d is above \\377", s[i:i+4], i)
	}
	return byte(n), nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// nameToWire turns a presentation name into uncompressed wire form. Escapes are
// \X (the byte X) and \ddd, read as octal (Route 53 API form) or decimal (zone
// file and miekg form). A missing trailing dot is allowed. fold lower-cases A-Z.
func nameToWire(s string, octal, fold bool) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty name")
	}
	if s == "." {
		return []byte{0}, nil
	}
	wire := make([]byte, 1, len(s)+2) // wire[0] is the first label's length
	start := 0                        // offset of the current label's length byte
	endLabel := func() error {
		n := len(wire) - start - 1
		if n == 0 {
			return fmt.Errorf("empty label in %s", shorten(s))
		}
		if n > 63 {
			return fmt.Errorf("label longer than 63 bytes in %s", shorten(s))
		}
		wire[start] = byte(n)
		start = len(wire)
		wire = append(wire, 0)
		return nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if err := endLabel(); err != nil {
				return nil, err
			}
			continue
		case c == '\\' && i+1 >= len(s):
			return nil, fmt.Errorf("trailing backslash in %s", shorten(s))
		case c == '\\' && !isDigit(s[i+1]):
			c = s[i+1]
			i++
		case c == '\\' && octal:
			b, err := octalEscape(s, i)
			if err != nil {
				return nil, err
			}
			c = b
			i += 3
		case c == '\\':
			if i+4 > len(s) || !isDigit(s[i+2]) || !isDigit(s[i+3]) {
				return nil, fmt.Errorf("bad escape at offset %d in %s: want \\ and three decimal digits", i, shorten(s))
			}
			n, _ := strconv.Atoi(s[i+1 : i+4])
			if n > 255 {
				return nil, fmt.Errorf("escape %q above \\255 in %s", s[i:i+4], shorten(s))
			}
			c = byte(n)
			i += 3
		}
		if fold && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		wire = append(wire, c)
	}
	if len(wire)-start-1 > 0 { // no trailing dot: close the last label
		if err := endLabel(); err != nil {
			return nil, err
		}
	}
	// wire now ends with the (zero) length byte of the root label.
	if len(wire) > 255 {
		return nil, fmt.Errorf("name longer than 255 bytes in wire form: %s", shorten(s))
	}
	return wire, nil
}

// UnescapeName turns a name in Route 53 API form (\ooo octal escapes, optional
// trailing dot, any case) into the canonical lower-case FQDN in miekg presentation
// form: the string dns.UnpackDomainName returns for the same wire name. So
// "\052.example.com." is "*.example.com.", "a\100b" is "a\@b.", "a\040b" is "a\ b."
// and "a\057b" is "a/b.".
func UnescapeName(s string) (string, error) {
	if plainName(s) {
		return s, nil // already what unescapeNameWire gives: no copy
	}
	return unescapeNameWire(s)
}

// unescapeNameWire is UnescapeName by the round trip through wire form.
func unescapeNameWire(s string) (string, error) {
	wire, err := nameToWire(s, true, true)
	if err != nil {
		return "", err
	}
	name, _, err := dns.UnpackDomainName(wire, 0)
	if err != nil {
		return "", fmt.Errorf("name %s: %w", shorten(s), err)
	}
	return name, nil
}

// plainName reports whether s is a lower-case FQDN of letters, digits,
// '-', '_' and '*' only, in non-empty labels of at most 63 bytes, at
// most 255 bytes in wire form: nameToWire and dns.UnpackDomainName give
// s back unchanged for such a name (nearly every owner name; the
// round trip allocates twice). TestUnescapeNamePlain checks both agree.
func plainName(s string) bool {
	if len(s) < 2 || len(s) > 254 || s[len(s)-1] != '.' {
		return false // the root, too long, or no trailing dot: the general way
	}
	label := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if label == 0 || label > 63 {
				return false
			}
			label = 0
			continue
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '*':
		default:
			return false
		}
		label++
	}
	return true
}

// EscapeName turns a miekg presentation name into Route 53 API form: lower case,
// every byte outside [a-z0-9_-] as a \ooo octal escape, labels joined by dots, a
// trailing dot. It inverts UnescapeName: EscapeName(UnescapeName(x)) is x for names
// as the API returns them. A name that is not valid presentation text is escaped
// byte by byte, with '.' as the only separator.
func EscapeName(name string) string {
	wire, err := nameToWire(name, false, true)
	if err != nil {
		wire = rawWire(name)
	}
	if len(wire) <= 1 {
		return "."
	}
	var b strings.Builder
	b.Grow(len(name) + 8)
	for off := 0; off < len(wire) && wire[off] != 0; {
		n := int(wire[off])
		for _, c := range wire[off+1 : off+1+n] {
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
				b.WriteByte(c)
			default:
				fmt.Fprintf(&b, `\%03o`, c)
			}
		}
		b.WriteByte('.')
		off += 1 + n
	}
	return b.String()
}

// rawWire is EscapeName's fallback: split on '.', no escapes, no length limits
// beyond what a length byte can hold, lower-cased.
func rawWire(s string) []byte {
	var wire []byte
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		for len(l) > 0 {
			n := min(len(l), 63)
			wire = append(wire, byte(n))
			for i := 0; i < n; i++ {
				c := l[i]
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A' // ASCII only: other bytes are data
				}
				wire = append(wire, c)
			}
			l = l[n:]
		}
	}
	return append(wire, 0)
}

// shorten quotes s for an error message, cut to a readable length.
func shorten(s string) string {
	if len(s) > maxValueInMessage {
		return strconv.Quote(s[:maxValueInMessage]) + "…"
	}
	return strconv.Quote(s)
}
