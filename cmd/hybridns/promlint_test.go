package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"hybridns/forwarder"
	"hybridns/r53"
	"hybridns/server"
	"hybridns/zonestore"
)

// TestMetricsPassPromlint gathers the registry /metrics serves, with every
// collector producing series (a zone, a forwarder that has answered, the
// Route 53 collector), and lints it as `promtool check metrics` does.
func TestMetricsPassPromlint(t *testing.T) {
	d := testDaemon(t)
	srv, err := server.New(server.Config{Store: d.store, Listen: []string{"127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	d.srv = srv
	z, err2 := zonestore.ParseZone(strings.NewReader(statusZone), "corp.example.", "corp.example.zone")
	if err2 != nil {
		t.Fatal(err2)
	}
	d.store.PutZone(zonestore.DefaultView, z)
	up, _ := testUpstream(t, "192.0.2.1")
	f, err := forwarder.New(forwarder.Config{Rules: []forwarder.Rule{{Suffix: ".", Upstreams: []string{up}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := new(dns.Msg)
	m.SetQuestion("www.example.org.", dns.TypeA)
	if _, err := f.Resolve(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	// One client query, and /healthz's self-queries, which must not count.
	udp, _ := srv.Addrs()
	q := new(dns.Msg)
	q.SetQuestion("www.corp.example.", dns.TypeA)
	if _, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(q, udp[0].String()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := d.selfQuery(); err != nil {
			t.Fatal(err)
		}
	}
	reg := newRegistry(d.srv, func() *forwarder.Forwarder { return f }, d.store, nil, &d.api)
	reg.MustRegister(&r53Collector{api: &r53.APICounters{}})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	names := map[string]bool{}
	queries := 0.0
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetName() == "hybridns_queries_total" {
			for _, m := range mf.GetMetric() {
				queries += m.GetCounter().GetValue()
			}
		}
	}
	if queries != 1 {
		t.Errorf("hybridns_queries_total sums to %v after one client query and three health probes, want 1", queries)
	}
	for _, want := range []string{"hybridns_upstream_rtt_seconds_total", "hybridns_queries_total", "hybridns_zone_records", "hybridns_cache_entries"} {
		if !names[want] {
			t.Errorf("metric %s not gathered", want)
		}
	}
}
