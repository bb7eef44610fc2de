package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strings"

	"github.com/miekg/dns"
	"github.com/urfave/cli/v2"

	"hybridns/r53"
	"hybridns/zonestore"
	"hybridns/zonestore/dynupdate"
	"hybridns/zonestore/reverse"
)

// ReverseConfig is one reverse zone hybridns keeps: synthesized from the
// forward zones' addresses (default), or written through to a Route 53
// reverse zone (mode route53).
type ReverseConfig struct {
	Zone        string   `yaml:"zone"`
	From        []string `yaml:"from"`
	View        string   `yaml:"view"`
	Mode        string   `yaml:"mode"` // synthesized | route53
	Route53Zone string   `yaml:"route53_zone"`
}

func (r ReverseConfig) route53() bool { return r.Mode == "route53" }

func (c *Config) validateReverse() []error {
	var errs []error
	seen := map[string]bool{}
	for i, r := range c.Reverse {
		where := fmt.Sprintf("%s: reverse[%d]", c.where(0), i)
		z := zonestore.Canonical(r.Zone)
		if _, ok := dns.IsDomainName(r.Zone); !ok || r.Zone == "" || !(strings.HasSuffix(z, ".in-addr.arpa.") || strings.HasSuffix(z, ".ip6.arpa.") || z == "in-addr.arpa." || z == "ip6.arpa.") {
			errs = append(errs, fmt.Errorf("%s: zone %q: want a name under in-addr.arpa. or ip6.arpa.", where, r.Zone))
		}
		if len(r.From) == 0 {
			errs = append(errs, fmt.Errorf("%s (%s): from: name at least one forward zone", where, r.Zone))
		}
		for _, f := range r.From {
			if _, ok := dns.IsDomainName(f); !ok || f == "" {
				errs = append(errs, fmt.Errorf("%s (%s): from: %q is not a zone name", where, r.Zone, f))
			}
		}
		if r.View != "" && !c.hasView(r.View) {
			errs = append(errs, fmt.Errorf("%s (%s): view %q is not configured", where, r.Zone, r.View))
		}
		switch r.Mode {
		case "", "synthesized":
			if r.Route53Zone != "" {
				errs = append(errs, fmt.Errorf("%s (%s): route53_zone needs mode: route53", where, r.Zone))
			}
		case "route53":
			if r.Route53Zone == "" {
				errs = append(errs, fmt.Errorf("%s (%s): mode route53 needs route53_zone (the reverse hosted zone's ID)", where, r.Zone))
			}
		default:
			errs = append(errs, fmt.Errorf("%s (%s): mode %q: want synthesized or route53", where, r.Zone, r.Mode))
		}
		key := r.View + "/" + z
		if seen[key] {
			errs = append(errs, fmt.Errorf("%s: zone %s given twice for view %q", where, r.Zone, r.View))
		}
		seen[key] = true
	}
	return errs
}

// synthSpecs are the synthesized reverse zones.
func (c *Config) synthSpecs() []reverse.Spec {
	var out []reverse.Spec
	for _, r := range c.Reverse {
		if !r.route53() {
			out = append(out, reverse.Spec{Zone: r.Zone, From: r.From, View: r.View})
		}
	}
	return out
}

// reverseWriter writes PTR records to Route 53 reverse zones (mode
// route53) after a forward A/AAAA change was accepted. A forward and a
// reverse hosted zone never share a ChangeBatch (a batch is per hosted
// zone), so the PTR change is the next write, made before the caller is
// answered.
type reverseWriter struct {
	specs   []ReverseConfig
	syncers []*r53.Syncer
	log     *slog.Logger
}

func newReverseWriter(cfg *Config, syncers []*r53.Syncer, log *slog.Logger) *reverseWriter {
	rw := &reverseWriter{syncers: syncers, log: log}
	for _, r := range cfg.Reverse {
		if r.route53() {
			rw.specs = append(rw.specs, r)
		}
	}
	if len(rw.specs) == 0 {
		return nil
	}
	return rw
}

func (rw *reverseWriter) syncerFor(id string) *r53.Syncer {
	for _, s := range rw.syncers {
		if s.Mirrors(id) {
			return s
		}
	}
	return nil
}

// fromZone reports whether name is in one of the spec's forward zones.
func fromZone(r ReverseConfig, name string) bool {
	for _, f := range r.From {
		if zonestore.InZone(name, zonestore.Canonical(f)) {
			return true
		}
	}
	return false
}

// afterWrite is the syncers' hook: forward A/AAAA changes become PTR
// changes in each matching reverse zone.
func (rw *reverseWriter) afterWrite(ctx context.Context, zoneID, zoneName string, changes []dynupdate.Change) {
	for _, r := range rw.specs {
		revZone := zonestore.Canonical(r.Zone)
		if !slices.ContainsFunc(r.From, func(f string) bool { return zonestore.Canonical(f) == zoneName }) || strings.TrimPrefix(r.Route53Zone, "/hostedzone/") == zoneID {
			continue
		}
		type edit struct {
			add  bool
			rev  string
			name string
			ttl  uint32
		}
		var edits []edit
		for _, c := range changes {
			if c.Type != dns.TypeA && c.Type != dns.TypeAAAA {
				continue
			}
			old, cur := addrsOf(c.Old), addrsOf(c.New)
			for a := range old {
				if _, still := cur[a]; !still {
					if rev, ok := reverseName(a, revZone); ok {
						edits = append(edits, edit{rev: rev, name: c.Name})
					}
				}
			}
			for a, ttl := range cur {
				if _, had := old[a]; !had {
					if rev, ok := reverseName(a, revZone); ok {
						edits = append(edits, edit{add: true, rev: rev, name: c.Name, ttl: ttl})
					}
				}
			}
		}
		if len(edits) == 0 {
			continue
		}
		s := rw.syncerFor(r.Route53Zone)
		if s == nil {
			rw.log.Error("reverse zone not mirrored: add it to route53.zones so PTRs can be written", slog.String("zone", r.Zone), slog.String("route53_zone", r.Route53Zone))
			continue
		}
		res, err := s.Write(ctx, r.Route53Zone, func(src dynupdate.Source) (int, []dynupdate.Change, error) {
			sets := map[dynupdate.Key][]dns.RR{}
			var order []dynupdate.Key
			get := func(rev string) ([]dns.RR, bool) {
				k := dynupdate.Key{Name: rev, Type: dns.TypePTR}
				if set, ok := sets[k]; ok {
					return set, true
				}
				set, exists := src.RRset(rev, dns.TypePTR)
				if exists && set == nil {
					return nil, false // alias/policy: not ours
				}
				sets[k] = set
				order = append(order, k)
				return set, true
			}
			orig := map[dynupdate.Key][]dns.RR{}
			for _, e := range edits {
				set, ok := get(e.rev)
				if !ok {
					continue
				}
				k := dynupdate.Key{Name: e.rev, Type: dns.TypePTR}
				if _, ok := orig[k]; !ok {
					orig[k] = set
				}
				if e.add {
					// Explicit PTRs (to names outside the forward zones) win.
					if slices.ContainsFunc(set, func(rr dns.RR) bool { return !fromZone(r, rr.(*dns.PTR).Ptr) }) {
						continue
					}
					sets[k] = []dns.RR{&dns.PTR{Hdr: dns.RR_Header{Name: e.rev, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: e.ttl}, Ptr: e.name}}
					continue
				}
				sets[k] = slices.DeleteFunc(slices.Clone(set), func(rr dns.RR) bool { return strings.EqualFold(rr.(*dns.PTR).Ptr, e.name) })
			}
			var out []dynupdate.Change
			for _, k := range order {
				if samePTRs(orig[k], sets[k]) {
					continue
				}
				out = append(out, dynupdate.Change{Key: k, Old: orig[k], New: sets[k]})
			}
			return dns.RcodeSuccess, out, nil
		})
		if err != nil {
			rw.log.Error("reverse records not written", slog.String("zone", r.Zone), slog.String("forward", zoneName), slog.Any("err", err))
			continue
		}
		if res.ChangeID != "" {
			rw.log.Info("reverse records written", slog.String("zone", r.Zone), slog.String("forward", zoneName), slog.String("change_id", res.ChangeID), slog.Int("changes", res.Changes))
		}
	}
}

func samePTRs(a, b []dns.RR) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !dns.IsDuplicate(a[i], b[i]) || a[i].Header().Ttl != b[i].Header().Ttl {
			return false
		}
	}
	return true
}

// addrsOf returns the addresses of A/AAAA records with their TTL.
func addrsOf(rrs []dns.RR) map[string]uint32 {
	out := map[string]uint32{}
	for _, rr := range rrs {
		switch v := rr.(type) {
		case *dns.A:
			out[v.A.String()] = v.Hdr.Ttl
		case *dns.AAAA:
			out[v.AAAA.String()] = v.Hdr.Ttl
		}
	}
	return out
}

func reverseName(addr, zone string) (string, bool) {
	rev, err := dns.ReverseAddr(addr)
	if err != nil {
		return "", false
	}
	rev = strings.ToLower(rev)
	return rev, rev != zone && zonestore.InZone(rev, zone)
}

// reverseCmd: `hybridns reverse --zone Z [--dry-run]` reconciles a Route 53
// reverse zone (mode route53) with its forward zones: a PTR is added for
// every forward address without one, and PTR values that name a forward
// host no longer holding that address are removed. PTRs to names outside
// the forward zones are left alone (explicit records win).
func reverseCmd(c *cli.Context) error {
	cfg, err := configFromCLI(c)
	if err != nil {
		return err
	}
	want := c.String("zone")
	var spec *ReverseConfig
	for i, r := range cfg.Reverse {
		if r.route53() && (zonestore.Canonical(r.Zone) == zonestore.Canonical(want) || r.Route53Zone == want) {
			spec = &cfg.Reverse[i]
		}
	}
	if spec == nil {
		return fmt.Errorf("reverse: no reverse entry with mode route53 for %q", want)
	}
	log := newLogger(cfg.Log, nil)
	store := zonestore.NewStore()
	cfg.SnapshotDir = "" // a one-shot run leaves the daemon's snapshots alone
	syncers, err := buildSyncers(c.Context, cfg, store, log, nil, r53.NewLimiter(cfg.Route53.RPS, cfg.Route53.Burst))
	if err != nil {
		return err
	}
	for _, s := range syncers {
		if _, err := s.SyncOnce(c.Context); err != nil {
			return fmt.Errorf("reverse: sync: %w", err)
		}
	}
	var rs *r53.Syncer
	for _, s := range syncers {
		if s.Mirrors(spec.Route53Zone) {
			rs = s
		}
	}
	if rs == nil {
		return fmt.Errorf("reverse: hosted zone %s is not mirrored: add it to route53.zones", spec.Route53Zone)
	}
	revZone := zonestore.Canonical(spec.Zone)
	snap := store.Load()
	find := func(origin string) *zonestore.Zone {
		if z := snap.Find(spec.View, origin); z != nil && z.Origin() == origin {
			return z
		}
		for _, v := range snap.Views() {
			if z := snap.Zone(v, origin); z != nil {
				return z
			}
		}
		return nil
	}
	// Forward addresses: rev → the names holding it (canonical order).
	holders := map[string][]string{}
	ttls := map[string]uint32{}
	for _, f := range spec.From {
		z := find(zonestore.Canonical(f))
		if z == nil {
			return fmt.Errorf("reverse: forward zone %s is not served", f)
		}
		for _, rr := range z.RRs() {
			var ip net.IP
			switch v := rr.(type) {
			case *dns.A:
				ip = v.A
			case *dns.AAAA:
				ip = v.AAAA
			default:
				continue
			}
			if strings.HasPrefix(rr.Header().Name, "*.") {
				continue
			}
			rev, ok := reverseName(ip.String(), revZone)
			if !ok {
				continue
			}
			holders[rev] = append(holders[rev], rr.Header().Name)
			ttls[rev+" "+rr.Header().Name] = rr.Header().Ttl
		}
	}
	for rev := range holders {
		sort.Slice(holders[rev], func(i, j int) bool { return zonestore.CanonicalLess(holders[rev][i], holders[rev][j]) })
	}
	var existing []string // reverse names holding PTRs now
	if z := find(revZone); z != nil {
		for _, rr := range z.RRs() {
			if rr.Header().Rrtype == dns.TypePTR && !slices.Contains(existing, rr.Header().Name) {
				existing = append(existing, rr.Header().Name)
			}
		}
	}
	names := slices.Clone(existing)
	for rev := range holders {
		if !slices.Contains(names, rev) {
			names = append(names, rev)
		}
	}
	sort.Strings(names)
	// At most 250 reverse names a batch: a PTR upsert counts twice
	// against Route 53's 1,000 records per ChangeBatch.
	const chunk = 250
	var lines []string
	written, changeIDs := 0, []string{}
	for lo := 0; lo < len(names); lo += chunk {
		part := names[lo:min(lo+chunk, len(names))]
		var partLines []string
		plan := func(src dynupdate.Source) (int, []dynupdate.Change, error) {
			partLines = partLines[:0]
			var out []dynupdate.Change
			for _, rev := range part {
				cur, exists := src.RRset(rev, dns.TypePTR)
				if exists && cur == nil {
					continue
				}
				var next []dns.RR
				for _, rr := range cur {
					target := rr.(*dns.PTR).Ptr
					if fromZone(*spec, target) && !slices.Contains(holders[rev], target) {
						partLines = append(partLines, fmt.Sprintf("- %s PTR %s", rev, target))
						continue
					}
					next = append(next, rr)
				}
				if len(next) == 0 && len(holders[rev]) > 0 {
					name := holders[rev][0]
					partLines = append(partLines, fmt.Sprintf("+ %s PTR %s", rev, name))
					next = []dns.RR{&dns.PTR{Hdr: dns.RR_Header{Name: rev, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttls[rev+" "+name]}, Ptr: name}}
				}
				if !samePTRs(cur, next) {
					out = append(out, dynupdate.Change{Key: dynupdate.Key{Name: rev, Type: dns.TypePTR}, Old: cur, New: next})
				}
			}
			if c.Bool("dry-run") {
				return dns.RcodeSuccess, nil, nil
			}
			return dns.RcodeSuccess, out, nil
		}
		res, err := rs.Write(c.Context, spec.Route53Zone, plan)
		lines = append(lines, partLines...)
		for _, l := range partLines {
			fmt.Fprintln(c.App.Writer, l)
		}
		if err != nil {
			return fmt.Errorf("reverse: %w (%d changes written before)", err, written)
		}
		if res.ChangeID != "" {
			written += len(partLines)
			changeIDs = append(changeIDs, res.ChangeID)
		}
	}
	switch {
	case c.Bool("dry-run"):
		fmt.Fprintf(c.App.Writer, "%d changes (dry run: nothing written)\n", len(lines))
	case written > 0:
		fmt.Fprintf(c.App.Writer, "%d changes written (change %s)\n", written, strings.Join(changeIDs, ", "))
	default:
		fmt.Fprintln(c.App.Writer, "in sync: nothing to write")
	}
	if !c.Bool("dry-run") && written != len(lines) {
		return errors.New("reverse: changes were computed but not written")
	}
	return nil
}
