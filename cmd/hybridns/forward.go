package main

import (
	"fmt"
	"log/slog"
	"time"

	"hybridns/forwarder"
	"hybridns/server"
	"hybridns/zonestore"
)

// forwarderCloser is the forwarder as cmd wires it.
type forwarderCloser interface {
	server.Forwarder
	Close() error
}

var _ forwarderCloser = (*forwarder.Forwarder)(nil)

// buildForwarder builds the forwarding path from cfg; nil when nothing is
// forwarded. Config rules come first so they win over a built-in AWS rule
// for the same name.
func buildForwarder(cfg *Config, log *slog.Logger) (forwarderCloser, error) {
	return rebuildForwarder(cfg, log, nil)
}

// rebuildForwarder is buildForwarder for a reload: the new forwarder starts
// with the entries of prev's cache that are still valid under cfg (same
// rule and upstreams for the name, TTLs within the new clamps), so a
// changed setting does not send every client's next query upstream.
func rebuildForwarder(cfg *Config, log *slog.Logger, prev forwarderCloser) (forwarderCloser, error) {
	if len(cfg.Forward) == 0 && len(cfg.ForwardDefault) == 0 {
		return nil, nil
	}
	var rules []forwarder.Rule
	seen := map[string]bool{}
	add := func(r forwarder.Rule) {
		key := zonestore.Canonical(r.Suffix)
		if seen[key] {
			return
		}
		seen[key] = true
		rules = append(rules, r)
	}
	for _, r := range cfg.Forward {
		add(forwarder.Rule{Suffix: r.Zone, Upstreams: r.Upstreams, Policy: forwarder.Policy(r.Policy)})
	}
	if len(cfg.ForwardDefault) > 0 {
		add(forwarder.Rule{Suffix: ".", Upstreams: cfg.ForwardDefault})
	}
	if cfg.AWS.BuiltinRules == nil || *cfg.AWS.BuiltinRules {
		for _, r := range forwarder.AWSRules(cfg.AWS.VPCCIDR) {
			add(r)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f, err := forwarder.New(forwarder.Config{
		Rules:               rules,
		Timeout:             cfg.Upstream.Timeout,
		Deadline:            cfg.Upstream.Deadline,
		MaxInFlight:         cfg.Upstream.MaxInFlight,
		UpstreamMaxInFlight: cfg.Upstream.MaxInFlightPerUpstream,
		FetchesPerZone:      cfg.Upstream.FetchesPerZone,
		MaxFails:            forwarderMaxFails(cfg),
		HealthCheckInterval: cfg.Upstream.HealthCheckInterval,
		CacheEntries:        cfg.Cache.Entries,
		CacheBytes:          cfg.Cache.MaxBytes,
		MinTTL:              cfg.Cache.MinTTL,
		MaxTTL:              cfg.Cache.MaxTTL,
		NegMaxTTL:           cfg.Cache.NegMaxTTL,
		ServFailTTL:         cfg.Cache.ServFailTTL,
		StaleTTL:            cfg.Cache.StaleTTL,
		Prefetch:            cfg.Cache.Prefetch,
		LocalAddrs:          cfg.Listen,
		VPCCIDR:             cfg.AWS.VPCCIDR,
		Logger:              log,
	})
	if err != nil {
		return nil, err
	}
	if old, ok := prev.(*forwarder.Forwarder); ok {
		if n := f.Inherit(old); n > 0 {
			log.Info("forwarder cache carried over the reload", slog.Int("entries", n))
		}
	}
	return f, nil
}

// forwarderMaxFails maps upstream.max_fails to the forwarder's MaxFails:
// unset is the default (0), and 0 — health checking off — is negative.
func forwarderMaxFails(cfg *Config) int {
	switch {
	case cfg.Upstream.MaxFails == nil:
		return 0
	case *cfg.Upstream.MaxFails == 0:
		return -1
	}
	return *cfg.Upstream.MaxFails
}

// forwardingRanges checks the cache and upstream settings: every number
// has a range, and a negative one is an error naming its key.
func (c *Config) forwardingRanges() []error {
	var errs []error
	neg := func(key string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s: %s %d: must not be negative", c.where(0), key, v))
		}
	}
	negDur := func(key string, d time.Duration) {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: %s %v: must not be negative", c.where(0), key, d))
		}
	}
	neg("cache.entries", int64(c.Cache.Entries))
	neg("cache.max_bytes", c.Cache.MaxBytes)
	if c.Cache.MaxBytes > 0 && c.Cache.MaxBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("%s: cache.max_bytes %d: at least 1 MiB (1048576), or 0 for the default", c.where(0), c.Cache.MaxBytes))
	}
	neg("cache.prefetch", int64(c.Cache.Prefetch))
	negDur("cache.min_ttl", c.Cache.MinTTL)
	negDur("cache.max_ttl", c.Cache.MaxTTL)
	negDur("cache.negative_max_ttl", c.Cache.NegMaxTTL)
	negDur("cache.servfail_ttl", c.Cache.ServFailTTL)
	if c.Cache.ServFailTTL > 30*time.Second {
		errs = append(errs, fmt.Errorf("%s: cache.servfail_ttl %v: at most 30s", c.where(0), c.Cache.ServFailTTL))
	}
	negDur("cache.stale_ttl", c.Cache.StaleTTL)
	negDur("upstream.timeout", c.Upstream.Timeout)
	negDur("upstream.deadline", c.Upstream.Deadline)
	negDur("upstream.health_check_interval", c.Upstream.HealthCheckInterval)
	neg("upstream.max_in_flight", int64(c.Upstream.MaxInFlight))
	neg("upstream.max_in_flight_per_upstream", int64(c.Upstream.MaxInFlightPerUpstream))
	neg("upstream.fetches_per_zone", int64(c.Upstream.FetchesPerZone))
	if c.Upstream.MaxFails != nil {
		neg("upstream.max_fails", int64(*c.Upstream.MaxFails))
	}
	return errs
}
