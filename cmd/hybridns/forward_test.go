package main

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"hybridns/forwarder"
)

func TestForwardingRanges(t *testing.T) {
	c, err := parseConfig([]byte(`
listen: ["127.0.0.1:5300"]
cache: {entries: -2, max_bytes: -5, prefetch: -2, min_ttl: -1s, max_ttl: -1s, negative_max_ttl: -1s, servfail_ttl: -2s, stale_ttl: -2s}
upstream: {timeout: -1s, deadline: -1s, health_check_interval: -1s, max_in_flight: -1, max_in_flight_per_upstream: -1, fetches_per_zone: -1, max_fails: -1}
`), "cfg.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = c.validate()
	if err == nil {
		t.Fatal("negative values accepted")
	}
	for _, key := range []string{"cache.entries", "cache.max_bytes", "cache.prefetch", "cache.min_ttl", "cache.max_ttl", "cache.negative_max_ttl",
		"cache.servfail_ttl", "cache.stale_ttl", "upstream.timeout", "upstream.deadline", "upstream.health_check_interval",
		"upstream.max_in_flight ", "upstream.max_in_flight_per_upstream", "upstream.fetches_per_zone", "upstream.max_fails"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s:\n%v", strings.TrimSpace(key), err)
		}
	}

	c, _ = parseConfig([]byte("cache: {max_bytes: 1000}\n"), "cfg.yaml")
	if errs := c.checkRanges(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "cache.max_bytes") {
		t.Errorf("tiny max_bytes: %v", errs)
	}
	c, _ = parseConfig([]byte("cache: {max_bytes: 67108864}\nupstream: {max_fails: 0, fetches_per_zone: 50}\n"), "cfg.yaml")
	if errs := c.checkRanges(); len(errs) != 0 {
		t.Errorf("valid values rejected: %v", errs)
	}
}

func TestMaxFailsMapping(t *testing.T) {
	n := func(v int) *int { return &v }
	for _, tc := range []struct {
		in   *int
		want int
	}{{nil, 0}, {n(0), -1}, {n(1), 1}, {n(5), 5}} {
		if got := forwarderMaxFails(&Config{Upstream: UpstreamConfig{MaxFails: tc.in}}); got != tc.want {
			t.Errorf("max_fails %v: forwarder MaxFails %d, want %d", tc.in, got, tc.want)
		}
	}
}

// upstream is an in-process DNS server on 127.0.0.1:0 answering A with ip.
func testUpstream(t *testing.T, ip string) (string, *atomic.Int64) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := new(atomic.Int64)
	var started sync.WaitGroup
	started.Add(1)
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: started.Done, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Name != "." {
			n.Add(1)
			rr, _ := dns.NewRR(r.Question[0].Name + " 300 IN A " + ip)
			m.Answer = []dns.RR{rr}
		}
		_ = w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	started.Wait()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String(), n
}

// A reload that changes cache or upstream settings keeps the cache; a
// name whose rule changed is asked anew.
func TestReloadKeepsCache(t *testing.T) {
	def, defN := testUpstream(t, "192.0.2.1")
	corpA, _ := testUpstream(t, "192.0.2.2")
	corpB, corpBN := testUpstream(t, "192.0.2.3")
	off := false
	cfg := &Config{ForwardDefault: []string{def}, Forward: []ForwardRule{{Zone: "corp.example", Upstreams: []string{corpA}}}, AWS: AWSConfig{BuiltinRules: &off}}
	first, err := buildForwarder(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	ask := func(f forwarderCloser, name string) string {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		r, err := f.(*forwarder.Forwarder).Resolve(context.Background(), m)
		if err != nil || len(r.Answer) != 1 {
			t.Fatalf("%s: %v %v", name, err, r)
		}
		return r.Answer[0].(*dns.A).A.String()
	}
	ask(first, "www.example.org.")
	ask(first, "host.corp.example.")

	next := *cfg
	next.Cache.Entries = 5000
	next.Upstream.FetchesPerZone = 10
	next.Forward = []ForwardRule{{Zone: "corp.example", Upstreams: []string{corpB}}}
	if sameForwarding(cfg, &next) {
		t.Fatal("changed settings judged the same")
	}
	second, err := rebuildForwarder(&next, nil, first)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if ip := ask(second, "www.example.org."); ip != "192.0.2.1" || defN.Load() != 1 {
		t.Errorf("after reload: %s, default upstream queries %d; want the cached answer (1 query)", ip, defN.Load())
	}
	if ip := ask(second, "host.corp.example."); ip != "192.0.2.3" || corpBN.Load() != 1 {
		t.Errorf("name whose rule changed: %s from the cache, want the new upstream's", ip)
	}
	if st := second.(*forwarder.Forwarder).Stats(); st.CacheHits != 1 {
		t.Errorf("cache hits %d after reload, want 1", st.CacheHits)
	}
}

func TestForwarderMetrics(t *testing.T) {
	f, err := forwarder.New(forwarder.Config{Rules: []forwarder.Rule{{Suffix: ".", Upstreams: []string{"192.0.2.1:53"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(&forwarderCollector{f: func() *forwarder.Forwarder { return f }})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range []string{"hybridns_cache_evictions_total", "hybridns_cache_bytes", "hybridns_forward_shed_total", "hybridns_cache_entries"} {
		if !got[name] {
			t.Errorf("metric %s missing", name)
		}
	}
}
