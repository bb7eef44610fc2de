package server

import (
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Query metrics are plain atomic counters indexed by (view, path, rcode,
// qtype), turned into Prometheus series only when scraped: the hot path
// pays one atomic add per query, never a label lookup.

// Paths a query can take.
const (
	pathAuthoritative = iota
	pathForwarded
	pathCache
	pathRefused
	pathError
	numPaths
)

var pathNames = [numPaths]string{"authoritative", "forwarded", "cache", "refused", "error"}

// Query types counted by name; the rest are "other".
var countedTypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeMX, dns.TypeNS, dns.TypeSOA, dns.TypeTXT,
	dns.TypePTR, dns.TypeSRV, dns.TypeANY, dns.TypeDS, dns.TypeDNSKEY, dns.TypeHTTPS, dns.TypeSVCB, dns.TypeCAA}

var typeIndex = func() [256]uint8 {
	var idx [256]uint8
	for i := range idx {
		idx[i] = uint8(len(countedTypes)) // other
	}
	for i, t := range countedTypes {
		if t < 256 {
			idx[t] = uint8(i)
		}
	}
	return idx
}()

func qtypeIndex(t uint16) int {
	switch {
	case t < 256:
		return int(typeIndex[t])
	case t == dns.TypeCAA:
		return len(countedTypes) - 1
	}
	return len(countedTypes)
}

const (
	numTypes  = 16 // countedTypes + other
	numRcodes = 17 // 0..15, and 16 for BADVERS and above
)

// latencyBuckets are the histogram bounds in seconds: tens of microseconds
// for authoritative answers up to seconds for slow upstreams.
var latencyBuckets = []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5}

// maxViews bounds the views metrics tell apart; views beyond it (after many
// reloads that rename views) share the last slot.
const maxViews = 64

type queryMetrics struct {
	mu     sync.Mutex
	views  []string // index 0 is the default view; grows, never shrinks
	counts []atomic.Uint64
	hist   [numPaths][]atomic.Uint64 // per bucket, plus +Inf
	sum    [numPaths]atomic.Uint64   // nanoseconds

	panics      atomic.Uint64 // recovered panics (hybridns_panics_total)
	panicLogged atomic.Int64  // unix nanoseconds of the last one logged
}

func newQueryMetrics() *queryMetrics {
	m := &queryMetrics{views: []string{"default"}}
	m.counts = make([]atomic.Uint64, maxViews*numPaths*numRcodes*numTypes)
	for p := range m.hist {
		m.hist[p] = make([]atomic.Uint64, len(latencyBuckets)+1)
	}
	return m
}

// viewIndex returns the counter slot of a view, adding it if new.
func (m *queryMetrics) viewIndex(name string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, v := range m.views {
		if v == name {
			return i
		}
	}
	if len(m.views) == maxViews {
		return maxViews - 1
	}
	m.views = append(m.views, name)
	return len(m.views) - 1
}

// logQuery writes a query-log line for a sample of queries.
func (s *Server) logQuery(client netip.Addr, qname string, qtype uint16, rcode, path int, d time.Duration) {
	sample := s.queryLogSample()
	if s.cfg.QueryLog == nil || sample <= 0 || (sample < 1 && rand.Float64() >= sample) {
		return
	}
	s.cfg.QueryLog.Info("query", slog.String("client", client.String()), slog.String("name", strings.Clone(qname)),
		slog.String("type", dns.TypeToString[qtype]), slog.String("rcode", dns.RcodeToString[rcode]),
		slog.String("path", pathNames[path]), slog.Duration("duration", d))
}

func (m *queryMetrics) observe(view, path, rcode int, qtype uint16, d time.Duration) {
	rcode = min(max(rcode, 0), numRcodes-1)
	m.counts[((view*numPaths+path)*numRcodes+rcode)*numTypes+qtypeIndex(qtype)].Add(1)
	s := d.Seconds()
	b := 0
	for b < len(latencyBuckets) && s > latencyBuckets[b] {
		b++
	}
	m.hist[path][b].Add(1)
	m.sum[path].Add(uint64(d))
}

// Collector returns the server's Prometheus collector.
func (s *Server) Collector() prometheus.Collector { return (*serverCollector)(s) }

type serverCollector Server

var (
	descQueries = prometheus.NewDesc("hybridns_queries_total", "DNS queries answered, by client view, path, response code and query type.",
		[]string{"view", "path", "rcode", "qtype"}, nil)
	descLatency = prometheus.NewDesc("hybridns_query_duration_seconds", "Time from a query's arrival to its reply, by path.",
		[]string{"path"}, nil)
	descCounter = prometheus.NewDesc("hybridns_server_events_total", "Server events: truncated replies, write errors, forwarding loops, rate-limited replies, …",
		[]string{"event"}, nil)
	descUpdates = prometheus.NewDesc("hybridns_updates_total", "DNS UPDATE (RFC 2136) replies by response code.", []string{"rcode"}, nil)
	descTSIG    = prometheus.NewDesc("hybridns_tsig_errors_total", "Signed requests refused, by TSIG error (RFC 8945).", []string{"error"}, nil)
	descPanics  = prometheus.NewDesc("hybridns_panics_total", "Panics recovered while handling a packet (each logged with its stack, at most one a second; the query got SERVFAIL or was dropped).",
		nil, nil)
	descUDP = prometheus.NewDesc("hybridns_udp_batch_datagrams_total", "Datagrams read by recvmmsg, and the calls that read them (their ratio is the batching achieved).",
		[]string{"what"}, nil)
)

func (c *serverCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descQueries
	ch <- descLatency
	ch <- descCounter
	ch <- descUDP
	ch <- descUpdates
	ch <- descTSIG
	ch <- descPanics
}

func (c *serverCollector) Collect(ch chan<- prometheus.Metric) {
	s := (*Server)(c)
	m := s.metrics
	typeName := func(i int) string {
		if i < len(countedTypes) {
			return dns.TypeToString[countedTypes[i]]
		}
		return "other"
	}
	rcodeName := func(i int) string {
		if i == numRcodes-1 {
			return "BADVERS"
		}
		if n, ok := dns.RcodeToString[i]; ok {
			return n
		}
		return strconv.Itoa(i)
	}
	m.mu.Lock()
	views := append([]string(nil), m.views...)
	m.mu.Unlock()
	for v := range views {
		for p := 0; p < numPaths; p++ {
			for r := 0; r < numRcodes; r++ {
				for t := 0; t < numTypes; t++ {
					n := m.counts[((v*numPaths+p)*numRcodes+r)*numTypes+t].Load()
					if n == 0 {
						continue
					}
					ch <- prometheus.MustNewConstMetric(descQueries, prometheus.CounterValue, float64(n), views[v], pathNames[p], rcodeName(r), typeName(t))
				}
			}
		}
	}
	for p := 0; p < numPaths; p++ {
		buckets := make(map[float64]uint64, len(latencyBuckets))
		var cum uint64
		for b, le := range latencyBuckets {
			cum += m.hist[p][b].Load()
			buckets[le] = cum
		}
		count := cum + m.hist[p][len(latencyBuckets)].Load()
		ch <- prometheus.MustNewConstHistogram(descLatency, count, float64(m.sum[p].Load())/1e9, buckets, pathNames[p])
	}
	st := &s.stats
	for name, v := range map[string]uint64{
		"truncated": st.Truncated.Load(), "write_error": st.WriteErrors.Load(), "forwarding_loop": st.Loops.Load(),
		"formerr": st.FormErr.Load(), "servfail": st.ServFail.Load(), "fast_path": st.FastPath.Load(),
		"rrl_limited": st.RRLLimited.Load(), "rrl_slipped": st.RRLSlipped.Load(), "tcp_rejected": st.TCPRejected.Load(), "slow_path_dropped": st.SlowDropped.Load(),
	} {
		ch <- prometheus.MustNewConstMetric(descCounter, prometheus.CounterValue, float64(v), name)
	}
	for rc := range s.updates.byRcode {
		if n := s.updates.byRcode[rc].Load(); n > 0 {
			ch <- prometheus.MustNewConstMetric(descUpdates, prometheus.CounterValue, float64(n), rcodeName(rc))
		}
	}
	ch <- prometheus.MustNewConstMetric(descTSIG, prometheus.CounterValue, float64(st.TSIGBadKey.Load()), "BADKEY")
	ch <- prometheus.MustNewConstMetric(descTSIG, prometheus.CounterValue, float64(st.TSIGBadSig.Load()), "BADSIG")
	ch <- prometheus.MustNewConstMetric(descTSIG, prometheus.CounterValue, float64(st.TSIGBadTime.Load()), "BADTIME")
	ch <- prometheus.MustNewConstMetric(descUDP, prometheus.CounterValue, float64(st.UDPDatagrams.Load()), "datagrams")
	ch <- prometheus.MustNewConstMetric(descUDP, prometheus.CounterValue, float64(st.UDPBatches.Load()), "calls")
	ch <- prometheus.MustNewConstMetric(descPanics, prometheus.CounterValue, float64(m.panics.Load()))
}
