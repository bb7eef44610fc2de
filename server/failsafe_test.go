package server

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"hybridns/zonestore"
)

// Tests of the fail-safe rules: no packet stops the server, every error
// reply is built one way for both transports, one parser verdict.

func mustPack(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawTCP sends pkt as one length-prefixed message on a new connection and
// returns the reply, or nil when the server sent none before closing or
// the deadline.
func rawTCP(t *testing.T, addr string, pkt []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(pkt))), pkt...)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("cut reply: %v", err)
	}
	return b
}

func unpackReply(t *testing.T, b []byte) *dns.Msg {
	t.Helper()
	if b == nil {
		t.Fatal("no reply")
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("reply does not unpack: %v", err)
	}
	return m
}

func assertNoPanics(t *testing.T, s *Server) {
	t.Helper()
	if n := s.Panics(); n != 0 {
		t.Fatalf("%d panics recovered: a handler bug the recover hid", n)
	}
}

// TestHeaderOnlyQuery is issue 8's packet of death: a 12-byte header with
// QDCOUNT=1 and no question. Over UDP and TCP, from a client that may
// recurse and one that may not, it gets FORMERR and the server goes on.
func TestHeaderOnlyQuery(t *testing.T) {
	pkt, _ := hex.DecodeString("123401000001000000000000")
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"authoritative only", Config{}},
		{"with forwarder and RRL", Config{Forwarder: &fakeForwarder{rules: map[string]bool{".": true}}, RRL: RRLConfig{ResponsesPerSecond: 1000}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, tc.cfg)
			for _, netw := range []string{"udp", "tcp"} {
				var raw []byte
				if netw == "udp" {
					raw = rawUDP(t, ts.udp, pkt)
				} else {
					raw = rawTCP(t, ts.tcp, pkt)
				}
				r := unpackReply(t, raw)
				if r.Id != 0x1234 || !r.Response || r.Rcode != dns.RcodeFormatError || len(r.Question) != 0 || !r.RecursionDesired {
					t.Fatalf("%s: got %v", netw, r)
				}
				if got := exchange(t, netw, map[string]string{"udp": ts.udp, "tcp": ts.tcp}[netw], query("www.example.org.", dns.TypeA, true)); len(got.Answer) != 1 {
					t.Fatalf("%s: server stopped answering: %v", netw, got)
				}
			}
			assertNoPanics(t, ts.Server)
		})
	}
	// The handler itself never indexes a question that is not there, even
	// when called with such a message directly.
	s := newFuzzServer(t)
	w := &recorder{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}
	s.ServeDNS(w, &dns.Msg{MsgHdr: dns.MsgHdr{Id: 7, RecursionDesired: true}})
	if w.msg == nil || w.msg.Rcode != dns.RcodeFormatError {
		t.Fatalf("ServeDNS on a message without a question: %v", w.msg)
	}
	assertNoPanics(t, s)
}

// truncationCorpus are valid queries whose every prefix the server must
// survive: plain, EDNS, DO, EDNS options (cookie, client subnet, padding,
// a loop marker), a long name, a forwarded name, RD and CD.
func truncationCorpus() []*dns.Msg {
	var out []*dns.Msg
	add := func(name string, qtype uint16, rd bool, edns func(*dns.OPT)) {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.RecursionDesired = rd
		m.CheckingDisabled = rd
		if edns != nil {
			m.SetEdns0(1232, false)
			edns(m.IsEdns0())
		}
		out = append(out, m)
	}
	add("www.example.org.", dns.TypeA, false, nil)
	add("www.example.org.", dns.TypeA, true, func(*dns.OPT) {})
	add("Alias.Example.ORG.", dns.TypeAAAA, false, func(o *dns.OPT) { o.SetDo() })
	add("nope.example.org.", dns.TypeMX, true, func(o *dns.OPT) {
		o.Option = append(o.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	})
	add("x.sub.example.org.", dns.TypeA, true, func(o *dns.OPT) {
		o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(192, 0, 2, 0).To4()},
			&dns.EDNS0_PADDING{Padding: make([]byte, 9)})
	})
	add("www.elsewhere.net.", dns.TypeA, true, func(o *dns.OPT) {
		o.Option = append(o.Option, &dns.EDNS0_LOCAL{Code: loopOptionCode, Data: []byte("abcdefgh")})
	})
	add(strings.Repeat("a", 63)+"."+strings.Repeat("b", 63)+".example.org.", dns.TypeTXT, false, func(o *dns.OPT) {
		o.Option = append(o.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	})
	add("many.big.test.", dns.TypeA, true, nil)
	return out
}

// TestEveryTruncationKeepsServing sends every proper prefix of every query
// of the corpus to a real server over UDP and over TCP (on one connection),
// each followed by a normal query: a prefix gets FORMERR or nothing — never
// another answer, never a crash — and the normal query is always answered.
func TestEveryTruncationKeepsServing(t *testing.T) {
	ts := startServer(t, Config{Forwarder: &fakeForwarder{rules: map[string]bool{".": true}}})
	good := query("www.example.org.", dns.TypeA, false)
	good.Id = 0xBEEF
	goodWire := mustPack(t, good)
	check := func(t *testing.T, prefix []byte, id uint16, replies []*dns.Msg) {
		t.Helper()
		sawGood := false
		for _, r := range replies {
			switch {
			case r.Id == 0xBEEF && len(r.Answer) == 1:
				sawGood = true
			case r.Id == id && r.Rcode == dns.RcodeFormatError && r.Response && len(r.Answer) == 0:
			default:
				t.Fatalf("prefix %x: unexpected reply %v", prefix, r)
			}
		}
		if !sawGood {
			t.Fatalf("prefix %x: the normal query after it got no answer", prefix)
		}
	}
	n := 0
	for i, q := range truncationCorpus() {
		q.Id = uint16(0x1000 + i)
		wire := mustPack(t, q)
		t.Run(fmt.Sprintf("udp/%d", i), func(t *testing.T) {
			c, err := net.Dial("udp", ts.udp)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for l := 0; l < len(wire); l++ {
				n++
				c.Write(wire[:l])
				c.Write(goodWire)
				var replies []*dns.Msg
				buf := make([]byte, 65535)
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				for {
					k, err := c.Read(buf)
					if err != nil {
						t.Fatalf("prefix %d of %d: %v", l, len(wire), err)
					}
					r := unpackReply(t, buf[:k])
					replies = append(replies, r)
					if r.Id == 0xBEEF {
						break
					}
				}
				// A FORMERR for the prefix may come after the good reply
				// (slow path vs fast path): it is read as the next
				// round's reply and checked there.
				check(t, wire[:l], q.Id, replies)
			}
		})
		t.Run(fmt.Sprintf("tcp/%d", i), func(t *testing.T) {
			conn, err := net.Dial("tcp", ts.tcp)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			c := &dns.Conn{Conn: conn}
			for l := 0; l < len(wire); l++ {
				n++
				c.Write(wire[:l]) // dns.Conn frames it
				c.Write(goodWire)
				var replies []*dns.Msg
				conn.SetReadDeadline(time.Now().Add(2 * time.Second))
				for {
					r, err := c.ReadMsg()
					if err != nil {
						t.Fatalf("prefix %d of %d: %v", l, len(wire), err)
					}
					replies = append(replies, r)
					if r.Id == 0xBEEF {
						break
					}
				}
				check(t, wire[:l], q.Id, replies)
			}
		})
	}
	t.Logf("%d truncated queries sent", n)
	assertNoPanics(t, ts.Server)
}

// TestErrorRepliesBuiltAlike: NOTIMP, FORMERR and REFUSED replies to an
// EDNS query carry our OPT (RFC 6891 §7) over UDP and TCP, and never copy
// the request's TC, RA, AD or Z bits; as BIND, RD and CD are echoed for a
// QUERY, and another opcode gets QR alone and no question.
func TestErrorRepliesBuiltAlike(t *testing.T) {
	ts := startServer(t, Config{Forwarder: &fakeForwarder{rules: map[string]bool{"onprem.example.": true}},
		AllowRecursion: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	noisy := func(m *dns.Msg) *dns.Msg {
		m.Truncated, m.RecursionAvailable, m.AuthenticatedData, m.CheckingDisabled, m.RecursionDesired, m.Zero = true, true, true, true, true, true
		m.SetEdns0(4096, true)
		return m
	}
	opcode15 := noisy(query("www.example.org.", dns.TypeA, false))
	opcode15.Opcode = 15
	chaos := noisy(query("www.example.org.", dns.TypeA, false))
	chaos.Question[0].Qclass = dns.ClassCHAOS
	classANY := noisy(query("www.example.org.", dns.TypeA, false))
	classANY.Question[0].Qclass = dns.ClassANY
	noQuestion := noisy(query("www.example.org.", dns.TypeA, false))
	noQuestion.Question = nil
	tests := []struct {
		name     string
		msg      *dns.Msg
		rcode    int
		question bool
		rdcd     bool
	}{
		{"notimp", opcode15, dns.RcodeNotImplemented, false, false},
		{"formerr no question", noQuestion, dns.RcodeFormatError, false, true},
		{"formerr qtype OPT", noisy(query("www.example.org.", dns.TypeOPT, false)), dns.RcodeFormatError, true, true},
		{"refused class", chaos, dns.RcodeRefused, true, true},
		{"formerr class ANY", classANY, dns.RcodeFormatError, true, true},
		{"formerr qtype TSIG", noisy(query("www.example.org.", dns.TypeTSIG, false)), dns.RcodeFormatError, true, true},
		{"refused no recursion", noisy(query("www.elsewhere.net.", dns.TypeA, false)), dns.RcodeRefused, true, true},
	}
	for _, tc := range tests {
		for _, netw := range []string{"udp", "tcp"} {
			t.Run(tc.name+"/"+netw, func(t *testing.T) {
				pkt := mustPack(t, tc.msg)
				var r *dns.Msg
				if netw == "udp" {
					r = unpackReply(t, rawUDP(t, ts.udp, pkt))
				} else {
					r = unpackReply(t, rawTCP(t, ts.tcp, pkt))
				}
				if r.Rcode != tc.rcode || r.Id != tc.msg.Id || r.Opcode != tc.msg.Opcode || !r.Response {
					t.Fatalf("got %v", r)
				}
				if r.Truncated || r.RecursionAvailable || r.AuthenticatedData || r.Zero || r.Authoritative {
					t.Errorf("request flags copied: %v", r.MsgHdr)
				}
				if r.RecursionDesired != tc.rdcd || r.CheckingDisabled != tc.rdcd {
					t.Errorf("rd=%v cd=%v, want %v", r.RecursionDesired, r.CheckingDisabled, tc.rdcd)
				}
				if (len(r.Question) == 1) != tc.question {
					t.Errorf("question echoed: %v, want %v", r.Question, tc.question)
				}
				if o := r.IsEdns0(); o == nil || o.UDPSize() != 1232 || !o.Do() || len(o.Option) != 0 {
					t.Errorf("reply OPT = %v, want ours with DO", o)
				}
			})
		}
	}
	assertNoPanics(t, ts.Server)
}

// TestOneParserVerdict: what miekg cannot read, or reads but a query must
// not be, gets FORMERR over UDP (fast path included) and TCP alike, as
// BIND answers: a cut EDNS option, an OPT not owned by the root, a
// question without type and class, counts that disagree with the sections.
func TestOneParserVerdict(t *testing.T) {
	ts := startServer(t, Config{})
	q := mustPack(t, query("www.example.org.", dns.TypeA, false))
	qEnd := len(q)
	withAR := func(b []byte, ar uint16) []byte {
		b = append([]byte(nil), b...)
		binary.BigEndian.PutUint16(b[10:], ar)
		return b
	}
	opt := func(owner []byte, rdata []byte) []byte {
		b := append([]byte(nil), owner...)
		b = append(b, 0, 41, 0x04, 0xd0, 0, 0, 0, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(len(rdata)))
		return append(b, rdata...)
	}
	tests := []struct {
		name     string
		pkt      []byte
		question bool // echoed, as BIND
	}{
		{"cut edns option", append(withAR(q, 1), opt([]byte{0}, []byte{0, 10, 0, 8, 'a', 'b', 'c', 'd'})...), true},
		{"edns option past rdata", append(withAR(q, 1), opt([]byte{0}, []byte{0, 10, 0})...), true},
		{"bad client subnet", append(withAR(q, 1), opt([]byte{0}, []byte{0, 8, 0, 4, 0, 1, 99, 0})...), true},
		{"opt owner not root", append(withAR(q, 1), opt([]byte{1, 'x', 0}, nil)...), true},
		{"two opts", append(withAR(q, 2), append(opt([]byte{0}, nil), opt([]byte{0}, nil)...)...), true},
		{"question without type and class", q[:qEnd-4], false},
		{"question without class", q[:qEnd-2], false},
		{"arcount 1 without a record", withAR(q, 1), true},
		{"ancount 1 without a record", func() []byte { b := append([]byte(nil), q...); b[7] = 1; return b }(), true},
		{"qdcount 2 with one question", func() []byte { b := append([]byte(nil), q...); b[5] = 2; return b }(), false},
	}
	for _, tc := range tests {
		for _, netw := range []string{"udp", "tcp"} {
			t.Run(tc.name+"/"+netw, func(t *testing.T) {
				var r *dns.Msg
				if netw == "udp" {
					r = unpackReply(t, rawUDP(t, ts.udp, tc.pkt))
				} else {
					r = unpackReply(t, rawTCP(t, ts.tcp, tc.pkt))
				}
				if r.Rcode != dns.RcodeFormatError || len(r.Answer) != 0 {
					t.Fatalf("got %v", r)
				}
				if (len(r.Question) == 1) != tc.question {
					t.Errorf("question echoed: %v, want %v", r.Question, tc.question)
				}
				if r.IsEdns0() != nil {
					t.Errorf("OPT in the reply to a query whose OPT is broken")
				}
			})
		}
	}
	// The fast path takes a good client subnet, and answers as the handler.
	m := query("www.example.org.", dns.TypeA, true)
	m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(192, 0, 2, 0).To4()}}
	before := ts.Stats().FastPath.Load()
	if r := exchange(t, "udp", ts.udp, m); len(r.Answer) != 1 || ts.Stats().FastPath.Load() != before+1 {
		t.Fatalf("client subnet query: fast path %d→%d, %v", before, ts.Stats().FastPath.Load(), r)
	}
	assertNoPanics(t, ts.Server)
}

// TestUnknownNameRefused: a name no zone and no forwarding rule covers gets
// REFUSED (with RA) from a client that may recurse, as the README says and
// BIND answers with forward zones only; the forwarder is not asked.
func TestUnknownNameRefused(t *testing.T) {
	fwd := &fakeForwarder{rules: map[string]bool{"onprem.example.": true}}
	ts := startServer(t, Config{Forwarder: fwd})
	for _, netw := range []string{"udp", "tcp"} {
		addr := map[string]string{"udp": ts.udp, "tcp": ts.tcp}[netw]
		m := query("www.nowhere.test.", dns.TypeA, true)
		m.RecursionDesired = true
		r := exchange(t, netw, addr, m)
		if r.Rcode != dns.RcodeRefused || !r.RecursionAvailable || r.IsEdns0() == nil {
			t.Fatalf("%s: %v", netw, r)
		}
		m = query("host.onprem.example.", dns.TypeA, true)
		m.RecursionDesired = true
		if r := exchange(t, netw, addr, m); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("%s: a covered name: %v", netw, r)
		}
	}
	if n := fwd.queries.Load(); n != 2 {
		t.Fatalf("forwarder asked %d times, want 2 (the covered name only)", n)
	}
}

// TestChaseKeepsRcodeAndGlue: the cross-zone CNAME chase decides each hop
// like a direct query: YXDOMAIN from a DNAME stays YXDOMAIN, a referral
// keeps its NS and glue, NXDOMAIN stays NXDOMAIN.
func TestChaseKeepsRcodeAndGlue(t *testing.T) {
	long := strings.Repeat("c", 60) + "." + strings.Repeat("d", 60) + "." + strings.Repeat("e", 60) + ".example."
	from := strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + ".dn.other.test."
	store := zonestore.NewStore()
	store.PutZone(zonestore.DefaultView, parse(t, `
$ORIGIN chase.test.
@     60 IN SOA ns hm 1 2 3 4 5
@     60 IN NS  ns
ns    60 IN A   192.0.2.1
yx    60 IN CNAME `+from+`
ref   60 IN CNAME host.sub.other.test.
nx    60 IN CNAME nope.other.test.
`, "chase.test."))
	store.PutZone(zonestore.DefaultView, parse(t, `
$ORIGIN other.test.
@      60 IN SOA ns hm 1 2 3 4 5
@      60 IN NS  ns
ns     60 IN A   192.0.2.1
dn     60 IN DNAME `+long+`
sub    60 IN NS  ns.sub
ns.sub 60 IN A   192.0.2.53
`, "other.test."))
	ts := startServer(t, Config{Store: store, Forwarder: &fakeForwarder{rules: map[string]bool{".": true}}})
	rd := func(name string) *dns.Msg {
		m := query(name, dns.TypeA, true)
		m.RecursionDesired = true
		return m
	}
	r := exchange(t, "udp", ts.udp, rd("yx.chase.test."))
	if r.Rcode != dns.RcodeYXDomain || !r.Authoritative || len(r.Answer) < 2 {
		t.Fatalf("chase into a DNAME that overflows: %v", r)
	}
	r = exchange(t, "udp", ts.udp, rd("ref.chase.test."))
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeNS {
		t.Fatalf("chase into a delegation: %v", r)
	}
	glue := false
	for _, rr := range r.Extra {
		if a, ok := rr.(*dns.A); ok && a.Hdr.Name == "ns.sub.other.test." && a.A.String() == "192.0.2.53" {
			glue = true
		}
	}
	if !glue {
		t.Fatalf("referral glue dropped: %v", r)
	}
	r = exchange(t, "udp", ts.udp, rd("nx.chase.test."))
	if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 {
		t.Fatalf("chase into a missing name: %v", r)
	}
	assertNoPanics(t, ts.Server)
}

// panicForwarder panics on every call, standing in for any bug below a
// handler entry.
type panicForwarder struct{ fakeForwarder }

func (p *panicForwarder) Resolve(context.Context, *dns.Msg) (*dns.Msg, error) { panic("resolve bug") }
func (p *panicForwarder) AppendCached([]byte, string, uint16, uint16, bool, bool) ([]byte, uint16, uint16, uint16, uint16, bool) {
	panic("cache bug")
}

// TestPanicsRecovered: a panic in the fast path, the full handler (UDP and
// TCP) is recovered, counted, exported as hybridns_panics_total and
// answered SERVFAIL; the server goes on answering.
func TestPanicsRecovered(t *testing.T) {
	pf := &panicForwarder{fakeForwarder{rules: map[string]bool{".": true}}}
	ts := startServer(t, Config{Forwarder: pf})
	m := query("www.elsewhere.net.", dns.TypeA, true)
	m.RecursionDesired = true
	// UDP: the fast path panics in AppendCached (recovered, handed to the
	// slow path), the handler panics in Resolve (recovered, SERVFAIL).
	r := exchange(t, "udp", ts.udp, m)
	if r.Rcode != dns.RcodeServerFailure || r.Id != m.Id || r.IsEdns0() == nil {
		t.Fatalf("udp: %v", r)
	}
	if n := ts.Panics(); n != 2 {
		t.Fatalf("panics = %d after the UDP query, want 2 (fast path, handler)", n)
	}
	r = exchange(t, "tcp", ts.tcp, m)
	if r.Rcode != dns.RcodeServerFailure || r.Id != m.Id {
		t.Fatalf("tcp: %v", r)
	}
	if n := ts.Panics(); n != 3 {
		t.Fatalf("panics = %d after the TCP query, want 3", n)
	}
	for _, netw := range []string{"udp", "tcp"} {
		if r := exchange(t, netw, map[string]string{"udp": ts.udp, "tcp": ts.tcp}[netw], query("www.example.org.", dns.TypeA, false)); len(r.Answer) != 1 {
			t.Fatalf("%s: server stopped answering: %v", netw, r)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(ts.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "hybridns_panics_total" {
			found = true
			if v := mf.GetMetric()[0].GetCounter().GetValue(); v != 3 {
				t.Fatalf("hybridns_panics_total = %v, want 3", v)
			}
		}
	}
	if !found {
		t.Fatal("hybridns_panics_total not exported")
	}
}

// TestSlowPathPanicAnswered: a panic while reading a datagram on the slow
// path (before the handler) is answered SERVFAIL from the header.
func TestSlowPathPanicAnswered(t *testing.T) {
	s := newFuzzServer(t)
	b := s.packetReply(mustPack(t, query("www.example.org.", dns.TypeA, false)), dns.RcodeServerFailure)
	r := unpackReply(t, b)
	if r.Rcode != dns.RcodeServerFailure || !r.Response {
		t.Fatalf("%v", r)
	}
	resp := query("www.example.org.", dns.TypeA, false)
	resp.Response = true
	if s.packetReply(mustPack(t, resp), dns.RcodeServerFailure) != nil || s.packetReply([]byte{1, 2, 3}, dns.RcodeServerFailure) != nil {
		t.Fatal("a reply to a response or to less than a header")
	}
}

// wireCache is a CachedWire that answers every name with a canned chain:
// name CNAME target, target A 203.0.113.9.
type wireCache struct {
	fakeForwarder
	target string
}

func (c *wireCache) AppendCached(out []byte, qname string, qtype, qclass uint16, do, cd bool) ([]byte, uint16, uint16, uint16, uint16, bool) {
	m := new(dns.Msg)
	if err := m.Unpack(append([]byte(nil), out...)); err != nil || len(m.Question) != 1 {
		return out, 0, 0, 0, 0, false
	}
	q := m.Question[0].Name
	m.Answer = []dns.RR{
		&dns.CNAME{Hdr: dns.RR_Header{Name: q, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: c.target},
		&dns.A{Hdr: dns.RR_Header{Name: c.target, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(203, 0, 113, 9)},
	}
	b, _ := m.Pack()
	return append(out, b[len(out):]...), 2, 0, 0, 0, true
}

// TestFastCachedChainInOurZone: the fast path answers a cached chain that
// stays outside our zones (without allocating beyond the cache's own
// work), and declines one whose CNAME enters a zone we serve, leaving it to
// forward(), which cuts it.
func TestFastCachedChainInOurZone(t *testing.T) {
	for _, tc := range []struct {
		target string
		fast   bool
	}{{"cdn.elsewhere.net.", true}, {"www.example.org.", false}, {"WWW.Example.Org.", false}} {
		wc := &wireCache{fakeForwarder: fakeForwarder{rules: map[string]bool{".": true}}, target: tc.target}
		store := zonestore.NewStore()
		store.PutZone(zonestore.DefaultView, parse(t, testZone, "example.org."))
		s, err := New(Config{Store: store, Forwarder: wc})
		if err != nil {
			t.Fatal(err)
		}
		m := query("app.elsewhere.net.", dns.TypeA, true)
		m.RecursionDesired = true
		pkt := mustPack(t, m)
		var scratch [512]byte
		out := make([]byte, 0, 2048)
		resp, act := s.fastUDP(pkt, netip.MustParseAddr("127.0.0.1"), out, &scratch, time.Now())
		if (act == fastReply) != tc.fast {
			t.Fatalf("%s: fast path answered = %v, want %v", tc.target, act == fastReply, tc.fast)
		}
		if tc.fast {
			if r := unpackReply(t, resp); len(r.Answer) != 2 || !r.RecursionAvailable {
				t.Fatalf("%v", r)
			}
			qend, _ := questionEnd(pkt)
			pol, snap := s.pol.Load(), store.Load()
			buf := (*[256]byte)(scratch[256:])
			if n := testing.AllocsPerRun(100, func() { s.chainStaysOut(pol, snap, zonestore.DefaultView, resp, qend, 2, buf) }); n != 0 {
				t.Fatalf("chainStaysOut allocates %v times", n)
			}
		}
		assertNoPanics(t, s)
	}
}
