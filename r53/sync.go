package r53

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"hybridns/zonestore"
)

// Config configures a Syncer.
type Config struct {
	// Zones are hosted zone IDs ("Z…", "/hostedzone/Z…") or names
	// ("corp.example"). Empty with Discover: every zone the credentials see.
	Zones    []string
	Discover bool
	// Discovery filters: name suffixes (any matches), and "public" or
	// "private" to keep only those.
	Suffixes   []string
	Visibility string
	// Tags keeps only zones carrying every one of these tags (value "*":
	// any value).
	Tags map[string]string
	// Interval between refreshes of one zone (default 5m). Refreshes are
	// spread over it so the API budget is used evenly.
	Interval time.Duration
	// Views maps a VPC ID to the views whose clients see the private zones
	// associated with it. Public zones go to every client.
	Views map[string][]string
	// SnapshotDir keeps the last good data of every zone for a cold start;
	// empty: no snapshots.
	SnapshotDir string
	// HealthInterval is how often referenced health checks are polled
	// (default 30s).
	HealthInterval time.Duration
	// RetryBase is the first backoff after a failed sync, doubling per
	// failure up to Interval (default 30s).
	RetryBase time.Duration
	// Detached: the store is the caller's own (a zone pushed into or
	// imported into, not served): every zone goes to its default view,
	// private or not.
	Detached bool
	// ChangePoll is how often accepted changes are polled until INSYNC
	// (default 10s; every poll is an API call from the shared budget).
	ChangePoll time.Duration
	Logger     *slog.Logger
}

// Syncer keeps the store's Route 53 zones in line with Route 53.
type Syncer struct {
	api   API
	store *zonestore.Store
	cfg   Config
	log   *slog.Logger

	mu      sync.Mutex
	zones   map[string]*zoneState // by bare zone ID
	listed  bool                  // the zone list is known (discovery or config)
	missing int                   // configured zones the last listing did not find
	trigger chan string           // zone IDs to refresh now

	health    atomic.Pointer[map[string]bool]
	calls     atomic.Uint64 // API calls made (pages, not retries)
	failures  atomic.Uint64
	skippedRS atomic.Uint64

	writeStats WriteStats
	pending    []PendingChange // accepted changes not yet INSYNC, under mu
	afterWrite AfterWriteFunc  // set before Run; see SetAfterWrite
	// fingerprintGate, when set (tests), holds the hashing of the zones
	// loaded from the snapshot until it is closed.
	fingerprintGate chan struct{}
}

// zoneState is what the syncer knows of one hosted zone.
type zoneState struct {
	id, name string
	private  bool
	vpcs     []string
	views    []string // where the zone is published
	hash     [32]byte // of the record sets last published
	records  int
	sets     int
	lastSync time.Time // last successful fetch
	lastErr  error
	failures int
	nextAt   time.Time
	ready    bool // data published (from a sync or a snapshot)
	checks   []string
	// hashing, for a zone loaded from the snapshot, is closed once hash
	// is computed (in the background: the load does not wait for it).
	hashing chan struct{}
	built   *zonestore.Zone // what is published, to move between views
	// rsets are the record sets last published, exactly as Route 53 holds
	// them: what the write path computes its changes from. Never modified
	// in place (a write makes a new slice).
	rsets  []types.ResourceRecordSet
	serial uint32 // the serial of the published version
	// gen counts accepted writes: a sync whose fetch began before one must
	// not publish what it fetched.
	gen uint64
	// pubs counts published versions (a write's background fingerprint is
	// kept only if no other version came after it).
	pubs uint64
	// slot serializes writes and the publishing half of a sync.
	slot chan struct{}
}

func newZoneState(id, name string, private bool) *zoneState {
	return &zoneState{id: id, name: name, private: private, slot: make(chan struct{}, 1)}
}

// ZoneReport is the outcome of syncing one zone.
type ZoneReport struct {
	ID, Name   string
	Private    bool
	RecordSets int
	Records    int
	Skipped    []Skipped
	Calls      int
	Duration   time.Duration
	Changed    bool
	Err        error
}

// NewSyncer returns a syncer publishing into store. Nothing is fetched yet.
func NewSyncer(api API, store *zonestore.Store, cfg Config) (*Syncer, error) {
	if len(cfg.Zones) == 0 && !cfg.Discover {
		return nil, errors.New("route53: no zones given and discovery off")
	}
	switch cfg.Visibility {
	case "", "public", "private":
	default:
		return nil, fmt.Errorf("route53: visibility %q: want public or private", cfg.Visibility)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Minute
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = 30 * time.Second
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 30 * time.Second
	}
	if cfg.ChangePoll <= 0 {
		cfg.ChangePoll = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Syncer{api: api, store: store, cfg: cfg, zones: map[string]*zoneState{}, trigger: make(chan string, 16),
		log: cfg.Logger.With(slog.String("component", "r53"))}
	empty := map[string]bool{}
	s.health.Store(&empty)
	return s, nil
}

// Healthy reports a health check's last known status; unknown checks are
// healthy (Route 53's own default for a record without data).
func (s *Syncer) Healthy(id string) bool {
	h, ok := (*s.health.Load())[id]
	return !ok || h
}

// Ready reports whether every zone has data, from a sync or a snapshot.
func (s *Syncer) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.listed || s.missing > 0 {
		return false // a configured zone not found is not "ready"
	}
	for _, z := range s.zones {
		if !z.ready {
			return false
		}
	}
	return true
}

// Calls returns the number of Route 53 API calls made so far.
func (s *Syncer) Calls() uint64 { return s.calls.Load() }

// Trigger asks Run to refresh one zone now (POST /sync?zone=ID).
func (s *Syncer) Trigger(id string) error {
	id = bareZoneID(id)
	s.mu.Lock()
	_, ok := s.zones[id]
	if !ok {
		for zid, z := range s.zones {
			if z.name == zonestore.Canonical(id) {
				id, ok = zid, true
			}
		}
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("route53: zone %s is not mirrored", id)
	}
	select {
	case s.trigger <- id:
		return nil
	default:
		return errors.New("route53: refresh queue full")
	}
}

// List resolves which zones to mirror: the configured IDs and names, or
// discovery. A zone that disappeared from the account is dropped.
func (s *Syncer) List(ctx context.Context) error {
	var found []*zoneState
	wantID, wantName := s.configuredZones()
	p := route53.NewListHostedZonesPaginator(s.api, &route53.ListHostedZonesInput{})
	for p.HasMorePages() {
		s.calls.Add(1)
		out, err := p.NextPage(ctx)
		if err != nil {
			s.failures.Add(1)
			return fmt.Errorf("list hosted zones: %w", err)
		}
		for _, hz := range out.HostedZones {
			id := bareZoneID(aws.ToString(hz.Id))
			name, err := UnescapeName(aws.ToString(hz.Name))
			if err != nil {
				s.log.Warn("hosted zone with an unusable name", slog.String("zone_id", id), slog.Any("err", err))
				continue
			}
			private := hz.Config != nil && hz.Config.PrivateZone
			if !s.wanted(id, name, private, wantID, wantName) {
				continue
			}
			found = append(found, newZoneState(id, name, private))
		}
	}
	if len(s.cfg.Tags) > 0 {
		var err error
		if found, err = s.filterTags(ctx, found); err != nil {
			return err
		}
	}
	for _, z := range found {
		if !z.private {
			continue
		}
		s.calls.Add(1)
		out, err := s.api.GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String(z.id)})
		if err != nil {
			s.failures.Add(1)
			return fmt.Errorf("get hosted zone %s (%s): %w", z.name, z.id, err)
		}
		for _, v := range out.VPCs {
			z.vpcs = append(z.vpcs, aws.ToString(v.VPCId))
		}
	}
	if len(wantID)+len(wantName) > 0 {
		for id := range wantID {
			if !slices.ContainsFunc(found, func(z *zoneState) bool { return z.id == id }) {
				s.log.Error("configured zone not found in Route 53", slog.String("zone_id", id))
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := map[string]bool{}
	for _, f := range found {
		keep[f.id] = true
		if cur := s.zones[f.id]; cur != nil {
			cur.vpcs, cur.private = f.vpcs, f.private
			// VPC associations change: publish where the zone now
			// belongs, withdraw it where it no longer does.
			if views := s.viewsOf(cur); !slices.Equal(views, cur.views) {
				for _, v := range cur.views {
					if !slices.Contains(views, v) {
						s.withdraw(v, cur)
					}
				}
				if cur.built != nil {
					for _, v := range views {
						s.store.PutZone(v, cur.built)
					}
				}
				s.log.Info("zone views changed", slog.String("zone", cur.name), slog.Any("from", cur.views), slog.Any("to", views))
				cur.views = views
			}
			continue
		}
		f.views = s.viewsOf(f)
		s.zones[f.id] = f
	}
	s.missing = 0
	for id := range wantID {
		if !keep[id] {
			s.missing++
		}
	}
	for name := range wantName {
		if !slices.ContainsFunc(found, func(z *zoneState) bool { return z.name == name }) {
			s.missing++
			s.log.Error("configured zone not found in Route 53", slog.String("zone", name))
		}
	}
	for id, z := range s.zones {
		if !keep[id] {
			s.dropLocked(z, "no longer listed")
		}
	}
	s.listed = true
	return nil
}

// filterTags keeps the zones whose tags match cfg.Tags, asking for the tags
// of ten zones per call (the API's maximum).
func (s *Syncer) filterTags(ctx context.Context, zones []*zoneState) ([]*zoneState, error) {
	tags := map[string]map[string]string{}
	for i := 0; i < len(zones); i += 10 {
		var ids []string
		for _, z := range zones[i:min(i+10, len(zones))] {
			ids = append(ids, z.id)
		}
		s.calls.Add(1)
		out, err := s.api.ListTagsForResources(ctx, &route53.ListTagsForResourcesInput{ResourceType: types.TagResourceTypeHostedzone, ResourceIds: ids})
		if err != nil {
			s.failures.Add(1)
			return nil, fmt.Errorf("list tags of hosted zones: %w", err)
		}
		for _, ts := range out.ResourceTagSets {
			m := map[string]string{}
			for _, tg := range ts.Tags {
				m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
			}
			tags[bareZoneID(aws.ToString(ts.ResourceId))] = m
		}
	}
	var keep []*zoneState
	for _, z := range zones {
		ok := true
		for k, v := range s.cfg.Tags {
			got, has := tags[z.id][k]
			if !has || (v != "*" && got != v) {
				ok = false
			}
		}
		if ok {
			keep = append(keep, z)
		}
	}
	return keep, nil
}

// configuredZones splits cfg.Zones into hosted zone IDs and zone names.
func (s *Syncer) configuredZones() (ids, names map[string]bool) {
	ids, names = map[string]bool{}, map[string]bool{}
	for _, z := range s.cfg.Zones {
		if strings.HasPrefix(bareZoneID(z), "Z") && !strings.Contains(z, ".") {
			ids[bareZoneID(z)] = true
		} else {
			names[zonestore.Canonical(z)] = true
		}
	}
	return ids, names
}

func (s *Syncer) wanted(id, name string, private bool, wantID, wantName map[string]bool) bool {
	if len(wantID)+len(wantName) > 0 && !wantID[id] && !wantName[name] {
		return false
	}
	if s.cfg.Visibility == "public" && private || s.cfg.Visibility == "private" && !private {
		return false
	}
	if len(s.cfg.Suffixes) > 0 {
		return slices.ContainsFunc(s.cfg.Suffixes, func(suf string) bool { return zonestore.InZone(name, zonestore.Canonical(suf)) })
	}
	return true
}

// viewsOf is where a zone is published: public zones for everyone, private
// zones in the views of their VPCs.
func (s *Syncer) viewsOf(z *zoneState) []string {
	if !z.private || s.cfg.Detached {
		return []string{zonestore.DefaultView}
	}
	var views []string
	for _, vpc := range z.vpcs {
		for _, v := range s.cfg.Views[vpc] {
			if !slices.Contains(views, v) {
				views = append(views, v)
			}
		}
	}
	if len(views) == 0 {
		s.log.Warn("private zone is associated with no configured view; not served", slog.String("zone", z.name), slog.String("zone_id", z.id), slog.Any("vpcs", z.vpcs))
	}
	return views
}

// dropLocked removes a zone from the store, only when Route 53 says it is
// gone: a failed call never drops data.
func (s *Syncer) dropLocked(z *zoneState, why string) {
	for _, v := range z.views {
		s.withdraw(v, z)
	}
	delete(s.zones, z.id)
	s.removeSnapshot(z.id)
	s.log.Info("zone dropped", slog.String("zone", z.name), slog.String("zone_id", z.id), slog.String("why", why))
}

// withdraw removes z from view — only if what the view serves under that
// name is z itself: another hosted zone of the same name (two accounts, a
// re-created zone) may have taken the place.
func (s *Syncer) withdraw(view string, z *zoneState) {
	_ = s.store.Update(func(cur *zonestore.Snapshot) (*zonestore.Snapshot, error) {
		if have := cur.Zone(view, z.name); have != nil && have.Source() == "route53:"+z.id {
			return cur.WithoutZone(view, z.name), nil
		}
		return nil, nil // nothing to change
	})
}

// SyncZone fetches one zone's record sets and publishes them if they
// changed. On any error the zone keeps its last good data.
func (s *Syncer) SyncZone(ctx context.Context, id string) (rep ZoneReport) {
	start := time.Now()
	s.mu.Lock()
	z := s.zones[id]
	var gen uint64
	if z != nil {
		rep = ZoneReport{ID: z.id, Name: z.name, Private: z.private}
		gen = z.gen
	}
	s.mu.Unlock()
	if z == nil {
		rep.Err = fmt.Errorf("zone %s is not mirrored", id)
		return rep
	}
	sets, calls, err := s.fetch(ctx, z)
	rep.Calls, rep.RecordSets = calls, len(sets)
	defer func() { rep.Duration = time.Since(start) }()
	if err != nil {
		var gone *types.NoSuchHostedZone
		s.mu.Lock()
		defer s.mu.Unlock()
		if errors.As(err, &gone) {
			s.dropLocked(z, "Route 53: no such hosted zone")
		} else {
			z.failures++
			z.lastErr = err
			s.failures.Add(1)
			s.log.Error("sync failed, serving the last good data", slog.String("zone", z.name), slog.String("zone_id", z.id), slog.Any("err", err))
		}
		rep.Err = err
		return rep
	}
	s.mu.Lock()
	hashing := z.hashing
	s.mu.Unlock()
	if hashing != nil {
		// The snapshot's fingerprint: without it, unchanged data would be
		// published again under a new serial.
		select {
		case <-hashing:
		case <-ctx.Done():
			rep.Err = fmt.Errorf("sync %s (%s): %w", z.name, z.id, ctx.Err())
			return rep
		}
	}
	if err := z.acquire(ctx); err != nil {
		rep.Err = fmt.Errorf("sync %s (%s): waiting for a write: %w", z.name, z.id, err)
		return rep
	}
	defer z.release()
	h := hashSets(sets)
	s.mu.Lock()
	unchanged := z.ready && h == z.hash
	stale := z.gen != gen
	if unchanged || stale {
		if !stale { // a stale fetch is no sync of the current data
			z.lastSync, z.failures, z.lastErr = time.Now(), 0, nil
		}
		rep.Records = z.records
	}
	s.mu.Unlock()
	if stale && !unchanged {
		// A write was accepted while we fetched: what we have may predate
		// it. Keep the written version and look again soon.
		select {
		case s.trigger <- z.id:
		default:
		}
		return rep
	}
	if unchanged {
		return rep
	}
	serial, skipped, err := s.publish(z, sets, &h)
	rep.Skipped = skipped
	if err != nil {
		s.mu.Lock()
		z.failures++
		z.lastErr = err
		s.mu.Unlock()
		s.failures.Add(1)
		s.log.Error("zone does not validate, serving the last good data", slog.String("zone", z.name), slog.String("zone_id", z.id), slog.Any("err", err))
		rep.Err = err
		return rep
	}
	s.mu.Lock()
	rep.Records, rep.Changed = z.records, true
	s.mu.Unlock()
	s.log.Info("zone synced", slog.String("zone", z.name), slog.String("zone_id", z.id), slog.Int("record_sets", len(sets)),
		slog.Int("records", rep.Records), slog.Int("calls", calls), slog.Uint64("serial", uint64(serial)), slog.Duration("took", time.Since(start)))
	return rep
}

// fetch pages through a zone's record sets with the SDK paginator: no call
// after the last page.
func (s *Syncer) fetch(ctx context.Context, z *zoneState) ([]types.ResourceRecordSet, int, error) {
	var sets []types.ResourceRecordSet
	calls := 0
	p := route53.NewListResourceRecordSetsPaginator(s.api, &route53.ListResourceRecordSetsInput{
		HostedZoneId: aws.String(z.id), MaxItems: aws.Int32(300)})
	for p.HasMorePages() {
		calls++
		s.calls.Add(1)
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, calls, fmt.Errorf("list record sets for %s (%s): %w", z.name, z.id, err)
		}
		sets = append(sets, out.ResourceRecordSets...)
	}
	return sets, calls, nil
}

func healthChecks(sets []types.ResourceRecordSet) []string {
	var ids []string
	for _, rs := range sets {
		if id := aws.ToString(rs.HealthCheckId); id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// Report is the outcome of SyncOnce.
type Report struct {
	Zones    []ZoneReport
	Calls    uint64
	Duration time.Duration
}

// SyncOnce lists the zones and syncs each of them once, in order.
func (s *Syncer) SyncOnce(ctx context.Context) (Report, error) {
	start, calls0 := time.Now(), s.calls.Load()
	var rep Report
	if err := s.List(ctx); err != nil {
		return rep, err
	}
	var errs []error
	for _, id := range s.zoneIDs() {
		zr := s.SyncZone(ctx, id)
		rep.Zones = append(rep.Zones, zr)
		if zr.Err != nil {
			errs = append(errs, zr.Err)
		}
	}
	if err := s.PollHealth(ctx); err != nil {
		errs = append(errs, err)
	}
	rep.Calls, rep.Duration = s.calls.Load()-calls0, time.Since(start)
	return rep, errors.Join(errs...)
}

func (s *Syncer) zoneIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.zones))
	for id := range s.zones {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// PollHealth refreshes the status of every health check the zones use.
func (s *Syncer) PollHealth(ctx context.Context) error {
	s.mu.Lock()
	var ids []string
	for _, z := range s.zones {
		for _, id := range z.checks {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	s.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	next := maps.Clone(*s.health.Load())
	var errs []error
	for _, id := range ids {
		s.calls.Add(1)
		out, err := s.api.GetHealthCheckStatus(ctx, &route53.GetHealthCheckStatusInput{HealthCheckId: aws.String(id)})
		if err != nil {
			errs = append(errs, fmt.Errorf("health check %s: %w", id, err))
			continue // keep its last known status
		}
		ok := 0
		for _, o := range out.HealthCheckObservations {
			if o.StatusReport != nil && strings.HasPrefix(aws.ToString(o.StatusReport.Status), "Success") {
				ok++
			}
		}
		// Route 53 calls a check healthy when more than 18% of its
		// checkers see it healthy.
		healthy := len(out.HealthCheckObservations) == 0 || float64(ok) > 0.18*float64(len(out.HealthCheckObservations))
		if prev, known := next[id]; known && prev != healthy {
			s.log.Info("health check changed", slog.String("health_check", id), slog.Bool("healthy", healthy))
		}
		next[id] = healthy
	}
	s.health.Store(&next)
	return errors.Join(errs...)
}

// Run keeps the zones fresh until ctx ends: every zone once at start, then
// each one every Interval (±10%), spread over the interval; a failed zone is
// retried with backoff; health checks are polled every HealthInterval;
// discovery re-runs every Interval. It returns when ctx is done.
func (s *Syncer) Run(ctx context.Context) error {
	go s.TrackChanges(ctx)
	for {
		if err := s.List(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Error("listing zones failed, retrying", slog.Any("err", err))
			if !sleep(ctx, s.cfg.RetryBase) {
				return nil
			}
			continue
		}
		break
	}
	ids := s.zoneIDs()
	now := time.Now()
	failed := map[string]error{}
	for _, id := range ids {
		if ctx.Err() != nil {
			return nil
		}
		if rep := s.SyncZone(ctx, id); rep.Err != nil {
			failed[id] = rep.Err
		}
	}
	_ = s.PollHealth(ctx)
	// Spread the next refreshes evenly over one interval; a zone whose
	// first sync failed is retried with backoff instead.
	s.mu.Lock()
	for i, id := range ids {
		if z := s.zones[id]; z != nil && failed[id] == nil {
			z.nextAt = now.Add(s.cfg.Interval + time.Duration(i)*s.cfg.Interval/time.Duration(len(ids)))
		}
	}
	s.mu.Unlock()
	for id, err := range failed {
		s.schedule(id, err)
	}
	nextList := now.Add(s.cfg.Interval)
	nextHealth := now.Add(s.cfg.HealthInterval)
	for {
		id, at := s.nextDue()
		wake := earliest(nextList, nextHealth)
		if id != "" {
			wake = earliest(wake, at)
		}
		t := time.NewTimer(time.Until(wake))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case id = <-s.trigger:
			t.Stop()
			rep := s.SyncZone(ctx, id)
			s.schedule(id, rep.Err)
			continue
		case <-t.C:
		}
		now := time.Now()
		if !now.Before(nextHealth) {
			if err := s.PollHealth(ctx); err != nil {
				s.log.Warn("health checks", slog.Any("err", err))
			}
			nextHealth = now.Add(s.cfg.HealthInterval)
		}
		if !now.Before(nextList) && (s.cfg.Discover || len(s.cfg.Zones) > 0) {
			if err := s.List(ctx); err != nil {
				s.log.Warn("listing zones failed; keeping the known ones", slog.Any("err", err))
			}
			s.scheduleNew()
			nextList = now.Add(s.cfg.Interval)
		}
		if id != "" && !now.Before(at) {
			rep := s.SyncZone(ctx, id)
			s.schedule(id, rep.Err)
		}
	}
}

// nextDue returns the zone due first.
func (s *Syncer) nextDue() (string, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var id string
	var at time.Time
	for zid, z := range s.zones {
		if id == "" || z.nextAt.Before(at) {
			id, at = zid, z.nextAt
		}
	}
	return id, at
}

// schedule sets a zone's next refresh: an interval ±10% after a success,
// an exponential backoff (30 s doubling, at most the interval) after a
// failure.
func (s *Syncer) schedule(id string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zones[id]
	if z == nil {
		return
	}
	if err != nil {
		back := min(s.cfg.RetryBase<<min(max(z.failures-1, 0), 10), s.cfg.Interval)
		z.nextAt = time.Now().Add(back)
		return
	}
	jitter := time.Duration((rand.Float64()*0.2 - 0.1) * float64(s.cfg.Interval))
	z.nextAt = time.Now().Add(s.cfg.Interval + jitter)
}

// scheduleNew gives zones found by a later listing a first sync now.
func (s *Syncer) scheduleNew() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, z := range s.zones {
		if z.nextAt.IsZero() {
			z.nextAt = time.Now()
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ZoneStatus is one zone's state, for /metrics and logs.
type ZoneStatus struct {
	ID, Name  string
	Private   bool
	Views     []string
	Records   int
	Ready     bool
	LastSync  time.Time
	Failures  int
	LastError string
}

// Status returns every mirrored zone's state.
func (s *Syncer) Status() []ZoneStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ZoneStatus
	for _, z := range s.zones {
		st := ZoneStatus{ID: z.id, Name: z.name, Private: z.private, Views: z.views, Records: z.records, Ready: z.ready, LastSync: z.lastSync, Failures: z.failures}
		if z.lastErr != nil {
			st.LastError = z.lastErr.Error()
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b ZoneStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}
