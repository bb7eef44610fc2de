package test

import (
	"context"
	"net"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/forwarder"
	"hybridns/server"
	"hybridns/zonestore"
)

// upstream is an in-process DNS server on 127.0.0.1:0 with its own handler.
func upstream(t *testing.T, h dns.HandlerFunc) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: h}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// comparable renders a reply without TTLs and with names lower-cased.
func comparable(m *dns.Msg) string {
	var b strings.Builder
	b.WriteString(dns.RcodeToString[m.Rcode])
	for _, f := range []bool{m.Authoritative, m.RecursionAvailable, m.RecursionDesired, m.AuthenticatedData, m.Truncated} {
		if f {
			b.WriteString(" 1")
		} else {
			b.WriteString(" 0")
		}
	}
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		var lines []string
		for _, rr := range sec {
			c := dns.Copy(rr)
			c.Header().Ttl = 0
			lines = append(lines, strings.ToLower(c.String()))
		}
		sort.Strings(lines)
		b.WriteString("\n--\n" + strings.Join(lines, "\n"))
	}
	return b.String()
}

// TestCachedFastPathMatchesFullHandler: a forwarded cache hit answered by
// the UDP fast path equals the full handler's answer for the same entry
// (asked over TCP), and a hit costs no upstream query.
func TestCachedFastPathMatchesFullHandler(t *testing.T) {
	var upstreamQueries atomic.Int64
	up := upstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		upstreamQueries.Add(1)
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		q := r.Question[0]
		switch {
		case strings.HasPrefix(q.Name, "nx."):
			m.Rcode = dns.RcodeNameError
			soa, _ := dns.NewRR("ext.test. 300 IN SOA ns.ext.test. hm.ext.test. 1 2 3 4 60")
			m.Ns = append(m.Ns, soa)
		case strings.HasPrefix(q.Name, "alias."):
			c, _ := dns.NewRR(q.Name + " 120 IN CNAME target.ext.test.")
			a, _ := dns.NewRR("target.ext.test. 120 IN A 198.51.100.20")
			m.Answer = append(m.Answer, c, a)
		default:
			for _, ip := range []string{"198.51.100.1", "198.51.100.2"} {
				a, _ := dns.NewRR(q.Name + " 300 IN A " + ip)
				m.Answer = append(m.Answer, a)
			}
			ns, _ := dns.NewRR("ext.test. 300 IN NS ns.ext.test.")
			m.Ns = append(m.Ns, ns)
		}
		w.WriteMsg(m)
	})
	fwd, err := forwarder.New(forwarder.Config{Rules: []forwarder.Rule{{Suffix: ".", Upstreams: []string{up}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	srv, err := server.New(server.Config{Listen: []string{"127.0.0.1:0"}, Store: zonestore.NewStore(), Forwarder: fwd})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	udpAddr, tcpAddr := srv.Addrs()

	for _, name := range []string{"www.ext.test.", "WWW.Ext.Test.", "alias.ext.test.", "nx.ext.test."} {
		for _, edns := range []bool{false, true} {
			ask := func(netw, addr string) *dns.Msg {
				m := new(dns.Msg)
				m.SetQuestion(name, dns.TypeA)
				if edns {
					m.SetEdns0(1232, false)
				}
				c := &dns.Client{Net: netw, Timeout: 2 * time.Second}
				r, _, err := c.Exchange(m, addr)
				if err != nil {
					t.Fatalf("%s %s: %v", netw, name, err)
				}
				if r.Question[0].Name != name {
					t.Fatalf("question case not kept: %q", r.Question[0].Name)
				}
				return r
			}
			ask("udp", udpAddr[0].String()) // miss: fills the cache
			before, fastBefore := upstreamQueries.Load(), srv.Stats().FastPath.Load()
			fast := ask("udp", udpAddr[0].String())
			slow := ask("tcp", tcpAddr[0].String())
			if srv.Stats().FastPath.Load() != fastBefore+1 {
				t.Fatalf("%s: the UDP hit did not take the fast path", name)
			}
			if upstreamQueries.Load() != before {
				t.Fatalf("%s: a cache hit queried the upstream", name)
			}
			if comparable(fast) != comparable(slow) {
				t.Fatalf("%s edns=%v: fast path\n%s\nfull handler\n%s", name, edns, comparable(fast), comparable(slow))
			}
			if (fast.IsEdns0() != nil) != edns {
				t.Fatalf("OPT presence wrong: %v", fast)
			}
		}
	}
}
