package r53

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/miekg/dns"

	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"hybridns/zonestore"
)

// Skipped is a record set left out of a zone, with the reason.
type Skipped struct {
	Name, Type, SetID string
	Err               error
}

// BuildZone converts a hosted zone's record sets and builds the zone. A
// record set that cannot be converted (an unsupported type, a traffic
// policy instance without records, a value that does not parse) is left
// out and reported in skipped — never dropped silently. A zone that does not
// validate (no SOA, CNAME and other data, …) is an error: the caller keeps
// the last good version.
func BuildZone(origin, zoneID string, sets []types.ResourceRecordSet) (z *zonestore.Zone, skipped []Skipped, err error) {
	zb := newZoneBuild(origin, zoneID)
	zb.add(sets)
	return zb.finish()
}

// zoneBuild is BuildZone in steps, for record sets that arrive in parts
// (a snapshot file decoded meanwhile).
type zoneBuild struct {
	origin, zoneID, bareID string
	b                      *zonestore.Builder
	skipped                []Skipped
}

func newZoneBuild(origin, zoneID string) *zoneBuild {
	origin = zonestore.Canonical(origin)
	b := zonestore.NewBuilder(origin)
	b.SetSource("route53:" + zoneID)
	return &zoneBuild{origin: origin, zoneID: zoneID, bareID: bareZoneID(zoneID), b: b}
}

func (zb *zoneBuild) add(sets []types.ResourceRecordSet) {
	convertSets(sets, zb.addConverted)
}

// addConverted adds one record set, in, as ConvertRecordSet made it (rs
// or err).
func (zb *zoneBuild) addConverted(in *types.ResourceRecordSet, rs *RecordSet, err error) {
	if err != nil {
		zb.skipped = append(zb.skipped, Skipped{Name: deref(in.Name), Type: string(in.Type), SetID: deref(in.SetIdentifier), Err: err})
		return
	}
	if err := addRecordSet(zb.b, zb.origin, zb.bareID, rs); err != nil {
		zb.skipped = append(zb.skipped, Skipped{Name: rs.Name, Type: string(in.Type), SetID: rs.Policy.SetIdentifier, Err: err})
	}
}

func (zb *zoneBuild) finish() (*zonestore.Zone, []Skipped, error) {
	z, err := zb.b.Build()
	if err != nil {
		return nil, zb.skipped, fmt.Errorf("zone %s (%s): %w", zb.origin, zb.zoneID, err)
	}
	return z, zb.skipped, nil
}

// addRecordSet puts one converted record set into the builder: plain
// records as they are, aliases and routing-policy sets as variants.
func addRecordSet(b *zonestore.Builder, origin, zoneID string, rs *RecordSet) error {
	p := policyOf(rs.Policy)
	if rs.Alias == nil && p == zonestore.PolicySimple {
		for _, rr := range rs.RRs {
			// The records were converted for this zone alone: the
			// builder may lower-case their rdata names in place.
			if err := b.AddOwned(rr); err != nil {
				return err
			}
		}
		return nil
	}
	v := zonestore.Variant{
		ID:          rs.Policy.SetIdentifier,
		RRs:         rs.RRs,
		Region:      rs.Policy.Region,
		HealthCheck: rs.Policy.HealthCheckID,
	}
	if rs.Policy.Weight != nil {
		v.Weight = *rs.Policy.Weight
	}
	switch rs.Policy.Failover {
	case "PRIMARY":
		v.Failover = zonestore.FailoverPrimary
	case "SECONDARY":
		v.Failover = zonestore.FailoverSecondary
	}
	if g := rs.Policy.Geo; g != nil {
		v.Location = zonestore.Location{Continent: g.Continent, Country: g.Country, Subdivision: g.Subdivision}
	}
	if g := rs.Policy.GeoProximity; g != nil {
		v.Region = g.Region
	}
	if c := rs.Policy.CIDR; c != nil {
		v.CIDRColl, v.CIDRLoc = c.CollectionID, c.LocationName
	}
	if a := rs.Alias; a != nil {
		// An alias into this hosted zone answers from the zone; anything
		// else (ELB, CloudFront, S3, …) is resolved at answer time.
		same := bareZoneID(a.HostedZoneID) == zoneID && zonestore.InZone(a.DNSName, origin)
		v.Alias = &zonestore.Alias{Target: a.DNSName, External: !same, EvalHealth: a.EvaluateTargetHealth}
	}
	return b.AddVariant(rs.Name, rs.Type, p, v)
}

// policyOf maps a Route 53 policy to the zonestore one. Geoproximity has no
// offline evaluation: its record sets answer like latency records by region
// (local-zone groups and coordinates fall back to the first set), which is
// documented as a divergence.
func policyOf(p Policy) zonestore.Policy {
	switch p.Kind() {
	case KindWeighted:
		return zonestore.PolicyWeighted
	case KindFailover:
		return zonestore.PolicyFailover
	case KindLatency, KindGeoProximity:
		return zonestore.PolicyLatency
	case KindMultiValue:
		return zonestore.PolicyMultiValue
	case KindGeolocation:
		return zonestore.PolicyGeo
	case KindCIDR:
		return zonestore.PolicyCIDR
	}
	return zonestore.PolicySimple
}

func bareZoneID(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[i+1:]
	}
	return id
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// WriteZoneFile writes a hosted zone as BIND zone-file text: plain record
// sets as records, routing-policy record sets as records with a comment
// naming the policy, aliases (which have no zone-file form) as comments, so
// the file loads in BIND and still says everything Route 53 holds.
func WriteZoneFile(w io.Writer, origin, zoneID string, sets []types.ResourceRecordSet) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "; Route 53 hosted zone %s (%s), exported by hybridns\n$ORIGIN %s\n", zonestore.Canonical(origin), bareZoneID(zoneID), zonestore.Canonical(origin))
	for _, in := range sets {
		rs, err := ConvertRecordSet(in)
		if err != nil {
			fmt.Fprintf(bw, "; not exported: %v\n", err)
			continue
		}
		attrs := policyAttrs(rs.Policy)
		comment := ""
		if len(attrs) > 0 {
			comment = " ; AWS " + strings.Join(attrs, " ")
		}
		if rs.Alias != nil {
			fmt.Fprintf(bw, "; %s ALIAS %s %s (zone %s, evaluate_target_health=%v)%s\n", rs.Name, dns.TypeToString[rs.Type],
				rs.Alias.DNSName, rs.Alias.HostedZoneID, rs.Alias.EvaluateTargetHealth, comment)
			continue
		}
		for _, rr := range rs.RRs {
			fmt.Fprintf(bw, "%s%s\n", rr.String(), comment)
		}
	}
	return bw.Flush()
}

// policyAttrs is a record set's routing policy and health check as the
// "; AWS k=v …" attributes of an exported zone file (ParseZoneFile reads
// them back).
func policyAttrs(p Policy) []string {
	var attrs []string
	if k := p.Kind(); k != KindSimple {
		attrs = append(attrs, "routing="+k, fmt.Sprintf("identifier=%q", p.SetIdentifier))
		if p.Weight != nil {
			attrs = append(attrs, fmt.Sprintf("weight=%d", *p.Weight))
		}
		if p.Failover != "" {
			attrs = append(attrs, "failover="+p.Failover)
		}
		if p.Region != "" {
			attrs = append(attrs, "region="+p.Region)
		}
		if g := p.Geo; g != nil {
			attrs = append(attrs, fmt.Sprintf("location=%s/%s/%s", g.Continent, g.Country, g.Subdivision))
		}
		if c := p.CIDR; c != nil {
			attrs = append(attrs, "cidr="+c.CollectionID+"/"+c.LocationName)
		}
		if g := p.GeoProximity; g != nil {
			if g.Region != "" {
				attrs = append(attrs, "aws_region="+g.Region)
			}
			if g.LocalZoneGroup != "" {
				attrs = append(attrs, "local_zone_group="+g.LocalZoneGroup)
			}
			if g.Latitude != "" || g.Longitude != "" {
				attrs = append(attrs, "coordinates="+g.Latitude+","+g.Longitude)
			}
			if g.Bias != 0 {
				attrs = append(attrs, fmt.Sprintf("bias=%d", g.Bias))
			}
		}
	}
	if p.HealthCheckID != "" {
		attrs = append(attrs, "health_check="+p.HealthCheckID)
	}
	return attrs
}

// FetchZone lists one zone's record sets (for export and one-off use).
func FetchZone(ctx context.Context, api API, zone string) (origin, id string, sets []types.ResourceRecordSet, err error) {
	s, err := NewSyncer(api, zonestore.NewStore(), Config{Zones: []string{zone}})
	if err != nil {
		return "", "", nil, err
	}
	if err := s.List(ctx); err != nil {
		return "", "", nil, err
	}
	ids := s.zoneIDs()
	if len(ids) != 1 {
		return "", "", nil, fmt.Errorf("zone %s: %d hosted zones match", zone, len(ids))
	}
	z := s.zones[ids[0]]
	sets, _, err = s.fetch(ctx, z)
	return z.name, z.id, sets, err
}
