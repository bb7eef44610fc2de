package server_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/forwarder"
	"hybridns/forwarder/fwdtest"
	"hybridns/server"
	"hybridns/zonestore"
)

// The real forwarder offers the UDP miss path; a signature drifting apart
// would turn it off silently.
var _ server.MissWire = (*forwarder.Forwarder)(nil)

func missServer(t *testing.T, upstream string) (running, *forwarder.Forwarder) {
	t.Helper()
	f := newForwarder(t, forwarder.Rule{Suffix: ".", Upstreams: []string{upstream}})
	return start(t, server.Config{Store: zonestore.NewStore(), Forwarder: f}), f
}

// A cache miss over UDP is fetched and answered without the full handler,
// counted as the handler counts a forwarded query; the same question again
// is a cache hit of the fast path.
func TestUDPMissAnswered(t *testing.T) {
	up := fwdtest.StartNXStub(t)
	s, f := missServer(t, up.Addr)
	for i, wantFast := range []uint64{0, 1} {
		r := ask(t, "udp", s.udp, "Miss.Example.", true)
		if r.Rcode != dns.RcodeNameError || !r.RecursionAvailable || len(r.Ns) != 1 || r.Question[0].Name != "Miss.Example." {
			t.Fatalf("query %d: %v", i, r)
		}
		st := s.Stats()
		if st.Queries.Load() != uint64(i+1) || st.Forwarded.Load() != uint64(i+1) || st.FastPath.Load() != wantFast {
			t.Errorf("query %d: queries %d forwarded %d fast path %d, want %d %d %d", i,
				st.Queries.Load(), st.Forwarded.Load(), st.FastPath.Load(), i+1, i+1, wantFast)
		}
	}
	if fs := f.Stats(); up.Queries.Load() != 1 || fs.CacheMisses != 1 || fs.CacheHits != 1 {
		t.Errorf("upstream queries %d, misses %d, hits %d; want 1, 1, 1", up.Queries.Load(), fs.CacheMisses, fs.CacheHits)
	}
}

// handlerCounts is the real forwarder (embedded: the server sees every
// method it offers, the miss path's included) counting the calls only the
// full handler makes.
type handlerCounts struct {
	*forwarder.Forwarder
	resolve, resolveMiss atomic.Int64
}

func (h *handlerCounts) Resolve(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	h.resolve.Add(1)
	return h.Forwarder.Resolve(ctx, req)
}

func (h *handlerCounts) ResolveMiss(ctx context.Context, req *dns.Msg, token any) (*dns.Msg, error) {
	h.resolveMiss.Add(1)
	return h.Forwarder.ResolveMiss(ctx, req, token)
}

// The miss path answers a plain UDP miss itself: the full handler never
// runs (its replies look the same, so only its calls tell); a miss the
// path cannot finish goes to the handler, which finishes the same fetch;
// over TCP the handler forwards.
func TestUDPMissBypassesHandler(t *testing.T) {
	up := fwdtest.StartNXStub(t)
	h := &handlerCounts{Forwarder: newForwarder(t, forwarder.Rule{Suffix: ".", Upstreams: []string{up.Addr}})}
	s := start(t, server.Config{Store: zonestore.NewStore(), Forwarder: h})
	if r := ask(t, "udp", s.udp, "bypass.example.", true); r.Rcode != dns.RcodeNameError {
		t.Fatalf("miss: %v", r)
	}
	if h.resolve.Load() != 0 || h.resolveMiss.Load() != 0 {
		t.Errorf("a plain miss went through the handler: Resolve %d, ResolveMiss %d", h.resolve.Load(), h.resolveMiss.Load())
	}
	// A truncated upstream reply the path cannot answer from: the handler
	// finishes the fetch already made (ResolveMiss), never a new one.
	tc, _ := fwdtest.Upstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Truncated = true
		w.WriteMsg(m)
	})
	h2 := &handlerCounts{Forwarder: newForwarder(t, forwarder.Rule{Suffix: ".", Upstreams: []string{tc}})}
	s2 := start(t, server.Config{Store: zonestore.NewStore(), Forwarder: h2})
	if r := ask(t, "udp", s2.udp, "tc.example.", true); !r.Truncated {
		t.Fatalf("truncated miss: %v", r)
	}
	if h2.resolve.Load() != 0 || h2.resolveMiss.Load() != 1 {
		t.Errorf("truncated miss: Resolve %d, ResolveMiss %d; want 0, 1", h2.resolve.Load(), h2.resolveMiss.Load())
	}
	// Over TCP the handler forwards (the fast path is for authoritative
	// answers there).
	if r := ask(t, "tcp", s.tcp, "bypass3.example.", true); r.Rcode != dns.RcodeNameError {
		t.Fatalf("TCP miss: %v", r)
	}
	if h.resolve.Load() != 1 {
		t.Errorf("TCP miss: Resolve %d, want 1", h.resolve.Load())
	}
}

// What the miss path cannot answer from the fetched entry goes to the full
// handler, which finishes the same fetch: the upstream is asked once.
func TestUDPMissFallsBackWithoutRefetch(t *testing.T) {
	tests := []struct {
		name   string
		h      dns.HandlerFunc
		noEDNS bool
		check  func(r *dns.Msg) bool
	}{
		// The upstream truncates and its TCP retry fails (this stub
		// serves UDP only): the client gets TC and retries over TCP.
		{"truncated, not cached", func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(r)
			m.Truncated = true
			w.WriteMsg(m)
		}, false, func(r *dns.Msg) bool { return r.Rcode == dns.RcodeSuccess && r.Truncated && len(r.Answer) == 0 }},
		{"refused: remembered SERVFAIL", func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetRcode(r, dns.RcodeRefused)
			w.WriteMsg(m)
		}, false, func(r *dns.Msg) bool { return r.Rcode == dns.RcodeServerFailure }},
		{"too big for the client: the handler truncates", func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(r)
			for i := range 40 {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, byte(i))})
			}
			w.WriteMsg(m)
		}, true, func(r *dns.Msg) bool { return r.Truncated && len(r.Answer) == 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, n := fwdtest.Upstream(t, tc.h)
			s, _ := missServer(t, addr)
			m := new(dns.Msg)
			m.SetQuestion("fallback.example.", dns.TypeA)
			if !tc.noEDNS {
				m.SetEdns0(1232, false)
			}
			c := &dns.Client{Net: "udp", Timeout: 8 * time.Second}
			r, _, err := c.Exchange(m, s.udp)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(r) {
				t.Errorf("reply %v", r)
			}
			if got := n.Load(); got != 1 {
				t.Errorf("upstream asked %d times, want 1", got)
			}
			if st := s.Stats(); st.Queries.Load() != 1 {
				t.Errorf("queries counted %d, want 1", st.Queries.Load())
			}
		})
	}
}

// Identical misses from many clients at once share one upstream query.
func TestUDPMissCoalesced(t *testing.T) {
	release := make(chan struct{})
	addr, n := fwdtest.Upstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		<-release
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60}, Ns: "ns.example.", Mbox: "hm.example.", Minttl: 60}}
		w.WriteMsg(m)
	})
	s, f := missServer(t, addr)
	const clients = 20
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			if r := ask(t, "udp", s.udp, "same.example.", true); r.Rcode != dns.RcodeNameError {
				t.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
			}
		})
	}
	fwdtest.WaitFor(t, "all clients waiting on one fetch", func() bool { return f.Stats().CacheMisses == clients })
	close(release)
	wg.Wait()
	if got, fs := n.Load(), f.Stats(); got != 1 || fs.Coalesced != clients-1 {
		t.Errorf("upstream asked %d times, coalesced %d; want 1 and %d", got, fs.Coalesced, clients-1)
	}
}

// BenchmarkForwardMiss sends UDP queries for names never asked before
// through a real server socket; each is a cache miss the forwarder sends to
// a loopback upstream answering NXDOMAIN. Concurrent clients, so the time
// per op is the inverse of the miss throughput; allocations are the whole
// process's per query (the stub upstream allocates nothing).
func BenchmarkForwardMiss(b *testing.B) {
	up := fwdtest.StartNXStub(b)
	f, err := forwarder.New(forwarder.Config{Rules: []forwarder.Rule{{Suffix: ".", Upstreams: []string{up.Addr}}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	s := start(b, server.Config{Store: zonestore.NewStore(), Forwarder: f}).udp
	var seq atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("udp", s)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		m := new(dns.Msg)
		m.SetQuestion("x.", dns.TypeA)
		m.SetEdns0(1232, false)
		buf := make([]byte, 0, 512)
		in := make([]byte, 2048)
		for pb.Next() {
			m.Id++
			m.Question[0].Name = "m" + strconv.FormatUint(seq.Add(1), 10) + ".bench.example."
			pkt, _ := m.PackBuffer(buf)
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(pkt); err != nil {
				b.Error(err)
				return
			}
			for {
				n, err := c.Read(in)
				if err != nil {
					b.Error(err)
					return
				}
				if n >= 12 && in[0] == pkt[0] && in[1] == pkt[1] {
					if in[3]&0xF != dns.RcodeNameError {
						b.Errorf("rcode %d", in[3]&0xF)
						return
					}
					break
				}
			}
		}
	})
}

// An upstream answer that does not fit in UDP, with the TCP retry failing
// (the stub serves UDP only): a UDP client gets TC and comes back over TCP,
// where the same failure is a SERVFAIL — never an empty NOERROR that a
// stub resolver would take as "no such records".
func TestTruncatedUpstreamPerTransport(t *testing.T) {
	addr, _ := fwdtest.Upstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Truncated = true
		w.WriteMsg(m)
	})
	s, _ := missServer(t, addr)
	for _, tc := range []struct {
		net, addr string
		rcode     int
		tc        bool
	}{
		{"udp", s.udp, dns.RcodeSuccess, true},
		{"tcp", s.tcp, dns.RcodeServerFailure, false},
	} {
		m := new(dns.Msg)
		m.SetQuestion("big.example.", dns.TypeTXT)
		m.SetEdns0(1232, false)
		c := &dns.Client{Net: tc.net, Timeout: 8 * time.Second}
		r, _, err := c.Exchange(m, tc.addr)
		if err != nil {
			t.Fatalf("%s: %v", tc.net, err)
		}
		if r.Rcode != tc.rcode || r.Truncated != tc.tc || len(r.Answer) != 0 {
			t.Errorf("%s: rcode %s TC %v answers %d; want %s TC %v none", tc.net,
				dns.RcodeToString[r.Rcode], r.Truncated, len(r.Answer), dns.RcodeToString[tc.rcode], tc.tc)
		}
	}
}
