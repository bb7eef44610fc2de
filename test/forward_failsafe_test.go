package test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/forwarder"
	"hybridns/server"
	"hybridns/zonestore"
)

// startForwarding runs a server forwarding by rules.
func startForwarding(t *testing.T, rules []forwarder.Rule) (udp, tcp string) {
	t.Helper()
	udp, tcp, _ = startForwarder(t, forwarder.Config{Rules: rules})
	return udp, tcp
}

func startForwarder(t *testing.T, cfg forwarder.Config) (udp, tcp string, fwd *forwarder.Forwarder) {
	t.Helper()
	fwd, err := forwarder.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fwd.Close() })
	srv, err := server.New(server.Config{Listen: []string{"127.0.0.1:0"}, Store: zonestore.NewStore(), Forwarder: fwd})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	u, tc := srv.Addrs()
	return u[0].String(), tc[0].String(), fwd
}

// The upstream's AD bit reaches a client only when its query had DO or AD
// (RFC 6840 §5.7) — over UDP (the wire-form fast path on cache hits) and
// TCP, from the upstream and from the cache.
func TestForwardedADBit(t *testing.T) {
	up := upstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.AuthenticatedData = true
		a, _ := dns.NewRR(r.Question[0].Name + " 300 IN A 198.51.100.1")
		m.Answer = append(m.Answer, a)
		w.WriteMsg(m)
	})
	udp, tcp := startForwarding(t, []forwarder.Rule{{Suffix: ".", Upstreams: []string{up}}})
	for _, tc := range []struct {
		name       string
		edns, do   bool
		ad, wantAD bool
	}{
		{"plain", false, false, false, false},
		{"edns without DO", true, false, false, false},
		{"AD", false, false, true, true},
		{"EDNS and AD", true, false, true, true},
		{"DO", true, true, false, true},
	} {
		for _, netw := range []string{"udp", "udp", "tcp", "udp"} { // miss, then hits
			m := new(dns.Msg)
			m.SetQuestion("signed.ext.test.", dns.TypeA)
			m.AuthenticatedData = tc.ad
			if tc.edns {
				m.SetEdns0(1232, tc.do)
			}
			addr := udp
			if netw == "tcp" {
				addr = tcp
			}
			c := &dns.Client{Net: netw, Timeout: 2 * time.Second}
			r, _, err := c.Exchange(m, addr)
			if err != nil {
				t.Fatalf("%s over %s: %v", tc.name, netw, err)
			}
			if len(r.Answer) != 1 || r.AuthenticatedData != tc.wantAD {
				t.Errorf("%s over %s: AD=%v, want %v\n%v", tc.name, netw, r.AuthenticatedData, tc.wantAD, r)
			}
		}
	}
}

// A malicious upstream for onprem.example answers with records for other
// names: clients of the server never see them, from the upstream or the
// cache, and the victim's name is still resolved by its own rule.
func TestForwardedBailiwick(t *testing.T) {
	evil := upstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, s := range []string{"www.victim.test. 300 IN A 203.0.113.66", r.Question[0].Name + " 300 IN A 10.1.0.5"} {
			rr, _ := dns.NewRR(s)
			m.Answer = append(m.Answer, rr)
		}
		ns, _ := dns.NewRR("example.test. 300 IN NS ns.example.test.")
		glue, _ := dns.NewRR("ns.example.test. 300 IN A 203.0.113.67")
		m.Ns, m.Extra = []dns.RR{ns}, []dns.RR{glue}
		w.WriteMsg(m)
	})
	good := upstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		a, _ := dns.NewRR(r.Question[0].Name + " 300 IN A 192.0.2.1")
		m.Answer = append(m.Answer, a)
		w.WriteMsg(m)
	})
	udp, _ := startForwarding(t, []forwarder.Rule{{Suffix: "onprem.example.", Upstreams: []string{evil}}, {Suffix: ".", Upstreams: []string{good}}})
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	for range 2 {
		m := new(dns.Msg)
		m.SetQuestion("www.onprem.example.", dns.TypeA)
		r, _, err := c.Exchange(m, udp)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Answer) != 1 || r.Answer[0].Header().Name != "www.onprem.example." || len(r.Ns) != 0 || len(r.Extra) != 0 {
			t.Fatalf("out-of-bailiwick records relayed:\n%v", r)
		}
	}
	m := new(dns.Msg)
	m.SetQuestion("www.victim.test.", dns.TypeA)
	r, _, err := c.Exchange(m, udp)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Fatalf("www.victim.test: %v", r)
	}
}

// silent is a UDP socket on 127.0.0.1:0 that reads queries and never
// answers: a blackholed upstream.
func silent(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return pc.LocalAddr().String()
}

// A blackholed upstream under one rule, flooded through the server with
// distinct names until its in-flight bound is reached, leaves another rule's clients fully served:
// they get answers, never SERVFAIL. (UDP datagrams lost in the burst are
// retried, as a stub resolver does; a SERVFAIL is final.)
func TestBlackholedRuleBesideHealthy(t *testing.T) {
	good := upstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		a, _ := dns.NewRR(r.Question[0].Name + " 300 IN A 192.0.2.1")
		m.Answer = append(m.Answer, a)
		w.WriteMsg(m)
	})
	udp, _, fwd := startForwarder(t, forwarder.Config{
		Rules: []forwarder.Rule{
			{Suffix: "dead.test.", Upstreams: []string{silent(t)}},
			{Suffix: "live.test.", Upstreams: []string{good}},
		},
		MaxInFlight: 300, // per rule; it used to be one bound for every rule
		Timeout:     3 * time.Second,
	})
	// The flood: distinct names from one socket, in batches of 100.
	const healthy = 200
	fc, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	var floodAnswered atomic.Int64
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, err := fc.Read(buf); err != nil {
				return
			}
			floodAnswered.Add(1)
		}
	}()
	// Datagrams a loaded machine drops before the server reads them never
	// count: new names go out in batches until the rule is at its bound.
	sent := 0
	eventually(t, 5*time.Second, "the flooded rule at its bound", func() bool {
		for range 100 {
			m := new(dns.Msg)
			m.SetQuestion(fmt.Sprintf("n%d.z%d.dead.test.", sent, sent%25), dns.TypeA)
			b, _ := m.Pack()
			fc.Write(b)
			sent++
		}
		return fwd.Stats().InFlight >= 300
	})
	var ok, servfail, lost atomic.Int64
	var hw sync.WaitGroup
	for i := range healthy {
		hw.Go(func() {
			m := new(dns.Msg)
			m.SetQuestion(fmt.Sprintf("h%d.live.test.", i), dns.TypeA)
			c := &dns.Client{Net: "udp", Timeout: time.Second}
			for range 5 {
				r, _, err := c.Exchange(m, udp)
				switch {
				case err != nil:
					lost.Add(1)
					continue
				case r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1:
					ok.Add(1)
				default:
					servfail.Add(1)
				}
				return
			}
		})
	}
	hw.Wait()
	t.Logf("healthy rule: %d/%d answered, %d SERVFAIL, %d datagrams retried; flooded rule: %d/%d replied (SERVFAIL) so far",
		ok.Load(), healthy, servfail.Load(), lost.Load(), floodAnswered.Load(), sent)
	if ok.Load() != healthy {
		t.Errorf("%d of %d queries for the healthy rule answered during the flood (%d SERVFAIL)", ok.Load(), healthy, servfail.Load())
	}
}

// bigUpstream answers every TXT query with about 60 KB of TXT (over TCP;
// truncated over UDP, as a real server would), on UDP and TCP of one port.
func bigUpstream(t *testing.T) string {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			m.Truncated = true
			w.WriteMsg(m)
			return
		}
		for i := 0; i < 240; i++ {
			txt := &dns.TXT{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300},
				Txt: []string{fmt.Sprintf("%03d%0250d", i, 0)}}
			m.Answer = append(m.Answer, txt)
		}
		m.Compress = true
		w.WriteMsg(m)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{{Listener: ln, Handler: h}, {PacketConn: pc, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return ln.Addr().String()
}

// A malicious upstream answering 60 KB for every name cannot grow the
// cache past its byte bound, and another rule's clients are served
// throughout.
func TestHugeAnswersStayWithinCacheBytes(t *testing.T) {
	big := bigUpstream(t)
	good := upstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		a, _ := dns.NewRR(r.Question[0].Name + " 300 IN A 192.0.2.1")
		m.Answer = append(m.Answer, a)
		w.WriteMsg(m)
	})
	const bound = 2 << 20
	udp, tcp, fwd := startForwarder(t, forwarder.Config{CacheBytes: bound,
		Rules: []forwarder.Rule{{Suffix: "big.example.", Upstreams: []string{big}}, {Suffix: ".", Upstreams: []string{good}}}})
	tc := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	uc := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	var bigAnswers, healthy int
	for i := 0; i < 120; i++ {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("n%d.big.example.", i), dns.TypeTXT)
		if r, _, err := tc.Exchange(m, tcp); err == nil && len(r.Answer) == 240 {
			bigAnswers++
		}
		h := new(dns.Msg)
		h.SetQuestion(fmt.Sprintf("h%d.ok.example.", i), dns.TypeA)
		if r, _, err := uc.Exchange(h, udp); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 {
			healthy++
		}
	}
	st := fwd.Stats()
	t.Logf("%d 60 KB answers relayed; cache %d entries, %d bytes (bound %d), %d evictions; healthy %d/120", bigAnswers, st.CacheSize, st.CacheBytes, bound, st.CacheEvictions, healthy)
	if bigAnswers != 120 {
		t.Errorf("%d of 120 large answers relayed", bigAnswers)
	}
	if st.CacheBytes > bound || st.CacheEvictions == 0 {
		t.Errorf("cache at %d bytes with %d evictions, bound %d", st.CacheBytes, st.CacheEvictions, bound)
	}
	if healthy != 120 {
		t.Errorf("healthy rule answered %d of 120", healthy)
	}
}
