package r53

import (
	"errors"
	"fmt"
	"strings"

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
	origin = zonestore.Canonical(origin)
	b := zonestore.NewBuilder(origin)
	b.SetSource("route53:" + zoneID)
	bareID := bareZoneID(zoneID)
	var errs []error
	for _, in := range sets {
		rs, err := ConvertRecordSet(in)
		if err != nil {
			skipped = append(skipped, Skipped{Name: deref(in.Name), Type: string(in.Type), SetID: deref(in.SetIdentifier), Err: err})
			continue
		}
		if err := addRecordSet(b, origin, bareID, rs); err != nil {
			skipped = append(skipped, Skipped{Name: rs.Name, Type: string(in.Type), SetID: rs.Policy.SetIdentifier, Err: err})
		}
	}
	z, err = b.Build()
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, skipped, fmt.Errorf("zone %s (%s): %w", origin, zoneID, err)
	}
	return z, skipped, nil
}

// addRecordSet puts one converted record set into the builder: plain
// records as they are, aliases and routing-policy sets as variants.
func addRecordSet(b *zonestore.Builder, origin, zoneID string, rs RecordSet) error {
	p := policyOf(rs.Policy)
	if rs.Alias == nil && p == zonestore.PolicySimple {
		for _, rr := range rs.RRs {
			if err := b.Add(rr); err != nil {
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
