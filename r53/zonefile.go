package r53

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"

	"hybridns/zonestore"
)

// Reading a BIND zone file back into Route 53 record sets: the inverse of
// WriteZoneFile, and of cli53's export. Route 53's extras live in comments:
//
//	www 60 IN A 192.0.2.1 ; AWS routing=weighted identifier="a" weight=3      (hybridns)
//	www 60 IN A 192.0.2.1 ; AWS routing="WEIGHTED" weight=3 identifier="a"    (cli53)
//	; app.example. ALIAS A lb.example. (zone Z1, evaluate_target_health=false) ; AWS …   (hybridns)
//	app 86400 AWS ALIAS A lb.example. Z1 false ; AWS …                        (cli53; $self: this zone)
//
// Alias lines are rewritten, before the zone parser sees them, into a
// placeholder record of class aliasClass (cli53's class number for "AWS")
// whose NAPTR fields carry the type, hosted zone and health flag and whose
// replacement field carries the target, so the parser resolves the owner
// (relative names, $ORIGIN, an omitted owner) and the target as it does for
// any record.
const aliasClass = 253

var (
	hybridnsAlias = regexp.MustCompile(`^\s*;\s*(\S+)\s+ALIAS\s+([A-Za-z0-9]+)\s+(\S+)\s+\(zone\s+([^,\s]+),\s*evaluate_target_health=(true|false)\)\s*(;.*)?$`)
	quotedToken   = regexp.MustCompile(`^[A-Za-z0-9$/_.-]+$`)
)

// rewriteAliasLine returns the placeholder form of a hybridns or cli53
// alias line, or the line itself.
func rewriteAliasLine(line string) (string, error) {
	if m := hybridnsAlias.FindStringSubmatch(line); m != nil {
		return fmt.Sprintf("%s 0 CLASS%d NAPTR 0 0 %q %q %q %s %s", m[1], aliasClass, m[2], m[4], m[5], m[3], m[6]), nil
	}
	code, comment := line, ""
	if i := strings.IndexByte(line, ';'); i >= 0 && !strings.Contains(line[:i], `"`) {
		code, comment = line[:i], line[i:]
	}
	f, offs := fieldsAt(code)
	at := -1
	for i := 0; i+1 < len(f) && i < 3; i++ {
		if strings.EqualFold(f[i], "AWS") && strings.EqualFold(f[i+1], "ALIAS") {
			at = i
			break
		}
	}
	if at < 0 {
		return line, nil
	}
	rest := f[at+2:]
	if len(rest) != 4 {
		return "", fmt.Errorf("AWS ALIAS record %q: want TYPE TARGET ZONE-ID EVALUATE-TARGET-HEALTH", strings.TrimSpace(code))
	}
	for _, tok := range []string{rest[0], rest[2]} {
		if !quotedToken.MatchString(tok) {
			return "", fmt.Errorf("AWS ALIAS record %q: bad field %q", strings.TrimSpace(code), tok)
		}
	}
	eval := strings.ToLower(rest[3])
	if eval != "true" && eval != "false" {
		return "", fmt.Errorf("AWS ALIAS record %q: evaluate-target-health %q: want true or false", strings.TrimSpace(code), rest[3])
	}
	// Keep what precedes "AWS" as written: an omitted owner (leading
	// blank) stays omitted.
	idx := offs[at]
	return fmt.Sprintf("%sCLASS%d NAPTR 0 0 %q %q %q %s %s", code[:idx], aliasClass, rest[0], rest[2], eval, rest[1], comment), nil
}

// fieldsAt splits s at blanks, with the offset of every field.
func fieldsAt(s string) (fields []string, offs []int) {
	start := -1
	for i := 0; i <= len(s); i++ {
		blank := i == len(s) || s[i] == ' ' || s[i] == '\t'
		switch {
		case blank && start >= 0:
			fields, offs = append(fields, s[start:i]), append(offs, start)
			start = -1
		case !blank && start < 0:
			start = i
		}
	}
	return fields, offs
}

// fileSet is one record set being read from a file.
type fileSet struct {
	rs     types.ResourceRecordSet
	attrs  string // the routing attributes as written, to check every line agrees
	values map[string]bool
	where  string // the first record, for messages
	ttls   bool   // TTLs differed
}

// ParseZoneFile reads a zone file (no $INCLUDE) for the hosted zone origin
// (ID zoneID, which cli53's $self stands for) into Route 53 record sets,
// grouping records by name, type and set identifier. The SOA and the apex
// NS set are left out (Route 53 manages them), as notes says. Names outside
// the zone, classes other than IN, types Route 53 does not hold, and routing
// attributes that disagree within a set are errors.
func ParseZoneFile(r io.Reader, file, origin, zoneID string) (sets []types.ResourceRecordSet, notes []string, err error) {
	origin = zonestore.Canonical(origin)
	zoneID = bareZoneID(zoneID)
	var text strings.Builder
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		line, err := rewriteAliasLine(sc.Text())
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: %w", file, n, err)
		}
		text.WriteString(line)
		text.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	zp := dns.NewZoneParser(strings.NewReader(text.String()), origin, file)
	zp.SetIncludeAllowed(false)
	byKey := map[string]*fileSet{}
	var order []string
	var errs []error
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if err := addFileRecord(rr, zp.Comment(), origin, zoneID, byKey, &order, &notes); err != nil {
			errs = append(errs, err)
			if len(errs) >= 20 {
				break
			}
		}
	}
	if err := zp.Err(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, notes, err
	}
	for _, k := range order {
		fs := byKey[k]
		if fs.ttls {
			notes = append(notes, fmt.Sprintf("%s: records with different TTLs; the set takes the lowest, %d", fs.where, aws.ToInt64(fs.rs.TTL)))
		}
		if _, err := ConvertRecordSet(fs.rs); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", fs.where, err))
			continue
		}
		sets = append(sets, fs.rs)
	}
	return sets, notes, errors.Join(errs...)
}

func addFileRecord(rr dns.RR, comment, origin, zoneID string, byKey map[string]*fileSet, order *[]string, notes *[]string) error {
	h := rr.Header()
	name := dns.CanonicalName(h.Name)
	where := strings.ReplaceAll(rr.String(), "\t", " ")
	if len(where) > 100 {
		where = where[:100] + "…"
	}
	if !zonestore.InZone(name, origin) {
		return fmt.Errorf("%s: name outside the zone %s", where, origin)
	}
	var alias *types.AliasTarget
	t := h.Rrtype
	switch {
	case h.Class == aliasClass && t == dns.TypeNAPTR:
		p := rr.(*dns.NAPTR)
		at, ok := dns.StringToType[strings.ToUpper(p.Flags)]
		if !ok {
			return fmt.Errorf("alias %s: unknown type %q", name, p.Flags)
		}
		zone := strings.TrimPrefix(p.Service, hostedZonePrefix)
		if zone == "$self" {
			zone = zoneID
		}
		t = at
		alias = &types.AliasTarget{DNSName: aws.String(EscapeName(p.Replacement)), HostedZoneId: aws.String(zone), EvaluateTargetHealth: p.Regexp == "true"}
		where = fmt.Sprintf("%s ALIAS %s %s", name, p.Flags, p.Replacement)
	case h.Class != dns.ClassINET:
		return fmt.Errorf("%s: class %s: Route 53 holds IN only", where, dns.ClassToString[h.Class])
	}
	rt, ok := r53Types[t]
	if !ok {
		return fmt.Errorf("%s: Route 53 does not hold type %s", where, dns.TypeToString[t])
	}
	rs := types.ResourceRecordSet{Name: aws.String(EscapeName(name)), Type: rt}
	attrs, err := parseAWSComment(comment, &rs)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if t == dns.TypeSOA || t == dns.TypeNS && name == origin && rs.SetIdentifier == nil {
		if n := fmt.Sprintf("not imported: %s %s at the apex (Route 53 manages it)", name, dns.TypeToString[t]); !slices.Contains(*notes, n) {
			*notes = append(*notes, n)
		}
		return nil
	}
	key := name + " " + string(rt) + " " + aws.ToString(rs.SetIdentifier)
	fs := byKey[key]
	if fs == nil {
		fs = &fileSet{rs: rs, attrs: attrs, values: map[string]bool{}, where: where}
		byKey[key] = fs
		*order = append(*order, key)
	} else if fs.attrs != attrs {
		return fmt.Errorf("%s: routing attributes %q differ from those of %s in the same set (%q)", where, attrs, fs.where, fs.attrs)
	}
	if alias != nil {
		if fs.rs.AliasTarget != nil || len(fs.rs.ResourceRecords) > 0 {
			return fmt.Errorf("%s: the set %s %s already has records or an alias", where, name, rt)
		}
		fs.rs.AliasTarget = alias
		return nil
	}
	if fs.rs.AliasTarget != nil {
		return fmt.Errorf("%s: the set %s %s is an alias", where, name, rt)
	}
	v, err := Value(rr)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	ttl := int64(h.Ttl)
	switch {
	case fs.rs.TTL == nil:
		fs.rs.TTL = aws.Int64(ttl)
	case *fs.rs.TTL != ttl:
		fs.ttls = true
		fs.rs.TTL = aws.Int64(min(ttl, *fs.rs.TTL))
	}
	if !fs.values[v] { // a duplicate record is one record, as in BIND
		fs.values[v] = true
		fs.rs.ResourceRecords = append(fs.rs.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
	}
	return nil
}

// parseAWSComment reads the routing attributes of a "; AWS k=v …" comment
// (hybridns's or cli53's keys) into rs, and returns them in a canonical form
// for comparing lines of one set. Any other comment is no attribute.
func parseAWSComment(comment string, rs *types.ResourceRecordSet) (string, error) {
	c := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(comment), ";"))
	if !strings.HasPrefix(c, "AWS ") {
		return "", nil
	}
	kvs, err := parseKeyValues(c[4:])
	if err != nil {
		return "", err
	}
	get := func(keys ...string) (string, bool) {
		for _, k := range keys {
			if v, ok := kvs[k]; ok {
				delete(kvs, k)
				return v, true
			}
		}
		return "", false
	}
	canon := []string{}
	note := func(k, v string) { canon = append(canon, k+"="+strconv.Quote(v)) }
	routing, hasRouting := get("routing")
	routing = strings.ToLower(routing)
	if id, ok := get("identifier"); ok {
		rs.SetIdentifier = aws.String(id)
		note("identifier", id)
	}
	if hc, ok := get("health_check", "healthCheckId"); ok {
		rs.HealthCheckId = aws.String(hc)
		note("health_check", hc)
	}
	need := func(keys ...string) (string, error) {
		v, ok := get(keys...)
		if !ok {
			return "", fmt.Errorf("routing=%s without %s", routing, keys[0])
		}
		note(keys[0], v)
		return v, nil
	}
	if hasRouting {
		note("routing", routing)
		if rs.SetIdentifier == nil {
			return "", fmt.Errorf("routing=%s without identifier", routing)
		}
	}
	switch {
	case !hasRouting:
	case routing == KindWeighted:
		v, err := need("weight")
		if err != nil {
			return "", err
		}
		w, err := strconv.ParseInt(v, 10, 64)
		if err != nil || w < 0 || w > 255 {
			return "", fmt.Errorf("weight %q: want 0..255", v)
		}
		rs.Weight = aws.Int64(w)
	case routing == KindFailover:
		v, err := need("failover")
		if err != nil {
			return "", err
		}
		rs.Failover = types.ResourceRecordSetFailover(strings.ToUpper(v))
	case routing == KindLatency:
		v, err := need("region")
		if err != nil {
			return "", err
		}
		rs.Region = types.ResourceRecordSetRegion(v)
	case routing == KindMultiValue:
		rs.MultiValueAnswer = aws.Bool(true)
	case routing == KindCIDR:
		v, err := need("cidr")
		if err != nil {
			return "", err
		}
		coll, loc, ok := strings.Cut(v, "/")
		if !ok {
			return "", fmt.Errorf("cidr %q: want COLLECTION-ID/LOCATION", v)
		}
		rs.CidrRoutingConfig = &types.CidrRoutingConfig{CollectionId: aws.String(coll), LocationName: aws.String(loc)}
	case routing == KindGeolocation:
		g := &types.GeoLocation{}
		if v, ok := get("location"); ok {
			note("location", v)
			p := strings.Split(v, "/")
			if len(p) != 3 {
				return "", fmt.Errorf("location %q: want CONTINENT/COUNTRY/SUBDIVISION (parts may be empty)", v)
			}
			g.ContinentCode, g.CountryCode, g.SubdivisionCode = optString(p[0]), optString(p[1]), optString(p[2])
		}
		for _, f := range []struct {
			key string
			to  **string
		}{{"continentCode", &g.ContinentCode}, {"countryCode", &g.CountryCode}, {"subdivisionCode", &g.SubdivisionCode}} {
			if v, ok := get(f.key); ok {
				note(f.key, v)
				*f.to = optString(v)
			}
		}
		if *g == (types.GeoLocation{}) {
			return "", errors.New("routing=geolocation without location")
		}
		rs.GeoLocation = g
	case routing == KindGeoProximity:
		g := &types.GeoProximityLocation{}
		if v, ok := get("aws_region"); ok {
			note("aws_region", v)
			g.AWSRegion = aws.String(v)
		}
		if v, ok := get("local_zone_group"); ok {
			note("local_zone_group", v)
			g.LocalZoneGroup = aws.String(v)
		}
		if v, ok := get("coordinates"); ok {
			note("coordinates", v)
			lat, long, ok := strings.Cut(v, ",")
			if !ok {
				return "", fmt.Errorf("coordinates %q: want LATITUDE,LONGITUDE", v)
			}
			g.Coordinates = &types.Coordinates{Latitude: aws.String(lat), Longitude: aws.String(long)}
		}
		if v, ok := get("bias"); ok {
			note("bias", v)
			b, err := strconv.ParseInt(v, 10, 32)
			if err != nil || b < -99 || b > 99 {
				return "", fmt.Errorf("bias %q: want -99..99", v)
			}
			g.Bias = aws.Int32(int32(b))
		}
		if g.AWSRegion == nil && g.LocalZoneGroup == nil && g.Coordinates == nil {
			return "", errors.New("routing=geoproximity without aws_region, local_zone_group or coordinates")
		}
		rs.GeoProximityLocation = g
	default:
		return "", fmt.Errorf("routing=%q: want weighted, failover, latency, geolocation, geoproximity, cidr or multivalue", routing)
	}
	if len(kvs) > 0 {
		var left []string
		for k := range kvs {
			left = append(left, k)
		}
		slices.Sort(left)
		if hasRouting {
			return "", fmt.Errorf("attributes %s do not belong to routing=%s", strings.Join(left, ", "), routing)
		}
		return "", fmt.Errorf("attributes %s without routing=", strings.Join(left, ", "))
	}
	slices.Sort(canon)
	return strings.Join(canon, " "), nil
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// parseKeyValues reads `k=v k="quoted \" value" …`.
func parseKeyValues(s string) (map[string]string, error) {
	out := map[string]string{}
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || strings.ContainsAny(s[:eq], " \t\"") {
			return nil, fmt.Errorf("AWS attributes: want key=value at %q", s)
		}
		key, rest := s[:eq], s[eq+1:]
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := 1
			for end < len(rest) && rest[end] != '"' {
				if rest[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(rest) {
				return nil, fmt.Errorf("AWS attributes: unterminated quote in %s", key)
			}
			q := rest[:end+1]
			v, err := strconv.Unquote(q)
			if err != nil {
				v = q[1 : len(q)-1]
			}
			val, s = v, rest[end+1:]
		} else {
			end := strings.IndexAny(rest, " \t")
			if end < 0 {
				end = len(rest)
			}
			val, s = rest[:end], rest[end:]
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("AWS attributes: %s given twice", key)
		}
		out[key] = val
	}
	return out, nil
}
