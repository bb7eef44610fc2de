package main

import (
	"context"
	"fmt"
	"hybridns/r53"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"hybridns/server"
	"hybridns/server/secondary"
	"hybridns/zonestore"
)

// SecondaryConfig is one zone transferred in from primaries.
type SecondaryConfig struct {
	Zone      string   `yaml:"zone"`
	Primaries []string `yaml:"primaries"`
	Key       string   `yaml:"key"`  // a tsig_keys name; empty: unsigned
	View      string   `yaml:"view"` // default: the default view
	// Route53Zone pushes every version received into this hosted zone.
	Route53Zone string `yaml:"route53_zone"`
}

func (c *Config) validateSecondaries(keys []server.TSIGKey) []error {
	var errs []error
	seen := map[string]bool{}
	for _, s := range c.Secondary {
		where := c.where(0) + ": secondary " + s.Zone
		if _, ok := dns.IsDomainName(s.Zone); !ok || s.Zone == "" {
			errs = append(errs, fmt.Errorf("%s: not a zone name", where))
			continue
		}
		k := s.View + "/" + zonestore.Canonical(s.Zone)
		if seen[k] {
			errs = append(errs, fmt.Errorf("%s: given twice", where))
		}
		seen[k] = true
		if len(s.Primaries) == 0 {
			errs = append(errs, fmt.Errorf("%s: no primaries", where))
		}
		for _, p := range s.Primaries {
			hp := p
			if _, _, err := net.SplitHostPort(p); err != nil {
				hp = net.JoinHostPort(p, "53")
			}
			if _, err := netip.ParseAddrPort(hp); err != nil {
				errs = append(errs, fmt.Errorf("%s: primary %q: want IP or IP:port", where, p))
			}
		}
		if s.Key != "" && findKey(keys, s.Key) == nil {
			errs = append(errs, fmt.Errorf("%s: key %q is not in tsig_keys or tsig_key_files", where, s.Key))
		}
		if s.View != "" && !c.hasView(s.View) {
			errs = append(errs, fmt.Errorf("%s: view %q is not configured", where, s.View))
		}
	}
	return errs
}

func findKey(keys []server.TSIGKey, name string) *server.TSIGKey {
	for i := range keys {
		if keys[i].Name == dns.CanonicalName(name) {
			return &keys[i]
		}
	}
	return nil
}

// buildSecondaries makes the secondary zones (their copies live under
// snapshot_dir/secondary) and, for those with route53_zone, the pushers that
// copy every version into that hosted zone through the one writer.
func (d *daemon) buildSecondaries(ctx context.Context, cfg *Config) ([]*secondary.Zone, []*pusher, error) {
	keys, _ := cfg.tsigKeys()
	var zones []*secondary.Zone
	var pushers []*pusher
	for _, s := range cfg.Secondary {
		sc := secondary.Config{Zone: s.Zone, Primaries: append([]string(nil), s.Primaries...), View: s.View, Logger: d.log}
		if k := findKey(keys, s.Key); k != nil {
			sc.Key = &secondary.Key{Name: k.Name, Algorithm: k.Algorithm, Secret: k.Secret}
		}
		if cfg.SnapshotDir != "" {
			sc.Dir = filepath.Join(cfg.SnapshotDir, "secondary")
		}
		if s.Route53Zone != "" {
			p, err := d.newPusher(ctx, cfg, s)
			if err != nil {
				return nil, nil, err
			}
			sc.OnVersion = func(_ context.Context, _, next *zonestore.Zone) { p.offer(next) }
			pushers = append(pushers, p)
		}
		z, err := secondary.New(d.store, sc)
		if err != nil {
			return nil, nil, err
		}
		zones = append(zones, z)
	}
	return zones, pushers, nil
}

// pusher copies a secondary zone's versions into a Route 53 hosted zone:
// the latest version wins (versions that arrive while one is being pushed
// are folded into the next push, still as the minimal diff), failures are
// retried with backoff. Its syncer mirrors the hosted zone into a store of
// its own — the copy is not served; the secondary is — and uses the
// process's Route 53 client settings and limiter even when the instance
// mirrors nothing else.
type pusher struct {
	zone, zoneID string
	sy           *r53.Syncer
	latest       chan *zonestore.Zone
	log          *slog.Logger

	mu      sync.Mutex
	serial  uint32 // last version pushed
	want    uint32 // last version received
	lastErr string
	changes uint64
}

func (d *daemon) newPusher(ctx context.Context, cfg *Config, s SecondaryConfig) (*pusher, error) {
	client, err := r53.NewClient(ctx, r53.ClientOptions{Endpoint: cfg.Route53.Endpoint, RoleARN: cfg.Route53.RoleARN, Limiter: d.limiter, Counters: &d.api})
	if err != nil {
		return nil, fmt.Errorf("secondary %s: route53_zone %s: %w", s.Zone, s.Route53Zone, err)
	}
	sy, err := r53.NewSyncer(client, zonestore.NewStore(), r53.Config{Zones: []string{s.Route53Zone}, Interval: cfg.Route53.Interval,
		ChangePoll: cfg.Route53.ChangePoll, Detached: true, Logger: d.log.With(slog.String("push", s.Zone))})
	if err != nil {
		return nil, fmt.Errorf("secondary %s: route53_zone %s: %w", s.Zone, s.Route53Zone, err)
	}
	return &pusher{zone: zonestore.Canonical(s.Zone), zoneID: s.Route53Zone, sy: sy, latest: make(chan *zonestore.Zone, 1),
		log: d.log.With(slog.String("component", "push"), slog.String("zone", s.Zone), slog.String("zone_id", s.Route53Zone))}, nil
}

// offer hands the pusher a new version; an older one not yet taken is
// replaced.
func (p *pusher) offer(z *zonestore.Zone) {
	p.mu.Lock()
	p.want = z.Serial()
	p.mu.Unlock()
	for {
		select {
		case p.latest <- z:
			return
		default:
		}
		select {
		case <-p.latest:
		default:
		}
	}
}

func (p *pusher) run(ctx context.Context) {
	// Know the hosted zone before the first push: the first push is then
	// a minimal diff against what it holds.
	for back := time.Second; ; back = min(2*back, time.Minute) {
		if _, err := p.sy.SyncOnce(ctx); err == nil {
			break
		} else if ctx.Err() != nil {
			return
		} else {
			p.setErr(err)
			p.log.Error("hosted zone to push into not readable; retrying", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(back):
		}
	}
	go p.sy.Run(ctx)
	var pending *zonestore.Zone
	back := time.Second
	for {
		if pending == nil {
			select {
			case <-ctx.Done():
				return
			case pending = <-p.latest:
			}
		}
		res, err := p.sy.Push(ctx, p.zoneID, pending.RRs())
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.setErr(err)
			p.log.Error("push into Route 53 failed; retrying", slog.Duration("in", back), slog.Any("err", err))
			select {
			case <-ctx.Done():
				return
			case z := <-p.latest:
				pending = z
			case <-time.After(back):
			}
			back = min(2*back, time.Minute)
			continue
		}
		back = time.Second
		for _, sk := range res.Skipped {
			p.log.Warn("not pushed", slog.String("record", sk))
		}
		p.mu.Lock()
		p.serial, p.lastErr = pending.Serial(), ""
		p.changes += uint64(res.Changes)
		p.mu.Unlock()
		p.log.Info("pushed into Route 53", slog.Uint64("serial", uint64(pending.Serial())), slog.Int("changes", res.Changes), slog.Int("batches", res.Batches))
		pending = nil
	}
}

func (p *pusher) setErr(err error) {
	p.mu.Lock()
	p.lastErr = err.Error()
	p.mu.Unlock()
}

// state is the copy's state for metrics: the serial received, the serial
// pushed, and whether they agree.
func (p *pusher) state() (want, pushed uint32, changes uint64, lastErr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.want, p.serial, p.changes, p.lastErr
}

// notifyRouter hands a NOTIFY to the secondary zones of that name.
type notifyRouter []*secondary.Zone

func (r notifyRouter) Notify(zone string, from netip.Addr, key string) (known, accepted bool) {
	for _, z := range r {
		if z.Origin() == strings.ToLower(zone) {
			known = true
			accepted = z.Notify(from, key) || accepted
		}
	}
	return known, accepted
}
