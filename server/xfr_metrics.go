package server

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"hybridns/zonestore"
)

// xfrMetrics counts zone transfers and NOTIFYs. They are rare next to
// queries, so a map behind a mutex is cheap enough.
type xfrMetrics struct {
	mu        sync.Mutex
	transfers map[[3]string]*atomic.Uint64 // zone, kind, result
	notifies  map[[2]string]*atomic.Uint64 // zone, event (sent, acked, failed, gave_up)
}

// maxXfrSeries bounds the series (zone names come from clients).
const maxXfrSeries = 10000

func (x *xfrMetrics) transfer(zone, kind, result string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.transfers == nil {
		x.transfers = map[[3]string]*atomic.Uint64{}
	}
	k := [3]string{zone, kind, result}
	c := x.transfers[k]
	if c == nil {
		if len(x.transfers) >= maxXfrSeries {
			k[0] = "other"
			if c = x.transfers[k]; c == nil {
				c = new(atomic.Uint64)
				x.transfers[k] = c
			}
		} else {
			c = new(atomic.Uint64)
			x.transfers[k] = c
		}
	}
	c.Add(1)
}

func (x *xfrMetrics) notify(zone, event string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.notifies == nil {
		x.notifies = map[[2]string]*atomic.Uint64{}
	}
	k := [2]string{zone, event}
	c := x.notifies[k]
	if c == nil {
		c = new(atomic.Uint64)
		x.notifies[k] = c
	}
	c.Add(1)
}

// TransferCount returns how many transfers of zone of kind ended with
// result (for tests and the status page).
func (s *Server) TransferCount(zone, kind, result string) uint64 {
	s.xfrMetrics.mu.Lock()
	defer s.xfrMetrics.mu.Unlock()
	if c := s.xfrMetrics.transfers[[3]string{zone, kind, result}]; c != nil {
		return c.Load()
	}
	return 0
}

// NotifyCount returns the NOTIFY events of zone (sent, acked, failed, gave_up).
func (s *Server) NotifyCount(zone, event string) uint64 {
	s.xfrMetrics.mu.Lock()
	defer s.xfrMetrics.mu.Unlock()
	if c := s.xfrMetrics.notifies[[2]string{zone, event}]; c != nil {
		return c.Load()
	}
	return 0
}

var (
	descTransfers = prometheus.NewDesc("hybridns_zone_transfers_total", "Zone transfers out, by zone, kind (axfr, ixfr, ixfr-axfr: IXFR answered with the whole zone, ixfr-current, ixfr-udp) and result.",
		[]string{"zone", "kind", "result"}, nil)
	descNotifies = prometheus.NewDesc("hybridns_notify_total", "NOTIFY messages to secondaries by zone and event (sent, acked, failed, gave_up).",
		[]string{"zone", "event"}, nil)
	descJournalVersions = prometheus.NewDesc("hybridns_journal_versions", "Zone differences held in the IXFR journal.", nil, nil)
	descJournalBytes    = prometheus.NewDesc("hybridns_journal_bytes", "Wire size of the records held in the IXFR journal.", nil, nil)
)

// XfrCollector exposes the transfer, NOTIFY and journal metrics.
func (s *Server) XfrCollector() prometheus.Collector { return (*xfrCollector)(s) }

type xfrCollector Server

func (c *xfrCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTransfers
	ch <- descNotifies
	ch <- descJournalVersions
	ch <- descJournalBytes
}

func (c *xfrCollector) Collect(ch chan<- prometheus.Metric) {
	s := (*Server)(c)
	x := &s.xfrMetrics
	x.mu.Lock()
	for k, v := range x.transfers {
		ch <- prometheus.MustNewConstMetric(descTransfers, prometheus.CounterValue, float64(v.Load()), k[0], k[1], k[2])
	}
	for k, v := range x.notifies {
		ch <- prometheus.MustNewConstMetric(descNotifies, prometheus.CounterValue, float64(v.Load()), k[0], k[1])
	}
	x.mu.Unlock()
	var j *zonestore.Journal = s.cfg.Journal
	if j != nil {
		v, b := j.Stats()
		ch <- prometheus.MustNewConstMetric(descJournalVersions, prometheus.GaugeValue, float64(v))
		ch <- prometheus.MustNewConstMetric(descJournalBytes, prometheus.GaugeValue, float64(b))
	}
}
