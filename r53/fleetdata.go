package r53

import (
	"maps"

	"github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// ZoneData returns what the syncer last published for hosted zone id: its
// name, whether it is private, the record sets exactly as Route 53 returned
// them (never modified; do not modify them) and the published serial. The
// fleet feed hands these to followers, which rebuild the zone with
// BuildZone — the same converter — and answer identically.
func (s *Syncer) ZoneData(id string) (name string, private bool, sets []types.ResourceRecordSet, serial uint32, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zones[bareZoneID(id)]
	if z == nil || !z.ready {
		return "", false, nil, 0, false
	}
	return z.name, z.private, z.rsets, z.serial, true
}

// HealthMap returns the last known status of every health check polled.
func (s *Syncer) HealthMap() map[string]bool { return maps.Clone(*s.health.Load()) }

// WithSerial returns sets with the SOA's serial replaced (a copy; sets is
// not modified), as the syncer publishes them.
func WithSerial(sets []types.ResourceRecordSet, serial uint32) []types.ResourceRecordSet {
	return withSerial(sets, serial)
}
