package forwarder

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/forwarder/fwdtest"
)

// testUpstream is an in-process DNS server on 127.0.0.1 (UDP and TCP on one
// port) with its own handler; it counts what it sees. Health probes (". NS")
// are answered but not counted.
type testUpstream struct {
	addr    string
	udp     *dns.Server
	tcp     *dns.Server
	queries atomic.Int64 // non-probe queries, UDP+TCP
	tcpQ    atomic.Int64 // non-probe queries over TCP
	accepts atomic.Int64 // TCP connections accepted
	last    atomic.Pointer[dns.Msg]
	h       atomic.Pointer[dns.HandlerFunc] // nil: empty NOERROR
}

func (u *testUpstream) setHandler(h dns.HandlerFunc) { u.h.Store(&h) }

func isProbe(r *dns.Msg) bool {
	return len(r.Question) == 1 && r.Question[0].Name == "." && r.Question[0].Qtype == dns.TypeNS
}

func startUpstream(t testing.TB, h dns.HandlerFunc) *testUpstream {
	t.Helper()
	u := &testUpstream{}
	if h != nil {
		u.setHandler(h)
	}
	var err error
	for range 20 {
		if err = u.listen("127.0.0.1:0"); err == nil {
			t.Cleanup(u.stop)
			return u
		}
	}
	t.Fatalf("start upstream: %v", err)
	return nil
}

// restart serves again on the same address after stop.
func (u *testUpstream) restart(t testing.TB) {
	t.Helper()
	var err error
	for range 50 {
		if err = u.listen(u.addr); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("restart upstream %s: %v", u.addr, err)
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func (u *testUpstream) listen(addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		return err
	}
	u.addr = pc.LocalAddr().String()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if !isProbe(r) {
			u.queries.Add(1)
			if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
				u.tcpQ.Add(1)
			}
			u.last.Store(r.Copy())
		}
		h := u.h.Load()
		if h == nil || isProbe(r) {
			m := new(dns.Msg)
			m.SetReply(r)
			_ = w.WriteMsg(m)
			return
		}
		(*h)(w, r)
	})
	var wg sync.WaitGroup
	wg.Add(2)
	u.udp = &dns.Server{PacketConn: pc, Handler: handler, NotifyStartedFunc: wg.Done}
	u.tcp = &dns.Server{Listener: countingListener{l, &u.accepts}, Handler: handler, NotifyStartedFunc: wg.Done}
	go func() { _ = u.udp.ActivateAndServe() }()
	go func() { _ = u.tcp.ActivateAndServe() }()
	wg.Wait()
	return nil
}

func (u *testUpstream) stop() {
	_ = u.udp.Shutdown()
	_ = u.tcp.Shutdown()
}

// reply helpers

func rrs(t testing.TB, lines ...string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("bad RR %q: %v", l, err)
		}
		out = append(out, rr)
	}
	return out
}

// answer replies with the given records, owner "$Q" replaced by the question
// name.
func answer(rcode int, ans, ns []dns.RR) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, rcode)
		for _, rr := range ans {
			c := dns.Copy(rr)
			if c.Header().Name == "q." {
				c.Header().Name = r.Question[0].Name
			}
			m.Answer = append(m.Answer, c)
		}
		for _, rr := range ns {
			m.Ns = append(m.Ns, dns.Copy(rr))
		}
		_ = w.WriteMsg(m)
	}
}

func aHandler(ip string, ttl uint32) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = []dns.RR{&dns.A{
			Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl},
			A:   net.ParseIP(ip),
		}}
		_ = w.WriteMsg(m)
	}
}

func rcodeHandler(rcode int) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, rcode)
		_ = w.WriteMsg(m)
	}
}

// silentUpstream reads queries and never answers.
func silentUpstream(t testing.TB) (addr string, got *atomic.Int64) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	got = new(atomic.Int64)
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	return pc.LocalAddr().String(), got
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTest builds a forwarder with short timeouts and a fake cache clock.
func newTest(t testing.TB, cfg Config) (*Forwarder, *fakeClock) {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 200 * time.Millisecond
	}
	if cfg.Deadline == 0 {
		cfg.Deadline = 2 * time.Second
	}
	if cfg.HealthCheckInterval == 0 {
		cfg.HealthCheckInterval = 50 * time.Millisecond
	}
	if cfg.CacheShards == 0 {
		cfg.CacheShards = 4
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	clk := newClock()
	f.now = clk.Now
	t.Cleanup(func() { f.Close() })
	return f, clk
}

func defaultRule(addrs ...string) []Rule {
	return []Rule{{Suffix: ".", Upstreams: addrs, Policy: PolicySequential}}
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func resolve(t testing.TB, f *Forwarder, req *dns.Msg) *dns.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := f.Resolve(ctx, req)
	if err != nil {
		t.Fatalf("Resolve(%s): %v", req.Question[0].Name, err)
	}
	if r.Id != req.Id {
		t.Fatalf("reply Id %d, want %d", r.Id, req.Id)
	}
	return r
}

func firstA(t testing.TB, m *dns.Msg) (string, uint32) {
	t.Helper()
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String(), a.Hdr.Ttl
		}
	}
	t.Fatalf("no A in reply:\n%v", m)
	return "", 0
}

func upstreamStats(f *Forwarder, addr string) UpstreamStats {
	for _, u := range f.Stats().Upstreams {
		if u.Addr == addr {
			return u
		}
	}
	return UpstreamStats{}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	fwdtest.WaitFor(t, what, cond)
}
