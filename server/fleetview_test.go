package server

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/zonestore"
)

// The hidden fleet view is handed out only under a rule for every view
// ("*") with a key: AXFR and the signed SOA check of a follower; plain
// queries and other rules never see it, and a fleet zone shadows nothing.
func TestFleetViewOnlyForAnyViewKeyedRules(t *testing.T) {
	store := zonestore.NewStore()
	fz := numberedZone(t, "f1.fleet.hybridns.", 9, 3)
	store.PutZone(zonestore.FleetView, fz)
	pub := numberedZone(t, "catalog.hybridns.", 1, 1)
	store.PutZone(zonestore.DefaultView, pub)
	fcat := numberedZone(t, "catalog.hybridns.", 2, 2)
	store.PutZone(zonestore.FleetView, fcat)
	ts := startServer(t, Config{Store: store, TSIGKeys: xfrKeys()})
	set := func(view string) {
		t.Helper()
		if err := ts.Reconfigure(Policy{TSIGKeys: xfrKeys(), Transfer: []TransferRule{{Keys: []string{xfrKeyName}, View: view}}}); err != nil {
			t.Fatal(err)
		}
	}
	signedSOA := func(name string) *dns.Msg {
		t.Helper()
		m := query(name, dns.TypeSOA, false)
		m.SetTsig(xfrKeyName, dns.HmacSHA256, 300, time.Now().Unix())
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second, TsigSecret: map[string]string{xfrKeyName: xfrSecret}}
		r, _, err := c.Exchange(m, ts.udp)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	// A rule for the default view: no fleet zone, the public catalog.
	set("")
	if _, _, err := transfer(t, ts.tcp, axfrMsg("f1.fleet.hybridns.", xfrKeyName)); err == nil {
		t.Fatal("a fleet zone was transferred under a rule for the default view")
	}
	if rrs, _, err := transfer(t, ts.tcp, axfrMsg("catalog.hybridns.", xfrKeyName)); err != nil || rrs[0].(*dns.SOA).Serial != 1 {
		t.Fatalf("the default view's catalog: %v %v", rrs, err)
	}
	if r := signedSOA("f1.fleet.hybridns."); len(r.Answer) > 0 {
		t.Fatalf("signed SOA under a default-view rule answered from the fleet view: %v", r)
	}

	// A rule for every view with a key: the fleet view first.
	set(AnyView)
	rrs, _, err := transfer(t, ts.tcp, axfrMsg("f1.fleet.hybridns.", xfrKeyName))
	if err != nil || len(rrs) != len(fz.RRs())+1 {
		t.Fatalf("fleet zone AXFR: %d records, %v", len(rrs), err)
	}
	if rrs, _, err := transfer(t, ts.tcp, axfrMsg("catalog.hybridns.", xfrKeyName)); err != nil || rrs[0].(*dns.SOA).Serial != 2 {
		t.Fatalf("the fleet catalog: %v %v", rrs, err)
	}
	if r := signedSOA("f1.fleet.hybridns."); len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != 9 || !r.Authoritative {
		t.Fatalf("signed SOA check: %v", r)
	}
	// Unsigned: neither a transfer nor a query reaches the fleet view.
	if _, _, err := transfer(t, ts.tcp, axfrMsg("f1.fleet.hybridns.", "")); err == nil {
		t.Fatal("an unsigned AXFR got a fleet zone")
	}
	if r := exchange(t, "udp", ts.udp, query("f1.fleet.hybridns.", dns.TypeSOA, false)); len(r.Answer) > 0 || r.Authoritative {
		t.Fatalf("a plain query was answered from the fleet view: %v", r)
	}
	if r := exchange(t, "udp", ts.udp, query("catalog.hybridns.", dns.TypeSOA, false)); len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != 1 {
		t.Fatalf("a plain query for the catalog: %v", r)
	}
}
