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
	return forwarder.New(forwarder.Config{
		Rules:        rules,
		Timeout:      cfg.Upstream.Timeout,
		Deadline:     cfg.Upstream.Deadline,
		MaxInFlight:  cfg.Upstream.MaxInFlight,
		CacheEntries: cfg.Cache.Entries,
		MinTTL:       cfg.Cache.MinTTL,
		MaxTTL:       cfg.Cache.MaxTTL,
		NegMaxTTL:    cfg.Cache.NegMaxTTL,
		ServFailTTL:  cfg.Cache.ServFailTTL,
		StaleTTL:     cfg.Cache.StaleTTL,
		Prefetch:     cfg.Cache.Prefetch,
		LocalAddrs:   cfg.Listen,
		VPCCIDR:      cfg.AWS.VPCCIDR,
		Logger:       log,
	})
}
