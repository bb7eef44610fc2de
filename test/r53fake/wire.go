package r53fake

import (
	"encoding/xml"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// ---- record sets ----

// xRRSet is a ResourceRecordSet on the wire. Field order is the model order;
// decoding accepts any order. Stored record sets use this type too, in
// normalized form, and are treated as immutable once stored.
type xRRSet struct {
	Name                    string    `xml:"Name"`
	Type                    string    `xml:"Type"`
	SetIdentifier           string    `xml:"SetIdentifier,omitempty"`
	Weight                  *int64    `xml:"Weight,omitempty"`
	Region                  string    `xml:"Region,omitempty"`
	GeoLocation             *xGeo     `xml:"GeoLocation,omitempty"`
	Failover                string    `xml:"Failover,omitempty"`
	MultiValueAnswer        *bool     `xml:"MultiValueAnswer,omitempty"`
	TTL                     *int64    `xml:"TTL,omitempty"`
	ResourceRecords         *xRRs     `xml:"ResourceRecords,omitempty"`
	AliasTarget             *xAlias   `xml:"AliasTarget,omitempty"`
	HealthCheckId           string    `xml:"HealthCheckId,omitempty"`
	TrafficPolicyInstanceId string    `xml:"TrafficPolicyInstanceId,omitempty"`
	CidrRoutingConfig       *xCidr    `xml:"CidrRoutingConfig,omitempty"`
	GeoProximityLocation    *xGeoProx `xml:"GeoProximityLocation,omitempty"`
}

type xRRs struct {
	Items []xRR `xml:"ResourceRecord"`
}

type xRR struct {
	Value string `xml:"Value"`
}

type xAlias struct {
	HostedZoneId         string `xml:"HostedZoneId"`
	DNSName              string `xml:"DNSName"`
	EvaluateTargetHealth bool   `xml:"EvaluateTargetHealth"`
}

type xGeo struct {
	ContinentCode   string `xml:"ContinentCode,omitempty"`
	CountryCode     string `xml:"CountryCode,omitempty"`
	SubdivisionCode string `xml:"SubdivisionCode,omitempty"`
}

type xCidr struct {
	CollectionId string `xml:"CollectionId"`
	LocationName string `xml:"LocationName"`
}

type xGeoProx struct {
	AWSRegion      string   `xml:"AWSRegion,omitempty"`
	LocalZoneGroup string   `xml:"LocalZoneGroup,omitempty"`
	Coordinates    *xCoords `xml:"Coordinates,omitempty"`
	Bias           *int32   `xml:"Bias,omitempty"`
}

type xCoords struct {
	Latitude  string `xml:"Latitude"`
	Longitude string `xml:"Longitude"`
}

func (r *xRRSet) values() []string {
	if r.ResourceRecords == nil {
		return nil
	}
	out := make([]string, len(r.ResourceRecords.Items))
	for i, v := range r.ResourceRecords.Items {
		out[i] = v.Value
	}
	return out
}

func (r *xRRSet) hasRecords() bool {
	return r.ResourceRecords != nil && len(r.ResourceRecords.Items) > 0
}

// normalized returns a copy in stored form: names normalized, alias zone ID
// bare, empty ResourceRecords dropped.
func (r *xRRSet) normalized() *xRRSet {
	c := *r
	c.Name = NormalizeName(r.Name)
	if r.ResourceRecords != nil {
		if len(r.ResourceRecords.Items) == 0 {
			c.ResourceRecords = nil
		} else {
			c.ResourceRecords = &xRRs{Items: append([]xRR(nil), r.ResourceRecords.Items...)}
		}
	}
	if r.AliasTarget != nil {
		a := *r.AliasTarget
		a.DNSName = NormalizeName(a.DNSName)
		a.HostedZoneId = bareID(a.HostedZoneId)
		c.AliasTarget = &a
	}
	return &c
}

// canonical is a string that is equal for two record sets iff a DELETE of one
// matches the other: every field, values compared as a multiset.
func (r *xRRSet) canonical() string {
	c := *r
	if r.ResourceRecords != nil {
		items := append([]xRR(nil), r.ResourceRecords.Items...)
		sort.Slice(items, func(i, j int) bool { return items[i].Value < items[j].Value })
		c.ResourceRecords = &xRRs{Items: items}
	}
	b, _ := xml.Marshal(&c)
	return string(b)
}

func fromSDK(s types.ResourceRecordSet) *xRRSet {
	r := &xRRSet{
		Name:                    aws.ToString(s.Name),
		Type:                    string(s.Type),
		SetIdentifier:           aws.ToString(s.SetIdentifier),
		Weight:                  cloneP(s.Weight),
		Region:                  string(s.Region),
		Failover:                string(s.Failover),
		MultiValueAnswer:        cloneP(s.MultiValueAnswer),
		TTL:                     cloneP(s.TTL),
		HealthCheckId:           aws.ToString(s.HealthCheckId),
		TrafficPolicyInstanceId: aws.ToString(s.TrafficPolicyInstanceId),
	}
	if g := s.GeoLocation; g != nil {
		r.GeoLocation = &xGeo{aws.ToString(g.ContinentCode), aws.ToString(g.CountryCode), aws.ToString(g.SubdivisionCode)}
	}
	if len(s.ResourceRecords) > 0 {
		r.ResourceRecords = &xRRs{}
		for _, v := range s.ResourceRecords {
			r.ResourceRecords.Items = append(r.ResourceRecords.Items, xRR{aws.ToString(v.Value)})
		}
	}
	if a := s.AliasTarget; a != nil {
		r.AliasTarget = &xAlias{aws.ToString(a.HostedZoneId), aws.ToString(a.DNSName), a.EvaluateTargetHealth}
	}
	if c := s.CidrRoutingConfig; c != nil {
		r.CidrRoutingConfig = &xCidr{aws.ToString(c.CollectionId), aws.ToString(c.LocationName)}
	}
	if g := s.GeoProximityLocation; g != nil {
		r.GeoProximityLocation = &xGeoProx{AWSRegion: aws.ToString(g.AWSRegion), LocalZoneGroup: aws.ToString(g.LocalZoneGroup), Bias: cloneP(g.Bias)}
		if g.Coordinates != nil {
			r.GeoProximityLocation.Coordinates = &xCoords{aws.ToString(g.Coordinates.Latitude), aws.ToString(g.Coordinates.Longitude)}
		}
	}
	return r
}

func (r *xRRSet) toSDK() types.ResourceRecordSet {
	s := types.ResourceRecordSet{
		Name:                    aws.String(r.Name),
		Type:                    types.RRType(r.Type),
		SetIdentifier:           optString(r.SetIdentifier),
		Weight:                  cloneP(r.Weight),
		Region:                  types.ResourceRecordSetRegion(r.Region),
		Failover:                types.ResourceRecordSetFailover(r.Failover),
		MultiValueAnswer:        cloneP(r.MultiValueAnswer),
		TTL:                     cloneP(r.TTL),
		HealthCheckId:           optString(r.HealthCheckId),
		TrafficPolicyInstanceId: optString(r.TrafficPolicyInstanceId),
	}
	if g := r.GeoLocation; g != nil {
		s.GeoLocation = &types.GeoLocation{ContinentCode: optString(g.ContinentCode), CountryCode: optString(g.CountryCode), SubdivisionCode: optString(g.SubdivisionCode)}
	}
	for _, v := range r.values() {
		s.ResourceRecords = append(s.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
	}
	if a := r.AliasTarget; a != nil {
		s.AliasTarget = &types.AliasTarget{HostedZoneId: aws.String(a.HostedZoneId), DNSName: aws.String(a.DNSName), EvaluateTargetHealth: a.EvaluateTargetHealth}
	}
	if c := r.CidrRoutingConfig; c != nil {
		s.CidrRoutingConfig = &types.CidrRoutingConfig{CollectionId: aws.String(c.CollectionId), LocationName: aws.String(c.LocationName)}
	}
	if g := r.GeoProximityLocation; g != nil {
		s.GeoProximityLocation = &types.GeoProximityLocation{AWSRegion: optString(g.AWSRegion), LocalZoneGroup: optString(g.LocalZoneGroup), Bias: cloneP(g.Bias)}
		if g.Coordinates != nil {
			s.GeoProximityLocation.Coordinates = &types.Coordinates{Latitude: aws.String(g.Coordinates.Latitude), Longitude: aws.String(g.Coordinates.Longitude)}
		}
	}
	return s
}

func cloneP[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// ---- zones ----

type xHostedZone struct {
	Id                     string       `xml:"Id"`
	Name                   string       `xml:"Name"`
	CallerReference        string       `xml:"CallerReference"`
	Config                 *xZoneConfig `xml:"Config,omitempty"`
	ResourceRecordSetCount int64        `xml:"ResourceRecordSetCount"`
}

type xZoneConfig struct {
	Comment     string `xml:"Comment,omitempty"`
	PrivateZone bool   `xml:"PrivateZone"`
}

type xHostedZones struct {
	Items []xHostedZone `xml:"HostedZone"`
}

type xDelegationSet struct {
	Id              string   `xml:"Id,omitempty"`
	CallerReference string   `xml:"CallerReference,omitempty"`
	NameServers     []string `xml:"NameServers>NameServer"`
}

type xVPC struct {
	VPCRegion string `xml:"VPCRegion,omitempty"`
	VPCId     string `xml:"VPCId,omitempty"`
}

type xVPCs struct {
	Items []xVPC `xml:"VPC"`
}

type xChangeInfo struct {
	Id          string `xml:"Id"`
	Status      string `xml:"Status"`
	SubmittedAt string `xml:"SubmittedAt"`
	Comment     string `xml:"Comment,omitempty"`
}

type listHostedZonesResponse struct {
	XMLName     xml.Name     `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ListHostedZonesResponse"`
	HostedZones xHostedZones `xml:"HostedZones"`
	Marker      string       `xml:"Marker"`
	IsTruncated bool         `xml:"IsTruncated"`
	NextMarker  string       `xml:"NextMarker,omitempty"`
	MaxItems    int          `xml:"MaxItems"`
}

type listHostedZonesByNameResponse struct {
	XMLName          xml.Name     `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ListHostedZonesByNameResponse"`
	HostedZones      xHostedZones `xml:"HostedZones"`
	DNSName          string       `xml:"DNSName,omitempty"`
	HostedZoneId     string       `xml:"HostedZoneId,omitempty"`
	IsTruncated      bool         `xml:"IsTruncated"`
	NextDNSName      string       `xml:"NextDNSName,omitempty"`
	NextHostedZoneId string       `xml:"NextHostedZoneId,omitempty"`
	MaxItems         int          `xml:"MaxItems"`
}

type getHostedZoneResponse struct {
	XMLName       xml.Name        `xml:"https://route53.amazonaws.com/doc/2013-04-01/ GetHostedZoneResponse"`
	HostedZone    xHostedZone     `xml:"HostedZone"`
	DelegationSet *xDelegationSet `xml:"DelegationSet,omitempty"`
	VPCs          *xVPCs          `xml:"VPCs,omitempty"`
}

type createHostedZoneRequest struct {
	XMLName          xml.Name
	Name             string       `xml:"Name"`
	VPC              *xVPC        `xml:"VPC"`
	CallerReference  string       `xml:"CallerReference"`
	HostedZoneConfig *xZoneConfig `xml:"HostedZoneConfig"`
	DelegationSetId  string       `xml:"DelegationSetId"`
}

type createHostedZoneResponse struct {
	XMLName       xml.Name        `xml:"https://route53.amazonaws.com/doc/2013-04-01/ CreateHostedZoneResponse"`
	HostedZone    xHostedZone     `xml:"HostedZone"`
	ChangeInfo    xChangeInfo     `xml:"ChangeInfo"`
	DelegationSet *xDelegationSet `xml:"DelegationSet,omitempty"`
	VPC           *xVPC           `xml:"VPC,omitempty"`
}

type deleteHostedZoneResponse struct {
	XMLName    xml.Name    `xml:"https://route53.amazonaws.com/doc/2013-04-01/ DeleteHostedZoneResponse"`
	ChangeInfo xChangeInfo `xml:"ChangeInfo"`
}

type xHostedZoneSummary struct {
	HostedZoneId string  `xml:"HostedZoneId"`
	Name         string  `xml:"Name"`
	Owner        xOwners `xml:"Owner"`
}

type xOwners struct {
	OwningAccount string `xml:"OwningAccount,omitempty"`
	OwningService string `xml:"OwningService,omitempty"`
}

type listHostedZonesByVPCResponse struct {
	XMLName             xml.Name `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ListHostedZonesByVPCResponse"`
	HostedZoneSummaries struct {
		Items []xHostedZoneSummary `xml:"HostedZoneSummary"`
	} `xml:"HostedZoneSummaries"`
	MaxItems  int    `xml:"MaxItems"`
	NextToken string `xml:"NextToken,omitempty"`
}

type getHostedZoneCountResponse struct {
	XMLName         xml.Name `xml:"https://route53.amazonaws.com/doc/2013-04-01/ GetHostedZoneCountResponse"`
	HostedZoneCount int64    `xml:"HostedZoneCount"`
}

// ---- record set operations ----

type listResourceRecordSetsResponse struct {
	XMLName            xml.Name `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ListResourceRecordSetsResponse"`
	ResourceRecordSets struct {
		Items []*xRRSet `xml:"ResourceRecordSet"`
	} `xml:"ResourceRecordSets"`
	IsTruncated          bool   `xml:"IsTruncated"`
	NextRecordName       string `xml:"NextRecordName,omitempty"`
	NextRecordType       string `xml:"NextRecordType,omitempty"`
	NextRecordIdentifier string `xml:"NextRecordIdentifier,omitempty"`
	MaxItems             int    `xml:"MaxItems"`
}

type xChange struct {
	Action            string  `xml:"Action"`
	ResourceRecordSet *xRRSet `xml:"ResourceRecordSet"`
}

type changeResourceRecordSetsRequest struct {
	XMLName     xml.Name
	ChangeBatch *struct {
		Comment *string   `xml:"Comment"`
		Changes []xChange `xml:"Changes>Change"`
	} `xml:"ChangeBatch"`
}

type changeResourceRecordSetsResponse struct {
	XMLName    xml.Name    `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ChangeResourceRecordSetsResponse"`
	ChangeInfo xChangeInfo `xml:"ChangeInfo"`
}

type getChangeResponse struct {
	XMLName    xml.Name    `xml:"https://route53.amazonaws.com/doc/2013-04-01/ GetChangeResponse"`
	ChangeInfo xChangeInfo `xml:"ChangeInfo"`
}

// ---- tags ----

type xTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type xResourceTagSet struct {
	ResourceType string `xml:"ResourceType"`
	ResourceId   string `xml:"ResourceId"`
	Tags         struct {
		Items []xTag `xml:"Tag"`
	} `xml:"Tags"`
}

type listTagsForResourceResponse struct {
	XMLName        xml.Name        `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ListTagsForResourceResponse"`
	ResourceTagSet xResourceTagSet `xml:"ResourceTagSet"`
}

type listTagsForResourcesRequest struct {
	XMLName     xml.Name
	ResourceIds []string `xml:"ResourceIds>ResourceId"`
}

type listTagsForResourcesResponse struct {
	XMLName         xml.Name `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ListTagsForResourcesResponse"`
	ResourceTagSets struct {
		Items []xResourceTagSet `xml:"ResourceTagSet"`
	} `xml:"ResourceTagSets"`
}

func tagSet(resType, id string, tags map[string]string) xResourceTagSet {
	ts := xResourceTagSet{ResourceType: resType, ResourceId: id}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ts.Tags.Items = append(ts.Tags.Items, xTag{k, tags[k]})
	}
	return ts
}

// ---- health checks ----

type xHealthCheckConfig struct {
	IPAddress                string   `xml:"IPAddress,omitempty"`
	Port                     *int32   `xml:"Port,omitempty"`
	Type                     string   `xml:"Type"`
	ResourcePath             string   `xml:"ResourcePath,omitempty"`
	FullyQualifiedDomainName string   `xml:"FullyQualifiedDomainName,omitempty"`
	SearchString             string   `xml:"SearchString,omitempty"`
	RequestInterval          *int32   `xml:"RequestInterval,omitempty"`
	FailureThreshold         *int32   `xml:"FailureThreshold,omitempty"`
	MeasureLatency           *bool    `xml:"MeasureLatency,omitempty"`
	Inverted                 *bool    `xml:"Inverted,omitempty"`
	Disabled                 *bool    `xml:"Disabled,omitempty"`
	HealthThreshold          *int32   `xml:"HealthThreshold,omitempty"`
	ChildHealthChecks        []string `xml:"ChildHealthChecks>ChildHealthCheck"`
	EnableSNI                *bool    `xml:"EnableSNI,omitempty"`
	Regions                  []string `xml:"Regions>Region"`
}

func hcConfigFromSDK(c types.HealthCheckConfig) xHealthCheckConfig {
	x := xHealthCheckConfig{
		IPAddress:                aws.ToString(c.IPAddress),
		Port:                     cloneP(c.Port),
		Type:                     string(c.Type),
		ResourcePath:             aws.ToString(c.ResourcePath),
		FullyQualifiedDomainName: aws.ToString(c.FullyQualifiedDomainName),
		SearchString:             aws.ToString(c.SearchString),
		RequestInterval:          cloneP(c.RequestInterval),
		FailureThreshold:         cloneP(c.FailureThreshold),
		MeasureLatency:           cloneP(c.MeasureLatency),
		Inverted:                 cloneP(c.Inverted),
		Disabled:                 cloneP(c.Disabled),
		HealthThreshold:          cloneP(c.HealthThreshold),
		ChildHealthChecks:        append([]string(nil), c.ChildHealthChecks...),
		EnableSNI:                cloneP(c.EnableSNI),
	}
	if x.Type == "" {
		x.Type = string(types.HealthCheckTypeHttp)
	}
	for _, r := range c.Regions {
		x.Regions = append(x.Regions, string(r))
	}
	return x
}

type xHealthCheck struct {
	Id                 string             `xml:"Id"`
	CallerReference    string             `xml:"CallerReference"`
	HealthCheckConfig  xHealthCheckConfig `xml:"HealthCheckConfig"`
	HealthCheckVersion int64              `xml:"HealthCheckVersion"`
}

type listHealthChecksResponse struct {
	XMLName      xml.Name `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ListHealthChecksResponse"`
	HealthChecks struct {
		Items []xHealthCheck `xml:"HealthCheck"`
	} `xml:"HealthChecks"`
	Marker      string `xml:"Marker"`
	IsTruncated bool   `xml:"IsTruncated"`
	NextMarker  string `xml:"NextMarker,omitempty"`
	MaxItems    int    `xml:"MaxItems"`
}

type getHealthCheckResponse struct {
	XMLName     xml.Name     `xml:"https://route53.amazonaws.com/doc/2013-04-01/ GetHealthCheckResponse"`
	HealthCheck xHealthCheck `xml:"HealthCheck"`
}

type xObservation struct {
	Region       string `xml:"Region"`
	IPAddress    string `xml:"IPAddress"`
	StatusReport struct {
		Status      string `xml:"Status"`
		CheckedTime string `xml:"CheckedTime"`
	} `xml:"StatusReport"`
}

type getHealthCheckStatusResponse struct {
	XMLName                 xml.Name `xml:"https://route53.amazonaws.com/doc/2013-04-01/ GetHealthCheckStatusResponse"`
	HealthCheckObservations struct {
		Items []xObservation `xml:"HealthCheckObservation"`
	} `xml:"HealthCheckObservations"`
}

// ---- errors ----

type xErrorResponse struct {
	XMLName xml.Name `xml:"https://route53.amazonaws.com/doc/2013-04-01/ ErrorResponse"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestId string `xml:"RequestId"`
}
