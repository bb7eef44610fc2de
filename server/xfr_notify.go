package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"hybridns/zonestore"
)

// What follows every new zone version: the catalog zones are brought up to
// date and the secondaries of the transfer rules get a NOTIFY (RFC 1996).
// The Store's observer only records what changed; a goroutine does the
// work, so no store writer ever waits on it.

const (
	notifyFirstRetry = time.Second
	notifyMaxRetry   = time.Minute
	notifyAttempts   = 10 // per serial, then the secondary's refresh timer takes over
	// notifyRefusedAttempts bounds the tries a secondary that answers
	// NOTAUTH or REFUSED gets.
	notifyRefusedAttempts = 4
	notifyTimeout         = 3 * time.Second
	maxPendingXfr         = 10000
)

var errNotifyRefused = errors.New("notify refused")

type xfrLoop struct {
	s       *Server
	mu      sync.Mutex
	pending []zonestore.ZoneChange
	all     bool // notify every zone (start-up, or pending overflowed)
	// latest is the newest snapshot published; a loop woken for it may
	// Load an even newer one, whose changes are still to come in pending.
	latest *zonestore.Snapshot
	wake   chan struct{}
	// catalogs: view → the members its catalog holds, kept up to date
	// from the changes, so a publish costs what changed, not every zone.
	catalogs map[string]*catalogState
	tasks    map[string]*notifyTask // target + " " + zone
	wg       sync.WaitGroup
}

type notifyTask struct {
	target, zone string
	soa          *dns.SOA // what to announce; replaced by a newer version
	key          *TSIGKey
	wake         chan struct{}
}

func newXfrLoop(s *Server) *xfrLoop {
	return &xfrLoop{s: s, wake: make(chan struct{}, 1), catalogs: map[string]*catalogState{}, tasks: map[string]*notifyTask{}}
}

// observe runs when the Store has published a version (OnPublished, not
// Observe: a NOTIFY sent before the publish lets a fast secondary ask for
// the SOA, find the old serial and stay behind until its refresh timer).
// Quick, no I/O.
func (x *xfrLoop) observe(prev, next *zonestore.Snapshot) {
	ch := zonestore.Changed(prev, next)
	if len(ch) == 0 {
		return
	}
	x.mu.Lock()
	x.latest = next
	if len(x.pending)+len(ch) > maxPendingXfr {
		x.pending, x.all = nil, true
	} else {
		x.pending = append(x.pending, ch...)
	}
	x.mu.Unlock()
	x.kickLoop()
}

func (x *xfrLoop) kickLoop() {
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// start runs the loop until ctx ends; every zone served now gets a NOTIFY
// (as BIND does on load) and the catalogs are built.
func (x *xfrLoop) start(ctx context.Context) {
	x.s.cfg.Store.OnPublished(x.observe)
	x.mu.Lock()
	x.all = true
	x.mu.Unlock()
	x.kickLoop()
	go x.run(ctx)
}

func (x *xfrLoop) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-x.wake:
		}
		x.mu.Lock()
		changes, all, snap := x.pending, x.all, x.latest
		x.pending, x.all = nil, false
		x.mu.Unlock()
		if snap == nil {
			snap = x.s.cfg.Store.Load()
		}
		x.updateCatalogs(snap, changes, all)
		pol := x.s.pol.Load()
		if all {
			changes = changes[:0]
			for _, v := range snap.Views() {
				for _, z := range snap.Zones(v) {
					changes = append(changes, zonestore.ZoneChange{View: v, Origin: z.Origin(), New: z})
				}
			}
		}
		for _, c := range changes {
			if c.New == nil {
				continue
			}
			z := snap.Zone(c.View, c.Origin)
			if z == nil || !z.Available() {
				continue // gone again, or without data to offer
			}
			for i := range pol.transfer {
				rule := &pol.transfer[i]
				if (len(rule.Notify) == 0 && !rule.NotifyNS) || !rule.covers(snap, c.View, c.Origin) {
					continue
				}
				targets := rule.Notify
				if rule.NotifyNS {
					targets = append(slices.Clip(targets), nsTargets(snap, c.View, z)...)
				}
				var key *TSIGKey
				if len(rule.Keys) > 0 {
					if k, ok := pol.keys[rule.Keys[0]]; ok {
						key = &k
					}
				}
				for _, target := range slices.Compact(slices.Sorted(slices.Values(targets))) {
					x.notify(ctx, target, z.Origin(), z.SOA(), key)
				}
			}
		}
	}
}

// notify makes sure target hears of soa's version of zone: it starts a
// sender, or hands the newer version to the one already retrying.
func (x *xfrLoop) notify(ctx context.Context, target, zone string, soa *dns.SOA, key *TSIGKey) {
	id := target + " " + zone
	x.mu.Lock()
	defer x.mu.Unlock()
	if t := x.tasks[id]; t != nil {
		t.soa, t.key = soa, key
		select {
		case t.wake <- struct{}{}:
		default:
		}
		return
	}
	t := &notifyTask{target: target, zone: zone, soa: soa, key: key, wake: make(chan struct{}, 1)}
	x.tasks[id] = t
	x.wg.Add(1)
	go x.sender(ctx, id, t)
}

// sender sends t's NOTIFY until a NOERROR answer for its latest version,
// with exponential backoff, at most notifyAttempts times per version.
func (x *xfrLoop) sender(ctx context.Context, id string, t *notifyTask) {
	defer x.wg.Done()
	log := x.s.log.With(slog.String("zone", t.zone), slog.String("target", t.target))
	attempts, wait := 0, notifyFirstRetry
	for {
		x.mu.Lock()
		soa, key := t.soa, t.key
		x.mu.Unlock()
		x.s.xfrMetrics.notify(t.zone, "sent")
		err := x.s.sendNotify(ctx, t.target, t.zone, soa, key)
		x.mu.Lock()
		if err == nil {
			x.s.xfrMetrics.notify(t.zone, "acked")
			if t.soa == soa {
				delete(x.tasks, id)
				x.mu.Unlock()
				log.Debug("notify acknowledged", slog.Uint64("serial", uint64(soa.Serial)))
				return
			}
			x.mu.Unlock()
			attempts, wait = 0, notifyFirstRetry // a newer version came meanwhile
			continue
		}
		x.s.xfrMetrics.notify(t.zone, "failed")
		attempts++
		limit := notifyAttempts
		if errors.Is(err, errNotifyRefused) {
			// NOTAUTH, REFUSED: the secondary does not (yet) serve the
			// zone, e.g. until its catalog brings it: a few more tries,
			// not ten minutes of them.
			limit = notifyRefusedAttempts
		}
		if attempts >= limit || ctx.Err() != nil {
			delete(x.tasks, id)
			x.mu.Unlock()
			x.s.xfrMetrics.notify(t.zone, "gave_up")
			log.Warn("notify not acknowledged; the secondary's refresh timer takes over", slog.Int("attempts", attempts), slog.Any("err", err))
			return
		}
		x.mu.Unlock()
		log.Debug("notify failed, will retry", slog.Duration("in", wait), slog.Any("err", err))
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
		case <-timer.C:
		case <-t.wake:
			timer.Stop()
			attempts = 0
		}
		wait = min(2*wait, notifyMaxRetry)
	}
}

// sendNotify sends one NOTIFY for zone (RFC 1996 §3.7: with the new SOA in
// the answer section), signed with key when given, and waits for NOERROR.
func (s *Server) sendNotify(ctx context.Context, target, zone string, soa *dns.SOA, key *TSIGKey) error {
	m := new(dns.Msg)
	m.SetNotify(zone)
	m.Answer = []dns.RR{soa}
	c := &dns.Client{Net: "udp", Timeout: notifyTimeout}
	if key != nil {
		c.TsigProvider = keyring{key.Name: *key}
		m.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
	}
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	r, _, err := c.ExchangeContext(ctx, m, target)
	if err != nil {
		return err
	}
	switch r.Rcode {
	case dns.RcodeSuccess:
		return nil
	case dns.RcodeNotAuth, dns.RcodeRefused:
		return fmt.Errorf("%w: %s", errNotifyRefused, dns.RcodeToString[r.Rcode])
	}
	return fmt.Errorf("notify answered %s", dns.RcodeToString[r.Rcode])
}

// catalogState is one view's catalog: its members (origin → where from:
// 1 the default view, 2 the view's own) and whether the published catalog
// lacks a change of them.
type catalogState struct {
	members map[string]uint8
	dirty   bool
}

const (
	fromDefault uint8 = 1 << iota
	fromOwn
)

func (c *catalogState) set(origin string, from uint8, on bool) {
	had := c.members[origin]
	now := had &^ from
	if on {
		now |= from
	}
	switch {
	case now == had:
		return
	case now == 0:
		delete(c.members, origin)
	default:
		c.members[origin] = now
	}
	if (had == 0) != (now == 0) {
		c.dirty = true
	}
}

// updateCatalogs rebuilds each view's catalog zone whose member list
// changed, with a serial above the previous one (Unix time, else +1).
// Member lists follow changes; a view's list is read from every zone only
// the first time (or with all: start-up, or too many changes pending).
func (x *xfrLoop) updateCatalogs(snap *zonestore.Snapshot, changes []zonestore.ZoneChange, all bool) {
	origin := x.s.cfg.CatalogZone
	if origin == "" {
		return
	}
	origin = zonestore.Canonical(origin)
	member := func(z *zonestore.Zone) bool {
		return z != nil && z.Source() != zonestore.CatalogSource && z.Origin() != origin
	}
	views := x.s.cfg.CatalogViews
	if views == nil {
		views = []string{zonestore.DefaultView}
		for _, v := range x.s.pol.Load().views {
			views = append(views, v.Name)
		}
	}
	if all {
		clear(x.catalogs)
	} else {
		for _, c := range changes {
			if c.View == zonestore.DefaultView {
				for _, st := range x.catalogs {
					st.set(c.Origin, fromDefault, member(c.New))
				}
			} else if st := x.catalogs[c.View]; st != nil {
				st.set(c.Origin, fromOwn, member(c.New))
			}
		}
	}
	for _, view := range views {
		st := x.catalogs[view]
		if st == nil {
			st = &catalogState{members: map[string]uint8{}, dirty: true}
			for _, z := range snap.Zones(zonestore.DefaultView) {
				st.set(z.Origin(), fromDefault, member(z))
			}
			if view != zonestore.DefaultView {
				for _, z := range snap.Zones(view) {
					st.set(z.Origin(), fromOwn, member(z))
				}
			}
			x.catalogs[view] = st
		}
		cur := snap.Zone(view, origin)
		if cur != nil && cur.Source() != zonestore.CatalogSource {
			x.s.log.Error("catalog zone name is taken by a served zone; no catalog for this view", slog.String("zone", origin), slog.String("view", view))
			continue
		}
		if cur != nil && !st.dirty {
			continue
		}
		serial := uint32(time.Now().Unix())
		if cur != nil && !zonestore.SerialLess(cur.Serial(), serial) {
			serial = cur.Serial() + 1
			if serial == 0 {
				serial = 1
			}
		}
		members := slices.Sorted(maps.Keys(st.members))
		z, err := zonestore.BuildCatalog(origin, serial, members)
		if err != nil {
			x.s.log.Error("catalog zone", slog.String("view", view), slog.Any("err", err))
			continue
		}
		st.dirty = false
		x.s.cfg.Store.PutZone(view, z)
		x.s.log.Info("catalog zone updated", slog.String("zone", origin), slog.String("view", view), slog.Int("members", len(members)), slog.Uint64("serial", uint64(serial)))
	}
}

// nsTargets returns IP:53 of each NS host of z whose address records we
// serve in view (in z or another zone); hosts we cannot resolve from our
// own data, and Route 53's awsdns-* servers, are left out.
func nsTargets(snap *zonestore.Snapshot, view string, z *zonestore.Zone) []string {
	var out []string
	for _, rr := range z.Lookup(z.Origin(), dns.TypeNS).Answer {
		ns, ok := rr.(*dns.NS)
		if !ok || strings.Contains(ns.Ns, "awsdns-") {
			continue
		}
		host := strings.ToLower(ns.Ns)
		hz := snap.Find(view, host)
		if hz == nil {
			continue
		}
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			for _, a := range hz.Lookup(host, t).Answer {
				switch a := a.(type) {
				case *dns.A:
					out = append(out, net.JoinHostPort(a.A.String(), "53"))
				case *dns.AAAA:
					out = append(out, net.JoinHostPort(a.AAAA.String(), "53"))
				}
			}
		}
	}
	return out
}
