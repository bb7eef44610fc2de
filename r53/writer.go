package r53

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/smithy-go"
	"github.com/miekg/dns"

	"hybridns/zonestore/dynupdate"
)

// The write path: every change hybridns makes to Route 53 — DNS UPDATE, the
// HTTP API, dyndns2, import — goes through Syncer.Write. Per hosted zone,
// writes (and the publishing half of a sync) are serialized by a one-slot
// semaphore, so a plan is always computed against the data it will replace;
// the plan becomes one atomic ChangeBatch computed from the mirror's exact
// current record sets (a DELETE repeats the stored set, TTL and all); the
// caller is answered only after Route 53 accepted it; the zone is then
// patched in the store at once (read-your-writes) with a new serial, and the
// change is polled to INSYNC in the background.

// Route 53's per-request limits (ROUTE53.md §5.8): ResourceRecord elements
// and value characters, each UPSERT counted twice.
const (
	MaxBatchRecords = 1000
	MaxBatchChars   = 32000
)

// Errors a writer's caller tells apart.
var (
	// ErrNotMirrored: the zone is not one this syncer mirrors.
	ErrNotMirrored = errors.New("zone not mirrored")
	// ErrNotReady: the zone has no data yet (no sync, no snapshot).
	ErrNotReady = errors.New("zone has no data yet")
)

// RefusedError is a plan Route 53 cannot take as one atomic batch, or one
// that would touch a set plain records cannot describe.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return e.Reason }

// RejectedError is Route 53's InvalidChangeBatch: the batch was not applied.
type RejectedError struct {
	Messages []string
	Rcode    int // the DNS rcode that fits
}

func (e *RejectedError) Error() string {
	return "route 53 rejected the change batch: " + strings.Join(e.Messages, "; ")
}

// Plan computes the changes of one write from the zone's current data. It
// returns a DNS rcode: anything but NOERROR stops the write (a failed
// prerequisite); no changes is a successful no-op.
type Plan func(src dynupdate.Source) (rcode int, changes []dynupdate.Change, err error)

// WriteResult is what a write did.
type WriteResult struct {
	Rcode    int
	ChangeID string // Route 53's change ID; empty when nothing was sent
	Changes  int    // Change elements sent
	Serial   uint32 // the zone's serial after the write
}

// Update applies an RFC 2136 update to the hosted zone zoneID: the
// prerequisites are evaluated and the update section applied against the
// mirror's current data under the zone's write slot; permit (nil: allow
// all) is asked for every RRset the update would change, so a policy sees
// exactly the effect (a delete of a whole name included).
//
// An update with prerequisites is a test-and-set, and Route 53 is shared
// (the console, Terraform, other instances): its batch is a compare-and-swap
// there too. Each changed set that exists goes as DELETE of the exact set
// the prerequisites were evaluated against plus CREATE of the new one (a new
// set as CREATE), and each existing set a prerequisite named is asserted
// with DELETE+CREATE of itself. If Route 53 holds anything else, it rejects
// the batch and the client gets NXRRSET/YXRRSET. Without prerequisites a
// changed set is one UPSERT.
func (s *Syncer) Update(ctx context.Context, zoneID string, prereqs, updates []dns.RR, permit func(name string, t uint16) bool) (WriteResult, error) {
	return s.write(ctx, zoneID, len(prereqs) > 0, func(src dynupdate.Source) (int, []dynupdate.Change, error) {
		if rc := dynupdate.Prereqs(src, prereqs); rc != dns.RcodeSuccess {
			return rc, nil, nil
		}
		s.mu.Lock()
		origin := ""
		if z := s.zones[bareZoneID(zoneID)]; z != nil {
			origin = z.name
		}
		s.mu.Unlock()
		changes := dynupdate.Apply(src, origin, updates)
		for _, c := range changes {
			if permit != nil && !permit(c.Name, c.Type) {
				return dns.RcodeRefused, nil, nil
			}
		}
		if len(changes) == 0 {
			return dns.RcodeSuccess, nil, nil
		}
		for _, k := range dynupdate.Asserted(prereqs) {
			if slices.ContainsFunc(changes, func(c dynupdate.Change) bool { return c.Key == k }) {
				continue
			}
			if rrs, ok := src.RRset(k.Name, k.Type); ok && rrs != nil {
				changes = append(changes, dynupdate.Change{Key: k, Old: rrs, New: rrs})
			}
		}
		return dns.RcodeSuccess, changes, nil
	})
}

// AfterWriteFunc is told of every write Route 53 accepted, with the plan's
// changes (reverse records follow forward ones through it).
type AfterWriteFunc func(ctx context.Context, zoneID, zoneName string, changes []dynupdate.Change)

// SetAfterWrite installs the hook; call it before the syncer is used.
func (s *Syncer) SetAfterWrite(f AfterWriteFunc) { s.afterWrite = f }

// Mirrors reports whether this syncer mirrors the hosted zone id.
func (s *Syncer) Mirrors(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.zones[bareZoneID(id)] != nil
}

// Write runs plan against the zone's current data and sends its changes to
// Route 53 as one ChangeBatch; see the comment at the top of this file.
func (s *Syncer) Write(ctx context.Context, zoneID string, plan Plan) (WriteResult, error) {
	return s.write(ctx, zoneID, false, plan)
}

// write is Write; cas sends changed sets as DELETE(exact)+CREATE (see
// Update).
func (s *Syncer) write(ctx context.Context, zoneID string, cas bool, plan Plan) (WriteResult, error) {
	res := WriteResult{Rcode: dns.RcodeServerFailure}
	s.mu.Lock()
	z := s.zones[bareZoneID(zoneID)]
	s.mu.Unlock()
	if z == nil {
		return res, fmt.Errorf("write to %s: %w", zoneID, ErrNotMirrored)
	}
	var accepted []dynupdate.Change
	if s.afterWrite != nil {
		// Runs after the write slot is released (defers run last-in,
		// first-out), so the hook may write to another zone.
		defer func() {
			if accepted != nil {
				s.afterWrite(ctx, z.id, z.name, accepted)
			}
		}()
	}
	if err := z.acquire(ctx); err != nil {
		return res, fmt.Errorf("write to %s (%s): waiting for the zone's earlier write: %w", z.name, z.id, err)
	}
	defer z.release()
	s.mu.Lock()
	ready, sets := z.ready, z.rsets
	s.mu.Unlock()
	if !ready {
		return res, fmt.Errorf("write to %s (%s): %w", z.name, z.id, ErrNotReady)
	}
	idx := indexSets(sets)
	rcode, changes, err := plan(idx)
	if err != nil {
		return res, err
	}
	res.Rcode = rcode
	if rcode != dns.RcodeSuccess || len(changes) == 0 {
		return res, nil
	}
	batch, err := changeBatch(idx, changes, cas)
	if err != nil {
		res.Rcode = dns.RcodeRefused
		return res, err
	}
	res, err = s.send(ctx, z, sets, batch)
	if err == nil {
		accepted = changes
	}
	return res, err
}

// send submits one ChangeBatch computed from sets (the zone's current
// record sets) and, once Route 53 accepted it, patches the zone, moves its
// serial and tracks the change to INSYNC. The caller holds the zone's write
// slot.
func (s *Syncer) send(ctx context.Context, z *zoneState, sets []types.ResourceRecordSet, batch []types.Change) (WriteResult, error) {
	res := WriteResult{Rcode: dns.RcodeSuccess}
	s.writeStats.Submitted.Add(1)
	out, err := s.submit(ctx, z, batch)
	if err != nil {
		var rej *RejectedError
		if errors.As(err, &rej) {
			s.writeStats.Rejected.Add(1)
			res.Rcode = rej.Rcode
			// Our picture of the zone may be stale (someone else
			// changed it): look again soon.
			select {
			case s.trigger <- z.id:
			default:
			}
		} else {
			s.writeStats.Failed.Add(1)
			res.Rcode = dns.RcodeServerFailure
			// A timeout may hide a change Route 53 applied after all:
			// look, so it does not wait for the next interval.
			select {
			case s.trigger <- z.id:
			default:
			}
		}
		return res, fmt.Errorf("change %s (%s): %w", z.name, z.id, err)
	}
	res.ChangeID = bareChangeID(aws.ToString(out.ChangeInfo.Id))
	res.Changes = len(batch)
	next := applyBatch(sets, batch)
	serial, _, err := s.publish(z, next, nil)
	if err != nil {
		// Route 53 has the change; the next sync brings it in.
		s.log.Error("accepted change not applied locally", slog.String("zone", z.name), slog.Any("err", err))
	}
	res.Serial = serial
	s.track(z, res.ChangeID, aws.ToTime(out.ChangeInfo.SubmittedAt))
	s.log.Info("change accepted", slog.String("zone", z.name), slog.String("zone_id", z.id),
		slog.String("change_id", res.ChangeID), slog.Int("changes", len(batch)), slog.Uint64("serial", uint64(serial)))
	return res, nil
}

// acquire takes the zone's write slot, or fails when ctx ends first.
func (z *zoneState) acquire(ctx context.Context) error {
	select {
	case z.slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (z *zoneState) release() { <-z.slot }

// submit sends one ChangeBatch, retrying throttling and
// PriorRequestNotComplete (after the SDK's own attempts) until ctx ends.
func (s *Syncer) submit(ctx context.Context, z *zoneState, batch []types.Change) (*route53.ChangeResourceRecordSetsOutput, error) {
	in := &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(z.id),
		ChangeBatch:  &types.ChangeBatch{Changes: batch, Comment: aws.String("hybridns")},
	}
	backoff := 200 * time.Millisecond
	for {
		out, err := s.api.ChangeResourceRecordSets(ctx, in)
		if err == nil {
			return out, nil
		}
		var icb *types.InvalidChangeBatch
		if errors.As(err, &icb) {
			msgs := slices.Clone(icb.Messages)
			if m := aws.ToString(icb.Message); m != "" {
				msgs = append(msgs, m)
			}
			return nil, &RejectedError{Messages: msgs, Rcode: rejectRcode(msgs)}
		}
		if !retryable(err) || ctx.Err() != nil {
			return nil, err
		}
		s.log.Warn("change batch not taken yet, retrying", slog.String("zone", z.name), slog.Any("err", err))
		if !sleep(ctx, backoff) {
			return nil, fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func retryable(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "Throttling", "ThrottlingException", "PriorRequestNotComplete", "ServiceUnavailable", "InternalFailure":
			return true
		}
	}
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() >= 500
}

// rejectRcode maps InvalidChangeBatch messages to the DNS rcode that fits:
// data that is not what we thought it was (someone else changed the zone)
// is a prerequisite failure, anything else a refusal.
func rejectRcode(msgs []string) int {
	for _, m := range msgs {
		switch {
		case strings.Contains(m, "but it was not found"), strings.Contains(m, "do not match the current values"):
			return dns.RcodeNXRrset
		case strings.Contains(m, "but it already exists"), strings.Contains(m, "conflicts with other records"):
			return dns.RcodeYXRrset
		}
	}
	return dns.RcodeRefused
}

// setIndex is a zone's record sets by (name, type), the Source a plan
// reads. Names are canonical.
type setIndex struct {
	sets  map[dynupdate.Key][]types.ResourceRecordSet
	types map[string][]uint16
}

func indexSets(sets []types.ResourceRecordSet) *setIndex {
	idx := &setIndex{sets: map[dynupdate.Key][]types.ResourceRecordSet{}, types: map[string][]uint16{}}
	for _, rs := range sets {
		name, err := UnescapeName(aws.ToString(rs.Name))
		t, ok := rrTypes[rs.Type]
		if err != nil || !ok {
			continue
		}
		k := dynupdate.Key{Name: name, Type: t}
		if len(idx.sets[k]) == 0 {
			idx.types[name] = append(idx.types[name], t)
		}
		idx.sets[k] = append(idx.sets[k], rs)
	}
	return idx
}

// RRset implements dynupdate.Source: a simple set as records; an alias or
// routing-policy group exists but has no plain records.
func (x *setIndex) RRset(name string, t uint16) ([]dns.RR, bool) {
	sets := x.sets[dynupdate.Key{Name: name, Type: t}]
	if len(sets) == 0 {
		return nil, false
	}
	if len(sets) > 1 || !plain(sets[0]) {
		return nil, true
	}
	rs, err := ConvertRecordSet(sets[0])
	if err != nil {
		return nil, true
	}
	return rs.RRs, true
}

// Types implements dynupdate.Source.
func (x *setIndex) Types(name string) []uint16 { return x.types[name] }

// plain reports whether a record set is simple routing with records: the
// only kind an RRset-level change may replace or delete.
func plain(rs types.ResourceRecordSet) bool {
	return rs.AliasTarget == nil && rs.SetIdentifier == nil && rs.TrafficPolicyInstanceId == nil && len(rs.ResourceRecords) > 0
}

// changeBatch turns plan changes into Route 53 changes: a set that becomes
// empty is deleted exactly as stored, any other is upserted whole. Alias
// and routing-policy sets are refused, as are batches over the limits.
func changeBatch(idx *setIndex, changes []dynupdate.Change, cas bool) ([]types.Change, error) {
	var out []types.Change
	records, chars := 0, 0
	for _, c := range changes {
		cur := idx.sets[c.Key]
		label := strings.TrimSuffix(c.Name, ".") + ". " + dns.TypeToString[c.Type]
		if len(cur) > 1 || len(cur) == 1 && !plain(cur[0]) {
			kind := "a routing policy"
			if cur[0].AliasTarget != nil {
				kind = "an alias"
			}
			return nil, &RefusedError{Reason: fmt.Sprintf("record set %s is %s: plain-record updates do not touch it", label, kind)}
		}
		if _, ok := r53Types[c.Type]; !ok {
			return nil, &RefusedError{Reason: fmt.Sprintf("record set %s: Route 53 does not hold this type", label)}
		}
		if len(c.New) == 0 {
			if len(cur) == 0 {
				continue
			}
			out = append(out, types.Change{Action: types.ChangeActionDelete, ResourceRecordSet: &cur[0]})
			records += len(cur[0].ResourceRecords)
			chars += valueChars(cur[0])
			continue
		}
		rs, err := recordSet(c.Name, c.Type, c.New)
		if err != nil {
			return nil, &RefusedError{Reason: fmt.Sprintf("record set %s: %v", label, err)}
		}
		switch {
		case !cas:
			out = append(out, types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: &rs})
			records += 2 * len(rs.ResourceRecords)
			chars += 2 * valueChars(rs)
			continue
		case len(cur) == 1:
			out = append(out, types.Change{Action: types.ChangeActionDelete, ResourceRecordSet: &cur[0]})
			records += len(cur[0].ResourceRecords)
			chars += valueChars(cur[0])
		}
		out = append(out, types.Change{Action: types.ChangeActionCreate, ResourceRecordSet: &rs})
		records += len(rs.ResourceRecords)
		chars += valueChars(rs)
	}
	if records > MaxBatchRecords || chars > MaxBatchChars {
		return nil, &RefusedError{Reason: fmt.Sprintf("update needs %d records and %d characters in one change batch; Route 53 takes at most %d and %d (UPSERT counted twice)",
			records, chars, MaxBatchRecords, MaxBatchChars)}
	}
	return out, nil
}

func valueChars(rs types.ResourceRecordSet) int {
	n := 0
	for _, r := range rs.ResourceRecords {
		n += len(aws.ToString(r.Value))
	}
	return n
}

// recordSet is the Route 53 form of one plain RRset.
func recordSet(name string, t uint16, rrs []dns.RR) (types.ResourceRecordSet, error) {
	rs := types.ResourceRecordSet{
		Name: aws.String(EscapeName(name)),
		Type: r53Types[t],
		TTL:  aws.Int64(int64(rrs[0].Header().Ttl)),
	}
	for _, rr := range rrs {
		v, err := Value(rr)
		if err != nil {
			return rs, err
		}
		// Send only what reads back as the same record: a value the
		// converter cannot parse is one Route 53 would reject or keep
		// differently.
		back, err := parseValue(name, rr.Header().Ttl, t, v)
		if err != nil || !dns.IsDuplicate(back, rr) {
			return rs, fmt.Errorf("value %q cannot be written to Route 53 exactly", v)
		}
		rs.ResourceRecords = append(rs.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
	}
	return rs, nil
}

// Value is a record's RDATA as Route 53 takes it: zone-file text, with
// TXT/SPF strings quoted and non-printable bytes as octal escapes
// (ConvertRecordSet reads them back).
func Value(rr dns.RR) (string, error) {
	switch v := rr.(type) {
	case *dns.TXT:
		return txtValue(v.Txt), nil
	case *dns.SPF:
		return txtValue(v.Txt), nil
	}
	full, hdr := rr.String(), rr.Header().String()
	if !strings.HasPrefix(full, hdr) {
		return "", fmt.Errorf("cannot print %s", dns.TypeToString[rr.Header().Rrtype])
	}
	return strings.TrimSpace(full[len(hdr):]), nil
}

// txtValue quotes each string; miekg holds them in presentation form
// (decimal \DDD escapes), Route 53 wants octal \ooo.
func txtValue(txt []string) string {
	var b strings.Builder
	for i, t := range txt {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		for j := 0; j < len(t); j++ {
			c := t[j]
			if c == '\\' && j+1 < len(t) {
				if j+3 < len(t) && isDigit(t[j+1]) && isDigit(t[j+2]) && isDigit(t[j+3]) {
					n, _ := strconv.Atoi(t[j+1 : j+4])
					fmt.Fprintf(&b, `\%03o`, n)
					j += 3
					continue
				}
				c = t[j+1]
				j++
			}
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c < ' ' || c > '~':
				fmt.Fprintf(&b, `\%03o`, c)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
	}
	return b.String()
}

// applyBatch returns sets with batch applied, as Route 53 applies it: the
// input slice is not changed (readers may hold it).
func applyBatch(sets []types.ResourceRecordSet, batch []types.Change) []types.ResourceRecordSet {
	key := func(rs *types.ResourceRecordSet) string {
		n, _ := UnescapeName(aws.ToString(rs.Name))
		return n + "/" + string(rs.Type) + "/" + aws.ToString(rs.SetIdentifier)
	}
	drop := map[string]bool{}
	put := map[string]types.ResourceRecordSet{}
	var order []string
	for _, c := range batch {
		k := key(c.ResourceRecordSet)
		switch c.Action {
		case types.ChangeActionDelete:
			drop[k] = true
			delete(put, k)
		default:
			if _, ok := put[k]; !ok {
				order = append(order, k)
			}
			put[k] = *c.ResourceRecordSet
			drop[k] = true
		}
	}
	out := make([]types.ResourceRecordSet, 0, len(sets)+len(put))
	for _, rs := range sets {
		k := key(&rs)
		if nrs, ok := put[k]; ok {
			out = append(out, nrs)
			delete(put, k)
			continue
		}
		if !drop[k] {
			out = append(out, rs)
		}
	}
	for _, k := range order {
		if rs, ok := put[k]; ok {
			out = append(out, rs)
		}
	}
	return out
}

func bareChangeID(id string) string { return strings.TrimPrefix(id, "/change/") }

// withSerial returns sets with the SOA's serial set to serial: Route 53
// keeps 1 for ever, we move it with every version so secondaries and
// people can see a change.
func withSerial(sets []types.ResourceRecordSet, serial uint32) []types.ResourceRecordSet {
	for i, rs := range sets {
		if rs.Type != types.RRTypeSoa || len(rs.ResourceRecords) != 1 {
			continue
		}
		f := strings.Fields(aws.ToString(rs.ResourceRecords[0].Value))
		if len(f) != 7 {
			return sets
		}
		f[2] = strconv.FormatUint(uint64(serial), 10)
		out := slices.Clone(sets)
		out[i].ResourceRecords = []types.ResourceRecord{{Value: aws.String(strings.Join(f, " "))}}
		return out
	}
	return sets
}

// NextSerial is the serial of a zone's next version: the Unix time, or one
// more than cur when that is not newer under RFC 1982 arithmetic (as Knot's
// serial-policy unixtime and BIND's serial-update-method unixtime do).
func NextSerial(cur uint32, now time.Time) uint32 {
	cand := uint32(now.Unix())
	if cur == 0 || int32(cand-cur) > 0 {
		return cand
	}
	if cur+1 == 0 {
		return 1
	}
	return cur + 1
}

// publish builds sets into the zone with a new serial and swaps it in
// wherever the zone is served. A sync passes the fingerprint it computed
// (hash); a write (hash nil: our own accepted change, which a sync fetched
// before it must not undo) has it computed in the background, off the
// reply's path — a sync that compares before it is done republishes the
// same data once, nothing worse. The caller holds the zone's write slot.
func (s *Syncer) publish(z *zoneState, sets []types.ResourceRecordSet, hash *[32]byte) (uint32, []Skipped, error) {
	write := hash == nil
	s.mu.Lock()
	serial := NextSerial(z.serial, time.Now())
	s.mu.Unlock()
	built, skipped, err := BuildZone(z.name, z.id, withSerial(sets, serial))
	if err != nil {
		return 0, skipped, err
	}
	for _, sk := range skipped {
		s.skippedRS.Add(1)
		s.log.Warn("record set not mirrored", slog.String("zone", z.name), slog.String("zone_id", z.id),
			slog.String("name", sk.Name), slog.String("type", sk.Type), slog.String("set_id", sk.SetID), slog.Any("err", sk.Err))
	}
	s.mu.Lock()
	for _, v := range z.views {
		s.store.PutZone(v, built)
	}
	z.rsets, z.serial = sets, serial
	z.records, z.sets, z.ready, z.built = built.Records(), len(sets), true, built
	z.pubs++
	if write {
		z.gen++
		pubs := z.pubs
		go func() {
			h := hashSets(sets)
			s.mu.Lock()
			if z.pubs == pubs { // nothing published since: still this version's
				z.hash = h
			}
			s.mu.Unlock()
		}()
	} else {
		z.hash = *hash
		z.lastSync, z.failures, z.lastErr = time.Now(), 0, nil
	}
	z.checks = healthChecks(sets)
	meta := snapshotMeta{ID: z.id, Name: z.name, Private: z.private, VPCs: z.vpcs, Synced: z.lastSync, Serial: serial}
	s.mu.Unlock()
	if err := s.writeSnapshot(meta, sets); err != nil {
		s.log.Error("snapshot not written", slog.String("zone", z.name), slog.Any("err", err))
	}
	return serial, skipped, nil
}

// r53Types maps DNS types to Route 53's.
var r53Types = func() map[uint16]types.RRType {
	m := make(map[uint16]types.RRType, len(rrTypes))
	for k, v := range rrTypes {
		m[v] = k
	}
	return m
}()
