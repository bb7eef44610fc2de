package server

import (
	"testing"

	"github.com/miekg/dns"

	"hybridns/zonestore"
)

// TestUnavailableZoneServFail: a zone that is ours but has never loaded
// answers SERVFAIL (not authoritative) over the UDP fast path and TCP, with
// and without EDNS and RD, and nothing of it goes to the forwarder, even
// with a default forwarding rule.
func TestUnavailableZoneServFail(t *testing.T) {
	fwd := &fakeForwarder{rules: map[string]bool{".": true}}
	store := zonestore.NewStore()
	store.PutZone(zonestore.DefaultView, parse(t, testZone, "example.org."))
	store.PutZone(zonestore.DefaultView, zonestore.Unavailable("corp.example.", "corp.example.zone"))
	ts := startServer(t, Config{Store: store, Forwarder: fwd})
	for _, netw := range []string{"udp", "tcp"} {
		addr := ts.udp
		if netw == "tcp" {
			addr = ts.tcp
		}
		for _, name := range []string{"corp.example.", "www.corp.example.", "WWW.Corp.Example."} {
			for _, qtype := range []uint16{dns.TypeA, dns.TypeSOA, dns.TypeDS, dns.TypeANY} {
				for _, edns := range []bool{false, true} {
					for _, rd := range []bool{false, true} {
						m := query(name, qtype, edns)
						m.RecursionDesired = rd
						r := exchange(t, netw, addr, m)
						if r.Rcode != dns.RcodeServerFailure || r.Authoritative || len(r.Answer)+len(r.Ns) != 0 {
							t.Fatalf("%s %s %s edns=%v rd=%v: %v", netw, name, dns.TypeToString[qtype], edns, rd, r)
						}
					}
				}
			}
		}
	}
	if n := fwd.queries.Load(); n != 0 {
		t.Fatalf("%d queries for a claimed zone went to the forwarder", n)
	}
	// The rest is unaffected.
	if r := exchange(t, "udp", ts.udp, query("www.example.org.", dns.TypeA, false)); r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		t.Fatalf("%v", r)
	}
}
