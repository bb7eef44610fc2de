package server

import (
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

// FuzzServeDNS feeds raw packets through the same steps as the listener:
// header accept check, unpack, handler. Nothing may panic, and every reply
// must pack and fit the client's UDP buffer.
func FuzzServeDNS(f *testing.F) {
	for _, q := range []struct {
		name string
		t    uint16
	}{{"www.example.org.", dns.TypeA}, {"many.big.test.", dns.TypeA}, {"alias.example.org.", dns.TypeANY}, {"x.sub.example.org.", dns.TypeNS}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.t)
		b, _ := m.Pack()
		f.Add(b)
		m.SetEdns0(4096, true)
		b, _ = m.Pack()
		f.Add(b)
	}
	for _, m := range []*dns.Msg{new(dns.Msg).SetAxfr("example.org."), new(dns.Msg).SetIxfr("example.org.", 1, "ns.example.org.", "hm.example.org.")} {
		b, _ := m.Pack()
		f.Add(b) // zone transfers (xfr.go), refused without a rule
	}
	s := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) < 12 {
			return
		}
		var req dns.Msg
		if err := req.Unpack(pkt); err != nil {
			return // the listener answers FORMERR itself
		}
		hdr := dns.Header{Id: req.Id, Qdcount: uint16(len(req.Question)), Ancount: uint16(len(req.Answer)), Nscount: uint16(len(req.Ns)), Arcount: uint16(len(req.Extra))}
		if req.Response {
			hdr.Bits |= 1 << 15
		}
		hdr.Bits |= uint16(req.Opcode&0xF) << 11
		if acceptQuery(hdr) != dns.MsgAccept {
			return
		}
		w := &recorder{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}
		s.ServeDNS(w, &req)
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
