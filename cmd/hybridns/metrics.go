package main

import (
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"hybridns/forwarder"
	"hybridns/r53"
	"hybridns/server"
	"hybridns/zonestore"
)

// newRegistry gathers every component's metrics. Components keep plain
// counters; these collectors read them at scrape time.
func newRegistry(srv *server.Server, fwd func() *forwarder.Forwarder, store *zonestore.Store, syncers []*r53.Syncer, api *r53.APICounters) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(srv.Collector(), srv.XfrCollector())
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "hybridns_build_info", Help: "Build version; always 1.",
		ConstLabels: prometheus.Labels{"version": buildVersion(), "goversion": runtime.Version()}})
	build.Set(1)
	reg.MustRegister(build)
	reg.MustRegister(&zonesCollector{store: store})
	reg.MustRegister(&forwarderCollector{f: fwd})
	if len(syncers) > 0 {
		reg.MustRegister(&r53Collector{syncers: syncers, api: api})
	}
	return reg
}

type zonesCollector struct{ store *zonestore.Store }

var (
	descZoneRecords = prometheus.NewDesc("hybridns_zone_records", "Records per served zone.", []string{"view", "zone", "source"}, nil)
	descZoneSerial  = prometheus.NewDesc("hybridns_zone_serial", "SOA serial per served zone.", []string{"view", "zone"}, nil)
	descSnapshotVer = prometheus.NewDesc("hybridns_store_version", "Generation of the zone store (grows with every swap).", nil, nil)
)

func (c *zonesCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descZoneRecords
	ch <- descZoneSerial
	ch <- descSnapshotVer
}

func (c *zonesCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.store.Load()
	for _, view := range snap.Views() {
		name := view
		if name == zonestore.DefaultView {
			name = "default"
		}
		for _, z := range snap.Zones(view) {
			ch <- prometheus.MustNewConstMetric(descZoneRecords, prometheus.GaugeValue, float64(z.Records()), name, z.Origin(), z.Source())
			ch <- prometheus.MustNewConstMetric(descZoneSerial, prometheus.GaugeValue, float64(z.Serial()), name, z.Origin())
		}
	}
	ch <- prometheus.MustNewConstMetric(descSnapshotVer, prometheus.GaugeValue, float64(snap.Version()))
}

// forwarderCollector reads whichever forwarder is in force (a reload may
// replace it); nothing when there is none.
type forwarderCollector struct{ f func() *forwarder.Forwarder }

var (
	descCache      = prometheus.NewDesc("hybridns_cache_events_total", "Forwarder cache events.", []string{"event"}, nil)
	descCacheSize  = prometheus.NewDesc("hybridns_cache_entries", "Entries in the forwarder cache.", nil, nil)
	descCacheBytes = prometheus.NewDesc("hybridns_cache_bytes", "Estimated heap held by the forwarder cache (bounded by cache.max_bytes).", nil, nil)
	descCacheEvict = prometheus.NewDesc("hybridns_cache_evictions_total", "Forwarder cache entries pushed out by the entry or byte bound.", nil, nil)
	descFwdShed    = prometheus.NewDesc("hybridns_forward_shed_total", "Upstream fetches answered SERVFAIL at once, by reason.", []string{"reason"}, nil)
	descInFlight   = prometheus.NewDesc("hybridns_forward_in_flight", "Upstream fetches running now.", nil, nil)
	descUpstreamUp = prometheus.NewDesc("hybridns_upstream_up", "1 if the upstream is considered healthy.", []string{"upstream"}, nil)
	descUpstream   = prometheus.NewDesc("hybridns_upstream_events_total", "Upstream exchanges by outcome.", []string{"upstream", "event"}, nil)
	descUpstreamRT = prometheus.NewDesc("hybridns_upstream_rtt_seconds_total", "Summed round-trip time of answered upstream exchanges; the mean is its rate over the rate of hybridns_upstream_events_total{event=\"answer\"}.", []string{"upstream"}, nil)
)

func (c *forwarderCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCache, descCacheSize, descCacheBytes, descCacheEvict, descFwdShed, descInFlight, descUpstreamUp, descUpstream, descUpstreamRT} {
		ch <- d
	}
}

func (c *forwarderCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.f()
	if f == nil {
		return
	}
	st := f.Stats()
	for ev, v := range map[string]uint64{"hit": st.CacheHits, "miss": st.CacheMisses, "eviction": st.CacheEvictions,
		"coalesced": st.Coalesced, "stale_served": st.StaleServed, "prefetch": st.Prefetches, "overloaded": st.Overloaded,
		"failure_stored": st.FailCached} {
		ch <- prometheus.MustNewConstMetric(descCache, prometheus.CounterValue, float64(v), ev)
	}
	ch <- prometheus.MustNewConstMetric(descCacheSize, prometheus.GaugeValue, float64(st.CacheSize))
	ch <- prometheus.MustNewConstMetric(descCacheBytes, prometheus.GaugeValue, float64(st.CacheBytes))
	ch <- prometheus.MustNewConstMetric(descCacheEvict, prometheus.CounterValue, float64(st.CacheEvictions))
	for reason, v := range map[string]uint64{"rule_in_flight": st.Overloaded, "fetches_per_zone": st.ZoneLimited, "upstreams_down": st.DownFast} {
		ch <- prometheus.MustNewConstMetric(descFwdShed, prometheus.CounterValue, float64(v), reason)
	}
	ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(st.InFlight))
	for _, u := range st.Upstreams {
		up := 0.0
		if u.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descUpstreamUp, prometheus.GaugeValue, up, u.Addr)
		for ev, v := range map[string]uint64{"query": u.Queries, "tcp_query": u.TCPQueries, "timeout": u.Timeouts, "error": u.Errors,
			"servfail_refused": u.SoftErrors, "mismatched_reply": u.Mismatched, "answer": u.Answers, "busy": u.Busy} {
			ch <- prometheus.MustNewConstMetric(descUpstream, prometheus.CounterValue, float64(v), u.Addr, ev)
		}
		ch <- prometheus.MustNewConstMetric(descUpstreamRT, prometheus.CounterValue, u.RTT.Seconds(), u.Addr)
	}
}

type r53Collector struct {
	syncers []*r53.Syncer
	api     *r53.APICounters
}

var (
	descR53Calls    = prometheus.NewDesc("hybridns_route53_requests_total", "Route 53 HTTP requests (retries included) by outcome.", []string{"outcome"}, nil)
	descR53LastSync = prometheus.NewDesc("hybridns_route53_last_sync_timestamp_seconds", "When each zone last synced successfully (or was loaded from a snapshot).", []string{"zone", "zone_id"}, nil)
	descR53Age      = prometheus.NewDesc("hybridns_route53_sync_age_seconds", "Age of each zone's data.", []string{"zone", "zone_id"}, nil)
	descR53Fail     = prometheus.NewDesc("hybridns_route53_zone_failures", "Consecutive failed syncs per zone.", []string{"zone", "zone_id"}, nil)
	descR53Ready    = prometheus.NewDesc("hybridns_route53_zone_ready", "1 once a zone has data.", []string{"zone", "zone_id"}, nil)
	descR53Changes  = prometheus.NewDesc("hybridns_route53_changes_total", "Change batches of the write path by outcome: submitted, rejected (InvalidChangeBatch), failed, insync.", []string{"status"}, nil)
	descR53Pending  = prometheus.NewDesc("hybridns_route53_changes_pending", "Accepted changes not yet INSYNC.", nil, nil)
	descR53Oldest   = prometheus.NewDesc("hybridns_route53_change_pending_age_seconds", "Age of the oldest accepted change not yet INSYNC (0: none).", nil, nil)
	descR53InSync   = prometheus.NewDesc("hybridns_route53_change_insync_seconds", "Time from submission to INSYNC of accepted changes.", nil, nil)
)

func (c *r53Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descR53Calls, descR53LastSync, descR53Age, descR53Fail, descR53Ready, descR53Changes, descR53Pending, descR53Oldest, descR53InSync} {
		ch <- d
	}
}

func (c *r53Collector) Collect(ch chan<- prometheus.Metric) {
	if c.api != nil {
		ch <- prometheus.MustNewConstMetric(descR53Calls, prometheus.CounterValue, float64(c.api.OK.Load()), "ok")
		ch <- prometheus.MustNewConstMetric(descR53Calls, prometheus.CounterValue, float64(c.api.Throttled.Load()), "throttled")
		ch <- prometheus.MustNewConstMetric(descR53Calls, prometheus.CounterValue, float64(c.api.Errors.Load()), "error")
	}
	now := time.Now()
	var submitted, rejected, failed, insync, insyncMillis uint64
	pending, oldest := 0, 0.0
	for _, s := range c.syncers {
		ws := s.WriteStats()
		submitted, rejected, failed = submitted+ws.Submitted.Load(), rejected+ws.Rejected.Load(), failed+ws.Failed.Load()
		insync, insyncMillis = insync+ws.InSync.Load(), insyncMillis+ws.InSyncMillis.Load()
		for _, pc := range s.PendingChanges() {
			pending++
			oldest = max(oldest, now.Sub(pc.Submitted).Seconds())
		}
	}
	for status, v := range map[string]uint64{"submitted": submitted, "rejected": rejected, "failed": failed, "insync": insync} {
		ch <- prometheus.MustNewConstMetric(descR53Changes, prometheus.CounterValue, float64(v), status)
	}
	ch <- prometheus.MustNewConstMetric(descR53Pending, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(descR53Oldest, prometheus.GaugeValue, oldest)
	ch <- prometheus.MustNewConstSummary(descR53InSync, insync, float64(insyncMillis)/1000, nil)
	for _, s := range c.syncers {
		for _, z := range s.Status() {
			ready := 0.0
			if z.Ready {
				ready = 1
			}
			ch <- prometheus.MustNewConstMetric(descR53Ready, prometheus.GaugeValue, ready, z.Name, z.ID)
			ch <- prometheus.MustNewConstMetric(descR53Fail, prometheus.GaugeValue, float64(z.Failures), z.Name, z.ID)
			if !z.LastSync.IsZero() {
				ch <- prometheus.MustNewConstMetric(descR53LastSync, prometheus.GaugeValue, float64(z.LastSync.UnixNano())/1e9, z.Name, z.ID)
				ch <- prometheus.MustNewConstMetric(descR53Age, prometheus.GaugeValue, now.Sub(z.LastSync).Seconds(), z.Name, z.ID)
			}
		}
	}
}
