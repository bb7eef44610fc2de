package server

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/zonestore"
)

const testZone = `
$ORIGIN example.org.
$TTL 3600
@        IN SOA  ns1.example.org. hostmaster.example.org. 1 7200 900 1209600 300
         IN NS   ns1
ns1      IN A    192.0.2.1
www      IN A    192.0.2.10
alias    IN CNAME www
out      IN CNAME host.corp.example.
ext      IN CNAME www.elsewhere.net.
sub      IN NS   ns.sub
ns.sub   IN A    192.0.2.53
fwd.sub2 IN A    192.0.2.99
*.wild   IN A    192.0.2.100
intosub  IN CNAME host.sub
*.cw     IN CNAME www
chain    IN CNAME a.cw
mx       IN MX   10 www
         IN MX   20 ns.sub
`

const corpZone = `
$ORIGIN corp.example.
@    3600 IN SOA ns1.corp.example. hm.corp.example. 1 7200 900 1209600 300
     3600 IN NS  ns1
ns1  3600 IN A   192.0.2.1
host 60   IN A   192.0.2.77
`

// bigZone holds an RRset too large for 512 bytes.
func bigZone() string {
	var b strings.Builder
	b.WriteString("$ORIGIN big.test.\n@ 60 IN SOA ns hm 1 2 3 4 5\n@ 60 IN NS ns\nns 60 IN A 192.0.2.1\n")
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&b, "many 60 IN A 10.0.%d.%d\n", i/250, i%250+1)
	}
	return b.String()
}

func parse(t testing.TB, text, origin string) *zonestore.Zone {
	t.Helper()
	z, err := zonestore.ParseZone(strings.NewReader(text), origin, origin+"zone")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// fakeForwarder answers every name with one A record and counts queries; a
// stand-in for the forwarder at the server's interface seam.
type fakeForwarder struct {
	rules   map[string]bool
	queries atomic.Int64
	cached  map[string]bool
}

func (f *fakeForwarder) Resolve(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	f.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	q := req.Question[0]
	if strings.HasPrefix(strings.ToLower(q.Name), "nx.") {
		m.Rcode = dns.RcodeNameError
		return m, nil
	}
	if q.Qtype == dns.TypeA {
		rr, _ := dns.NewRR(q.Name + " 30 IN A 203.0.113.7")
		m.Answer = append(m.Answer, rr)
	}
	return m, nil
}

func (f *fakeForwarder) Match(qname string) (string, bool) {
	for off, end := 0, false; !end; off, end = dns.NextLabel(qname, off) {
		if f.rules[qname[off:]] {
			return qname[off:], true
		}
	}
	if f.rules["."] {
		return ".", true
	}
	return "", false
}

func (f *fakeForwarder) CacheOnly(req *dns.Msg) (*dns.Msg, bool) {
	if !f.cached[strings.ToLower(req.Question[0].Name)] {
		return nil, false
	}
	m, _ := f.Resolve(context.Background(), req)
	return m, true
}

func (f *fakeForwarder) IsLoop(req *dns.Msg) bool {
	for _, rr := range req.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			for _, e := range o.Option {
				if e.Option() == 65073 {
					return true
				}
			}
		}
	}
	return false
}

type testServer struct {
	*Server
	store    *zonestore.Store
	udp, tcp string
}

func startServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = zonestore.NewStore()
		cfg.Store.PutZone(zonestore.DefaultView, parse(t, testZone, "example.org."))
		cfg.Store.PutZone(zonestore.DefaultView, parse(t, corpZone, "corp.example."))
		cfg.Store.PutZone(zonestore.DefaultView, parse(t, bigZone(), "big.test."))
	}
	cfg.Listen = []string{"127.0.0.1:0"}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	u, tc := s.Addrs()
	return &testServer{Server: s, store: cfg.Store, udp: u[0].String(), tcp: tc[0].String()}
}

func exchange(t testing.TB, netw, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: netw, Timeout: 2 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s exchange %s: %v", netw, m.Question[0].Name, err)
	}
	return r
}

func query(name string, qtype uint16, edns bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	if edns {
		m.SetEdns0(1232, false)
	}
	return m
}

func TestAuthoritativeOverUDPAndTCP(t *testing.T) {
	ts := startServer(t, Config{})
	for _, netw := range []string{"udp", "tcp"} {
		addr := ts.udp
		if netw == "tcp" {
			addr = ts.tcp
		}
		tests := []struct {
			name    string
			qtype   uint16
			rcode   int
			aa      bool
			answers int
			ns      int
		}{
			{"WWW.Example.ORG.", dns.TypeA, dns.RcodeSuccess, true, 1, 0},
			{"alias.example.org.", dns.TypeA, dns.RcodeSuccess, true, 2, 0},
			{"nope.example.org.", dns.TypeA, dns.RcodeNameError, true, 0, 1},
			{"www.example.org.", dns.TypeMX, dns.RcodeSuccess, true, 0, 1},
			{"x.sub.example.org.", dns.TypeA, dns.RcodeSuccess, false, 0, 1},
			{"www.unknown.test.", dns.TypeA, dns.RcodeRefused, false, 0, 0},
			{"host.corp.example.", dns.TypeA, dns.RcodeSuccess, true, 1, 0},
		}
		for _, tc := range tests {
			t.Run(netw+"/"+tc.name, func(t *testing.T) {
				r := exchange(t, netw, addr, query(tc.name, tc.qtype, true))
				if r.Rcode != tc.rcode || r.Authoritative != tc.aa || len(r.Answer) != tc.answers || len(r.Ns) != tc.ns {
					t.Fatalf("got rcode=%s aa=%v an=%d ns=%d, want %s %v %d %d\n%v",
						dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Answer), len(r.Ns),
						dns.RcodeToString[tc.rcode], tc.aa, tc.answers, tc.ns, r)
				}
				if r.Question[0].Name != tc.name {
					t.Errorf("question case not preserved: %q", r.Question[0].Name)
				}
				if r.RecursionAvailable {
					t.Errorf("RA set without a forwarder")
				}
				if o := r.IsEdns0(); o == nil || o.UDPSize() != 1232 {
					t.Errorf("reply OPT = %v, want udp 1232", o)
				}
			})
		}
	}
}

func TestNegativeTTLIsSOAMinimum(t *testing.T) {
	ts := startServer(t, Config{})
	r := exchange(t, "udp", ts.udp, query("nope.example.org.", dns.TypeA, false))
	if len(r.Ns) != 1 || r.Ns[0].Header().Ttl != 300 {
		t.Fatalf("negative SOA = %v, want TTL 300", r.Ns)
	}
}

func TestEDNS(t *testing.T) {
	ts := startServer(t, Config{})
	t.Run("badvers", func(t *testing.T) {
		m := query("www.example.org.", dns.TypeA, true)
		m.IsEdns0().SetVersion(1)
		r := exchange(t, "udp", ts.udp, m)
		if r.Rcode != dns.RcodeBadVers || r.IsEdns0() == nil || len(r.Answer) != 0 {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("no edns no opt", func(t *testing.T) {
		r := exchange(t, "udp", ts.udp, query("www.example.org.", dns.TypeA, false))
		if r.IsEdns0() != nil {
			t.Fatalf("OPT in reply to a query without EDNS")
		}
	})
	t.Run("do bit echoed", func(t *testing.T) {
		m := query("www.example.org.", dns.TypeA, false)
		m.SetEdns0(4096, true)
		r := exchange(t, "udp", ts.udp, m)
		if o := r.IsEdns0(); o == nil || !o.Do() {
			t.Fatalf("DO not echoed: %v", r)
		}
	})
	t.Run("two OPT formerr", func(t *testing.T) {
		m := query("www.example.org.", dns.TypeA, true)
		m.Extra = append(m.Extra, m.Extra[0])
		r := exchange(t, "udp", ts.udp, m)
		if r.Rcode != dns.RcodeFormatError {
			t.Fatalf("rcode %s", dns.RcodeToString[r.Rcode])
		}
	})
}

func TestTruncation(t *testing.T) {
	ts := startServer(t, Config{})
	r := exchange(t, "udp", ts.udp, query("many.big.test.", dns.TypeA, false))
	if !r.Truncated || len(r.Answer) != 0 {
		t.Fatalf("UDP without EDNS: tc=%v answers=%d", r.Truncated, len(r.Answer))
	}
	r = exchange(t, "udp", ts.udp, query("many.big.test.", dns.TypeA, true))
	if r.Truncated || len(r.Answer) != 60 {
		t.Fatalf("UDP with EDNS 1232: tc=%v answers=%d", r.Truncated, len(r.Answer))
	}
	r = exchange(t, "tcp", ts.tcp, query("many.big.test.", dns.TypeA, false))
	if r.Truncated || len(r.Answer) != 60 {
		t.Fatalf("TCP: tc=%v answers=%d", r.Truncated, len(r.Answer))
	}
	if got := ts.Stats().Truncated.Load(); got != 1 {
		t.Errorf("truncated counter = %d, want 1", got)
	}
}

// rawUDP sends raw bytes and returns the raw reply, or nil on timeout.
func rawUDP(t *testing.T, addr string, pkt []byte) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func TestMalformedAndOpcodes(t *testing.T) {
	ts := startServer(t, Config{})
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	two := query("www.example.org.", dns.TypeA, false)
	two.Question = append(two.Question, two.Question[0])
	update := query("www.example.org.", dns.TypeA, false)
	update.Opcode = dns.OpcodeUpdate
	status := query("www.example.org.", dns.TypeA, false)
	status.Opcode = dns.OpcodeStatus
	resp := query("www.example.org.", dns.TypeA, false)
	resp.Response = true
	good := pack(query("www.example.org.", dns.TypeA, false))
	truncatedQ := append([]byte(nil), good[:len(good)-3]...)
	tests := []struct {
		name  string
		pkt   []byte
		rcode int // -1: no reply expected
	}{
		{"two questions", pack(two), dns.RcodeFormatError},
		{"update with a zone section not of type SOA", pack(update), dns.RcodeFormatError}, // RFC 2136 §3.1.1
		{"status opcode", pack(status), dns.RcodeNotImplemented},
		{"a response", pack(resp), -1},
		{"short header", []byte{1, 2, 3}, -1},
		{"cut question", truncatedQ, dns.RcodeFormatError},
		{"zero questions", func() []byte { b := append([]byte(nil), good[:12]...); binary.BigEndian.PutUint16(b[4:], 0); return b }(), dns.RcodeFormatError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := rawUDP(t, ts.udp, tc.pkt)
			if tc.rcode < 0 {
				if raw != nil {
					t.Fatalf("expected no reply, got %d bytes", len(raw))
				}
				return
			}
			if raw == nil {
				t.Fatal("no reply")
			}
			var r dns.Msg
			if err := r.Unpack(raw); err != nil {
				t.Fatalf("unpack reply: %v", err)
			}
			if r.Rcode != tc.rcode || !r.Response {
				t.Fatalf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
		})
	}
	// The server still answers after all that.
	if r := exchange(t, "udp", ts.udp, query("www.example.org.", dns.TypeA, false)); len(r.Answer) != 1 {
		t.Fatal("server stopped answering")
	}
}

func TestTCPPipelining(t *testing.T) {
	ts := startServer(t, Config{})
	conn, err := dns.Dial("tcp", ts.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	names := []string{"www.example.org.", "alias.example.org.", "nope.example.org.", "host.corp.example."}
	for i, n := range names {
		m := query(n, dns.TypeA, false)
		m.Id = uint16(100 + i)
		if err := conn.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	got := map[uint16]string{}
	for range names {
		r, err := conn.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		got[r.Id] = r.Question[0].Name
	}
	for i, n := range names {
		if got[uint16(100+i)] != n {
			t.Errorf("id %d: got %q want %q", 100+i, got[uint16(100+i)], n)
		}
	}
}

func TestTCPIdleTimeout(t *testing.T) {
	ts := startServer(t, Config{TCPIdleTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", ts.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The server closes it (EOF), long before our own failure deadline
	// (a timeout error): which one ends the read is the verdict, not how
	// long it took.
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	if err == nil {
		t.Fatal("read data from an idle connection")
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("idle connection not closed by the server: %v", err)
	}
}

func TestForwardingPolicy(t *testing.T) {
	fwd := &fakeForwarder{rules: map[string]bool{".": true, "sub2.example.org.": true}, cached: map[string]bool{"cached.test.": true}}
	ts := startServer(t, Config{Forwarder: fwd})
	rd := func(name string, qtype uint16) *dns.Msg {
		m := query(name, qtype, false)
		m.RecursionDesired = true
		return m
	}
	t.Run("forwarded", func(t *testing.T) {
		r := exchange(t, "udp", ts.udp, rd("www.elsewhere.net.", dns.TypeA))
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || !r.RecursionAvailable || r.Authoritative {
			t.Fatalf("%v", r)
		}
	})
	t.Run("rule beats zone when more specific", func(t *testing.T) {
		r := exchange(t, "udp", ts.udp, rd("fwd.sub2.example.org.", dns.TypeA))
		if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "203.0.113.7" || r.Authoritative {
			t.Fatalf("%v", r)
		}
	})
	t.Run("zone beats default rule", func(t *testing.T) {
		r := exchange(t, "udp", ts.udp, rd("www.example.org.", dns.TypeA))
		if !r.Authoritative || r.Answer[0].(*dns.A).A.String() != "192.0.2.10" || !r.RecursionAvailable {
			t.Fatalf("%v", r)
		}
	})
	t.Run("cname chased into another zone", func(t *testing.T) {
		r := exchange(t, "udp", ts.udp, rd("out.example.org.", dns.TypeA))
		if len(r.Answer) != 2 || r.Answer[1].(*dns.A).A.String() != "192.0.2.77" {
			t.Fatalf("%v", r)
		}
	})
	t.Run("cname chased through the forwarder", func(t *testing.T) {
		r := exchange(t, "udp", ts.udp, rd("ext.example.org.", dns.TypeA))
		if len(r.Answer) != 2 || r.Answer[1].(*dns.A).A.String() != "203.0.113.7" || r.Authoritative {
			t.Fatalf("%v", r)
		}
	})
	t.Run("no chase without RD", func(t *testing.T) {
		r := exchange(t, "udp", ts.udp, query("ext.example.org.", dns.TypeA, false))
		if len(r.Answer) != 1 || !r.Authoritative {
			t.Fatalf("%v", r)
		}
	})
	t.Run("rd=0 uncached refused", func(t *testing.T) {
		r := exchange(t, "udp", ts.udp, query("www.elsewhere.net.", dns.TypeA, false))
		if r.Rcode != dns.RcodeRefused {
			t.Fatalf("%v", r)
		}
	})
	t.Run("rd=0 cached answered", func(t *testing.T) {
		r := exchange(t, "udp", ts.udp, query("cached.test.", dns.TypeA, false))
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("%v", r)
		}
	})
	t.Run("loop detected", func(t *testing.T) {
		m := rd("loop.test.", dns.TypeA)
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: 65073, Data: []byte("12345678")})
		before := fwd.queries.Load()
		r := exchange(t, "udp", ts.udp, m)
		if r.Rcode != dns.RcodeServerFailure || fwd.queries.Load() != before {
			t.Fatalf("%v", r)
		}
	})
}

func TestRecursionACL(t *testing.T) {
	fwd := &fakeForwarder{rules: map[string]bool{".": true}}
	ts := startServer(t, Config{Forwarder: fwd, AllowRecursion: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	m := query("www.elsewhere.net.", dns.TypeA, false)
	m.RecursionDesired = true
	r := exchange(t, "udp", ts.udp, m)
	if r.Rcode != dns.RcodeRefused || fwd.queries.Load() != 0 {
		t.Fatalf("client outside allow_recursion got %s, %d upstream queries", dns.RcodeToString[r.Rcode], fwd.queries.Load())
	}
	// Authoritative data stays open to everyone.
	m = query("www.example.org.", dns.TypeA, false)
	m.RecursionDesired = true
	if r := exchange(t, "udp", ts.udp, m); !r.Authoritative || len(r.Answer) != 1 || r.RecursionAvailable {
		t.Fatalf("%v", r)
	}
}

func TestViews(t *testing.T) {
	store := zonestore.NewStore()
	pub := parse(t, "$ORIGIN shop.example.\n@ 60 IN SOA ns hm 1 2 3 4 5\n@ 60 IN NS ns\nns 60 IN A 192.0.2.1\nwww 60 IN A 198.51.100.1\n", "shop.example.")
	priv := parse(t, "$ORIGIN shop.example.\n@ 60 IN SOA ns hm 1 2 3 4 5\n@ 60 IN NS ns\nns 60 IN A 10.0.0.1\ninternal 60 IN A 10.0.0.9\n", "shop.example.")
	store.PutZone(zonestore.DefaultView, pub)
	store.PutZone("vpc", priv)
	ts := startServer(t, Config{Store: store, Views: []View{{Name: "vpc", Clients: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}}})
	r := exchange(t, "udp", ts.udp, query("internal.shop.example.", dns.TypeA, false))
	if len(r.Answer) != 1 {
		t.Fatalf("view client did not see the private zone: %v", r)
	}
	r = exchange(t, "udp", ts.udp, query("www.shop.example.", dns.TypeA, false))
	if r.Rcode != dns.RcodeNameError {
		t.Fatalf("private zone must shadow the public one: %v", r)
	}
}

// TestSwapUnderLoad replaces a 100,000-record zone repeatedly while clients
// query it over UDP: not one query may fail, and the p99 latency during the
// swaps is reported.
func TestSwapUnderLoad(t *testing.T) {
	const names = 100_000
	build := func(serial int) *zonestore.Zone {
		b := zonestore.NewBuilder("load.test.")
		soa, _ := dns.NewRR(fmt.Sprintf("load.test. 60 IN SOA ns hm %d 2 3 4 5", serial))
		ns, _ := dns.NewRR("load.test. 60 IN NS ns.load.test.")
		b.Add(soa)
		b.Add(ns)
		for i := 0; i < names; i++ {
			b.Add(&dns.A{Hdr: dns.RR_Header{Name: fmt.Sprintf("h%d.load.test.", i), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.IPv4(10, byte(serial), byte(i>>8), byte(i))})
		}
		z, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		return z
	}
	store := zonestore.NewStore()
	store.PutZone(zonestore.DefaultView, build(1))
	next := []*zonestore.Zone{build(2), build(3)} // built before the clock starts
	ts := startServer(t, Config{Store: store})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var fails, total atomic.Int64
	lat := make([][]time.Duration, 4)
	for w := range lat {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				m := query(fmt.Sprintf("h%d.load.test.", (i*7919+w)%names), dns.TypeA, false)
				start := time.Now()
				r, _, err := c.Exchange(m, ts.udp)
				lat[w] = append(lat[w], time.Since(start))
				total.Add(1)
				if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
					fails.Add(1)
				}
			}
		}(w)
	}
	// Swap only while queries run: wait for answers before, between and
	// after the swaps (events, not a guess at how long that takes).
	running := func(n int64) {
		deadline := time.Now().Add(30 * time.Second)
		for target := total.Load() + n; total.Load() < target; {
			if time.Now().After(deadline) {
				t.Fatalf("queries stalled at %d", total.Load())
			}
			time.Sleep(time.Millisecond) // polling, with a deadline
		}
	}
	running(100)
	for _, z := range next {
		store.PutZone(zonestore.DefaultView, z)
		running(100)
	}
	close(stop)
	wg.Wait()
	if fails.Load() != 0 {
		t.Fatalf("%d of %d queries failed during swaps", fails.Load(), total.Load())
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	t.Logf("%d queries during 2 swaps of a %d-record zone: p50 %v, p99 %v, max %v",
		len(all), names, all[len(all)/2], all[len(all)*99/100], all[len(all)-1])
	r := exchange(t, "udp", ts.udp, query("h1.load.test.", dns.TypeA, false))
	if r.Answer[0].(*dns.A).A.To4()[1] != 3 {
		t.Fatalf("last swap not visible: %v", r.Answer[0])
	}
}

// TestSeveralListeners: every listen address answers over UDP and TCP.
func TestSeveralListeners(t *testing.T) {
	store := zonestore.NewStore()
	store.PutZone(zonestore.DefaultView, parse(t, testZone, "example.org."))
	s, err := New(Config{Store: store, Listen: []string{"127.0.0.1:0", "127.0.0.2:0", "[::1]:0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	udp, tcp := s.Addrs()
	if len(udp) != 3 || len(tcp) != 3 {
		t.Fatalf("%d UDP and %d TCP listeners, want 3 each", len(udp), len(tcp))
	}
	for i := range udp {
		for _, a := range []struct{ netw, addr string }{{"udp", udp[i].String()}, {"tcp", tcp[i].String()}} {
			if r := exchange(t, a.netw, a.addr, query("www.example.org.", dns.TypeA, false)); len(r.Answer) != 1 {
				t.Fatalf("%s %s: %v", a.netw, a.addr, r)
			}
		}
	}
}

// TestTCPFastPath: authoritative queries over TCP are answered from the
// zone's wire form in the connection's reader, with the same answer the
// full handler gives (compared with the handler's own TCP answer, forced by
// an NSID request, which the fast path leaves to the reply builder); what
// the fast path does not take still reaches the handler; pipelined queries
// mixing both are answered in the order they were sent.
func TestTCPFastPath(t *testing.T) {
	ts := startServer(t, Config{NSID: []byte("x")})
	tests := []struct {
		name  string
		qtype uint16
		fast  bool
	}{
		{"www.example.org.", dns.TypeA, true},
		{"nope.example.org.", dns.TypeA, true},   // NXDOMAIN
		{"www.example.org.", dns.TypeTXT, true},  // NODATA
		{"alias.example.org.", dns.TypeA, true},  // in-zone CNAME
		{"many.big.test.", dns.TypeA, true},      // 60 records: over any UDP limit, fine for TCP
		{"www.example.org.", dns.TypeANY, false}, // ANY: the handler
		{"host.corp.example.", dns.TypeA, true},
	}
	for _, tc := range tests {
		before := ts.Stats().FastPath.Load()
		for _, edns := range []bool{false, true} {
			got := exchange(t, "tcp", ts.tcp, query(tc.name, tc.qtype, edns))
			ref := query(tc.name, tc.qtype, true)
			ref.IsEdns0().Option = append(ref.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
			want := exchange(t, "tcp", ts.tcp, ref)
			if got.Rcode != want.Rcode || got.Authoritative != want.Authoritative || got.Truncated ||
				fmt.Sprint(got.Answer) != fmt.Sprint(want.Answer) || fmt.Sprint(got.Ns) != fmt.Sprint(want.Ns) {
				t.Errorf("%s %s edns=%v: got\n%v\nwant (full handler)\n%v", tc.name, dns.TypeToString[tc.qtype], edns, got, want)
			}
			if edns != (got.IsEdns0() != nil) {
				t.Errorf("%s %s: EDNS in reply %v, in query %v", tc.name, dns.TypeToString[tc.qtype], got.IsEdns0() != nil, edns)
			}
		}
		fast := ts.Stats().FastPath.Load() - before
		if tc.fast && fast != 2 || !tc.fast && fast != 0 {
			t.Errorf("%s %s: %d answers from the fast path, want fast=%v", tc.name, dns.TypeToString[tc.qtype], fast, tc.fast)
		}
	}

	conn, err := dns.Dial("tcp", ts.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 40 {
		tc := tests[i%len(tests)]
		m := query(tc.name, tc.qtype, i%2 == 0)
		m.Id = uint16(1000 + i)
		if err := conn.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range 40 {
		r, err := conn.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		if r.Id != uint16(1000+i) || r.Question[0].Name != tests[i%len(tests)].name {
			t.Fatalf("reply %d: id %d for %s, want id %d: replies out of order", i, r.Id, r.Question[0].Name, 1000+i)
		}
	}
}
