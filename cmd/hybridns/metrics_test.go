package main

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"hybridns/r53"
)

// TestRoute53OKCountedDirectly: the "ok" series is its own counter. Read
// mid-update the totals can disagree (an error already counted, its
// request not yet); subtracting them used to wrap to 2^64-1.
func TestRoute53OKCountedDirectly(t *testing.T) {
	api := &r53.APICounters{}
	api.OK.Store(5)
	api.Errors.Store(2)
	api.Throttled.Store(1)
	api.Requests.Store(7) // one attempt's outcome is in, its request not yet
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(&r53Collector{api: api})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					got[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	if got["ok"] != 5 || got["error"] != 2 || got["throttled"] != 1 {
		t.Fatalf("route53 requests by outcome: %v", got)
	}
}
