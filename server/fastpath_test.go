package server

import (
	"net"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/zonestore"
)

// canon renders a reply for comparison: header flags, rcode, and every
// section sorted, names lower-cased (the fast path writes the question's
// spelling into the answer owner through a pointer; dns.Msg writes the
// zone's).
func canon(m *dns.Msg) string {
	var b strings.Builder
	h := m.MsgHdr
	b.WriteString(strings.Join([]string{dns.RcodeToString[m.Rcode],
		flag(h.Authoritative, "aa"), flag(h.Truncated, "tc"), flag(h.RecursionDesired, "rd"),
		flag(h.RecursionAvailable, "ra"), flag(h.CheckingDisabled, "cd"), flag(h.Response, "qr")}, " "))
	b.WriteString("\nQ " + m.Question[0].String())
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		var lines []string
		for _, rr := range sec {
			lines = append(lines, strings.ToLower(rr.String()))
		}
		sort.Strings(lines)
		b.WriteString("\n--\n" + strings.Join(lines, "\n"))
	}
	return b.String()
}

func flag(on bool, name string) string {
	if on {
		return name
	}
	return "-"
}

// bothPaths answers pkt with the fast path and with the full handler. ok is
// false when the fast path declined.
func bothPaths(t testing.TB, s *Server, pkt []byte, from *net.UDPAddr) (fast, slow *dns.Msg, ok bool) {
	var scratch [512]byte
	ip, _ := netip.AddrFromSlice(from.IP)
	resp, act := s.fastUDP(pkt, ip, make([]byte, 0, 2048), &scratch, time.Now())
	if act != fastReply {
		return nil, nil, false
	}
	fast = new(dns.Msg)
	if err := fast.Unpack(resp); err != nil {
		t.Fatalf("fast path reply does not unpack: %v", err)
	}
	req, rc := checkQuery(pkt)
	if rc != rcodeAccept {
		t.Fatalf("fast path answered a packet the parser refuses (verdict %d)", rc)
	}
	w := &recorder{remote: from}
	s.ServeDNS(w, req)
	return fast, w.msg, true
}

func TestFastPathMatchesHandler(t *testing.T) {
	s := newFuzzServer(t)
	type q struct {
		name  string
		qtype uint16
		edns  bool
		do    bool
		rd    bool
		fast  bool // the fast path must take it
	}
	queries := []q{
		{"www.example.org.", dns.TypeA, false, false, false, true},
		{"WwW.ExAmPle.OrG.", dns.TypeA, true, false, false, true},
		{"www.example.org.", dns.TypeA, true, true, true, true},
		{"www.example.org.", dns.TypeAAAA, true, false, false, true},
		{"nope.example.org.", dns.TypeA, true, false, false, true},
		{"nope.example.org.", dns.TypeA, false, false, true, true},
		{"alias.example.org.", dns.TypeA, true, false, false, true},
		{"alias.example.org.", dns.TypeCNAME, true, false, false, true},
		{"out.example.org.", dns.TypeA, true, false, false, true}, // no RD: no chase
		{"ext.example.org.", dns.TypeA, false, false, false, true},
		{"x.sub.example.org.", dns.TypeA, true, false, false, true},
		{"sub.example.org.", dns.TypeNS, false, false, false, true},
		{"ns.sub.example.org.", dns.TypeA, true, false, false, true},
		{"example.org.", dns.TypeSOA, true, false, false, true},
		{"example.org.", dns.TypeNS, true, false, false, true},
		{"many.big.test.", dns.TypeA, true, false, false, true},
		{"a.wild.example.org.", dns.TypeA, true, false, false, true},
		{"intosub.example.org.", dns.TypeA, true, false, false, true},
		{"deep.x.sub.example.org.", dns.TypeAAAA, false, false, false, true},
		{"nope.wild2.example.org.", dns.TypeA, true, false, false, true},
		{"A.B.Wild.example.org.", dns.TypeA, false, false, false, true},
		{"a.wild.example.org.", dns.TypeTXT, true, false, false, true},
		{"x.cw.example.org.", dns.TypeA, true, false, false, true},
		{"chain.example.org.", dns.TypeA, true, false, false, false}, // wildcard link inside a chain
		{"mx.example.org.", dns.TypeMX, true, false, false, true},
		{"many.big.test.", dns.TypeA, false, false, false, false}, // needs TC: full handler
		{"www.example.org.", dns.TypeANY, true, false, false, false},
		{"www.example.org.", dns.TypeDS, true, false, false, false},
		{"ext.example.org.", dns.TypeA, true, false, true, false}, // RD from a recursive client: chase
		{"unknown.test.", dns.TypeA, true, false, true, false},    // forwarded
	}
	local := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
	for _, tc := range queries {
		t.Run(tc.name+"/"+dns.TypeToString[tc.qtype], func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(tc.name, tc.qtype)
			m.RecursionDesired = tc.rd
			if tc.edns {
				m.SetEdns0(1232, tc.do)
			}
			pkt, _ := m.Pack()
			fast, slow, ok := bothPaths(t, s, pkt, local)
			if ok != tc.fast {
				t.Fatalf("fast path taken = %v, want %v", ok, tc.fast)
			}
			if !ok {
				return
			}
			if fast.Id != m.Id || fast.Question[0].Name != tc.name {
				t.Errorf("id/question not echoed: %v", fast)
			}
			if canon(fast) != canon(slow) {
				t.Fatalf("fast path differs from the handler:\nfast:\n%s\nslow:\n%s", canon(fast), canon(slow))
			}
		})
	}
	// A client outside allow_recursion asking for an unknown name gets
	// REFUSED from the fast path.
	m := new(dns.Msg)
	m.SetQuestion("unknown.test.", dns.TypeA)
	pkt, _ := m.Pack()
	fast, slow, ok := bothPaths(t, s, pkt, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5353})
	if !ok || fast.Rcode != dns.RcodeRefused || canon(fast) != canon(slow) {
		t.Fatalf("refused: ok=%v\n%v\n%v", ok, fast, slow)
	}
}

func TestFastPathZeroAlloc(t *testing.T) {
	s := newFuzzServer(t)
	m := new(dns.Msg)
	m.SetQuestion("www.example.org.", dns.TypeA)
	m.SetEdns0(1232, false)
	pkt, _ := m.Pack()
	out := make([]byte, 0, 2048)
	from := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5353}
	var scratch [512]byte
	ip, _ := netip.AddrFromSlice(from.IP)
	if n := testing.AllocsPerRun(200, func() { s.fastUDP(pkt, ip, out, &scratch, time.Time{}) }); n != 0 {
		t.Fatalf("fast path allocates %v times per query", n)
	}
}

// FuzzFastPath: whenever the fast path answers a packet, the full handler
// must give the same reply.
func FuzzFastPath(f *testing.F) {
	for _, name := range []string{"www.example.org.", "alias.example.org.", "nope.example.org.", "x.sub.example.org.", "many.big.test.", "a.wild.example.org.", "mx.example.org.", "intosub.example.org."} {
		for _, edns := range []bool{false, true} {
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			if edns {
				m.SetEdns0(1232, true)
			}
			b, _ := m.Pack()
			f.Add(b, false)
		}
	}
	valid := validSeeds()
	for _, b := range malformedSeeds(valid) {
		f.Add(b, false)
		f.Add(b, true)
	}
	s := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, pkt []byte, remote bool) {
		from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
		if remote {
			from = &net.UDPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 5353}
		}
		fast, slow, ok := bothPaths(t, s, pkt, from)
		if !ok {
			return
		}
		if canon(fast) != canon(slow) {
			t.Fatalf("fast path differs:\n%s\n---\n%s", canon(fast), canon(slow))
		}
		if n := s.Panics(); n != 0 {
			t.Fatalf("%d panics recovered", n)
		}
	})
}

func BenchmarkFastPath(b *testing.B) {
	s := newFuzzServer(b)
	for _, name := range []string{"www.example.org.", "nope.example.org.", "alias.example.org.", "x.sub.example.org."} {
		b.Run(name, func(b *testing.B) {
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			m.SetEdns0(1232, false)
			pkt, _ := m.Pack()
			out := make([]byte, 0, 2048)
			from := netip.MustParseAddr("192.0.2.1")
			var scratch [512]byte
			b.ReportAllocs()
			for b.Loop() {
				s.fastUDP(pkt, from, out, &scratch, time.Time{})
			}
		})
	}
}

// TestFastPathPolicies: alias and routing-policy answers from the fast path
// equal the full handler's (deterministic policies only, so both choose the
// same record set), and an alias to an outside resource goes to the full
// handler, which resolves it.
func TestFastPathPolicies(t *testing.T) {
	b := zonestore.NewBuilder("pol.test.")
	for _, s := range []string{"pol.test. 900 IN SOA ns hm 1 2 3 4 900", "pol.test. 172800 IN NS ns.pol.test.", "www.pol.test. 300 IN A 192.0.2.1"} {
		rr, _ := dns.NewRR(s)
		b.Add(rr)
	}
	a := func(s string) []dns.RR { rr, _ := dns.NewRR(s); return []dns.RR{rr} }
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.AddVariant("pol.test.", dns.TypeA, zonestore.PolicySimple, zonestore.Variant{Alias: &zonestore.Alias{Target: "www.pol.test."}}))
	must(b.AddVariant("f.pol.test.", dns.TypeA, zonestore.PolicyFailover, zonestore.Variant{ID: "p", Failover: zonestore.FailoverPrimary, HealthCheck: "hc", RRs: a("f.pol.test. 60 IN A 10.0.0.1")}))
	must(b.AddVariant("f.pol.test.", dns.TypeA, zonestore.PolicyFailover, zonestore.Variant{ID: "s", Failover: zonestore.FailoverSecondary, RRs: a("f.pol.test. 60 IN A 10.0.0.2")}))
	must(b.AddVariant("lb.pol.test.", dns.TypeA, zonestore.PolicySimple, zonestore.Variant{Alias: &zonestore.Alias{Target: "my-lb.elb.example.", External: true}}))
	cn, _ := dns.NewRR("app.pol.test. 60 IN CNAME lb.pol.test.")
	must(b.Add(cn))
	z, err := b.Build()
	must(err)
	store := zonestore.NewStore()
	store.PutZone(zonestore.DefaultView, z)
	down := false
	s, err := New(Config{Store: store, Forwarder: &fakeForwarder{rules: map[string]bool{".": true}},
		Routing: zonestore.Client{Healthy: func(string) bool { return !down }}})
	must(err)
	s.baseCtx, s.cancel = t.Context(), func() {}
	from := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 9), Port: 5353} // not a recursion client
	for _, tc := range []struct {
		name string
		down bool
		want string
	}{{"POL.test.", false, "192.0.2.1"}, {"f.pol.test.", false, "10.0.0.1"}, {"f.pol.test.", true, "10.0.0.2"}} {
		down = tc.down
		m := new(dns.Msg)
		m.SetQuestion(tc.name, dns.TypeA)
		m.SetEdns0(1232, false)
		pkt, _ := m.Pack()
		fast, slow, ok := bothPaths(t, s, pkt, from)
		if !ok {
			t.Fatalf("%s: fast path declined", tc.name)
		}
		if canon(fast) != canon(slow) || fast.Answer[0].(*dns.A).A.String() != tc.want || !fast.Authoritative {
			t.Fatalf("%s:\nfast %s\nslow %s", tc.name, canon(fast), canon(slow))
		}
	}
	m := new(dns.Msg)
	m.SetQuestion("lb.pol.test.", dns.TypeA)
	pkt, _ := m.Pack()
	if _, _, ok := bothPaths(t, s, pkt, from); ok {
		t.Fatal("external alias taken by the fast path")
	}
	w := &recorder{remote: from}
	s.ServeDNS(w, m)
	if len(w.msg.Answer) != 1 || w.msg.Answer[0].Header().Name != "lb.pol.test." || !w.msg.Authoritative || w.msg.Answer[0].(*dns.A).A.String() != "203.0.113.7" {
		t.Fatalf("external alias: %v", w.msg)
	}
	// A CNAME to that alias: the authority gives the CNAME (fast path and
	// handler agree); a recursive client gets the whole chain, the
	// resource's address owned by the alias name.
	m = new(dns.Msg)
	m.SetQuestion("app.pol.test.", dns.TypeA)
	pkt, _ = m.Pack()
	fast, slow, ok := bothPaths(t, s, pkt, from)
	if !ok || canon(fast) != canon(slow) || len(fast.Answer) != 1 || fast.Answer[0].Header().Rrtype != dns.TypeCNAME {
		t.Fatalf("CNAME to an outside alias, authoritative: ok=%v\n%v\n%v", ok, fast, slow)
	}
	m.RecursionDesired = true
	w = &recorder{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}
	s.ServeDNS(w, m)
	if len(w.msg.Answer) != 2 || w.msg.Answer[1].Header().Name != "lb.pol.test." || w.msg.Answer[1].(*dns.A).A.String() != "203.0.113.7" {
		t.Fatalf("CNAME to an outside alias, recursive: %v", w.msg)
	}
}
