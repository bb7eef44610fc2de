package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"hybridns/zonestore"
	"hybridns/zonestore/zonedir"
)

// configFromCLI reads the config file (if any) and applies flags on top.
func configFromCLI(c *cli.Context) (*Config, error) {
	cfg := &Config{}
	if path := c.String("config"); path != "" {
		var err error
		if cfg, err = loadConfig(path); err != nil {
			return nil, err
		}
	}
	// A value from a flag or variable is blamed on it in messages.
	for key, flag := range flagKeys {
		if c.IsSet(flag) {
			if cfg.fromFlags == nil {
				cfg.fromFlags = map[string]string{}
			}
			cfg.fromFlags[key] = fromEnvOrFlag(flag, "HYBRIDNS_"+strings.ToUpper(strings.ReplaceAll(flag, "-", "_")))
		}
	}
	if c.IsSet("listen") {
		cfg.Listen = splitList(c.StringSlice("listen"))
	}
	if len(cfg.Listen) == 0 {
		cfg.Listen = []string{":53"}
	}
	if c.IsSet("zone-dir") {
		cfg.ZoneDir = c.String("zone-dir")
	}
	if c.IsSet("http-listen") {
		cfg.HTTPListen = c.String("http-listen")
	}
	if c.IsSet("forward") {
		cfg.Forward = nil
		for _, f := range c.StringSlice("forward") {
			zone, ups, ok := strings.Cut(f, "=")
			if !ok || zone == "" || ups == "" {
				return nil, fmt.Errorf("--forward %q: want ZONE=ADDR[,ADDR…]", f)
			}
			cfg.Forward = append(cfg.Forward, ForwardRule{Zone: zone, Upstreams: splitList([]string{ups})})
		}
	}
	if c.IsSet("forward-default") {
		cfg.ForwardDefault = splitList([]string{c.String("forward-default")})
	}
	if c.IsSet("allow-recursion") {
		cfg.AllowRecursion = splitList([]string{c.String("allow-recursion")})
		if cfg.AllowRecursion == nil {
			cfg.AllowRecursion = []string{}
		}
	}
	if c.IsSet("vpc-cidr") {
		cfg.AWS.VPCCIDR = c.String("vpc-cidr")
	}
	if c.IsSet("route53") {
		cfg.Route53.Discover = c.Bool("route53")
	}
	if c.IsSet("route53-zone") {
		cfg.Route53.Zones = splitList(c.StringSlice("route53-zone"))
	}
	if c.IsSet("route53-endpoint") {
		cfg.Route53.Endpoint = c.String("route53-endpoint")
	}
	if c.IsSet("route53-interval") {
		cfg.Route53.Interval = c.Duration("route53-interval")
	}
	if c.IsSet("route53-rps") {
		cfg.Route53.RPS = c.Float64("route53-rps")
	}
	if c.IsSet("snapshot-dir") {
		cfg.SnapshotDir = c.String("snapshot-dir")
	}
	if c.IsSet("log-level") {
		cfg.Log.Level = c.String("log-level")
	}
	if c.IsSet("log-format") {
		cfg.Log.Format = c.String("log-format")
	}
	if c.IsSet("log-queries") {
		cfg.Log.Queries = c.Float64("log-queries")
	}
	if c.IsSet("lame-duck") {
		d := c.Duration("lame-duck")
		cfg.LameDuck = &d
	}
	if c.IsSet("proxy-protocol") {
		cfg.ProxyProtocol.Enabled = c.Bool("proxy-protocol")
	}
	configuredFormat = cfg.Log.Format // fatal errors from here on follow it
	if cfg.HTTPListen == "" {
		cfg.HTTPListen = "127.0.0.1:8053"
	}
	if cfg.HTTPListen == "off" {
		cfg.HTTPListen = ""
	}
	return cfg, cfg.validate()
}

// flagKeys maps config keys to the flags that override them (the
// environment variable of each is HYBRIDNS_ and the flag's name).
var flagKeys = map[string]string{
	"listen": "listen", "zone_dir": "zone-dir", "http_listen": "http-listen", "forward": "forward",
	"forward_default": "forward-default", "allow_recursion": "allow-recursion", "aws.vpc_cidr": "vpc-cidr",
	"route53.discover": "route53", "route53.zones": "route53-zone", "route53.endpoint": "route53-endpoint",
	"route53.interval": "route53-interval", "route53.rps": "route53-rps", "snapshot_dir": "snapshot-dir",
	"log.level": "log-level", "log.format": "log-format", "log.queries": "log-queries", "lame_duck": "lame-duck",
	"proxy_protocol.enabled": "proxy-protocol",
}

// splitList flattens comma-separated values.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func checkCmd(c *cli.Context) error {
	if c.IsSet("zone") {
		return checkZoneCmd(c)
	}
	if c.String("config") == "" && c.NumFlags() == 0 {
		return errors.New("nothing to check: give --config FILE, or --zone NAME FILE for one zone file")
	}
	cfg, err := configFromCLI(c)
	if err != nil {
		return err
	}
	var errs []error
	fwd, err := buildForwarder(cfg, nil)
	if err != nil {
		errs = append(errs, err)
	} else if fwd != nil {
		defer fwd.Close()
	}
	zones := 0
	dirs := []struct {
		view, dir string
		list      []ZoneFileConfig
	}{{"", cfg.ZoneDir, cfg.Zones}}
	for _, v := range cfg.Views {
		dirs = append(dirs, struct {
			view, dir string
			list      []ZoneFileConfig
		}{v.Name, v.ZoneDir, v.Zones})
	}
	for _, d := range dirs {
		if d.dir == "" {
			continue
		}
		zs, unmatched, err := zonedir.ParseEntries(d.dir, zoneEntries(d.list), cfg.zoneOptions())
		if err != nil {
			errs = append(errs, err)
		}
		in := ""
		if d.view != "" {
			in = ", view " + d.view
		}
		for _, z := range zs {
			if err := ruleConflict(cfg, z.Origin()); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", z.Source(), err))
			}
			fmt.Fprintf(c.App.Writer, "zone %s: %d records, serial %d (%s%s)\n", z.Origin(), z.Records(), z.Serial(), z.Source(), in)
		}
		for _, f := range unmatched {
			fmt.Fprintf(c.App.Writer, "warning: %s matches no zone and is not served: name it <zone>.zone or list it under zones: (name, file)\n", f)
		}
		zones += len(zs)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if zones == 0 && len(cfg.Forward) == 0 && len(cfg.ForwardDefault) == 0 && !cfg.Route53.enabled() && len(cfg.Secondary) == 0 && cfg.Follow == nil &&
		cfg.APIListen == "" && len(cfg.Reverse) == 0 {
		return errors.New("nothing to check: the config serves no zone, forwards nothing and has no API")
	}
	fmt.Fprintf(c.App.Writer, "ok: %d zones\n", zones)
	return nil
}

// ruleConflict reports a configured forwarding rule for exactly a served
// zone's name: which of the two should answer would be a guess. (A built-in
// AWS rule yields to a served zone of the same name: the zone answers.)
func ruleConflict(cfg *Config, origin string) error {
	for _, r := range cfg.Forward {
		if zonestore.Canonical(r.Zone) == origin {
			return fmt.Errorf("zone %s is also a forwarding rule (%s); remove one", origin, cfg.where(r.line))
		}
	}
	if origin == "." && len(cfg.ForwardDefault) > 0 {
		return fmt.Errorf("the root zone is served and forward_default is set; remove one")
	}
	return nil
}
