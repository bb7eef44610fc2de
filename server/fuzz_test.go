package server

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/miekg/dns"

	"hybridns/zonestore"
)

// recorder is an in-memory dns.ResponseWriter for handler fuzzing and
// benchmarks: no sockets, so the fuzzer explores the handler, not the kernel.
type recorder struct {
	remote net.Addr
	msg    *dns.Msg
	wrote  int
}

func (r *recorder) LocalAddr() net.Addr         { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (r *recorder) RemoteAddr() net.Addr        { return r.remote }
func (r *recorder) WriteMsg(m *dns.Msg) error   { r.msg = m; _, err := m.Pack(); r.wrote++; return err }
func (r *recorder) Write(b []byte) (int, error) { r.wrote++; return len(b), nil }
func (r *recorder) Close() error                { return nil }
func (r *recorder) TsigStatus() error           { return nil }
func (r *recorder) TsigTimersOnly(bool)         {}
func (r *recorder) Hijack()                     {}
func (r *recorder) Network() string             { return "udp" }

func newFuzzServer(t testing.TB) *Server {
	store := zonestore.NewStore()
	store.PutZone(zonestore.DefaultView, parse(t, testZone, "example.org."))
	store.PutZone(zonestore.DefaultView, parse(t, bigZone(), "big.test."))
	s, err := New(Config{Store: store, Forwarder: &fakeForwarder{rules: map[string]bool{".": true}}})
	if err != nil {
		t.Fatal(err)
	}
	s.baseCtx, s.cancel = t.Context(), func() {}
	return s
}

// malformedSeeds are the inputs today's fuzzers ran a million times
// without reaching (issue 8): header-only packets, every prefix of valid
// queries, counts that disagree with the sections, cut EDNS options, OPTs
// not owned by the root.
func malformedSeeds(valid [][]byte) [][]byte {
	var out [][]byte
	hdr := func(qd, an, ns, ar uint16, flags uint16) []byte {
		b := []byte{0x12, 0x34, byte(flags >> 8), byte(flags), 0, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(b[4:], qd)
		binary.BigEndian.PutUint16(b[6:], an)
		binary.BigEndian.PutUint16(b[8:], ns)
		binary.BigEndian.PutUint16(b[10:], ar)
		return b
	}
	out = append(out, hdr(1, 0, 0, 0, 0x0100), hdr(1, 0, 0, 1, 0x0100), hdr(0, 0, 0, 0, 0), hdr(2, 0, 0, 0, 0),
		hdr(1, 0, 0, 0, 0x7800), hdr(1, 0, 0, 0, 0x2800), hdr(65535, 65535, 65535, 65535, 0))
	for _, v := range valid {
		for l := 0; l < len(v); l++ {
			out = append(out, append([]byte(nil), v[:l]...))
		}
		for _, counts := range [][4]uint16{{2, 0, 0, 0}, {0, 0, 0, 0}, {1, 1, 0, 0}, {1, 0, 1, 0}, {1, 0, 0, 2}, {1, 0, 0, 0}, {1, 0, 0, 1}} {
			b := append([]byte(nil), v...)
			for i, c := range counts {
				binary.BigEndian.PutUint16(b[4+2*i:], c)
			}
			out = append(out, b)
		}
	}
	// A query with an OPT whose option is cut, and one owned by "x.".
	m := new(dns.Msg)
	m.SetQuestion("www.example.org.", dns.TypeA)
	q, _ := m.Pack()
	binary.BigEndian.PutUint16(q[10:], 1)
	out = append(out,
		append(append([]byte(nil), q...), 0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 8, 0, 10, 0, 8, 'a', 'b', 'c', 'd'),
		append(append([]byte(nil), q...), 1, 'x', 0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0),
		append(append([]byte(nil), q...), 0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 8, 0, 8, 0, 4, 0, 9, 0, 0))
	return out
}

// validSeeds are well-formed queries over the fuzz server's zones.
func validSeeds() [][]byte {
	var out [][]byte
	for _, q := range []struct {
		name string
		t    uint16
	}{{"www.example.org.", dns.TypeA}, {"many.big.test.", dns.TypeA}, {"alias.example.org.", dns.TypeANY}, {"x.sub.example.org.", dns.TypeNS}, {"ext.example.org.", dns.TypeA}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.t)
		m.RecursionDesired = q.t == dns.TypeA
		b, _ := m.Pack()
		out = append(out, b)
		m.SetEdns0(4096, true)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
		b, _ = m.Pack()
		out = append(out, b)
	}
	return out
}

// FuzzServeDNS feeds raw packets through the listeners' steps — checkQuery,
// then the handler or the error reply — and also hands whatever miekg
// unpacks straight to ServeDNS (its own shape check). Nothing may panic
// (a recovered panic counts as a failure), every reply must pack and fit
// the client's UDP buffer, and a refused packet gets FORMERR or NOTIMP.
func FuzzServeDNS(f *testing.F) {
	valid := validSeeds()
	for _, b := range append(valid, malformedSeeds(valid)...) {
		f.Add(b)
	}
	for _, m := range []*dns.Msg{new(dns.Msg).SetAxfr("example.org."), new(dns.Msg).SetIxfr("example.org.", 1, "ns.example.org.", "hm.example.org.")} {
		b, _ := m.Pack()
		f.Add(b) // zone transfers (xfr.go), refused without a rule
	}
	s := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
		req, rc := checkQuery(pkt)
		switch rc {
		case rcodeDrop:
		case rcodeAccept:
			w := &recorder{remote: from}
			s.ServeDNS(w, req)
			if w.msg == nil {
				t.Fatal("no reply")
			}
			b, err := w.msg.Pack()
			if err != nil {
				t.Fatalf("reply does not pack: %v", err)
			}
			limit := 512
			if o := req.IsEdns0(); o != nil {
				limit = min(max(int(o.UDPSize()), 512), 1232)
			}
			if len(b) > limit {
				t.Fatalf("reply of %d bytes exceeds the client's %d", len(b), limit)
			}
		case dns.RcodeFormatError, dns.RcodeNotImplemented:
			m := s.reply(req, rc)
			if _, err := m.Pack(); err != nil {
				t.Fatalf("error reply does not pack: %v", err)
			}
			if m.Id != binary.BigEndian.Uint16(pkt) || !m.Response || m.Truncated || m.RecursionAvailable || m.AuthenticatedData {
				t.Fatalf("error reply header: %v", m.MsgHdr)
			}
		default:
			t.Fatalf("checkQuery verdict %d", rc)
		}
		var raw dns.Msg
		if err := raw.Unpack(pkt); err == nil {
			w := &recorder{remote: from}
			s.ServeDNS(w, &raw)
		}
		if n := s.Panics(); n != 0 {
			t.Fatalf("%d panics recovered", n)
		}
	})
}

func BenchmarkServeDNS(b *testing.B) {
	s := newFuzzServer(b)
	for _, tc := range []struct {
		name  string
		qname string
	}{{"hit", "www.example.org."}, {"nxdomain", "nope.example.org."}, {"cname", "alias.example.org."}, {"referral", "a.sub.example.org."}} {
		b.Run(tc.name, func(b *testing.B) {
			req := new(dns.Msg)
			req.SetQuestion(tc.qname, dns.TypeA)
			req.SetEdns0(1232, false)
			w := &recorder{remote: &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5353}}
			b.ReportAllocs()
			for b.Loop() {
				s.ServeDNS(w, req)
			}
		})
	}
}
