package r53fake

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

const maxBody = 16 << 20

func xmlMarshal(v any) ([]byte, error) {
	b, err := xml.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), b...), nil
}

// decodeBody decodes an XML request body whose root must be called root
// (any namespace).
func decodeBody(r *http.Request, v any, root string) *apiError {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return errInput("r53fake: reading body: " + err.Error())
	}
	dec := xml.NewDecoder(strings.NewReader(string(body)))
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return &apiError{400, "MalformedInput", "empty request body, expected " + root}
			}
			return errInput("Invalid XML ; " + err.Error())
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if se.Name.Local != root {
			return &apiError{400, "MalformedInput", fmt.Sprintf("%s is not valid, expected %s", se.Name.Local, root)}
		}
		if err := dec.DecodeElement(v, &se); err != nil {
			return errInput("Invalid XML ; " + err.Error())
		}
		return nil
	}
}

// label is how InvalidChangeBatch messages name a record set.
func label(r *xRRSet) string {
	if r.SetIdentifier != "" {
		return fmt.Sprintf("[name='%s', type='%s', set-identifier='%s']", r.Name, r.Type, r.SetIdentifier)
	}
	return fmt.Sprintf("[name='%s', type='%s']", r.Name, r.Type)
}

func changeDesc(action string, r *xRRSet) string {
	sid := "null"
	if r.SetIdentifier != "" {
		sid = r.SetIdentifier
	}
	return fmt.Sprintf("Change with [Action=%s, Name=%s, Type=%s, SetIdentifier=%s]", action, r.Name, r.Type, sid)
}

// checkStructure does the schema-level checks that Route 53 answers with
// InvalidInput (or NoSuchHealthCheck) before looking at the zone's contents.
// The record set is already normalized.
func (f *Fake) checkStructureLocked(action string, r *xRRSet) *apiError {
	switch action {
	case "CREATE", "DELETE", "UPSERT":
	default:
		return enumError(action, "CREATE, DELETE, UPSERT")
	}
	if !validTypes[r.Type] {
		return enumError(r.Type, typeEnum)
	}
	hasAlias := r.AliasTarget != nil
	hasTP := r.TrafficPolicyInstanceId != ""
	anyBasic := r.TTL != nil || r.hasRecords()
	fullBasic := r.TTL != nil && r.hasRecords()
	count := 0
	for _, b := range []bool{hasAlias, anyBasic, hasTP} {
		if b {
			count++
		}
	}
	const expected = "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId], but found "
	if count > 1 {
		return errInput(expected + "more than one in " + changeDesc(action, r))
	}
	if !hasAlias && !hasTP && !fullBasic {
		return errInput(expected + "none in " + changeDesc(action, r))
	}
	routed := r.Weight != nil || r.Region != "" || r.GeoLocation != nil || r.Failover != "" ||
		r.MultiValueAnswer != nil || r.CidrRoutingConfig != nil || r.GeoProximityLocation != nil
	if routed && r.SetIdentifier == "" {
		return errInput("Invalid request: Missing field 'SetIdentifier' in " + changeDesc(action, r))
	}
	if hasAlias && (r.AliasTarget.DNSName == "." || r.AliasTarget.HostedZoneId == "") {
		return errInput("Invalid request: AliasTarget needs DNSName and HostedZoneId in " + changeDesc(action, r))
	}
	if r.HealthCheckId != "" && f.hcs[r.HealthCheckId] == nil {
		return noSuchHealthCheck(r.HealthCheckId)
	}
	return nil
}

func (f *Fake) changeResourceRecordSets(r *http.Request, id string) (int, any, *apiError) {
	var req changeResourceRecordSetsRequest
	if e := decodeBody(r, &req, "ChangeResourceRecordSetsRequest"); e != nil {
		return 0, nil, e
	}
	if req.ChangeBatch == nil {
		return 0, nil, errInput("1 validation error detected: Value null at 'changeBatch' failed to satisfy constraint: Member must not be null")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	z := f.zones[id]
	if z == nil {
		return 0, nil, noSuchZone(id)
	}
	if z.priorNotComplete > 0 {
		z.priorNotComplete--
		return 0, nil, &apiError{400, "PriorRequestNotComplete", "The request was rejected because Route 53 was still processing a prior request."}
	}
	changes := req.ChangeBatch.Changes
	if len(changes) == 0 {
		return 0, nil, errInput("1 validation error detected: Value '[]' at 'changeBatch.changes' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}

	// Pass 1: structure (InvalidInput stops at the first problem) and size.
	norm := make([]*xRRSet, len(changes))
	records, chars := 0, 0
	for i, c := range changes {
		if c.ResourceRecordSet == nil || c.ResourceRecordSet.Name == "" || c.ResourceRecordSet.Type == "" {
			return 0, nil, errInput("Invalid request: ResourceRecordSet with Name and Type is required in every Change")
		}
		rr := c.ResourceRecordSet.normalized()
		if e := f.checkStructureLocked(c.Action, rr); e != nil {
			return 0, nil, e
		}
		norm[i] = rr
		weight := 1
		if c.Action == "UPSERT" {
			weight = 2
		}
		n := len(rr.values())
		if rr.AliasTarget != nil {
			n = 1
		}
		records += weight * n
		for _, v := range rr.values() {
			chars += weight * len(v)
		}
	}
	if records > 1000 {
		return 0, nil, &apiError{400, "InvalidChangeBatch", "[Number of records limit of 1000 exceeded.]"}
	}
	if chars > 32000 {
		return 0, nil, &apiError{400, "InvalidChangeBatch", "[Number of characters in record values limit of 32000 exceeded.]"}
	}

	// Pass 2: apply in order to a working copy, collecting every error.
	work := make(map[rrKey]*xRRSet, len(z.sets)+len(changes))
	for k, v := range z.sets {
		work[k] = v
	}
	deleted := map[rrKey]bool{}
	var errs []string
	for i, c := range changes {
		rr := norm[i]
		k := keyOf(rr)
		if !inZone(rr.Name, z.name) {
			errs = append(errs, fmt.Sprintf("RRSet with DNS name %s is not permitted in zone %s", rr.Name, z.name))
			continue
		}
		switch c.Action {
		case "CREATE":
			if work[k] != nil {
				errs = append(errs, fmt.Sprintf("Tried to create resource record set %s but it already exists", label(rr)))
				continue
			}
			if msg := conflict(work, rr, z.name); msg != "" {
				errs = append(errs, msg)
				continue
			}
			work[k] = rr
		case "DELETE":
			if deleted[k] {
				errs = append(errs, fmt.Sprintf("The request contains an invalid set of changes for a resource record set %s", label(rr)))
				continue
			}
			cur := work[k]
			if cur == nil {
				errs = append(errs, fmt.Sprintf("Tried to delete resource record set %s but it was not found", label(rr)))
				continue
			}
			if cur.canonical() != rr.canonical() {
				errs = append(errs, fmt.Sprintf("Tried to delete resource record set %s but the values provided do not match the current values", label(rr)))
				continue
			}
			delete(work, k)
			deleted[k] = true
		case "UPSERT":
			if msg := conflict(work, rr, z.name); msg != "" {
				errs = append(errs, msg)
				continue
			}
			work[k] = rr
		}
	}
	if work[rrKey{z.name, "SOA", ""}] == nil {
		errs = append(errs, "A HostedZone must contain exactly one SOA record.")
	}
	if work[rrKey{z.name, "NS", ""}] == nil {
		errs = append(errs, "A HostedZone must contain at least one NS record for the zone itself.")
	}
	if len(errs) > 0 {
		return 0, nil, &apiError{400, "InvalidChangeBatch", "[" + strings.Join(errs, ", ") + "]"}
	}
	z.sets = work
	z.sorted = nil
	for i, c := range changes {
		z.log = append(z.log, LoggedChange{Action: c.Action, Name: norm[i].Name, Type: norm[i].Type, SetID: norm[i].SetIdentifier})
	}
	comment := ""
	if req.ChangeBatch.Comment != nil {
		comment = *req.ChangeBatch.Comment
	}
	return 200, &changeResourceRecordSetsResponse{ChangeInfo: f.newChangeLocked(comment)}, nil
}

// conflict checks a CREATE/UPSERT of rr against the working copy: CNAME at
// the apex, CNAME exclusivity, and simple vs. routed sets in one group.
func conflict(work map[rrKey]*xRRSet, rr *xRRSet, zoneName string) string {
	if rr.Type == "CNAME" && rr.Name == zoneName {
		return fmt.Sprintf("RRSet of type CNAME with DNS name %s is not permitted at apex in zone %s", rr.Name, zoneName)
	}
	self := keyOf(rr)
	for k := range work {
		if k.name != rr.Name || k == self {
			continue
		}
		if (rr.Type == "CNAME") != (k.typ == "CNAME") {
			return fmt.Sprintf("RRSet of type %s with DNS name %s is not permitted as it conflicts with other records with the same DNS name in zone %s", rr.Type, rr.Name, zoneName)
		}
		if k.typ == rr.Type && (k.setID == "") != (rr.SetIdentifier == "") {
			if rr.SetIdentifier != "" {
				return fmt.Sprintf("RRSet with DNS name %s, type %s, SetIdentifier %s cannot be created as a non-routing RRSet exists with the same name and type.", rr.Name, rr.Type, rr.SetIdentifier)
			}
			return fmt.Sprintf("RRSet with DNS name %s, type %s cannot be created as other RRsets exist with the same name and type.", rr.Name, rr.Type)
		}
	}
	return ""
}

// LoggedChange is one change of an accepted ChangeBatch, as applied.
type LoggedChange struct {
	Action, Name, Type, SetID string
}

// ChangeLog returns every change the zone accepted, in order.
func (f *Fake) ChangeLog(zoneID string) []LoggedChange {
	f.mu.Lock()
	defer f.mu.Unlock()
	if z := f.zones[zoneID]; z != nil {
		return append([]LoggedChange(nil), z.log...)
	}
	return nil
}
