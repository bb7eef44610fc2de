package server_test

// Tests that need the real forwarder between two servers or between the
// server and an upstream (package server reaches the forwarder only
// through its interface; the test wires the real one as cmd does).

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/forwarder"
	"hybridns/server"
	"hybridns/zonestore"
)

func zone(t *testing.T, origin, text string) *zonestore.Zone {
	t.Helper()
	z, err := zonestore.ParseZone(strings.NewReader(text), origin, origin+"zone")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

type running struct {
	*server.Server
	udp, tcp string
}

func start(t testing.TB, cfg server.Config) running {
	t.Helper()
	cfg.Listen = []string{"127.0.0.1:0"}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	u, tc := s.Addrs()
	return running{Server: s, udp: u[0].String(), tcp: tc[0].String()}
}

func newForwarder(t *testing.T, rules ...forwarder.Rule) *forwarder.Forwarder {
	t.Helper()
	f, err := forwarder.New(forwarder.Config{Rules: rules, Timeout: 10 * time.Second, Deadline: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func ask(t *testing.T, netw, addr, name string, rd bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.RecursionDesired = rd
	m.SetEdns0(1232, false)
	c := &dns.Client{Net: netw, Timeout: 8 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s: %v", netw, name, err)
	}
	return r
}

const corpZone = `
$ORIGIN corp.example.
@    60 IN SOA ns1 hm 1 7200 900 1209600 300
     60 IN NS  ns1
ns1  60 IN A   192.0.2.53
www  60 IN A   192.0.2.1
ext  60 IN CNAME x.onprem.example.
`

// maliciousUpstream answers every A question under onprem.example. with a
// chain into corp.example. and a forged address for our www.corp.example.;
// deep.onprem.example. takes one more hop inside onprem.example. first.
func maliciousUpstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.RecursionAvailable = true
		q := req.Question[0]
		name := strings.ToLower(q.Name)
		if name == "deep.onprem.example." {
			m.Answer = append(m.Answer, rr(q.Name+" 300 IN CNAME mid.onprem.example."))
			name = "mid.onprem.example."
		}
		m.Answer = append(m.Answer, rr(name+" 300 IN CNAME www.corp.example."), rr("www.corp.example. 300 IN A 6.6.6.6"))
		m.Ns = append(m.Ns, rr("corp.example. 300 IN NS ns.evil.test."))
		m.Extra = append(m.Extra, rr("ns.evil.test. 300 IN A 6.6.6.7"))
		w.WriteMsg(m)
	})}
	ready := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(ready) }
	go srv.ActivateAndServe()
	<-ready
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// TestForwardedChainCutAtOurZone: an upstream's CNAME into a zone we serve
// is followed in our zone, never in the upstream's records: the client
// gets 192.0.2.1 only, from a fresh fetch, from the cache (where the fast
// path must decline the entry), over TCP, without RD, and when our own
// CNAME chase goes out through the forwarder and comes back.
func TestForwardedChainCutAtOurZone(t *testing.T) {
	up := maliciousUpstream(t)
	store := zonestore.NewStore()
	store.PutZone(zonestore.DefaultView, zone(t, "corp.example.", corpZone))
	fwd := newForwarder(t, forwarder.Rule{Suffix: "onprem.example.", Upstreams: []string{up}})
	s := start(t, server.Config{Store: store, Forwarder: fwd})
	check := func(name string, r *dns.Msg, links int) {
		t.Helper()
		var addrs []string
		cnames := 0
		for _, rr := range r.Answer {
			switch x := rr.(type) {
			case *dns.A:
				addrs = append(addrs, x.Hdr.Name+"="+x.A.String())
			case *dns.CNAME:
				cnames++
			}
		}
		if r.Rcode != dns.RcodeSuccess || len(addrs) != 1 || addrs[0] != "www.corp.example.=192.0.2.1" || cnames != links {
			t.Fatalf("%s: want the chain ending in our www.corp.example. A 192.0.2.1, got %v", name, r)
		}
		for _, rr := range append(append([]dns.RR(nil), r.Ns...), r.Extra...) {
			if strings.Contains(rr.String(), "evil") {
				t.Fatalf("%s: upstream authority for our zone relayed: %v", name, r)
			}
		}
	}
	check("first", ask(t, "udp", s.udp, "x.onprem.example.", true), 1)
	check("cached", ask(t, "udp", s.udp, "x.onprem.example.", true), 1)
	check("cached again", ask(t, "udp", s.udp, "X.Onprem.Example.", true), 1)
	check("tcp", ask(t, "tcp", s.tcp, "x.onprem.example.", true), 1)
	check("rd=0 from the cache", ask(t, "udp", s.udp, "x.onprem.example.", false), 1)
	check("middle link", ask(t, "udp", s.udp, "deep.onprem.example.", true), 2)
	check("our chase out and back", ask(t, "udp", s.udp, "ext.corp.example.", true), 2)
}

// TestCNAMELoopAcrossInstances: a.test's x CNAME points into b.test, whose
// y CNAME points back; each instance serves one zone and forwards the
// other's to its peer. Every chase sub-query keeps the loop markers of the
// query it serves, so the instance that started the chain recognizes its
// own marker on the way back and stops at once, instead of the two waiting
// on each other until the upstream timeout (10s here, longer than the
// client waits).
func TestCNAMELoopAcrossInstances(t *testing.T) {
	storeA, storeB := zonestore.NewStore(), zonestore.NewStore()
	storeA.PutZone(zonestore.DefaultView, zone(t, "a.test.", "$ORIGIN a.test.\n@ 60 IN SOA ns hm 1 2 3 4 5\n@ 60 IN NS ns\nns 60 IN A 192.0.2.1\nx 60 IN CNAME y.b.test.\n"))
	storeB.PutZone(zonestore.DefaultView, zone(t, "b.test.", "$ORIGIN b.test.\n@ 60 IN SOA ns hm 1 2 3 4 5\n@ 60 IN NS ns\nns 60 IN A 192.0.2.1\ny 60 IN CNAME x.a.test.\n"))
	a := start(t, server.Config{Store: storeA, QueryTimeout: 20 * time.Second})
	b := start(t, server.Config{Store: storeB, QueryTimeout: 20 * time.Second})
	if err := a.Reconfigure(server.Policy{Forwarder: newForwarder(t, forwarder.Rule{Suffix: "b.test.", Upstreams: []string{b.udp}})}); err != nil {
		t.Fatal(err)
	}
	if err := b.Reconfigure(server.Policy{Forwarder: newForwarder(t, forwarder.Rule{Suffix: "a.test.", Upstreams: []string{a.udp}})}); err != nil {
		t.Fatal(err)
	}
	r := ask(t, "udp", a.udp, "x.a.test.", true)
	if r.Rcode != dns.RcodeServerFailure || len(r.Answer) == 0 || r.Answer[0].Header().Name != "x.a.test." {
		t.Fatalf("want SERVFAIL with the chain so far, got %v", r)
	}
	if a.Stats().Loops.Load() == 0 {
		t.Fatal("instance A did not detect the loop")
	}
	if n := a.Panics() + b.Panics(); n != 0 {
		t.Fatalf("%d panics", n)
	}
}
