package main

import (
	"log/slog"

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
		ups, err := cfg.expandUpstreams(r.Upstreams)
		if err != nil {
			return nil, err
		}
		add(forwarder.Rule{Suffix: r.Zone, Upstreams: ups, Policy: forwarder.Policy(r.Policy)})
	}
	if len(cfg.ForwardDefault) > 0 {
		ups, err := cfg.expandUpstreams(cfg.ForwardDefault)
		if err != nil {
			return nil, err
		}
		add(forwarder.Rule{Suffix: ".", Upstreams: ups})
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
		CacheNegativeShare:  cfg.Cache.NegativeShare,
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
