package forwarder

import (
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// RuleStatus is one forwarding rule as it runs: its suffix, policy and the
// state of each of its upstreams.
type RuleStatus struct {
	Suffix    string           `json:"zone"`
	Policy    Policy           `json:"policy"`
	Upstreams []UpstreamHealth `json:"upstreams"`
}

// UpstreamHealth is one upstream of a rule.
type UpstreamHealth struct {
	Addr     string `json:"addr"`
	Up       bool   `json:"up"`
	Fails    int    `json:"consecutive_failed_probes"`
	Queries  uint64 `json:"queries"`
	Answers  uint64 `json:"answers"`
	Timeouts uint64 `json:"timeouts"`
	Errors   uint64 `json:"errors"`
	// MeanRTTMillis is the mean round trip of answered exchanges.
	MeanRTTMillis float64 `json:"mean_rtt_ms"`
}

// Rules returns every rule, most specific suffix first by name order, the
// default rule (".") last.
func (f *Forwarder) Rules() []RuleStatus {
	var out []RuleStatus
	add := func(r *rule) {
		rs := RuleStatus{Suffix: r.suffix, Policy: r.pool.policy}
		for _, u := range r.pool.ups {
			h := UpstreamHealth{Addr: u.addr, Up: !u.down.Load(), Fails: int(u.fails.Load()), Queries: u.queries.Load(),
				Answers: u.answers.Load(), Timeouts: u.timeouts.Load(), Errors: u.errs.Load()}
			if h.Answers > 0 {
				h.MeanRTTMillis = float64(u.rttNanos.Load()) / float64(h.Answers) / 1e6
			}
			rs.Upstreams = append(rs.Upstreams, h)
		}
		out = append(out, rs)
	}
	for _, r := range f.rules {
		add(r)
	}
	slices.SortFunc(out, func(a, b RuleStatus) int { return strings.Compare(a.Suffix, b.Suffix) })
	if f.def != nil {
		add(f.def)
	}
	return out
}

// Flush drops cached answers: every one when name is "", otherwise those
// for name and every name below it (rndc flushtree). It returns how many
// entries were dropped. Fetches in flight may still store their answers.
func (f *Forwarder) Flush(name string) int {
	if f.cache == nil {
		return 0
	}
	all := name == ""
	name = dns.CanonicalName(name)
	n := 0
	for _, s := range f.cache.shards {
		s.mu.Lock()
		for _, p := range s.parts() {
			if all {
				n += p.lru.Len()
				p.lru.Purge() // the eviction callback keeps the byte account
				continue
			}
			for _, k := range p.lru.Keys() {
				if dns.IsSubDomain(name, k.name) {
					p.lru.Remove(k)
					n++
				}
			}
		}
		s.mu.Unlock()
	}
	return n
}
