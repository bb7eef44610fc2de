package forwarder

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestResolveRoutesByRule(t *testing.T) {
	def := startUpstream(t, aHandler("192.0.2.1", 60))
	corp := startUpstream(t, aHandler("192.0.2.2", 60))
	sub := startUpstream(t, aHandler("192.0.2.3", 60))
	f, _ := newTest(t, Config{Rules: []Rule{
		{Suffix: ".", Upstreams: []string{def.addr}},
		{Suffix: "corp.example.", Upstreams: []string{corp.addr}},
		{Suffix: "lab.corp.example.", Upstreams: []string{sub.addr}},
	}})
	tests := []struct{ qname, want string }{
		{"www.example.org.", "192.0.2.1"},
		{"host.corp.example.", "192.0.2.2"},
		{"HOST.Lab.Corp.Example.", "192.0.2.3"},
		{"corp.example.", "192.0.2.2"},
	}
	for _, tc := range tests {
		ip, _ := firstA(t, resolve(t, f, query(tc.qname, dns.TypeA)))
		if ip != tc.want {
			t.Errorf("%s answered by %s, want %s", tc.qname, ip, tc.want)
		}
	}

	noDef, _ := newTest(t, Config{Rules: []Rule{{Suffix: "corp.example.", Upstreams: []string{corp.addr}}}})
	if _, err := noDef.Resolve(context.Background(), query("www.example.org.", dns.TypeA)); !errors.Is(err, ErrNoUpstream) {
		t.Errorf("no rule: err = %v, want ErrNoUpstream", err)
	}
}

func TestFailover(t *testing.T) {
	tests := []struct {
		name  string
		first func(t *testing.T) string
	}{
		{"silent", func(t *testing.T) string { a, _ := silentUpstream(t); return a }},
		{"servfail", func(t *testing.T) string { return startUpstream(t, rcodeHandler(dns.RcodeServerFailure)).addr }},
		{"refused", func(t *testing.T) string { return startUpstream(t, rcodeHandler(dns.RcodeRefused)).addr }},
		{"closed port", func(t *testing.T) string {
			u := startUpstream(t, nil)
			u.stop()
			return u.addr
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first := tc.first(t)
			good := startUpstream(t, aHandler("192.0.2.9", 60))
			f, _ := newTest(t, Config{Rules: defaultRule(first, good.addr), Timeout: 100 * time.Millisecond})
			ip, _ := firstA(t, resolve(t, f, query("fail.example.", dns.TypeA)))
			if ip != "192.0.2.9" {
				t.Fatalf("answer %s, want the second upstream's", ip)
			}
			if good.queries.Load() != 1 {
				t.Errorf("second upstream saw %d queries, want 1", good.queries.Load())
			}
		})
	}
}

func TestAllServFail(t *testing.T) {
	a := startUpstream(t, rcodeHandler(dns.RcodeServerFailure))
	b := startUpstream(t, rcodeHandler(dns.RcodeServerFailure))
	f, _ := newTest(t, Config{Rules: defaultRule(a.addr, b.addr)})
	r := resolve(t, f, query("sf.example.", dns.TypeA))
	if r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	if a.queries.Load() != 1 || b.queries.Load() != 1 {
		t.Errorf("queries a=%d b=%d, want 1 each", a.queries.Load(), b.queries.Load())
	}
	// Soft errors do not mark upstreams down.
	if !upstreamStats(f, a.addr).Up || upstreamStats(f, a.addr).SoftErrors != 1 {
		t.Errorf("stats %+v", upstreamStats(f, a.addr))
	}
}

func TestAllFailedError(t *testing.T) {
	a, _ := silentUpstream(t)
	f, _ := newTest(t, Config{Rules: defaultRule(a), Timeout: 50 * time.Millisecond})
	_, err := f.Resolve(context.Background(), query("x.example.", dns.TypeA))
	if !errors.Is(err, ErrAllFailed) || !strings.Contains(err.Error(), a) {
		t.Fatalf("err = %v, want ErrAllFailed naming %s", err, a)
	}
	if s := upstreamStats(f, a); s.Timeouts != 1 {
		t.Errorf("timeouts = %d, want 1", s.Timeouts)
	}
}

func TestOverallDeadline(t *testing.T) {
	a, _ := silentUpstream(t)
	b, _ := silentUpstream(t)
	c, _ := silentUpstream(t)
	// Attempts of a minute each: only the 150ms deadline can end this
	// before the test's 30s verdict, however loaded the machine.
	f, _ := newTest(t, Config{Rules: defaultRule(a, b, c), Timeout: time.Minute, Deadline: 150 * time.Millisecond})
	start := time.Now()
	_, err := f.Resolve(context.Background(), query("slow.example.", dns.TypeA))
	if !errors.Is(err, ErrAllFailed) {
		t.Fatalf("err = %v, want ErrAllFailed", err)
	}
	if el := time.Since(start); el > 30*time.Second {
		t.Errorf("took %v: the overall deadline did not end the attempts", el)
	}
}

// An upstream killed mid-run is failed over, marked down once the health
// probes it triggered fail, skipped while down, and brought back by the
// probe when it returns.
func TestKilledUpstreamRecovers(t *testing.T) {
	a := startUpstream(t, aHandler("192.0.2.1", 60))
	b := startUpstream(t, aHandler("192.0.2.2", 60))
	f, _ := newTest(t, Config{Rules: defaultRule(a.addr, b.addr), CacheEntries: -1, HealthCheckInterval: 30 * time.Millisecond})

	if ip, _ := firstA(t, resolve(t, f, query("one.example.", dns.TypeA))); ip != "192.0.2.1" {
		t.Fatalf("before kill: answered by %s, want first upstream", ip)
	}
	a.stop()
	if ip, _ := firstA(t, resolve(t, f, query("two.example.", dns.TypeA))); ip != "192.0.2.2" {
		t.Fatalf("after kill: answered by %s, want second upstream", ip)
	}
	waitFor(t, "probes to mark the killed upstream down", func() bool { return !upstreamStats(f, a.addr).Up })
	a.restart(t)
	waitFor(t, "health probe to mark upstream up", func() bool { return upstreamStats(f, a.addr).Up })
	before := a.queries.Load()
	if ip, _ := firstA(t, resolve(t, f, query("four.example.", dns.TypeA))); ip != "192.0.2.1" {
		t.Fatalf("after recovery: answered by %s, want first upstream", ip)
	}
	if a.queries.Load() != before+1 {
		t.Errorf("recovered upstream queries %d -> %d", before, a.queries.Load())
	}
}

// When every upstream of a rule is down, a miss fails at once (no
// upstream traffic) while the probe checks them; the failure is remembered
// for ServFailTTL.
func TestAllDownFailsFast(t *testing.T) {
	a := startUpstream(t, aHandler("192.0.2.1", 60))
	f, _ := newTest(t, Config{Rules: defaultRule(a.addr), HealthCheckInterval: time.Hour})
	f.ups[0].down.Store(true)
	if _, err := f.Resolve(context.Background(), query("x.example.", dns.TypeA)); !errors.Is(err, ErrAllFailed) {
		t.Fatalf("down-only pool: err = %v, want ErrAllFailed", err)
	}
	if n := a.queries.Load(); n != 0 {
		t.Errorf("down upstream got %d queries", n)
	}
	r := resolve(t, f, query("x.example.", dns.TypeA))
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("second query: rcode %s, want the remembered SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	if s := f.Stats(); s.DownFast != 1 || s.FailCached != 1 {
		t.Errorf("stats down_fast=%d fail_cached=%d, want 1 and 1", s.DownFast, s.FailCached)
	}
}

func TestPolicies(t *testing.T) {
	a := startUpstream(t, aHandler("192.0.2.1", 60))
	b := startUpstream(t, aHandler("192.0.2.2", 60))
	c := startUpstream(t, aHandler("192.0.2.3", 60))
	tests := []struct {
		policy Policy
		check  func(n [3]int64) bool
	}{
		{PolicySequential, func(n [3]int64) bool { return n == [3]int64{30, 0, 0} }},
		{PolicyRoundRobin, func(n [3]int64) bool { return n == [3]int64{10, 10, 10} }},
		{PolicyRandom, func(n [3]int64) bool { return n[0]+n[1]+n[2] == 30 && n[0] < 30 && n[1] < 30 && n[2] < 30 }},
	}
	for _, tc := range tests {
		t.Run(string(tc.policy), func(t *testing.T) {
			base := [3]int64{a.queries.Load(), b.queries.Load(), c.queries.Load()}
			f, _ := newTest(t, Config{CacheEntries: -1, Rules: []Rule{{Suffix: ".", Upstreams: []string{a.addr, b.addr, c.addr}, Policy: tc.policy}}})
			for i := range 30 {
				resolve(t, f, query(strings.Repeat("x", i+1)+".example.", dns.TypeA))
			}
			n := [3]int64{a.queries.Load() - base[0], b.queries.Load() - base[1], c.queries.Load() - base[2]}
			if !tc.check(n) {
				t.Errorf("distribution %v", n)
			}
		})
	}
}

// truncatedOverUDP answers with TC over UDP and with n A records
// (192.0.2.0, .1, …) over TCP.
func truncatedOverUDP(n int) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			m.Truncated = true
		} else {
			for i := range n {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, byte(i))})
			}
		}
		_ = w.WriteMsg(m)
	}
}

func TestTruncatedRetriesOverTCP(t *testing.T) {
	u := startUpstream(t, truncatedOverUDP(3))
	f, _ := newTest(t, Config{Rules: defaultRule(u.addr)})
	for i, name := range []string{"big.example.", "big2.example.", "big3.example."} {
		r := resolve(t, f, query(name, dns.TypeA))
		if r.Truncated || len(r.Answer) != 3 {
			t.Fatalf("%s: TC=%v, %d answers; want the full TCP answer", name, r.Truncated, len(r.Answer))
		}
		if got := u.tcpQ.Load(); got != int64(i+1) {
			t.Errorf("tcp queries %d, want %d", got, i+1)
		}
	}
	if got := u.accepts.Load(); got != 1 {
		t.Errorf("TCP connections accepted: %d, want 1 (pooled connection reused)", got)
	}
	// The full answer is cached; the truncated one never is.
	resolve(t, f, query("big.example.", dns.TypeA))
	if got := u.queries.Load(); got != 6 {
		t.Errorf("upstream queries %d, want 6 (3 UDP + 3 TCP)", got)
	}
}

// Fetches retried over TCP at the same time share the start-up OPT record
// with every other query: the TCP send must not write to it (miekg's
// packer sets the OPT's extended rcode; -race caught it).
func TestConcurrentTCPRetriesShareNothing(t *testing.T) {
	u := startUpstream(t, truncatedOverUDP(1))
	f, _ := newTest(t, Config{Rules: defaultRule(u.addr)})
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			r := resolve(t, f, query(fmt.Sprintf("big%d.example.", i), dns.TypeA))
			if r.Truncated || len(r.Answer) != 1 {
				t.Errorf("big%d: TC=%v, %d answers; want the TCP answer", i, r.Truncated, len(r.Answer))
			}
		})
	}
	wg.Wait()
	if got := u.tcpQ.Load(); got != 50 {
		t.Errorf("tcp queries %d, want 50", got)
	}
}

func TestTruncatedNotCachedWhenTCPFails(t *testing.T) {
	u := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Truncated = true
		_ = w.WriteMsg(m)
	})
	u.tcp.Shutdown() // TCP refused
	f, _ := newTest(t, Config{Rules: defaultRule(u.addr)})
	for range 2 {
		if r := resolve(t, f, query("tc.example.", dns.TypeA)); !r.Truncated {
			t.Fatal("want the truncated reply back when TCP fails")
		}
	}
	if got := u.queries.Load(); got != 2 {
		t.Errorf("upstream UDP queries %d, want 2: TC replies must not be cached", got)
	}
}

// rawUpstream answers each query with the packets built by replies, sent
// in order from the listening socket (or from another socket when the
// packet is marked foreign).
type rawPacket struct {
	msg     func(q *dns.Msg) *dns.Msg
	foreign bool
}

func rawUpstream(t *testing.T, replies ...rawPacket) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	other, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close(); other.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			for _, p := range replies {
				wire, _ := p.msg(q).Pack()
				conn := pc
				if p.foreign {
					conn = other
				}
				_, _ = conn.WriteTo(wire, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

func aReply(ip string, mod func(m *dns.Msg)) func(q *dns.Msg) *dns.Msg {
	return func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(ip)}}
		if mod != nil {
			mod(m)
		}
		return m
	}
}

func TestSpoofedRepliesIgnored(t *testing.T) {
	good := rawPacket{msg: aReply("192.0.2.1", nil)}
	tests := []struct {
		name    string
		spoof   rawPacket
		counted bool // the forwarder itself sees and counts it as mismatched
	}{
		{"wrong id", rawPacket{msg: aReply("6.6.6.6", func(m *dns.Msg) { m.Id++ })}, true},
		{"wrong name", rawPacket{msg: aReply("6.6.6.6", func(m *dns.Msg) { m.Question[0].Name = "evil.example." })}, true},
		{"wrong type", rawPacket{msg: aReply("6.6.6.6", func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeAAAA })}, true},
		{"wrong class", rawPacket{msg: aReply("6.6.6.6", func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS })}, true},
		{"not a response", rawPacket{msg: aReply("6.6.6.6", func(m *dns.Msg) { m.Response = false })}, true},
		{"no question", rawPacket{msg: aReply("6.6.6.6", func(m *dns.Msg) { m.Question = nil })}, true},
		// The kernel drops datagrams from other peers on a connected socket.
		{"wrong source port", rawPacket{msg: aReply("6.6.6.6", nil), foreign: true}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawUpstream(t, tc.spoof, good)
			f, _ := newTest(t, Config{Rules: defaultRule(addr), Timeout: time.Second})
			ip, _ := firstA(t, resolve(t, f, query("victim.example.", dns.TypeA)))
			if ip != "192.0.2.1" {
				t.Fatalf("accepted spoofed answer %s", ip)
			}
			if got := upstreamStats(f, addr).Mismatched; tc.counted && got != 1 {
				t.Errorf("mismatched = %d, want 1", got)
			}
		})
	}
}

// Upstreams may answer with a different name case (0x20); that is the same
// question.
func TestQuestionCaseInsensitive(t *testing.T) {
	addr := rawUpstream(t, rawPacket{msg: aReply("192.0.2.1", func(m *dns.Msg) { m.Question[0].Name = strings.ToUpper(m.Question[0].Name) })})
	f, _ := newTest(t, Config{Rules: defaultRule(addr)})
	req := query("MiXeD.Example.", dns.TypeA)
	r := resolve(t, f, req)
	if r.Question[0].Name != "MiXeD.Example." {
		t.Errorf("question %q, want the client's case", r.Question[0].Name)
	}
}

func TestIDAndQuestionRestored(t *testing.T) {
	u := startUpstream(t, aHandler("192.0.2.1", 60))
	f, _ := newTest(t, Config{Rules: defaultRule(u.addr)})
	for i, name := range []string{"Case.EXAMPLE.", "case.example.", "CASE.example."} {
		req := query(name, dns.TypeA)
		req.Id = uint16(4242 + i)
		r := resolve(t, f, req) // checks Id
		if r.Question[0].Name != name {
			t.Errorf("question %q, want %q", r.Question[0].Name, name)
		}
		if !r.Response || r.RecursionDesired != req.RecursionDesired {
			t.Errorf("header %+v", r.MsgHdr)
		}
		if up := u.last.Load(); up.Id == req.Id && i == 0 {
			t.Errorf("upstream saw the client's Id %d", req.Id)
		}
	}
	if u.queries.Load() != 1 {
		t.Errorf("upstream queries %d, want 1 (case-insensitive cache key)", u.queries.Load())
	}
}

func TestUpstreamQueryShape(t *testing.T) {
	u := startUpstream(t, aHandler("192.0.2.1", 60))
	f, _ := newTest(t, Config{Rules: defaultRule(u.addr)})
	req := query("Shape.Example.", dns.TypeA)
	req.CheckingDisabled = true
	req.SetEdns0(4096, true)
	opt := req.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"}, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(198, 51, 100, 0)})
	r := resolve(t, f, req)
	if r.IsEdns0() != nil {
		t.Error("reply carries an OPT record; the server owns EDNS")
	}

	up := u.last.Load()
	uo := up.IsEdns0()
	if uo == nil {
		t.Fatal("upstream query without EDNS0")
	}
	if uo.UDPSize() != 1232 || !uo.Do() || !up.CheckingDisabled || !up.RecursionDesired {
		t.Errorf("upstream query: size %d DO %v CD %v RD %v", uo.UDPSize(), uo.Do(), up.CheckingDisabled, up.RecursionDesired)
	}
	if len(uo.Option) != 1 {
		t.Fatalf("upstream options %v, want only the loop marker", uo.Option)
	}
	l, ok := uo.Option[0].(*dns.EDNS0_LOCAL)
	if !ok || l.Code != LoopOptionCode || len(l.Data) != 8 {
		t.Fatalf("loop marker %#v", uo.Option[0])
	}
	// Our own query coming back is a loop; other queries are not.
	if !f.IsLoop(up) {
		t.Error("IsLoop(our upstream query) = false")
	}
	if _, err := f.Resolve(context.Background(), up); !errors.Is(err, ErrLoop) {
		t.Errorf("Resolve(looped query) err = %v, want ErrLoop", err)
	}
	if f.IsLoop(req) || f.IsLoop(query("x.", dns.TypeA)) {
		t.Error("IsLoop true for a client query")
	}
	other, _ := newTest(t, Config{Rules: defaultRule(u.addr)})
	if other.IsLoop(up) {
		t.Error("IsLoop true for another forwarder's marker")
	}
	// Client without DO: upstream without DO; a different cache key.
	resolve(t, f, query("shape.example.", dns.TypeA))
	if up := u.last.Load(); up.IsEdns0() == nil || up.IsEdns0().Do() || up.CheckingDisabled {
		t.Errorf("DO/CD leaked into a plain query: %v", up)
	}
}

// An upstream that echoes our OPT (with the marker) must not leak it.
func TestUpstreamOPTStripped(t *testing.T) {
	addr := rawUpstream(t, rawPacket{msg: func(q *dns.Msg) *dns.Msg {
		m := aReply("192.0.2.1", nil)(q)
		m.Extra = append(m.Extra, q.IsEdns0())
		return m
	}})
	f, _ := newTest(t, Config{Rules: defaultRule(addr)})
	for range 2 { // miss, then hit
		r := resolve(t, f, query("echo.example.", dns.TypeA))
		if r.IsEdns0() != nil || f.IsLoop(r) {
			t.Fatalf("reply carries upstream OPT: %v", r)
		}
	}
}

func TestCoalescing(t *testing.T) {
	release := make(chan struct{})
	u := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		<-release
		aHandler("192.0.2.1", 60)(w, r)
	})
	f, _ := newTest(t, Config{Rules: defaultRule(u.addr)})
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			name := "coalesce.example."
			if i%2 == 1 {
				name = "COALESCE.Example."
			}
			req := query(name, dns.TypeA)
			req.Id = uint16(i)
			r, err := f.Resolve(context.Background(), req)
			switch {
			case err != nil:
				errs <- err
			case r.Id != uint16(i) || r.Question[0].Name != name || len(r.Answer) != 1:
				errs <- errors.New("follower got someone else's reply: " + r.String())
			}
		})
	}
	waitFor(t, "49 followers to join", func() bool { return f.Stats().Coalesced == n-1 })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := u.queries.Load(); got != 1 {
		t.Errorf("upstream queries %d, want exactly 1", got)
	}
}

func TestMaxInFlight(t *testing.T) {
	release := make(chan struct{})
	u := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		<-release
		aHandler("192.0.2.1", 60)(w, r)
	})
	f, _ := newTest(t, Config{Rules: defaultRule(u.addr), MaxInFlight: 2, Timeout: 2 * time.Second, Deadline: 3 * time.Second})
	var wg sync.WaitGroup
	for _, name := range []string{"a.example.", "b.example."} {
		wg.Go(func() { resolve(t, f, query(name, dns.TypeA)) })
	}
	waitFor(t, "two queries at the upstream", func() bool { return u.queries.Load() == 2 })
	_, err := f.Resolve(context.Background(), query("c.example.", dns.TypeA))
	if !errors.Is(err, ErrOverloaded) {
		t.Errorf("third query err = %v, want ErrOverloaded", err)
	}
	close(release)
	wg.Wait()
	if s := f.Stats(); s.Overloaded != 1 || s.InFlight != 0 {
		t.Errorf("stats overloaded=%d inflight=%d", s.Overloaded, s.InFlight)
	}
	resolve(t, f, query("c.example.", dns.TypeA)) // capacity is back
}

func TestClientContextCancel(t *testing.T) {
	a, _ := silentUpstream(t)
	f, _ := newTest(t, Config{Rules: defaultRule(a), Timeout: time.Minute, Deadline: 2 * time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := f.Resolve(ctx, query("x.example.", dns.TypeA)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	if time.Since(start) > 30*time.Second { // the attempt alone would take a minute
		t.Error("Resolve ignored the caller's context")
	}
}

func TestCloseStopsWork(t *testing.T) {
	a, _ := silentUpstream(t)
	f, err := New(Config{Rules: defaultRule(a), Timeout: 2 * time.Minute, Deadline: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	go f.Resolve(context.Background(), query("x.example.", dns.TypeA))
	waitFor(t, "fetch in flight", func() bool { return f.Stats().InFlight == 1 })
	start := time.Now()
	f.Close()
	if time.Since(start) > 30*time.Second { // the fetch alone would take two minutes
		t.Errorf("Close took %v: in-flight fetch not cancelled", time.Since(start))
	}
	if _, err := f.Resolve(context.Background(), query("y.example.", dns.TypeA)); !errors.Is(err, ErrClosed) {
		t.Errorf("Resolve after Close: %v, want ErrClosed", err)
	}
	if n := f.ups[0].fails.Load(); n != 0 {
		t.Errorf("shutdown counted against upstream health: %d failures", n)
	}
}
