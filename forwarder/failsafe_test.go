package forwarder

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// cachedNames lists the owner names of every record the cache holds.
func cachedNames(f *Forwarder) map[string]bool {
	out := map[string]bool{}
	f.cache.each(func(k cacheKey, e *entry) {
		out[k.name] = true
		for _, sec := range [][]dns.RR{e.msg.Answer, e.msg.Ns, e.msg.Extra} {
			for _, rr := range sec {
				out[dns.CanonicalName(rr.Header().Name)] = true
			}
		}
	})
	return out
}

// A malicious upstream for onprem.example answers with records for names it
// has no authority over: none of it is cached or served.
func TestScrubMaliciousUpstream(t *testing.T) {
	evil := startUpstream(t, nil)
	evil.setHandler(func(w dns.ResponseWriter, r *dns.Msg) {
		answer(dns.RcodeSuccess,
			rrs(t, "www.victim.test. 300 IN A 203.0.113.66", "q. 300 IN A 10.1.0.5", "www.victim.test. 300 IN AAAA 2001:db8::66"),
			rrs(t, "example.test. 300 IN NS ns.example.test.", "onprem.example. 300 IN NS ns1.onprem.example."),
		)(&extraWriter{w, rrs(t, "ns.example.test. 300 IN A 203.0.113.67", "ns1.onprem.example. 300 IN A 10.1.0.53")}, r)
	})
	good := startUpstream(t, aHandler("192.0.2.1", 300))
	f, _ := newTest(t, Config{Rules: []Rule{
		{Suffix: "onprem.example.", Upstreams: []string{evil.addr}},
		{Suffix: ".", Upstreams: []string{good.addr}},
	}})
	for range 2 { // from the upstream, then from the cache
		r := resolve(t, f, query("www.onprem.example.", dns.TypeA))
		if len(r.Answer) != 1 || r.Answer[0].Header().Name != "www.onprem.example." {
			t.Fatalf("answer not scrubbed to the question:\n%v", r)
		}
		if len(r.Ns) != 1 || r.Ns[0].Header().Name != "onprem.example." {
			t.Errorf("authority not scrubbed to onprem.example:\n%v", r)
		}
		if len(r.Extra) != 1 || r.Extra[0].Header().Name != "ns1.onprem.example." {
			t.Errorf("additional not scrubbed to onprem.example:\n%v", r)
		}
	}
	names := cachedNames(f)
	for _, n := range []string{"www.victim.test.", "example.test.", "ns.example.test."} {
		if names[n] {
			t.Errorf("%s cached from the onprem.example upstream", n)
		}
	}
	// The victim's name is still resolved by its own rule.
	if ip, _ := firstA(t, resolve(t, f, query("www.victim.test.", dns.TypeA))); ip != "192.0.2.1" {
		t.Errorf("www.victim.test answered %s, want the default upstream's", ip)
	}
	if good.queries.Load() != 1 {
		t.Errorf("default upstream saw %d queries, want 1", good.queries.Load())
	}
}

// extraWriter adds records to the additional section of what it writes.
type extraWriter struct {
	dns.ResponseWriter
	extra []dns.RR
}

func (w *extraWriter) WriteMsg(m *dns.Msg) error {
	m.Extra = append(m.Extra, w.extra...)
	return w.ResponseWriter.WriteMsg(m)
}

func TestScrubChain(t *testing.T) {
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		zone   string
		answer []string
		ns     []string
		want   []string // answer owners/types kept, in order: "owner TYPE"
		wantNS int
	}{
		{
			name: "cname chain followed in any order, strays dropped", qname: "a.corp.", qtype: dns.TypeA, zone: "corp.",
			answer: []string{"b.corp. 60 IN CNAME c.other.", "stray.corp. 60 IN A 10.0.0.9", "c.other. 60 IN A 10.0.0.1", "a.corp. 60 IN CNAME b.corp.", "x.other. 60 IN A 10.0.0.2"},
			want:   []string{"b.corp. CNAME", "c.other. A", "a.corp. CNAME"},
		},
		{
			name: "data at the question ends the chain", qname: "a.corp.", qtype: dns.TypeA, zone: ".",
			answer: []string{"a.corp. 60 IN A 10.0.0.1", "a.corp. 60 IN A 10.0.0.2", "b.corp. 60 IN A 10.0.0.3"},
			want:   []string{"a.corp. A", "a.corp. A"},
		},
		{
			name: "dname substitution with its synthesized cname", qname: "x.old.corp.", qtype: dns.TypeA, zone: "corp.",
			answer: []string{"old.corp. 60 IN DNAME new.corp.", "x.old.corp. 60 IN CNAME x.new.corp.", "x.new.corp. 60 IN A 10.0.0.1", "y.new.corp. 60 IN A 10.0.0.2"},
			want:   []string{"old.corp. DNAME", "x.old.corp. CNAME", "x.new.corp. A"},
		},
		{
			name: "a synthesized cname that disagrees with the dname is dropped", qname: "x.old.corp.", qtype: dns.TypeA, zone: "corp.",
			answer: []string{"old.corp. 60 IN DNAME new.corp.", "x.old.corp. 60 IN CNAME evil.test.", "evil.test. 60 IN A 10.6.6.6", "x.new.corp. 60 IN A 10.0.0.1"},
			want:   []string{"old.corp. DNAME", "x.new.corp. A"},
		},
		{
			name: "rrsigs of kept rrsets only", qname: "a.corp.", qtype: dns.TypeA, zone: "corp.",
			answer: []string{"a.corp. 60 IN A 10.0.0.1", "a.corp. 60 IN RRSIG A 8 2 60 20300101000000 20200101000000 1 corp. AAAA", "a.corp. 60 IN RRSIG AAAA 8 2 60 20300101000000 20200101000000 1 corp. AAAA", "b.corp. 60 IN RRSIG A 8 2 60 20300101000000 20200101000000 1 corp. AAAA"},
			want:   []string{"a.corp. A", "a.corp. RRSIG"},
		},
		{
			name: "qtype RRSIG keeps the signatures at the name", qname: "a.corp.", qtype: dns.TypeRRSIG, zone: "corp.",
			answer: []string{"a.corp. 60 IN RRSIG A 8 2 60 20300101000000 20200101000000 1 corp. AAAA", "b.corp. 60 IN RRSIG A 8 2 60 20300101000000 20200101000000 1 corp. AAAA"},
			want:   []string{"a.corp. RRSIG"},
		},
		{
			name: "qtype ANY keeps every type at the name with its signatures", qname: "a.corp.", qtype: dns.TypeANY, zone: "corp.",
			answer: []string{"a.corp. 60 IN A 10.0.0.1", "a.corp. 60 IN TXT x", "a.corp. 60 IN RRSIG TXT 8 2 60 20300101000000 20200101000000 1 corp. AAAA", "b.corp. 60 IN A 10.0.0.2"},
			want:   []string{"a.corp. A", "a.corp. TXT", "a.corp. RRSIG"},
		},
		{
			name: "cname loop stops", qname: "a.corp.", qtype: dns.TypeA, zone: "corp.",
			answer: []string{"a.corp. 60 IN CNAME b.corp.", "b.corp. 60 IN CNAME a.corp."},
			want:   []string{"a.corp. CNAME", "b.corp. CNAME"},
		},
		{
			name: "qtype CNAME is not followed", qname: "a.corp.", qtype: dns.TypeCNAME, zone: "corp.",
			answer: []string{"a.corp. 60 IN CNAME b.corp.", "b.corp. 60 IN A 10.0.0.1"},
			want:   []string{"a.corp. CNAME"},
		},
		{
			name: "authority outside the rule's zone dropped", qname: "nx.corp.", qtype: dns.TypeA, zone: "corp.",
			ns:     []string{"corp. 60 IN SOA ns.corp. h.corp. 1 2 3 4 5", "test. 60 IN SOA ns.test. h.test. 1 2 3 4 5", "com. 60 IN NS a.gtld-servers.net."},
			wantNS: 1,
		},
		{
			name: "default rule keeps every authority record", qname: "nx.corp.", qtype: dns.TypeA, zone: ".",
			ns:     []string{"corp. 60 IN SOA ns.corp. h.corp. 1 2 3 4 5", "com. 60 IN NS a.gtld-servers.net."},
			wantNS: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &dns.Msg{Answer: rrs(t, tc.answer...), Ns: rrs(t, tc.ns...)}
			scrub(m, tc.qname, tc.qtype, tc.zone)
			var got []string
			for _, rr := range m.Answer {
				got = append(got, rr.Header().Name+" "+dns.TypeToString[rr.Header().Rrtype])
			}
			if strings.Join(got, ", ") != strings.Join(tc.want, ", ") {
				t.Errorf("answer kept %q, want %q", got, tc.want)
			}
			if len(m.Ns) != tc.wantNS {
				t.Errorf("authority kept %d, want %d:\n%v", len(m.Ns), tc.wantNS, m.Ns)
			}
		})
	}
}

// A blackholed upstream under one rule, loaded with 500 distinct names at
// once, does not take the capacity of another rule: every query for the
// healthy rule is answered.
func TestBlackholedRuleDoesNotStarveOthers(t *testing.T) {
	dead, _ := silentUpstream(t)
	good := startUpstream(t, aHandler("192.0.2.1", 60))
	f, _ := newTest(t, Config{
		Rules: []Rule{
			{Suffix: "a.example.", Upstreams: []string{dead}},
			{Suffix: "b.example.", Upstreams: []string{good.addr}},
		},
		MaxInFlight: 200, // per rule; it used to be shared by every rule
		Timeout:     2 * time.Second, Deadline: 3 * time.Second,
	})
	const flood = 500
	var wg sync.WaitGroup
	var refused atomic.Int64
	for i := range flood {
		// 50 zones of 10 names: the rule bound binds, not the zone bound.
		name := fmt.Sprintf("n%d.z%d.a.example.", i, i%50)
		wg.Go(func() {
			if _, err := f.Resolve(context.Background(), query(name, dns.TypeA)); errors.Is(err, ErrOverloaded) {
				refused.Add(1)
			}
		})
	}
	ruleA := f.rules["a.example."]
	waitFor(t, "rule a.example at its bound", func() bool { return ruleA.inflight.Load() == 200 })

	const healthy = 100
	var ok atomic.Int64
	var hw sync.WaitGroup
	for i := range healthy {
		hw.Go(func() {
			r, err := f.Resolve(context.Background(), query(fmt.Sprintf("h%d.b.example.", i), dns.TypeA))
			if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 {
				ok.Add(1)
			}
		})
	}
	hw.Wait()
	if ok.Load() != healthy {
		t.Errorf("%d of %d queries for the healthy rule answered while the other rule was flooded", ok.Load(), healthy)
	}
	wg.Wait()
	t.Logf("flood: %d of %d refused at once by the rule bound; healthy: %d/%d answered", refused.Load(), flood, ok.Load(), healthy)
}

// Distinct names under one zone share FetchesPerZone slots: once the zone
// is at its bound and none of its fetches got a reply for half the
// timeout, more fail at once; another zone under the same rule is
// unaffected.
func TestFetchesPerZone(t *testing.T) {
	dead, _ := silentUpstream(t)
	f, clk := newTest(t, Config{Rules: defaultRule(dead), FetchesPerZone: 20, Timeout: 2 * time.Second, Deadline: 3 * time.Second})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { f.Resolve(context.Background(), query(fmt.Sprintf("r%d.victim.example.", i), dns.TypeA)) })
	}
	waitFor(t, "20 fetches under victim.example", func() bool { return f.Stats().InFlight == 20 })
	clk.Advance(time.Second) // half the timeout without a reply: stuck
	_, err := f.Resolve(context.Background(), query("r21.deeper.victim.example.", dns.TypeA))
	if !errors.Is(err, ErrOverloaded) || f.Stats().ZoneLimited != 1 {
		t.Errorf("21st fetch under victim.example: err = %v, zone limited %d; want ErrOverloaded", err, f.Stats().ZoneLimited)
	}
	ctx, cancel := context.WithCancel(context.Background())
	other := make(chan error, 1)
	go func() {
		_, err := f.Resolve(ctx, query("www.other.example.", dns.TypeA))
		other <- err
	}()
	waitFor(t, "a fetch for another zone to start", func() bool { return f.Stats().InFlight >= 21 })
	cancel()
	<-other
	wg.Wait()
}

// A zone that keeps answering is not held back by a burst of distinct
// names beyond FetchesPerZone.
func TestFetchesPerZoneLetsLiveZoneThrough(t *testing.T) {
	release := make(chan struct{})
	var seen atomic.Int64
	u := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if seen.Add(1) > 1 {
			<-release // every fetch but the first waits
		}
		aHandler("192.0.2.1", 60)(w, r)
	})
	f, _ := newTest(t, Config{Rules: defaultRule(u.addr), FetchesPerZone: 5, Timeout: 2 * time.Second, Deadline: 3 * time.Second})
	resolve(t, f, query("first.live.example.", dns.TypeA)) // a reply: the zone is alive
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() { resolve(t, f, query(fmt.Sprintf("b%d.live.example.", i), dns.TypeA)) })
	}
	waitFor(t, "10 fetches at the upstream", func() bool { return u.queries.Load() == 11 })
	close(release)
	wg.Wait()
	if n := f.Stats().ZoneLimited; n != 0 {
		t.Errorf("%d fetches of a live zone refused", n)
	}
}

func TestZoneOf(t *testing.T) {
	for _, tc := range []struct{ qname, suffix, want string }{
		{"rnd.victim.example.", ".", "victim.example."},
		{"a.b.victim.example.", ".", "victim.example."},
		{"example.", ".", "."},
		{".", ".", "."},
		{"x.onprem.example.", "onprem.example.", "onprem.example."},
		{"x.y.onprem.example.", "onprem.example.", "y.onprem.example."},
		{"x.y.z.w.onprem.example.", "onprem.example.", "z.w.onprem.example."},
		{"onprem.example.", "onprem.example.", "onprem.example."},
	} {
		if got := zoneOf(tc.qname, tc.suffix); got != tc.want {
			t.Errorf("zoneOf(%s, %s) = %s, want %s", tc.qname, tc.suffix, got, tc.want)
		}
	}
}

// An upstream at its in-flight bound is skipped for the next one.
func TestUpstreamBoundSkips(t *testing.T) {
	slow, _ := silentUpstream(t)
	good := startUpstream(t, aHandler("192.0.2.7", 60))
	f, _ := newTest(t, Config{Rules: defaultRule(slow, good.addr), UpstreamMaxInFlight: 5, Timeout: 2 * time.Second, Deadline: 3 * time.Second})
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() { f.Resolve(context.Background(), query(fmt.Sprintf("s%d.example.", i), dns.TypeA)) })
	}
	waitFor(t, "5 exchanges at the slow upstream", func() bool { return upstreamStats(f, slow).InFlight == 5 })
	if ip, _ := firstA(t, resolve(t, f, query("next.example.", dns.TypeA))); ip != "192.0.2.7" {
		t.Errorf("answered by %s", ip)
	}
	if s := f.Stats(); s.UpstreamBusy != 1 {
		t.Errorf("upstream busy %d, want 1", s.UpstreamBusy)
	}
	wg.Wait()
}

// A down upstream is not waited on while another is up.
func TestDownUpstreamSkipped(t *testing.T) {
	dead, got := silentUpstream(t)
	good := startUpstream(t, aHandler("192.0.2.8", 60))
	f, _ := newTest(t, Config{Rules: defaultRule(dead, good.addr), HealthCheckInterval: time.Hour})
	for _, u := range f.ups {
		if u.addr == dead {
			u.down.Store(true)
		}
	}
	if ip, _ := firstA(t, resolve(t, f, query("x.example.", dns.TypeA))); ip != "192.0.2.8" {
		t.Errorf("answered by %s", ip)
	}
	if n := got.Load(); n != 0 {
		t.Errorf("down upstream received %d queries", n)
	}
}

// A timeout is remembered for ServFailTTL: the next query is answered
// SERVFAIL from the cache without another upstream attempt.
func TestTimeoutRemembered(t *testing.T) {
	dead, got := silentUpstream(t)
	f, clk := newTest(t, Config{Rules: defaultRule(dead), Timeout: 50 * time.Millisecond, ServFailTTL: 5 * time.Second, HealthCheckInterval: time.Hour, MaxFails: -1})
	if _, err := f.Resolve(context.Background(), query("dead.example.", dns.TypeA)); !errors.Is(err, ErrAllFailed) {
		t.Fatalf("err = %v, want ErrAllFailed", err)
	}
	sent := got.Load()
	for range 10 {
		if r := resolve(t, f, query("dead.example.", dns.TypeA)); r.Rcode != dns.RcodeServerFailure {
			t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
		}
	}
	if got.Load() != sent {
		t.Errorf("upstream got %d more queries during servfail_ttl", got.Load()-sent)
	}
	clk.Advance(6 * time.Second)
	f.Resolve(context.Background(), query("dead.example.", dns.TypeA))
	if got.Load() != sent+1 {
		t.Errorf("after servfail_ttl: %d new queries, want 1", got.Load()-sent)
	}
}

// Timeouts for one broken domain do not mark a healthy upstream down: the
// probe they trigger succeeds.
func TestBrokenDomainKeepsUpstreamUp(t *testing.T) {
	u := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if strings.HasSuffix(r.Question[0].Name, "broken.example.") {
			return // its servers never answer
		}
		aHandler("192.0.2.1", 60)(w, r)
	})
	f, _ := newTest(t, Config{Rules: defaultRule(u.addr), Timeout: 50 * time.Millisecond, CacheEntries: -1, HealthCheckInterval: time.Hour})
	for i := range 5 {
		if _, err := f.Resolve(context.Background(), query(fmt.Sprintf("h%d.broken.example.", i), dns.TypeA)); !errors.Is(err, ErrAllFailed) {
			t.Fatalf("broken name: err = %v", err)
		}
	}
	up := f.ups[0]
	waitFor(t, "the triggered probe to clear the suspicion", func() bool { return !up.suspect.Load() })
	if s := upstreamStats(f, u.addr); !s.Up || s.Fails != 0 {
		t.Fatalf("healthy upstream marked down by one domain's timeouts: %+v", s)
	}
	if ip, _ := firstA(t, resolve(t, f, query("fine.example.", dns.TypeA))); ip != "192.0.2.1" {
		t.Errorf("answered by %s", ip)
	}
}

// MaxFails counts failed probes; negative turns health checking off.
func TestMaxFails(t *testing.T) {
	t.Run("probes mark down", func(t *testing.T) {
		dead, _ := silentUpstream(t)
		f, _ := newTest(t, Config{Rules: defaultRule(dead), Timeout: 30 * time.Millisecond, MaxFails: 2, HealthCheckInterval: 20 * time.Millisecond})
		f.Resolve(context.Background(), query("x.example.", dns.TypeA))
		waitFor(t, "two failed probes", func() bool { return !upstreamStats(f, dead).Up })
		if n := upstreamStats(f, dead).Fails; n < 2 {
			t.Errorf("down after %d failed probes, want 2", n)
		}
	})
	t.Run("off", func(t *testing.T) {
		dead, got := silentUpstream(t)
		f, _ := newTest(t, Config{Rules: defaultRule(dead), Timeout: 30 * time.Millisecond, MaxFails: -1, CacheEntries: -1, HealthCheckInterval: 10 * time.Millisecond})
		for i := range 5 {
			f.Resolve(context.Background(), query(fmt.Sprintf("x%d.example.", i), dns.TypeA))
		}
		if s := upstreamStats(f, dead); !s.Up {
			t.Error("marked down with health checking off")
		}
		if got.Load() != 5 {
			t.Errorf("upstream got %d packets, want the 5 queries and no probe", got.Load())
		}
	})
}

// AD from the upstream reaches only clients that set DO or AD (RFC 6840
// §5.7), from the upstream and from the cache alike, and never through the
// wire-form fast path to a client without DO.
func TestADBit(t *testing.T) {
	var sawAD atomic.Bool
	u := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		sawAD.Store(r.AuthenticatedData)
		m := new(dns.Msg)
		m.SetReply(r)
		m.AuthenticatedData = true
		m.Answer = rrs(t, r.Question[0].Name+" 60 IN A 192.0.2.1")
		_ = w.WriteMsg(m)
	})
	f, _ := newTest(t, Config{Rules: defaultRule(u.addr)})
	plain := query("signed.example.", dns.TypeA)
	withAD := query("signed.example.", dns.TypeA)
	withAD.AuthenticatedData = true
	withDO := query("signed.example.", dns.TypeA)
	withDO.SetEdns0(1232, true)
	for _, tc := range []struct {
		name string
		req  *dns.Msg
		want bool
	}{{"plain (fetch)", plain, false}, {"plain (cache)", plain, false}, {"AD (cache)", withAD, true}, {"DO", withDO, true}, {"DO (cache)", withDO, true}} {
		if r := resolve(t, f, tc.req); r.AuthenticatedData != tc.want {
			t.Errorf("%s: AD=%v, want %v", tc.name, r.AuthenticatedData, tc.want)
		}
	}
	if !sawAD.Load() {
		t.Error("upstream query without AD: the upstream cannot tell us what it validated")
	}
	if u.queries.Load() != 2 { // one per DO value
		t.Errorf("upstream queries %d, want 2", u.queries.Load())
	}
	// Fast path: header + question as the server would have them.
	hdr, _ := plain.Pack()
	if _, _, _, _, _, ok := f.AppendCached(hdr, "signed.example.", dns.TypeA, dns.ClassINET, false, false); ok {
		t.Error("fast path answered a non-DO client from an AD entry")
	}
	doHdr, _ := query("signed.example.", dns.TypeA).Pack()
	_, _, _, _, flags, ok := f.AppendCached(doHdr, "signed.example.", dns.TypeA, dns.ClassINET, true, false)
	if !ok || flags&flagAD == 0 {
		t.Errorf("fast path for a DO client: ok=%v flags=%#x, want AD", ok, flags)
	}
}

// The cache stays within its byte bound with large answers and counts what
// it pushes out.
func TestCacheByteBound(t *testing.T) {
	big := func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		txt := &dns.TXT{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}}
		for range 240 {
			txt.Txt = append(txt.Txt, strings.Repeat("x", 250))
		}
		m.Answer = []dns.RR{txt}
		_ = w.WriteMsg(m)
	}
	u := startUpstream(t, big)
	const bound = 1 << 20
	f, _ := newTest(t, Config{Rules: defaultRule(u.addr), CacheBytes: bound, CacheShards: 1})
	for i := range 40 {
		r := resolve(t, f, query(fmt.Sprintf("big%d.example.", i), dns.TypeTXT))
		if n := r.Len(); n < 60_000 {
			t.Fatalf("answer of %d bytes, want about 60 KB", n)
		}
		if s := f.Stats(); s.CacheBytes > bound {
			t.Fatalf("after %d answers the cache holds %d bytes, bound %d", i+1, s.CacheBytes, bound)
		}
	}
	s := f.Stats()
	if s.CacheEvictions == 0 || s.CacheSize == 0 || s.CacheSize >= 40 {
		t.Errorf("size %d evictions %d: want a bounded, non-empty cache", s.CacheSize, s.CacheEvictions)
	}
	t.Logf("%d entries, %d bytes, %d evictions", s.CacheSize, s.CacheBytes, s.CacheEvictions)
	// The most recent answer is still cached.
	before := u.queries.Load()
	resolve(t, f, query("big39.example.", dns.TypeTXT))
	if u.queries.Load() != before {
		t.Error("most recent entry was evicted")
	}
}

// Inherit keeps what is still valid under the new settings and drops
// entries of names whose rule changed.
func TestInherit(t *testing.T) {
	def := startUpstream(t, aHandler("192.0.2.1", 300))
	corpOld := startUpstream(t, aHandler("192.0.2.2", 300))
	corpNew := startUpstream(t, aHandler("192.0.2.3", 300))
	old, clk := newTest(t, Config{Rules: []Rule{{Suffix: ".", Upstreams: []string{def.addr}}, {Suffix: "corp.example.", Upstreams: []string{corpOld.addr}}}})
	resolve(t, old, query("www.example.org.", dns.TypeA))
	resolve(t, old, query("host.corp.example.", dns.TypeA))
	resolve(t, old, query("sf.example.org.", dns.TypeA))
	old.rememberFailure(cacheKey{name: "dead.example.org.", qtype: dns.TypeA, qclass: dns.ClassINET})

	next, _ := newTest(t, Config{CacheEntries: 500, Rules: []Rule{{Suffix: ".", Upstreams: []string{def.addr}}, {Suffix: "corp.example.", Upstreams: []string{corpNew.addr}}}})
	next.now = clk.Now
	if n := next.Inherit(old); n != 2 {
		t.Errorf("kept %d entries, want 2 (the default rule's)", n)
	}
	before := def.queries.Load()
	clk.Advance(10 * time.Second)
	if _, ttl := firstA(t, resolve(t, next, query("www.example.org.", dns.TypeA))); ttl != 290 {
		t.Errorf("inherited entry TTL %d, want 290", ttl)
	}
	if def.queries.Load() != before {
		t.Error("inherited entry was fetched again")
	}
	if ip, _ := firstA(t, resolve(t, next, query("host.corp.example.", dns.TypeA))); ip != "192.0.2.3" {
		t.Errorf("name whose rule changed answered %s from the old upstream's cache", ip)
	}
	if r := resolve(t, next, query("dead.example.org.", dns.TypeA)); r.Rcode != dns.RcodeSuccess {
		t.Error("remembered failure survived the reload")
	}

	// A tighter max_ttl drops entries that no longer fit.
	tight, _ := newTest(t, Config{MaxTTL: time.Minute, Rules: []Rule{{Suffix: ".", Upstreams: []string{def.addr}}, {Suffix: "corp.example.", Upstreams: []string{corpOld.addr}}}})
	tight.now = clk.Now
	if n := tight.Inherit(old); n != 0 {
		t.Errorf("kept %d entries with TTL 300 under max_ttl 60s", n)
	}
}

// A failed refresh of a fresh entry (a prefetch while every upstream is
// down) does not replace the entry with a remembered SERVFAIL.
func TestFailedPrefetchKeepsAnswer(t *testing.T) {
	u := startUpstream(t, aHandler("192.0.2.1", 100))
	f, clk := newTest(t, Config{Rules: defaultRule(u.addr), HealthCheckInterval: time.Hour})
	resolve(t, f, query("hot.example.", dns.TypeA))
	f.ups[0].down.Store(true)
	clk.Advance(95 * time.Second) // inside the last tenth: hits prefetch
	for range 3 {
		resolve(t, f, query("hot.example.", dns.TypeA))
	}
	waitFor(t, "the prefetch to fail", func() bool { return f.Stats().DownFast == 1 })
	if r := resolve(t, f, query("hot.example.", dns.TypeA)); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("fresh answer replaced by a failed prefetch:\n%v", r)
	}
}

// FuzzScrub: scrubbing any reply never panics, keeps only records it was
// given, and leaves nothing outside the zone in authority or additional.
func FuzzScrub(f *testing.F) {
	for _, lines := range [][]string{
		{"a.corp. 60 IN CNAME b.corp.", "b.corp. 60 IN A 10.0.0.1", "x.test. 60 IN A 10.0.0.2"},
		{"old.corp. 60 IN DNAME new.corp.", "x.old.corp. 60 IN CNAME x.new.corp.", "x.new.corp. 60 IN A 10.0.0.1"},
		{"corp. 60 IN DNAME .", "a.corp. 60 IN CNAME a."},
		{". 60 IN DNAME corp.", "a.corp. 60 IN A 10.0.0.1"},
		{"a\\.corp. 60 IN A 10.0.0.1", "corp. 60 IN DNAME x."},
	} {
		m := new(dns.Msg)
		m.SetQuestion("a.corp.", dns.TypeA)
		for _, l := range lines {
			if rr, err := dns.NewRR(l); err == nil {
				m.Answer = append(m.Answer, rr)
				m.Ns = append(m.Ns, dns.Copy(rr))
			}
		}
		b, _ := m.Pack()
		f.Add(b, "corp.")
	}
	f.Fuzz(func(t *testing.T, b []byte, zone string) {
		m := new(dns.Msg)
		if m.Unpack(b) != nil || len(m.Question) != 1 {
			return
		}
		zone = dns.CanonicalName(zone)
		if _, ok := dns.IsDomainName(zone); !ok {
			return
		}
		before := len(m.Answer) + len(m.Ns) + len(m.Extra)
		scrub(m, dns.CanonicalName(m.Question[0].Name), m.Question[0].Qtype, zone)
		if len(m.Answer)+len(m.Ns)+len(m.Extra) > before {
			t.Fatal("scrub added records")
		}
		for _, rr := range append(m.Ns, m.Extra...) {
			if rr.Header().Rrtype != dns.TypeOPT && !dns.IsSubDomain(zone, rr.Header().Name) {
				t.Fatalf("%s kept outside %s", rr.Header().Name, zone)
			}
		}
	})
}
