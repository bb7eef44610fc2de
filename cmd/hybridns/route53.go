package main

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/time/rate"
	"log/slog"
	"net/netip"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"hybridns/r53"
	"hybridns/zonestore"
)

// buildSyncers returns one syncer per account (the default credentials
// first, then each configured role), all sharing one rate limiter: the
// budget belongs to the process, whatever it calls.
func buildSyncers(ctx context.Context, cfg *Config, store *zonestore.Store, log *slog.Logger, counters *r53.APICounters, limiter *rate.Limiter) ([]*r53.Syncer, error) {
	rc := cfg.Route53
	if !rc.enabled() {
		return nil, nil
	}
	vpcViews := map[string][]string{}
	for _, v := range cfg.Views {
		for _, vpc := range v.VPCs {
			vpcViews[vpc] = append(vpcViews[vpc], v.Name)
		}
	}
	type account struct {
		name, role string
		discover   bool
		zones      []string
	}
	var accounts []account
	if rc.Discover || len(rc.Zones) > 0 {
		accounts = append(accounts, account{name: "default", role: rc.RoleARN, discover: rc.Discover && len(rc.Zones) == 0, zones: rc.Zones})
	}
	for _, a := range rc.Accounts {
		accounts = append(accounts, account{name: a.Name, role: a.RoleARN, discover: a.Discover && len(a.Zones) == 0, zones: a.Zones})
	}
	var out []*r53.Syncer
	for _, a := range accounts {
		client, err := r53.NewClient(ctx, r53.ClientOptions{Endpoint: rc.Endpoint, RoleARN: a.role, Limiter: limiter, Counters: counters})
		if err != nil {
			return nil, fmt.Errorf("route53 account %s: %w", a.name, err)
		}
		s, err := r53.NewSyncer(client, store, r53.Config{
			Zones:          a.zones,
			Discover:       a.discover,
			Suffixes:       rc.Suffixes,
			Visibility:     rc.Visibility,
			Tags:           rc.Tags,
			Interval:       rc.Interval,
			Views:          vpcViews,
			SnapshotDir:    cfg.SnapshotDir,
			HealthInterval: rc.HealthInterval,
			ChangePoll:     rc.ChangePoll,
			Logger:         log.With(slog.String("account", a.name)),
		})
		if err != nil {
			return nil, fmt.Errorf("route53 account %s: %w", a.name, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// routingClient tells routing policies about health (from every syncer),
// this instance's region and the configured client locations.
func routingClient(cfg *Config, syncers []*r53.Syncer) zonestore.Client {
	c := zonestore.Client{Region: cfg.Route53.Region}
	if len(syncers) > 0 {
		c.Healthy = func(id string) bool {
			for _, s := range syncers {
				if !s.Healthy(id) {
					return false
				}
			}
			return true
		}
	}
	type geo struct {
		p   netip.Prefix
		loc zonestore.Location
	}
	var geos []geo
	for _, l := range cfg.Route53.Locations {
		for _, p := range l.Clients {
			geos = append(geos, geo{mustPrefix(p), zonestore.Location{Continent: l.Continent, Country: l.Country, Subdivision: l.Subdivision}})
		}
	}
	if len(geos) > 0 {
		c.Locate = func(a netip.Addr) (zonestore.Location, bool) {
			best, bits := zonestore.Location{}, -1
			for _, g := range geos {
				if g.p.Bits() > bits && g.p.Contains(a) {
					best, bits = g.loc, g.p.Bits()
				}
			}
			return best, bits >= 0
		}
	}
	type cidrLoc struct {
		coll, loc string
		p         netip.Prefix
	}
	var cidrs []cidrLoc
	for _, l := range cfg.Route53.CIDRLocations {
		for _, p := range l.CIDRs {
			cidrs = append(cidrs, cidrLoc{l.Collection, l.Location, mustPrefix(p)})
		}
	}
	if len(cidrs) > 0 {
		c.CIDRLocation = func(coll string, a netip.Addr) string {
			best, bits := "", -1
			for _, l := range cidrs {
				if l.coll == coll && l.p.Bits() > bits && l.p.Contains(a) {
					best, bits = l.loc, l.p.Bits()
				}
			}
			return best
		}
	}
	return c
}

// syncCmd: `hybridns sync --once` — one pass over every zone, a report per
// zone, exit non-zero if any zone failed.
func syncCmd(c *cli.Context) error {
	cfg, err := configFromCLI(c)
	if err != nil {
		return err
	}
	if !cfg.Route53.enabled() {
		return errors.New("sync: no Route 53 zones configured (--route53, --route53-zone or route53: in the config)")
	}
	log := newLogger(cfg.Log, nil)
	store := zonestore.NewStore()
	syncers, err := buildSyncers(c.Context, cfg, store, log, nil, r53.NewLimiter(cfg.Route53.RPS, cfg.Route53.Burst))
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.App.Writer, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tID\tPRIVATE\tRECORD SETS\tRECORDS\tSKIPPED\tAPI CALLS\tTIME\tRESULT")
	var errs []error
	var calls uint64
	start := time.Now()
	for _, s := range syncers {
		rep, err := s.SyncOnce(c.Context)
		if err != nil {
			errs = append(errs, err)
		}
		calls += rep.Calls
		for _, z := range rep.Zones {
			result := "ok"
			if z.Err != nil {
				result = z.Err.Error()
			}
			fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%d\t%d\t%d\t%v\t%s\n", z.Name, z.ID, z.Private, z.RecordSets, z.Records, len(z.Skipped), z.Calls, z.Duration.Round(time.Millisecond), result)
		}
	}
	tw.Flush()
	fmt.Fprintf(c.App.Writer, "%d API calls in %v\n", calls, time.Since(start).Round(time.Millisecond))
	return errors.Join(errs...)
}

// exportCmd: `hybridns export --zone X` writes a BIND zone file.
func exportCmd(c *cli.Context) error {
	cfg, err := configFromCLI(c)
	if err != nil {
		return err
	}
	limiter := r53.NewLimiter(cfg.Route53.RPS, cfg.Route53.Burst)
	client, err := r53.NewClient(c.Context, r53.ClientOptions{Endpoint: cfg.Route53.Endpoint, RoleARN: cfg.Route53.RoleARN, Limiter: limiter})
	if err != nil {
		return err
	}
	origin, id, sets, err := r53.FetchZone(c.Context, client, c.String("zone"))
	if err != nil {
		return err
	}
	return r53.WriteZoneFile(os.Stdout, origin, id, sets)
}
