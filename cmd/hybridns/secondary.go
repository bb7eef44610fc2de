package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"

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

// buildSecondaries makes the secondary zones; their copies live under
// snapshot_dir/secondary.
func buildSecondaries(cfg *Config, store *zonestore.Store, log *slog.Logger) ([]*secondary.Zone, error) {
	keys, _ := cfg.tsigKeys()
	var out []*secondary.Zone
	for _, s := range cfg.Secondary {
		sc := secondary.Config{Zone: s.Zone, Primaries: append([]string(nil), s.Primaries...), View: s.View, Logger: log}
		if k := findKey(keys, s.Key); k != nil {
			sc.Key = &secondary.Key{Name: k.Name, Algorithm: k.Algorithm, Secret: k.Secret}
		}
		if cfg.SnapshotDir != "" {
			sc.Dir = filepath.Join(cfg.SnapshotDir, "secondary")
		}
		z, err := secondary.New(store, sc)
		if err != nil {
			return nil, err
		}
		out = append(out, z)
	}
	return out, nil
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
