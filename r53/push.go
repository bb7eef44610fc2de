package r53

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"
)

// PushResult is what one Push changed.
type PushResult struct {
	Changes int // record-set changes sent
	Batches int // ChangeBatches (API calls) accepted
	Skipped []string
}

// Push makes the hosted zone zoneID an exact copy of rrs — a zone that
// lives elsewhere (an on-prem primary this instance is a secondary of) —
// apart from the SOA and the apex NS, which Route 53 keeps for itself. The
// difference to what the zone holds now becomes the fewest changes,
// batched within Route 53's limits in an order that never leaves a
// dangling CNAME, and goes through the one writer. Splitting is right only
// here: the primary already committed every version we push.
func (s *Syncer) Push(ctx context.Context, zoneID string, rrs []dns.RR) (PushResult, error) {
	var res PushResult
	s.mu.Lock()
	z := s.zones[bareZoneID(zoneID)]
	var origin, id string
	var current []types.ResourceRecordSet
	if z != nil {
		origin, id, current = z.name, z.id, z.rsets
	}
	s.mu.Unlock()
	if z == nil {
		return res, fmt.Errorf("push to %s: %w", zoneID, ErrNotMirrored)
	}
	desired, skipped := setsOf(origin, rrs)
	res.Skipped = skipped
	plan, err := PlanImport(origin, id, current, desired, nil)
	if err != nil {
		return res, fmt.Errorf("push to %s (%s): %w", origin, id, err)
	}
	for _, b := range plan.Batches {
		res.Changes += len(b)
	}
	done, err := s.Apply(ctx, id, plan.Batches)
	res.Batches = len(done)
	if err != nil {
		return res, fmt.Errorf("push to %s (%s): %w", origin, id, err)
	}
	return res, nil
}

// setsOf groups records into plain Route 53 record sets; the SOA and types
// Route 53 does not hold are left out (and named).
func setsOf(origin string, rrs []dns.RR) ([]types.ResourceRecordSet, []string) {
	type key struct {
		name string
		t    uint16
	}
	groups := map[key][]dns.RR{}
	var order []key
	var skipped []string
	for _, rr := range rrs {
		h := rr.Header()
		k := key{strings.ToLower(h.Name), h.Rrtype}
		if h.Rrtype == dns.TypeSOA {
			continue
		}
		if _, ok := r53Types[h.Rrtype]; !ok {
			skipped = append(skipped, fmt.Sprintf("%s %s: Route 53 does not hold this type", h.Name, dns.TypeToString[h.Rrtype]))
			continue
		}
		if _, seen := groups[k]; !seen {
			order = append(order, k)
		}
		groups[k] = append(groups[k], rr)
	}
	out := make([]types.ResourceRecordSet, 0, len(order))
	for _, k := range order {
		set := groups[k]
		// One TTL per set in Route 53: the lowest, as a cache would.
		ttl := slices.MinFunc(set, func(a, b dns.RR) int { return int(a.Header().Ttl) - int(b.Header().Ttl) }).Header().Ttl
		cp := make([]dns.RR, len(set))
		for i, rr := range set {
			cp[i] = dns.Copy(rr)
			cp[i].Header().Ttl = ttl
		}
		rs, err := recordSet(k.name, k.t, cp)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s %s: %v", k.name, dns.TypeToString[k.t], err))
			continue
		}
		out = append(out, rs)
	}
	return out, skipped
}
