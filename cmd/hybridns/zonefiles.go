package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/urfave/cli/v2"

	"hybridns/zonestore/zonedir"
)

// ZoneFileConfig is one zone listed with its file, as BIND's
// zone "corp.example" { file "db.corp.example"; }.
type ZoneFileConfig struct {
	Name string `yaml:"name"`
	File string `yaml:"file"`
}

func zoneEntries(list []ZoneFileConfig) []zonedir.Entry {
	var out []zonedir.Entry
	for _, z := range list {
		out = append(out, zonedir.Entry{Origin: z.Name, File: z.File})
	}
	return out
}

// checkZoneFiles validates zones: and the views' zone_dir and zones:.
func (c *Config) checkZoneFiles() []error {
	var errs []error
	check := func(key, dir string, list []ZoneFileConfig) {
		seen := map[string]bool{}
		if len(list) > 0 && dir == "" {
			errs = append(errs, fmt.Errorf("%s: %s: needs a zone_dir beside it, the directory the files are in", c.at(key), key))
		}
		for i, z := range list {
			item := fmt.Sprintf("%s[%d]", key, i)
			if _, ok := dns.IsDomainName(z.Name); !ok || z.Name == "" {
				errs = append(errs, fmt.Errorf("%s: %s: name %q: want a zone name, like corp.example", c.at(item+".name"), key, z.Name))
			} else if seen[dns.CanonicalName(z.Name)] {
				errs = append(errs, fmt.Errorf("%s: %s: zone %s listed twice", c.at(item+".name"), key, z.Name))
			}
			seen[dns.CanonicalName(z.Name)] = true
			if z.File == "" {
				errs = append(errs, fmt.Errorf("%s: %s: zone %s: file is required", c.at(item), key, z.Name))
			}
		}
	}
	check("zones", c.ZoneDir, c.Zones)
	for i, v := range c.Views {
		key := fmt.Sprintf("views[%d]", i)
		if v.ZoneDir != "" {
			if _, err := os.ReadDir(v.ZoneDir); err != nil {
				errs = append(errs, fmt.Errorf("%s: view %s: zone_dir %q: not a readable directory", c.at(key+".zone_dir"), v.Name, v.ZoneDir))
			}
			if v.Name == "" {
				continue // reported as a view without a name
			}
		}
		check(key+".zones", v.ZoneDir, v.Zones)
	}
	return errs
}

// viewZoneDirs are the zone directories and lists of named views, by view.
func (c *Config) viewZoneDirs() map[string]ViewConfig {
	out := map[string]ViewConfig{}
	for _, v := range c.Views {
		if v.ZoneDir != "" {
			out[v.Name] = ViewConfig{ZoneDir: v.ZoneDir, Zones: v.Zones}
		}
	}
	return out
}

// startViewLoaders serves each view's zone directory into that view.
func (d *daemon) startViewLoaders(ctx context.Context, cfg *Config) {
	for _, v := range cfg.Views {
		if v.ZoneDir == "" {
			continue
		}
		l := zonedir.New(v.ZoneDir, d.store, v.Name, d.log.With(slog.String("view", v.Name)))
		l.Reject = func(origin string) error { return ruleConflict(d.config(), origin) }
		l.Parsed = d.releaser.parsed
		l.SetOptions(cfg.zoneOptions())
		l.SetZones(zoneEntries(v.Zones))
		_ = l.Scan()
		go func() {
			if err := l.Watch(ctx, 30*time.Second); err != nil {
				d.log.Error("zone dir watch stopped; SIGHUP still rescans", slog.String("view", v.Name), slog.Any("err", err))
			}
		}()
		d.viewLoaders = append(d.viewLoaders, l)
	}
}

// zoneLoaders is every zone-directory loader: the default view's first.
func (d *daemon) zoneLoaders() []*zonedir.Loader {
	var out []*zonedir.Loader
	if d.loader != nil {
		out = append(out, d.loader)
	}
	return append(out, d.viewLoaders...)
}

// checkZoneCmd is `hybridns check --zone NAME FILE`, as named-checkzone
// NAME FILE: the file parsed and checked under the rules a served zone
// follows, its serial printed, every error listed.
func checkZoneCmd(c *cli.Context) error {
	name := c.String("zone")
	if c.NArg() != 1 {
		return fmt.Errorf("check --zone %s: want exactly one zone file, as named-checkzone NAME FILE", name)
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return fmt.Errorf("check --zone %q: not a zone name", name)
	}
	file := c.Args().First()
	origin := dns.CanonicalName(name)
	z, err := zonedir.ParseFile(file, origin, zonedir.Options{})
	if err != nil {
		return fmt.Errorf("%w\nzone %s/IN: not loaded due to errors", err, strings.TrimSuffix(origin, "."))
	}
	fmt.Fprintf(c.App.Writer, "zone %s/IN: loaded serial %d (%d records)\nOK\n", strings.TrimSuffix(origin, "."), z.Serial(), z.Records())
	return nil
}
