package server

import (
	"encoding/hex"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// nsidOf returns the NSID option of r's OPT, decoded, and whether there
// was one.
func nsidOf(r *dns.Msg) (string, bool) {
	o := r.IsEdns0()
	if o == nil {
		return "", false
	}
	for _, opt := range o.Option {
		if n, ok := opt.(*dns.EDNS0_NSID); ok {
			b, _ := hex.DecodeString(n.Nsid)
			return string(b), true
		}
	}
	return "", false
}

// withNSID is a query as dig +nsid sends it: EDNS with an empty NSID
// option.
func withNSID(name string, qtype uint16) *dns.Msg {
	m := query(name, qtype, true)
	o := m.IsEdns0()
	o.Option = append(o.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	return m
}

// TestNSID (RFC 5001): a query carrying the NSID option gets ours over UDP
// (the fast path hands it to the full handler) and TCP, on answers, on
// errors (REFUSED, NXDOMAIN) and on forwarded answers; a query without it
// gets none; without a configured NSID none is sent.
func TestNSID(t *testing.T) {
	s := startServer(t, Config{NSID: []byte("dns-a.example"), Forwarder: &fakeForwarder{rules: map[string]bool{".": true}}})
	for _, netw := range []string{"udp", "tcp"} {
		for _, q := range []struct {
			name  string
			qtype uint16
			rcode int
		}{
			{"www.example.org.", dns.TypeA, dns.RcodeSuccess},
			{"nope.example.org.", dns.TypeA, dns.RcodeNameError},
			{"www.example.org.", dns.TypeANY, dns.RcodeSuccess},
			{"www.example.org.", dns.TypeAXFR, dns.RcodeRefused},
		} {
			r := exchange(t, netw, s.udp, withNSID(q.name, q.qtype))
			if netw == "tcp" {
				r = exchange(t, netw, s.tcp, withNSID(q.name, q.qtype))
			}
			if r.Rcode != q.rcode {
				t.Errorf("%s %s %s: rcode %s", netw, q.name, dns.TypeToString[q.qtype], dns.RcodeToString[r.Rcode])
			}
			if id, ok := nsidOf(r); !ok || id != "dns-a.example" {
				t.Errorf("%s %s %s: NSID %q (present %v), want dns-a.example", netw, q.name, dns.TypeToString[q.qtype], id, ok)
			}
		}
		if _, ok := nsidOf(exchange(t, netw, map[string]string{"udp": s.udp, "tcp": s.tcp}[netw], query("www.example.org.", dns.TypeA, true))); ok {
			t.Errorf("%s: NSID sent to a query that did not ask", netw)
		}
	}
	plain := startServer(t, Config{})
	if _, ok := nsidOf(exchange(t, "udp", plain.udp, withNSID("www.example.org.", dns.TypeA))); ok {
		t.Error("NSID sent without one configured")
	}
}

// TestNSIDFastPath: the fast path does not answer a query asking for NSID
// when one is configured (its builder has no NSID); it still answers the
// same query without the option, with no allocation.
func TestNSIDFastPath(t *testing.T) {
	s := newFuzzServer(t)
	s.cfg.NSID = []byte("x")
	ip := netip.MustParseAddr("192.0.2.1")
	out := make([]byte, 0, 2048)
	var scratch [512]byte
	pkt, _ := withNSID("www.example.org.", dns.TypeA).Pack()
	if _, act := s.fastUDP(pkt, ip, out, &scratch, time.Time{}); act != fastSlow {
		t.Fatalf("fast path took a query asking for NSID: %v", act)
	}
	req, rc := checkQuery(pkt)
	if rc != rcodeAccept {
		t.Fatalf("verdict %d", rc)
	}
	w := &recorder{remote: &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5353}}
	s.ServeDNS(w, req)
	if id, ok := nsidOf(w.msg); !ok || id != "x" {
		t.Fatalf("handler NSID %q %v", id, ok)
	}
	plain, _ := query("www.example.org.", dns.TypeA, true).Pack()
	if _, act := s.fastUDP(plain, ip, out, &scratch, time.Time{}); act != fastReply {
		t.Fatalf("fast path refused a query without NSID: %v", act)
	}
	if n := testing.AllocsPerRun(200, func() { s.fastUDP(plain, ip, out, &scratch, time.Time{}) }); n != 0 {
		t.Fatalf("fast path allocates %v times per query without NSID, with an NSID configured", n)
	}
	// Without a configured NSID the option is opaque and the fast path
	// answers (as before).
	s.cfg.NSID = nil
	if _, act := s.fastUDP(pkt, ip, out, &scratch, time.Time{}); act != fastReply {
		t.Fatalf("fast path without NSID configured: %v", act)
	}
}

// TestHealthProbeNotCounted: our probe is answered and not counted; the
// same option with another nonce is an ordinary (counted) query.
func TestHealthProbeNotCounted(t *testing.T) {
	s := startServer(t, Config{})
	before := s.stats.Queries.Load()
	for _, netw := range []string{"udp", "tcp"} {
		addr := s.udp
		if netw == "tcp" {
			addr = s.tcp
		}
		if r := exchange(t, netw, addr, s.HealthProbe()); r.Rcode != dns.RcodeSuccess {
			t.Errorf("%s probe: %s", netw, dns.RcodeToString[r.Rcode])
		}
	}
	if n := s.stats.Queries.Load() - before; n != 0 {
		t.Errorf("health probes counted as %d queries", n)
	}
	forged := s.HealthProbe()
	forged.IsEdns0().Option[0].(*dns.EDNS0_LOCAL).Data = []byte("guess")
	exchange(t, "udp", s.udp, forged)
	if n := s.stats.Queries.Load() - before; n != 1 {
		t.Errorf("a forged probe counted as %d queries, want 1", n)
	}
}

// TestViewAllowQuery: a view's allow_query refuses the view's other
// clients, over UDP (the fast path defers to the handler) and TCP; a view
// without one, or a client it holds, is answered.
func TestViewAllowQuery(t *testing.T) {
	for _, tc := range []struct {
		allow []netip.Prefix
		want  int
	}{
		{nil, dns.RcodeSuccess},
		{[]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, dns.RcodeSuccess},
		{[]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, dns.RcodeRefused},
		{[]netip.Prefix{}, dns.RcodeRefused},
	} {
		s := startServer(t, Config{Views: []View{{Name: "in", Clients: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, AllowQuery: tc.allow}}})
		for _, netw := range []string{"udp", "tcp"} {
			addr := map[string]string{"udp": s.udp, "tcp": s.tcp}[netw]
			r := exchange(t, netw, addr, query("www.example.org.", dns.TypeA, false))
			if r.Rcode != tc.want {
				t.Errorf("allow_query %v, %s: %s, want %s", tc.allow, netw, dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.want])
			}
		}
	}
}
