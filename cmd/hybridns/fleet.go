package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"

	"hybridns/r53"
	"hybridns/r53/fleet"
	"hybridns/server"
	"hybridns/server/secondary"
	"hybridns/zonestore"
)

// FollowConfig makes the instance a follower of other hybridns instances:
// every zone of every view comes from their fleet feed (see r53/fleet).
type FollowConfig struct {
	Primaries []string `yaml:"primaries"`
	Key       string   `yaml:"key"`     // a tsig_keys name, one a transfer rule with view "*" of the primaries accepts
	Catalog   string   `yaml:"catalog"` // the primaries' catalog.zone (default catalog.hybridns.)
}

const defaultFleetCatalog = "catalog.hybridns."

func (c *Config) validateFollow(keys []server.TSIGKey) []error {
	f := c.Follow
	if f == nil {
		return nil
	}
	where := c.where(0) + ": follow"
	var errs []error
	if len(f.Primaries) == 0 {
		errs = append(errs, fmt.Errorf("%s: no primaries", where))
	}
	for _, p := range f.Primaries {
		hp := p
		if _, _, err := net.SplitHostPort(p); err != nil {
			hp = net.JoinHostPort(p, "53")
		}
		if _, err := netip.ParseAddrPort(hp); err != nil {
			errs = append(errs, fmt.Errorf("%s: primary %q: want IP or IP:port", where, p))
		}
	}
	if f.Key == "" {
		errs = append(errs, fmt.Errorf("%s: key is required (the fleet feed moves only under TSIG)", where))
	} else if findKey(keys, f.Key) == nil {
		errs = append(errs, fmt.Errorf("%s: key %q is not in tsig_keys or tsig_key_files", where, f.Key))
	}
	if f.Catalog != "" {
		if _, ok := dns.IsDomainName(f.Catalog); !ok {
			errs = append(errs, fmt.Errorf("%s: catalog %q: not a domain name", where, f.Catalog))
		}
	}
	return errs
}

// fleetEnabled: the instance feeds followers when a transfer rule covers
// every view (view "*"): that rule's keys are the followers'.
func fleetEnabled(cfg *Config) bool {
	for _, t := range cfg.Transfer {
		if t.View == server.AnyView {
			return true
		}
	}
	return false
}

func fleetCatalogName(zone string) string {
	if zone == "" {
		return defaultFleetCatalog
	}
	return zonestore.Canonical(zone)
}

// ---- primary side: the fleet feed ----

// fleetFeed keeps, in the hidden view zonestore.FleetView, one fleet zone
// per (view, zone) served and a catalog of them, rebuilt whenever a zone's
// version (or, for Route 53 zones, the health of a check it uses) changes.
type fleetFeed struct {
	store   *zonestore.Store
	syncers []fleetSource
	catalog string
	log     *slog.Logger

	built     map[string]*fleetEntry // fleet zone name → what it was built from
	catSerial uint32
	catDirty  bool // the members changed since the catalog was built
	// last is the snapshot update worked from last: the next update looks
	// at the zones changed since (nil: at every zone), so a publish costs
	// what it changed, not every zone served.
	last *zonestore.Snapshot
	// checked are the zones whose record sets use health checks: looked
	// at on every update, for a health change is a new fleet version.
	// retry are the zones not built last time, tried again.
	checked, retry map[fleetKey]bool
}

type fleetKey struct{ view, origin string }

// fleetSource is where Route 53 zones' raw record sets come from (an
// *r53.Syncer).
type fleetSource interface {
	ZoneData(id string) (name string, private bool, sets []types.ResourceRecordSet, serial uint32, ok bool)
	HealthMap() map[string]bool
}

type fleetEntry struct {
	src    *zonestore.Zone
	health string   // the status of its checks it was built with
	checks []string // the health checks its record sets use
	zone   *zonestore.Zone
}

func newFleetFeed(store *zonestore.Store, syncers []*r53.Syncer, catalog string, log *slog.Logger) *fleetFeed {
	var src []fleetSource
	for _, s := range syncers {
		src = append(src, s)
	}
	return &fleetFeed{store: store, syncers: src, catalog: fleetCatalogName(catalog), log: log.With(slog.String("component", "fleet")),
		built: map[string]*fleetEntry{}, checked: map[fleetKey]bool{}, retry: map[fleetKey]bool{}}
}

// run rebuilds on every store change, and every second for health. With
// ready set, nothing is published before it holds: a follower must not
// take a catalog missing the zones still loading (its readiness is the
// catalog's members) — for a minute at most.
func (f *fleetFeed) run(ctx context.Context, ready func() bool) {
	// A zone that never loads must not keep every follower empty: after
	// a minute the feed starts with what there is.
	for start := time.Now(); ready != nil && !ready() && time.Since(start) < time.Minute; {
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		ch := f.store.Changed()
		f.update()
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-tick.C:
		}
	}
}

func (f *fleetFeed) route53Data(z *zonestore.Zone) (sy fleetSource, id string, ok bool) {
	id, isR53 := strings.CutPrefix(z.Source(), "route53:")
	if !isR53 {
		return nil, "", false
	}
	for _, s := range f.syncers {
		if _, _, _, _, ok := s.ZoneData(id); ok {
			return s, id, true
		}
	}
	return nil, "", false
}

// update brings the fleet view in line with the store; it publishes once.
func (f *fleetFeed) update() {
	snap := f.store.Load()
	todo := map[fleetKey]bool{}
	if f.last == nil {
		for _, view := range snap.Views() {
			if view == zonestore.FleetView {
				continue
			}
			for _, z := range snap.Zones(view) {
				todo[fleetKey{view, z.Origin()}] = true
			}
		}
	} else {
		for _, c := range zonestore.Changed(f.last, snap) {
			if c.View != zonestore.FleetView {
				todo[fleetKey{c.View, c.Origin}] = true
			}
		}
	}
	f.last = snap
	for k := range f.checked {
		todo[k] = true
	}
	for k := range f.retry {
		todo[k] = true
	}
	var puts []*zonestore.Zone
	var gone []string
	var hm map[string]bool
	health := func() map[string]bool { // once per update, when needed
		if hm == nil {
			hm = f.healthMap()
		}
		return hm
	}
	for k := range todo {
		view := k.view
		name := fleet.Name(view, k.origin)
		z := snap.Zone(view, k.origin)
		if z == nil || z.Source() == zonestore.CatalogSource {
			if f.built[name] != nil {
				gone = append(gone, name)
				delete(f.built, name)
				f.catDirty = true
			}
			delete(f.checked, k)
			delete(f.retry, k)
			continue
		}
		prev := f.built[name]
		if !z.Available() {
			continue // keep what followers have until data is back
		}
		if prev != nil && prev.src == z && (len(prev.checks) == 0 || healthKey(prev.checks, health()) == prev.health) {
			continue // same version, same health: nothing to do (no record set is looked at)
		}
		meta := fleet.Meta{View: view, Origin: z.Origin(), Serial: z.Serial()}
		var hkey string
		var checks []string
		sy, id, isR53 := f.route53Data(z)
		var sets []types.ResourceRecordSet
		if isR53 {
			var serial uint32
			_, meta.Private, sets, serial, _ = sy.ZoneData(id)
			if serial != z.Serial() {
				f.retry[k] = true
				continue // the syncer is past this version; its publish wakes us again
			}
			meta.ZoneID, meta.Serial = id, serial
			checks = checkIDs(sets)
			hkey = healthKey(checks, health())
		}
		// The fleet zone's serial follows the clock (the zone's own
		// is meta.serial): a restarted primary, or the next primary
		// of a follower's list, never offers a serial below what the
		// follower holds, and a health change alone is a new version.
		serial := uint32(time.Now().Unix())
		if prev != nil && !zonestore.SerialLess(prev.zone.Serial(), serial) {
			serial = prev.zone.Serial() + 1
		}
		var fz *zonestore.Zone
		var err error
		if isR53 {
			fz, err = fleet.Route53(meta, sets, health(), serial)
		} else {
			fz, err = fleet.Records(meta, z, serial)
		}
		if err != nil {
			f.retry[k] = true
			f.log.Error("fleet zone not built; followers keep the last one", slog.String("zone", z.Origin()), slog.String("view", view), slog.Any("err", err))
			continue
		}
		delete(f.retry, k)
		if len(checks) > 0 {
			f.checked[k] = true
		} else {
			delete(f.checked, k)
		}
		if prev == nil {
			f.catDirty = true
		}
		f.built[name] = &fleetEntry{src: z, health: hkey, checks: checks, zone: fz}
		puts = append(puts, fz)
	}
	var cat *zonestore.Zone
	if f.catDirty || snap.Zone(zonestore.FleetView, f.catalog) == nil {
		serial := uint32(time.Now().Unix())
		if f.catSerial != 0 && !zonestore.SerialLess(f.catSerial, serial) {
			serial = f.catSerial + 1
		}
		var err error
		if cat, err = zonestore.BuildCatalog(f.catalog, serial, slices.Sorted(maps.Keys(f.built))); err != nil {
			f.log.Error("fleet catalog", slog.Any("err", err))
			cat = nil
		} else {
			f.catSerial, f.catDirty = serial, false
		}
	}
	if len(puts) == 0 && len(gone) == 0 && cat == nil {
		return
	}
	// One new snapshot, however many fleet zones change.
	var e zonestore.Edits
	for _, z := range puts {
		e.Put(zonestore.FleetView, z)
	}
	for _, name := range gone {
		e.Delete(zonestore.FleetView, name)
	}
	if cat != nil {
		e.Put(zonestore.FleetView, cat)
	}
	f.store.Apply(&e)
	f.log.Debug("fleet feed updated", slog.Int("zones", len(puts)), slog.Int("removed", len(gone)), slog.Bool("catalog", cat != nil))
}

// health is the status of every health check any syncer polls: unhealthy
// when any syncer says so (as routingClient decides).
func (f *fleetFeed) healthMap() map[string]bool {
	out := map[string]bool{}
	for _, s := range f.syncers {
		for id, ok := range s.HealthMap() {
			if v, seen := out[id]; !seen || v {
				out[id] = ok
			}
		}
	}
	return out
}

// checkIDs lists the health checks sets use, sorted.
func checkIDs(sets []types.ResourceRecordSet) []string {
	var ids []string
	for _, rs := range sets {
		if id := aws.ToString(rs.HealthCheckId); id != "" {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// healthKey is the status of checks, as a comparable string.
func healthKey(checks []string, h map[string]bool) string {
	var b strings.Builder
	for _, id := range checks {
		v, ok := h[id]
		fmt.Fprintf(&b, "%s=%v ", id, !ok || v)
	}
	return b.String()
}

// ---- follower side ----

// follower serves what primaries' fleet feeds carry: a secondary zone for
// the fleet catalog, one per member fleet zone (each into a private store;
// nothing of them is served as is), and each member's decoded zone put into
// the served store under its view. It makes no Route 53 call.
type follower struct {
	cfg     secondary.Config // template: primaries, key, dir
	catalog *secondary.Zone
	private *zonestore.Store
	store   *zonestore.Store
	views   map[string]bool // configured views
	log     *slog.Logger

	mu      sync.Mutex
	ctx     context.Context
	members map[string]*fleetMember // fleet zone name →
}

type fleetMember struct {
	zone   *secondary.Zone
	cancel context.CancelFunc
	placed *zonestore.Zone // what is served from it, nil before the first version
	view   string
	health map[string]bool
}

func (d *daemon) buildFollower(cfg *Config) (*follower, error) {
	fc := cfg.Follow
	if fc == nil {
		return nil, nil
	}
	keys, _ := cfg.tsigKeys()
	var views []string
	for _, v := range cfg.Views {
		views = append(views, v.Name)
	}
	dir := ""
	if cfg.SnapshotDir != "" {
		dir = filepath.Join(cfg.SnapshotDir, "follow")
	}
	return newFollower(d.store, *fc, findKey(keys, fc.Key), views, dir, d.log)
}

// newFollower makes a follower serving into store; dir keeps the copies
// of the catalog and fleet zones ("" none).
func newFollower(store *zonestore.Store, fc FollowConfig, key *server.TSIGKey, views []string, dir string, log *slog.Logger) (*follower, error) {
	f := &follower{private: zonestore.NewStore(), store: store, views: map[string]bool{zonestore.DefaultView: true},
		log: log.With(slog.String("component", "follow")), members: map[string]*fleetMember{}}
	for _, v := range views {
		f.views[v] = true
	}
	f.cfg = secondary.Config{Primaries: fc.Primaries, Logger: log, Dir: dir}
	if key != nil {
		f.cfg.Key = &secondary.Key{Name: key.Name, Algorithm: key.Algorithm, Secret: key.Secret}
	}
	cc := f.cfg
	cc.Zone = fleetCatalogName(fc.Catalog)
	cc.Primaries = slices.Clone(fc.Primaries)
	cc.OnVersion = func(_ context.Context, _, next *zonestore.Zone) {
		members := fleet.Members(next)
		for _, m := range members {
			if !zonestore.InZone(m, fleet.Suffix) {
				// The primary's per-view catalog, served while its fleet
				// feed was not up yet: not ours. The fleet catalog comes
				// with a newer serial (and a NOTIFY).
				f.log.Warn("catalog is not a fleet catalog (is the primary's fleet feed up?); waiting for the next version", slog.String("member", m))
				return
			}
		}
		f.setMembers(members)
	}
	var err error
	if f.catalog, err = secondary.New(f.private, cc); err != nil {
		return nil, err
	}
	return f, nil
}

// load serves the copies on disk (catalog and members) before any transfer.
func (f *follower) load(ctx context.Context) {
	f.mu.Lock()
	f.ctx = ctx
	f.mu.Unlock()
	_ = f.catalog.Load()
	if cat := f.private.Load().Zone(zonestore.DefaultView, f.catalog.Origin()); cat != nil && cat.Available() {
		f.setMembers(fleet.Members(cat))
	}
}

func (f *follower) run(ctx context.Context) {
	f.catalog.Run(ctx)
}

// setMembers starts a secondary zone for each new member and stops (and
// withdraws) those that left the catalog.
func (f *follower) setMembers(names []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	want := map[string]bool{}
	for _, name := range names {
		want[name] = true
		if f.members[name] != nil {
			continue
		}
		mc := f.cfg
		mc.Zone = name
		mc.Primaries = slices.Clone(f.cfg.Primaries)
		m := &fleetMember{}
		mc.OnVersion = func(_ context.Context, _, next *zonestore.Zone) { f.apply(name, m, next) }
		z, err := secondary.New(f.private, mc)
		if err != nil {
			f.log.Error("fleet zone", slog.String("zone", name), slog.Any("err", err))
			continue
		}
		m.zone = z
		f.members[name] = m
		_ = z.Load()
		if cur := f.private.Load().Zone(zonestore.DefaultView, name); cur != nil && cur.Available() {
			f.applyLocked(name, m, cur)
		}
		if f.ctx != nil {
			ctx, cancel := context.WithCancel(f.ctx)
			m.cancel = cancel
			go z.Run(ctx)
		}
	}
	for name, m := range f.members {
		if want[name] {
			continue
		}
		if m.cancel != nil {
			m.cancel()
		}
		delete(f.members, name)
		f.private.DeleteZone(zonestore.DefaultView, name)
		if m.placed != nil {
			f.withdraw(m)
			f.log.Info("zone left the primaries' catalog; no longer served", slog.String("zone", m.placed.Origin()), slog.String("view", m.view))
		}
	}
}

// start runs the members loaded before ctx was known.
func (f *follower) start(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctx = ctx
	for _, m := range f.members {
		if m.cancel == nil {
			c, cancel := context.WithCancel(ctx)
			m.cancel = cancel
			go m.zone.Run(c)
		}
	}
}

func (f *follower) withdraw(m *fleetMember) {
	placed, view := m.placed, m.view
	_ = f.store.Update(func(cur *zonestore.Snapshot) (*zonestore.Snapshot, error) {
		if cur.Zone(view, placed.Origin()) == placed {
			return cur.WithoutZone(view, placed.Origin()), nil
		}
		return nil, nil
	})
}

func (f *follower) apply(name string, m *fleetMember, next *zonestore.Zone) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.members[name] != m {
		return // left the catalog meanwhile
	}
	f.applyLocked(name, m, next)
}

func (f *follower) applyLocked(name string, m *fleetMember, fz *zonestore.Zone) {
	d, err := fleet.Decode(fz)
	if err != nil {
		f.log.Error("fleet zone does not decode; serving the last good version", slog.String("zone", name), slog.Uint64("serial", uint64(fz.Serial())), slog.Any("err", err))
		return
	}
	for _, sk := range d.Skipped {
		f.log.Warn("record set not served (as on the primary)", slog.String("zone", d.Meta.Origin), slog.String("name", sk.Name), slog.String("type", sk.Type), slog.Any("err", sk.Err))
	}
	if !f.views[d.Meta.View] {
		f.log.Warn("the primary serves this zone in a view not configured here; kept under that name, no client reaches it", slog.String("zone", d.Meta.Origin), slog.String("view", d.Meta.View))
	}
	if m.placed != nil && (m.view != d.Meta.View || m.placed.Origin() != d.Meta.Origin) {
		f.withdraw(m)
	}
	f.store.PutZone(d.Meta.View, d.Zone)
	m.placed, m.view, m.health = d.Zone, d.Meta.View, d.Health
	f.log.Info("zone from the fleet feed", slog.String("zone", d.Meta.Origin), slog.String("view", d.Meta.View), slog.String("kind", d.Meta.Kind),
		slog.Uint64("serial", uint64(d.Zone.Serial())), slog.Int("records", d.Zone.Records()))
}

// Healthy is the health of a check as the primaries last reported it:
// unhealthy when any fleet zone says so, unknown checks healthy.
func (f *follower) Healthy(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.members {
		if v, ok := m.health[id]; ok && !v {
			return false
		}
	}
	return true
}

// notReady says why the follower cannot answer yet ("" when it can): the
// catalog and every member must have data. With all primaries gone it
// stays ready on what it has (the feed's SOA expire is 68 years).
func (f *follower) notReady() string {
	if !f.catalog.Ready() {
		return "fleet catalog " + f.catalog.Origin() + " has no data yet"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, m := range f.members {
		if m.placed == nil {
			return "fleet zone " + name + " has no data yet"
		}
	}
	return ""
}

// Notify routes a NOTIFY for the fleet catalog or a fleet zone.
func (f *follower) Notify(zone string, from netip.Addr, key string) (known, accepted bool) {
	zone = zonestore.Canonical(zone)
	if zone == f.catalog.Origin() {
		return true, f.catalog.Notify(from, key)
	}
	f.mu.Lock()
	m := f.members[zone]
	var carriers []*fleetMember
	if m == nil {
		// A primary's rule for every view also NOTIFYs the zones
		// themselves: acknowledged (their fleet zones carry the change)
		// so it does not retry, with a refresh check for good measure.
		for _, c := range f.members {
			if c.placed != nil && c.placed.Origin() == zone {
				carriers = append(carriers, c)
			}
		}
	}
	f.mu.Unlock()
	if m != nil {
		return true, m.zone.Notify(from, key)
	}
	for _, c := range carriers {
		known = true
		accepted = c.zone.Notify(from, key) || accepted
	}
	return known, accepted
}

type followedZone struct {
	view, origin string
	st           secondary.Status // of the fleet zone carrying it
}

// served lists the zones served from the fleet feed, with the transfer
// state of the fleet zone that carries each.
func (f *follower) served() []followedZone {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []followedZone
	for _, m := range f.members {
		if m.placed != nil {
			out = append(out, followedZone{view: m.view, origin: m.placed.Origin(), st: m.zone.Status()})
		}
	}
	return out
}

// notifiers routes a NOTIFY to the configured secondaries, then the
// follower's zones.
type notifiers struct {
	secondaries notifyRouter
	follow      *follower
}

func (n notifiers) Notify(zone string, from netip.Addr, key string) (known, accepted bool) {
	known, accepted = n.secondaries.Notify(zone, from, key)
	if n.follow != nil {
		k, a := n.follow.Notify(zone, from, key)
		known, accepted = known || k, accepted || a
	}
	return known, accepted
}
