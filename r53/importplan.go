package r53

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"

	"hybridns/zonestore"
)

// Import: a zone file applied to a hosted zone as the minimal diff. The
// plan compares record sets by (name, type, set identifier): a set that is
// the same (TTL, values in any order, alias target, routing attributes,
// health check) is not touched, a changed one is UPSERTed, a new one
// CREATEd and one the file no longer has DELETEd with its exact current
// values. The changes are grouped by owner name (deletes first, so a CNAME
// can replace other data and a simple set a routed one), the groups ordered
// so that a CNAME or alias never points into the zone at a name whose data
// is still to come or already gone, and packed into batches within Route
// 53's limits without splitting a group when it fits in one batch. Every
// batch goes through the writer (Syncer.Apply).

// ImportPlan is what an import will do.
type ImportPlan struct {
	Origin, ZoneID string
	Batches        [][]types.Change
	Unchanged      int      // sets already as the file has them
	Notes          []string // what is left alone, and why
}

// Changes counts the changes of every batch.
func (p *ImportPlan) Changes() int {
	n := 0
	for _, b := range p.Batches {
		n += len(b)
	}
	return n
}

// PlanImport computes the changes that make the hosted zone (its record
// sets current, as Route 53 lists them) hold the record sets desired (from
// ParseZoneFile; notes are carried into the plan). The SOA and the apex NS
// set are never changed; sets hybridns cannot read and traffic-policy sets
// are left alone.
func PlanImport(origin, zoneID string, current, desired []types.ResourceRecordSet, notes []string) (*ImportPlan, error) {
	return planImport(origin, zoneID, current, desired, notes, MaxBatchRecords, MaxBatchChars)
}

// importChange is one change with what ordering needs to know.
type importChange struct {
	c       types.Change
	name    string   // canonical owner
	adds    []string // in-zone names a CNAME or alias written here points at
	removes []string // in-zone names a CNAME or alias replaced or deleted here pointed at
}

func planImport(origin, zoneID string, current, desired []types.ResourceRecordSet, notes []string, maxRecords, maxChars int) (*ImportPlan, error) {
	origin = zonestore.Canonical(origin)
	zoneID = bareZoneID(zoneID)
	plan := &ImportPlan{Origin: origin, ZoneID: zoneID, Notes: slices.Clone(notes)}
	plan.Notes = append(plan.Notes, fmt.Sprintf("left alone: the SOA and the NS set of %s (Route 53 manages them)", origin))

	type cur struct {
		rs   types.ResourceRecordSet
		conv *RecordSet // nil: cannot be read
		err  error
	}
	have := map[string]*cur{}
	var haveOrder []string
	for _, rs := range current {
		name, err := UnescapeName(aws.ToString(rs.Name))
		if err != nil {
			plan.Notes = append(plan.Notes, fmt.Sprintf("left alone: %s %s: %v", aws.ToString(rs.Name), rs.Type, err))
			continue
		}
		if rs.Type == types.RRTypeSoa || rs.Type == types.RRTypeNs && name == origin && rs.SetIdentifier == nil {
			continue
		}
		k := setKey(name, rs.Type, aws.ToString(rs.SetIdentifier))
		c := &cur{rs: rs}
		if conv, err := ConvertRecordSet(rs); err == nil {
			c.conv = &conv
		} else {
			c.err = err
		}
		have[k] = c
		haveOrder = append(haveOrder, k)
	}

	var changes []importChange
	want := map[string]bool{}
	for _, rs := range desired {
		conv, err := ConvertRecordSet(rs)
		if err != nil {
			return nil, err
		}
		if !zonestore.InZone(conv.Name, origin) {
			return nil, fmt.Errorf("%s %s: outside the zone %s", conv.Name, rs.Type, origin)
		}
		if rs.Type == types.RRTypeSoa || rs.Type == types.RRTypeNs && conv.Name == origin && rs.SetIdentifier == nil {
			continue
		}
		k := setKey(conv.Name, rs.Type, conv.Policy.SetIdentifier)
		if want[k] {
			return nil, fmt.Errorf("%s: the file has this set twice", label(conv.Name, rs.Type, conv.Policy.SetIdentifier))
		}
		want[k] = true
		ic := importChange{name: conv.Name, adds: pointsAt(&conv, origin, zoneID)}
		switch c := have[k]; {
		case c == nil:
			ic.c = types.Change{Action: types.ChangeActionCreate, ResourceRecordSet: &rs}
		case c.rs.TrafficPolicyInstanceId != nil:
			return nil, fmt.Errorf("%s belongs to traffic policy instance %s: import does not change it", label(conv.Name, rs.Type, conv.Policy.SetIdentifier), aws.ToString(c.rs.TrafficPolicyInstanceId))
		case c.conv != nil && sameSet(*c.conv, conv):
			plan.Unchanged++
			continue
		default:
			ic.c = types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: &rs}
			if c.conv != nil {
				ic.removes = pointsAt(c.conv, origin, zoneID)
			}
		}
		changes = append(changes, ic)
	}
	for _, k := range haveOrder {
		c := have[k]
		if want[k] {
			continue
		}
		name, _ := UnescapeName(aws.ToString(c.rs.Name))
		switch {
		case c.rs.TrafficPolicyInstanceId != nil:
			plan.Notes = append(plan.Notes, fmt.Sprintf("left alone: %s (traffic policy instance %s)", label(name, c.rs.Type, aws.ToString(c.rs.SetIdentifier)), aws.ToString(c.rs.TrafficPolicyInstanceId)))
			continue
		case c.conv == nil:
			plan.Notes = append(plan.Notes, fmt.Sprintf("left alone: %s (not in a zone file: %v)", label(name, c.rs.Type, aws.ToString(c.rs.SetIdentifier)), c.err))
			continue
		}
		rs := c.rs
		changes = append(changes, importChange{c: types.Change{Action: types.ChangeActionDelete, ResourceRecordSet: &rs}, name: name, removes: pointsAt(c.conv, origin, zoneID)})
	}
	groups := orderGroups(changes)
	batches, err := packBatches(groups, maxRecords, maxChars)
	if err != nil {
		return nil, err
	}
	plan.Batches = batches
	return plan, nil
}

func setKey(name string, t types.RRType, setID string) string {
	return name + "\x00" + string(t) + "\x00" + setID
}

func label(name string, t types.RRType, setID string) string {
	if setID != "" {
		return fmt.Sprintf("%s %s (set-id %q)", name, t, setID)
	}
	return name + " " + string(t)
}

// pointsAt is the in-zone name a CNAME or an alias into this hosted zone
// points at.
func pointsAt(rs *RecordSet, origin, zoneID string) []string {
	var target string
	switch {
	case rs.Alias != nil && bareZoneID(rs.Alias.HostedZoneID) == zoneID:
		target = rs.Alias.DNSName
	case rs.Type == dns.TypeCNAME && len(rs.RRs) == 1:
		target = dns.CanonicalName(rs.RRs[0].(*dns.CNAME).Target)
	default:
		return nil
	}
	if !zonestore.InZone(target, origin) {
		return nil
	}
	return []string{target}
}

// sameSet reports whether two converted record sets are the same to Route
// 53: values compare as a set, in their canonical text.
func sameSet(a, b RecordSet) bool {
	if a.Name != b.Name || a.Type != b.Type || !reflect.DeepEqual(a.Policy, b.Policy) || (a.Alias == nil) != (b.Alias == nil) {
		return false
	}
	if a.Alias != nil {
		return *a.Alias == *b.Alias
	}
	if a.TTL != b.TTL || len(a.RRs) != len(b.RRs) {
		return false
	}
	va, vb := rrTexts(a.RRs), rrTexts(b.RRs)
	return slices.Equal(va, vb)
}

func rrTexts(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = rr.String()
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// changeGroup is the changes at one owner name: deletes, then writes.
type changeGroup struct {
	name    string
	changes []importChange
	deletes bool // some set here is deleted or replaced
	writes  bool // some set here is created or replaced
}

// orderGroups groups changes by owner and orders the groups: a group that
// writes a CNAME or alias to T comes after T's group when T gains data; a
// group that removes a CNAME or alias to T comes before T's group when T
// loses data. Otherwise names keep their sorted order; a cycle (CNAMEs
// pointing at each other, both changing) is broken at the first name.
func orderGroups(changes []importChange) []*changeGroup {
	byName := map[string]*changeGroup{}
	var names []string
	for _, ic := range changes {
		g := byName[ic.name]
		if g == nil {
			g = &changeGroup{name: ic.name}
			byName[ic.name] = g
			names = append(names, ic.name)
		}
		g.changes = append(g.changes, ic)
		if ic.c.Action == types.ChangeActionDelete || ic.c.Action == types.ChangeActionUpsert {
			g.deletes = true
		}
		if ic.c.Action != types.ChangeActionDelete {
			g.writes = true
		}
	}
	slices.SortFunc(names, compareNames)
	for _, g := range byName {
		slices.SortStableFunc(g.changes, func(a, b importChange) int {
			return rank(a.c.Action) - rank(b.c.Action)
		})
	}
	// after[x] lists the groups that must follow x.
	after := map[string][]string{}
	indeg := map[string]int{}
	edge := func(from, to string) {
		if from == to || slices.Contains(after[from], to) {
			return
		}
		after[from] = append(after[from], to)
		indeg[to]++
	}
	for _, n := range names {
		for _, ic := range byName[n].changes {
			for _, t := range ic.adds {
				if tg := byName[t]; tg != nil && tg.writes {
					edge(t, n)
				}
			}
			for _, t := range ic.removes {
				if tg := byName[t]; tg != nil && tg.deletes {
					edge(n, t)
				}
			}
		}
	}
	out := make([]*changeGroup, 0, len(names))
	done := map[string]bool{}
	var queue []string
	for _, n := range names {
		if indeg[n] == 0 {
			queue = append(queue, n)
		}
	}
	next := 0 // scan position for breaking cycles
	for len(out) < len(names) {
		if len(queue) == 0 {
			for done[names[next]] {
				next++
			}
			queue = append(queue, names[next])
			indeg[names[next]] = 0
		}
		n := queue[0]
		queue = queue[1:]
		if done[n] {
			continue
		}
		done[n] = true
		out = append(out, byName[n])
		for _, m := range after[n] {
			if indeg[m]--; indeg[m] == 0 && !done[m] {
				queue = append(queue, m)
			}
		}
	}
	return out
}

func rank(a types.ChangeAction) int {
	if a == types.ChangeActionDelete {
		return 0
	}
	return 1
}

// compareNames orders names as DNSSEC does (by reversed labels), so a
// zone's names come out grouped by subtree.
func compareNames(a, b string) int {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if c := strings.Compare(la[i], lb[j]); c != 0 {
			return c
		}
	}
	return len(la) - len(lb)
}

// changeCost is what a change counts against the batch limits: its
// records (an alias is one) and value characters, an UPSERT twice.
func changeCost(c types.Change) (records, chars int) {
	rs := c.ResourceRecordSet
	records, chars = len(rs.ResourceRecords), valueChars(*rs)
	if rs.AliasTarget != nil {
		records = 1
	}
	if c.Action == types.ChangeActionUpsert {
		records, chars = 2*records, 2*chars
	}
	return records, chars
}

// packBatches fills batches in order, a group whole when it fits in one
// batch, else change by change (deletes first, so the name is briefly
// without the data rather than in conflict).
func packBatches(groups []*changeGroup, maxRecords, maxChars int) ([][]types.Change, error) {
	var batches [][]types.Change
	var batch []types.Change
	records, chars := 0, 0
	flush := func() {
		if len(batch) > 0 {
			batches = append(batches, batch)
		}
		batch, records, chars = nil, 0, 0
	}
	add := func(cs []types.Change, r, c int) {
		if records+r > maxRecords || chars+c > maxChars {
			flush()
		}
		batch = append(batch, cs...)
		records += r
		chars += c
	}
	for _, g := range groups {
		gr, gc := 0, 0
		cs := make([]types.Change, len(g.changes))
		for i, ic := range g.changes {
			r, c := changeCost(ic.c)
			if r > maxRecords || c > maxChars {
				return nil, &RefusedError{Reason: fmt.Sprintf("%s %s needs %d records and %d characters; one change batch takes at most %d and %d (UPSERT counted twice)",
					ic.c.Action, label(g.name, ic.c.ResourceRecordSet.Type, aws.ToString(ic.c.ResourceRecordSet.SetIdentifier)), r, c, maxRecords, maxChars)}
			}
			gr, gc = gr+r, gc+c
			cs[i] = ic.c
		}
		if gr <= maxRecords && gc <= maxChars {
			add(cs, gr, gc)
			continue
		}
		for _, c := range cs {
			r, ch := changeCost(c)
			add([]types.Change{c}, r, ch)
		}
	}
	flush()
	return batches, nil
}

// Write prints the plan: a header, one line per change (ACTION name type
// [set-id] attributes TTL values, or the alias target) by batch, and the
// notes.
func (p *ImportPlan) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "zone %s (%s): %d changes in %d batches, %d record sets unchanged\n", p.Origin, p.ZoneID, p.Changes(), len(p.Batches), p.Unchanged)
	for i, batch := range p.Batches {
		records, chars := 0, 0
		for _, c := range batch {
			r, ch := changeCost(c)
			records, chars = records+r, chars+ch
		}
		fmt.Fprintf(&b, "batch %d/%d: %d changes, %d records, %d characters\n", i+1, len(p.Batches), len(batch), records, chars)
		for _, c := range batch {
			b.WriteString("  ")
			b.WriteString(FormatChange(c))
			b.WriteByte('\n')
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatChange is one change on one line.
func FormatChange(c types.Change) string {
	rs := c.ResourceRecordSet
	name, err := UnescapeName(aws.ToString(rs.Name))
	if err != nil {
		name = aws.ToString(rs.Name)
	}
	parts := []string{string(c.Action), name, string(rs.Type)}
	if conv, err := ConvertRecordSet(*rs); err == nil {
		parts = append(parts, policyAttrs(conv.Policy)...)
		if a := conv.Alias; a != nil {
			parts = append(parts, fmt.Sprintf("ALIAS %s (zone %s, evaluate_target_health=%v)", a.DNSName, a.HostedZoneID, a.EvaluateTargetHealth))
			return strings.Join(parts, " ")
		}
	} else if rs.SetIdentifier != nil {
		parts = append(parts, fmt.Sprintf("identifier=%q", aws.ToString(rs.SetIdentifier)))
	}
	if rs.TTL != nil {
		parts = append(parts, fmt.Sprintf("%d", *rs.TTL))
	}
	for _, r := range rs.ResourceRecords {
		parts = append(parts, aws.ToString(r.Value))
	}
	return strings.Join(parts, " ")
}

// ZoneData is one hosted zone's record sets exactly as Route 53 listed them.
type ZoneData struct {
	ID, Name string
	Private  bool
	Sets     []types.ResourceRecordSet
}

// OpenZone returns a syncer mirroring the one hosted zone (ID or name)
// into a store of its own, synced once: the writer an import applies its
// batches through, and the zone's data the plan is computed from.
func OpenZone(ctx context.Context, api API, zone string, log *slog.Logger) (*Syncer, ZoneData, error) {
	s, err := NewSyncer(api, zonestore.NewStore(), Config{Zones: []string{zone}, Logger: log, Detached: true})
	if err != nil {
		return nil, ZoneData{}, err
	}
	if err := s.List(ctx); err != nil {
		return nil, ZoneData{}, err
	}
	ids := s.zoneIDs()
	if len(ids) != 1 {
		return nil, ZoneData{}, fmt.Errorf("zone %s: %d hosted zones match", zone, len(ids))
	}
	if rep := s.SyncZone(ctx, ids[0]); rep.Err != nil {
		return nil, ZoneData{}, rep.Err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zones[ids[0]]
	return s, ZoneData{ID: z.id, Name: z.name, Private: z.private, Sets: z.rsets}, nil
}

// Apply sends record-set changes computed elsewhere (an import plan) to
// the hosted zone zoneID, batch by batch in order, through the same path as
// Write: each batch under the zone's write slot, retried while throttled,
// patched into the mirror with a new serial and tracked to INSYNC. It stops
// at the first batch Route 53 does not accept; the results are those of
// the batches accepted.
func (s *Syncer) Apply(ctx context.Context, zoneID string, batches [][]types.Change) ([]WriteResult, error) {
	var out []WriteResult
	for i, batch := range batches {
		res, err := s.applyOne(ctx, zoneID, batch)
		if err != nil {
			return out, fmt.Errorf("batch %d of %d: %w", i+1, len(batches), err)
		}
		out = append(out, res)
	}
	return out, nil
}

func (s *Syncer) applyOne(ctx context.Context, zoneID string, batch []types.Change) (WriteResult, error) {
	z, sets, err := s.writable(ctx, zoneID)
	if err != nil {
		return WriteResult{Rcode: dns.RcodeServerFailure}, err
	}
	defer z.release()
	if len(batch) == 0 {
		return WriteResult{Rcode: dns.RcodeSuccess}, nil
	}
	return s.send(ctx, z, sets, batch)
}

// writable finds the zone and takes its write slot (the caller releases
// it), and returns the record sets a write computes from.
func (s *Syncer) writable(ctx context.Context, zoneID string) (*zoneState, []types.ResourceRecordSet, error) {
	s.mu.Lock()
	z := s.zones[bareZoneID(zoneID)]
	s.mu.Unlock()
	if z == nil {
		return nil, nil, fmt.Errorf("write to %s: %w", zoneID, ErrNotMirrored)
	}
	if err := z.acquire(ctx); err != nil {
		return nil, nil, fmt.Errorf("write to %s (%s): waiting for the zone's earlier write: %w", z.name, z.id, err)
	}
	s.mu.Lock()
	ready, sets := z.ready, z.rsets
	s.mu.Unlock()
	if !ready {
		z.release()
		return nil, nil, fmt.Errorf("write to %s (%s): %w", z.name, z.id, ErrNotReady)
	}
	return z, sets, nil
}
