package forwarder

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestTTLDecrement(t *testing.T) {
	u := startUpstream(t, answer(dns.RcodeSuccess, rrs(t,
		"q. 300 IN CNAME target.example.",
		"target.example. 100 IN A 192.0.2.1",
	), rrs(t, "example. 500 IN NS ns.example.")))
	// Prefetch off: the hits near expiry below would trigger a refresh.
	f, clk := newTest(t, Config{Rules: defaultRule(u.addr), Prefetch: -1})
	tests := []struct {
		advance time.Duration
		want    []uint32 // answer TTLs then authority TTL
	}{
		{0, []uint32{300, 100, 500}},
		{10 * time.Second, []uint32{290, 90, 490}},
		{500 * time.Millisecond, []uint32{290, 90, 490}}, // whole seconds only
		{79 * time.Second, []uint32{211, 11, 411}},
		{10 * time.Second, []uint32{201, 1, 401}},
	}
	for i, tc := range tests {
		clk.Advance(tc.advance)
		r := resolve(t, f, query("ttl.example.", dns.TypeA))
		var got []uint32
		for _, rr := range append(r.Answer, r.Ns...) {
			got = append(got, rr.Header().Ttl)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("step %d: TTLs %v, want %v", i, got, tc.want)
		}
	}
	if u.queries.Load() != 1 {
		t.Fatalf("upstream queries %d, want 1 while fresh", u.queries.Load())
	}
	clk.Advance(time.Second) // 100s: the A record is expired, so is the entry
	if _, ttl := firstA(t, resolve(t, f, query("ttl.example.", dns.TypeA))); ttl != 100 {
		t.Errorf("refreshed TTL %d, want 100", ttl)
	}
	if u.queries.Load() != 2 {
		t.Errorf("upstream queries %d, want 2 after expiry", u.queries.Load())
	}
}

func TestTTLClamps(t *testing.T) {
	tests := []struct {
		name             string
		upTTL            uint32
		minTTL, maxTTL   time.Duration
		wantTTL          uint32
		expiresAfter     time.Duration
		cachedUntilAlmst time.Duration
	}{
		{"min raises", 10, time.Minute, 0, 60, 60 * time.Second, 59 * time.Second},
		{"max lowers", 3600, 0, 100 * time.Second, 100, 100 * time.Second, 99 * time.Second},
		{"inside", 120, time.Minute, time.Hour, 120, 120 * time.Second, 119 * time.Second},
		{"default max 24h", 7 * 86400, 0, 0, 86400, 86400 * time.Second, 86399 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := startUpstream(t, aHandler("192.0.2.1", tc.upTTL))
			f, clk := newTest(t, Config{Rules: defaultRule(u.addr), MinTTL: tc.minTTL, MaxTTL: tc.maxTTL})
			if _, ttl := firstA(t, resolve(t, f, query("clamp.example.", dns.TypeA))); ttl != tc.wantTTL {
				t.Errorf("TTL %d, want %d", ttl, tc.wantTTL)
			}
			clk.Advance(tc.cachedUntilAlmst)
			if _, ttl := firstA(t, resolve(t, f, query("clamp.example.", dns.TypeA))); ttl != 1 {
				t.Errorf("TTL just before expiry %d, want 1", ttl)
			}
			if u.queries.Load() != 1 {
				t.Errorf("expired early: %d upstream queries", u.queries.Load())
			}
			clk.Advance(tc.expiresAfter - tc.cachedUntilAlmst)
			resolve(t, f, query("clamp.example.", dns.TypeA))
			if u.queries.Load() != 2 {
				t.Errorf("not expired at %v: %d upstream queries", tc.expiresAfter, u.queries.Load())
			}
		})
	}
}

func TestTTLZeroNotCached(t *testing.T) {
	u := startUpstream(t, aHandler("192.0.2.1", 0))
	f, _ := newTest(t, Config{Rules: defaultRule(u.addr)})
	resolve(t, f, query("zero.example.", dns.TypeA))
	resolve(t, f, query("zero.example.", dns.TypeA))
	if u.queries.Load() != 2 {
		t.Errorf("TTL 0 answer was cached: %d upstream queries", u.queries.Load())
	}
}

func TestNegativeCaching(t *testing.T) {
	soa := "example. 3600 IN SOA ns.example. host.example. 1 7200 900 1209600 300"
	tests := []struct {
		name      string
		rcode     int
		ns        []string
		negMax    time.Duration
		wantTTL   uint32 // SOA TTL in the reply; 0: not cached
		wantRcode int
	}{
		{"nxdomain with soa", dns.RcodeNameError, []string{soa}, 0, 300, dns.RcodeNameError},
		{"nodata with soa", dns.RcodeSuccess, []string{soa}, 0, 300, dns.RcodeSuccess},
		{"soa ttl below minimum", dns.RcodeNameError, []string{"example. 60 IN SOA ns.example. host.example. 1 7200 900 1209600 300"}, 0, 60, dns.RcodeNameError},
		{"capped by NegMaxTTL", dns.RcodeNameError, []string{soa}, 100 * time.Second, 100, dns.RcodeNameError},
		{"nxdomain without soa", dns.RcodeNameError, nil, 0, 0, dns.RcodeNameError},
		{"nodata without soa", dns.RcodeSuccess, nil, 0, 0, dns.RcodeSuccess},
		{"referral", dns.RcodeSuccess, []string{"example. 3600 IN NS ns.example."}, 0, 0, dns.RcodeSuccess},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := startUpstream(t, answer(tc.rcode, nil, rrs(t, tc.ns...)))
			f, clk := newTest(t, Config{Rules: defaultRule(u.addr), NegMaxTTL: tc.negMax})
			r := resolve(t, f, query("neg.example.", dns.TypeA))
			if r.Rcode != tc.wantRcode {
				t.Fatalf("rcode %s", dns.RcodeToString[r.Rcode])
			}
			resolve(t, f, query("neg.example.", dns.TypeA))
			if tc.wantTTL == 0 {
				if u.queries.Load() != 2 {
					t.Errorf("cached without SOA: %d upstream queries, want 2", u.queries.Load())
				}
				return
			}
			if u.queries.Load() != 1 {
				t.Fatalf("not cached: %d upstream queries", u.queries.Load())
			}
			if got := r.Ns[0].Header().Ttl; got != tc.wantTTL {
				t.Errorf("SOA TTL %d, want %d", got, tc.wantTTL)
			}
			clk.Advance(time.Duration(tc.wantTTL-1) * time.Second)
			r = resolve(t, f, query("neg.example.", dns.TypeA))
			if r.Rcode != tc.wantRcode || r.Ns[0].Header().Ttl != 1 || u.queries.Load() != 1 {
				t.Errorf("just before expiry: rcode %d TTL %d queries %d", r.Rcode, r.Ns[0].Header().Ttl, u.queries.Load())
			}
			clk.Advance(time.Second)
			resolve(t, f, query("neg.example.", dns.TypeA))
			if u.queries.Load() != 2 {
				t.Errorf("negative entry outlived its TTL: %d upstream queries", u.queries.Load())
			}
		})
	}
}

func TestServFailCachedBriefly(t *testing.T) {
	tests := []struct {
		cfg, want time.Duration
	}{
		{0, 5 * time.Second},
		{2 * time.Second, 2 * time.Second},
		{time.Hour, 30 * time.Second}, // capped
	}
	for _, tc := range tests {
		t.Run(tc.cfg.String(), func(t *testing.T) {
			u := startUpstream(t, rcodeHandler(dns.RcodeServerFailure))
			f, clk := newTest(t, Config{Rules: defaultRule(u.addr), ServFailTTL: tc.cfg})
			for range 2 {
				if r := resolve(t, f, query("sf.example.", dns.TypeA)); r.Rcode != dns.RcodeServerFailure {
					t.Fatalf("rcode %d", r.Rcode)
				}
			}
			if u.queries.Load() != 1 {
				t.Fatalf("SERVFAIL not cached: %d queries", u.queries.Load())
			}
			clk.Advance(tc.want - time.Millisecond)
			resolve(t, f, query("sf.example.", dns.TypeA))
			if u.queries.Load() != 1 {
				t.Fatalf("SERVFAIL expired early")
			}
			clk.Advance(time.Millisecond)
			resolve(t, f, query("sf.example.", dns.TypeA))
			if u.queries.Load() != 2 {
				t.Errorf("SERVFAIL cached past %v", tc.want)
			}
		})
	}
	t.Run("disabled", func(t *testing.T) {
		u := startUpstream(t, rcodeHandler(dns.RcodeServerFailure))
		f, _ := newTest(t, Config{Rules: defaultRule(u.addr), ServFailTTL: -1})
		resolve(t, f, query("sf.example.", dns.TypeA))
		resolve(t, f, query("sf.example.", dns.TypeA))
		if u.queries.Load() != 2 {
			t.Errorf("SERVFAIL cached although disabled")
		}
	})
}

func TestServeStale(t *testing.T) {
	tests := []struct {
		name  string
		fail  func(u *testUpstream)
		check func(t *testing.T, err error)
	}{
		{"upstream down", func(u *testUpstream) { u.stop() }, nil},
		{"upstream servfail", func(u *testUpstream) { u.setHandler(rcodeHandler(dns.RcodeServerFailure)) }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := startUpstream(t, aHandler("192.0.2.1", 10))
			f, clk := newTest(t, Config{Rules: defaultRule(u.addr), StaleTTL: time.Hour, ServFailTTL: 5 * time.Second, Prefetch: -1})
			resolve(t, f, query("stale.example.", dns.TypeA))
			tc.fail(u)
			clk.Advance(20 * time.Second) // expired 10s ago
			r := resolve(t, f, query("Stale.Example.", dns.TypeA))
			if ip, ttl := firstA(t, r); ip != "192.0.2.1" || ttl != 30 {
				t.Errorf("stale answer %s TTL %d, want 192.0.2.1 TTL 30", ip, ttl)
			}
			if r.Rcode != dns.RcodeSuccess || r.Question[0].Name != "Stale.Example." {
				t.Errorf("stale reply header %v", r)
			}
			if f.Stats().StaleServed != 1 {
				t.Errorf("StaleServed %d", f.Stats().StaleServed)
			}
			// Within the failure recheck window stale is served without
			// asking upstream again.
			before := u.queries.Load()
			clk.Advance(time.Second)
			resolve(t, f, query("stale.example.", dns.TypeA))
			if u.queries.Load() != before {
				t.Errorf("upstream asked again within recheck window")
			}
			// Past the stale window: no answer.
			clk.Advance(2 * time.Hour)
			r, err := f.Resolve(context.Background(), query("stale.example.", dns.TypeA))
			if err == nil && r.Rcode == dns.RcodeSuccess {
				t.Errorf("stale served past StaleTTL: %v", r)
			}
		})
	}
	t.Run("disabled", func(t *testing.T) {
		u := startUpstream(t, aHandler("192.0.2.1", 10))
		f, clk := newTest(t, Config{Rules: defaultRule(u.addr), StaleTTL: -1})
		resolve(t, f, query("stale.example.", dns.TypeA))
		u.stop()
		clk.Advance(11 * time.Second)
		if _, err := f.Resolve(context.Background(), query("stale.example.", dns.TypeA)); !errors.Is(err, ErrAllFailed) {
			t.Errorf("err = %v, want ErrAllFailed with serve-stale off", err)
		}
	})
	t.Run("fresh answer preferred", func(t *testing.T) {
		u := startUpstream(t, aHandler("192.0.2.1", 10))
		f, clk := newTest(t, Config{Rules: defaultRule(u.addr)})
		resolve(t, f, query("stale.example.", dns.TypeA))
		u.setHandler(aHandler("192.0.2.2", 10))
		clk.Advance(11 * time.Second)
		if ip, ttl := firstA(t, resolve(t, f, query("stale.example.", dns.TypeA))); ip != "192.0.2.2" || ttl != 10 {
			t.Errorf("got %s TTL %d, want the refreshed answer", ip, ttl)
		}
	})
}

func TestPrefetch(t *testing.T) {
	u := startUpstream(t, aHandler("192.0.2.1", 100))
	f, clk := newTest(t, Config{Rules: defaultRule(u.addr), Prefetch: 3})
	resolve(t, f, query("hot.example.", dns.TypeA)) // miss
	for range 3 {
		resolve(t, f, query("hot.example.", dns.TypeA)) // 3 hits, plenty of life left
	}
	if u.queries.Load() != 1 {
		t.Fatalf("prefetched too early: %d queries", u.queries.Load())
	}
	clk.Advance(91 * time.Second) // 9s left: < 10% of 100s
	if _, ttl := firstA(t, resolve(t, f, query("hot.example.", dns.TypeA))); ttl != 9 {
		t.Errorf("hit TTL %d, want 9 (served from cache while refreshing)", ttl)
	}
	waitFor(t, "prefetch query", func() bool { return u.queries.Load() == 2 })
	waitFor(t, "prefetch stored", func() bool { return f.Stats().InFlight == 0 })
	if f.Stats().Prefetches != 1 {
		t.Errorf("Prefetches %d, want 1", f.Stats().Prefetches)
	}
	clk.Advance(20 * time.Second) // past the old entry's expiry
	if _, ttl := firstA(t, resolve(t, f, query("hot.example.", dns.TypeA))); ttl != 80 {
		t.Errorf("TTL %d, want 80 from the prefetched entry", ttl)
	}
	if u.queries.Load() != 2 {
		t.Errorf("upstream queries %d, want 2: the refreshed entry must serve", u.queries.Load())
	}

	// A cold entry (fewer hits than Prefetch) is not refreshed early.
	resolve(t, f, query("cold.example.", dns.TypeA))
	clk.Advance(95 * time.Second)
	resolve(t, f, query("cold.example.", dns.TypeA))
	// The decision to prefetch is taken (and counted) inside Resolve, so
	// it is known once Resolve returns; then no fetch may be left running.
	if n := f.Stats().Prefetches; n != 1 {
		t.Errorf("cold entry prefetched: %d prefetches", n)
	}
	waitFor(t, "no fetch in flight", func() bool { return f.Stats().InFlight == 0 })
	if u.queries.Load() != 3 {
		t.Errorf("cold entry prefetched: %d queries", u.queries.Load())
	}
}

func TestCacheOnly(t *testing.T) {
	u := startUpstream(t, aHandler("192.0.2.1", 60))
	f, clk := newTest(t, Config{Rules: defaultRule(u.addr)})
	if _, ok := f.CacheOnly(query("co.example.", dns.TypeA)); ok {
		t.Fatal("CacheOnly hit on an empty cache")
	}
	resolve(t, f, query("co.example.", dns.TypeA))
	clk.Advance(10 * time.Second)
	req := query("CO.example.", dns.TypeA)
	req.Id = 777
	r, ok := f.CacheOnly(req)
	if !ok || r.Id != 777 || r.Question[0].Name != "CO.example." {
		t.Fatalf("CacheOnly = %v, %v", r, ok)
	}
	if _, ttl := firstA(t, r); ttl != 50 {
		t.Errorf("TTL %d, want 50", ttl)
	}
	if _, ok := f.CacheOnly(query("co.example.", dns.TypeAAAA)); ok {
		t.Error("CacheOnly hit for another type")
	}
	clk.Advance(time.Minute)
	if _, ok := f.CacheOnly(query("co.example.", dns.TypeA)); ok {
		t.Error("CacheOnly served an expired entry")
	}
	if u.queries.Load() != 1 {
		t.Errorf("CacheOnly caused upstream traffic: %d queries", u.queries.Load())
	}
}

func TestCacheKeyBits(t *testing.T) {
	u := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if r.Question[0].Qtype == dns.TypeAAAA {
			answer(dns.RcodeSuccess, rrs(t, "q. 60 IN AAAA 2001:db8::1"), nil)(w, r)
			return
		}
		aHandler("192.0.2.1", 60)(w, r)
	})
	f, _ := newTest(t, Config{Rules: defaultRule(u.addr)})
	mk := func(do, cd bool, qtype uint16) *dns.Msg {
		m := query("bits.example.", qtype)
		m.CheckingDisabled = cd
		if do {
			m.SetEdns0(1232, true)
		}
		return m
	}
	for _, m := range []*dns.Msg{mk(false, false, dns.TypeA), mk(true, false, dns.TypeA), mk(false, true, dns.TypeA), mk(true, true, dns.TypeA), mk(false, false, dns.TypeAAAA)} {
		resolve(t, f, m)
		resolve(t, f, m)
	}
	if u.queries.Load() != 5 {
		t.Errorf("upstream queries %d, want 5 distinct keys", u.queries.Load())
	}
}

// The reply is the caller's: changing it must not change the cache.
func TestReplyIsCallerOwned(t *testing.T) {
	u := startUpstream(t, aHandler("192.0.2.1", 60))
	f, _ := newTest(t, Config{Rules: defaultRule(u.addr)})
	for range 2 { // from the fetch, then from the cache
		r := resolve(t, f, query("own.example.", dns.TypeA))
		r.Answer[0].Header().Ttl = 1
		r.Answer[0].Header().Name = "changed.example."
		r.Answer = append(r.Answer, &dns.A{Hdr: dns.RR_Header{Name: "x.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.IPv4(1, 1, 1, 1)})
		r.Ns = append(r.Ns, &dns.NS{Hdr: dns.RR_Header{Name: "x.", Rrtype: dns.TypeNS, Class: dns.ClassINET}, Ns: "ns.x."})
		r.Rcode = dns.RcodeRefused
		r.Truncate(12)
	}
	r := resolve(t, f, query("own.example.", dns.TypeA))
	if len(r.Answer) != 1 || r.Answer[0].Header().Name != "own.example." || r.Answer[0].Header().Ttl != 60 || r.Rcode != dns.RcodeSuccess || len(r.Ns) != 0 {
		t.Errorf("cache changed through a returned reply:\n%v", r)
	}
}

func TestCacheBoundedAndDisabled(t *testing.T) {
	u := startUpstream(t, aHandler("192.0.2.1", 60))
	f, _ := newTest(t, Config{Rules: defaultRule(u.addr), CacheEntries: 16, CacheShards: 1})
	for i := range 40 {
		resolve(t, f, query(fmt.Sprintf("n%d.example.", i), dns.TypeA))
	}
	if s := f.Stats(); s.CacheSize != 16 || s.CacheEvictions != 24 {
		t.Errorf("size %d evictions %d, want 16 and 24", s.CacheSize, s.CacheEvictions)
	}
	resolve(t, f, query("n39.example.", dns.TypeA)) // most recent: still cached
	resolve(t, f, query("n0.example.", dns.TypeA))  // evicted: refetched
	if u.queries.Load() != 41 {
		t.Errorf("upstream queries %d, want 41", u.queries.Load())
	}

	off, _ := newTest(t, Config{Rules: defaultRule(u.addr), CacheEntries: -1})
	before := u.queries.Load()
	resolve(t, off, query("n1.example.", dns.TypeA))
	resolve(t, off, query("n1.example.", dns.TypeA))
	if u.queries.Load()-before != 2 {
		t.Error("disabled cache answered")
	}
	if _, ok := off.CacheOnly(query("n1.example.", dns.TypeA)); ok {
		t.Error("CacheOnly hit with cache disabled")
	}
}

func TestCacheHitNoUpstreamTraffic(t *testing.T) {
	u := startUpstream(t, aHandler("192.0.2.1", 60))
	f, _ := newTest(t, Config{Rules: defaultRule(u.addr)})
	resolve(t, f, query("hit.example.", dns.TypeA))
	u.stop() // a hit must not need the upstream at all
	for range 10 {
		resolve(t, f, query("hit.example.", dns.TypeA))
	}
	s := f.Stats()
	if s.CacheHits != 10 || s.CacheMisses != 1 || upstreamStats(f, u.addr).Queries != 1 {
		t.Errorf("hits %d misses %d upstream queries %d", s.CacheHits, s.CacheMisses, upstreamStats(f, u.addr).Queries)
	}
}

func BenchmarkResolveCacheHit(b *testing.B) {
	u := startUpstream(b, answer(dns.RcodeSuccess, rrs(b,
		"q. 300 IN CNAME www.example.net.",
		"www.example.net. 300 IN A 192.0.2.1",
		"www.example.net. 300 IN A 192.0.2.2",
	), nil))
	f, _ := newTest(b, Config{Rules: defaultRule(u.addr)})
	req := query("www.example.com.", dns.TypeA)
	req.SetEdns0(1232, false)
	resolve(b, f, req)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Resolve(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	if u.queries.Load() != 1 {
		b.Fatalf("benchmark missed the cache: %d upstream queries", u.queries.Load())
	}
}

// BenchmarkReplyCopy compares building a hit reply by hand with Msg.Copy.
func BenchmarkReplyCopy(b *testing.B) {
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	m.Response = true
	m.Answer = rrs(b, "www.example.com. 300 IN CNAME www.example.net.", "www.example.net. 300 IN A 192.0.2.1", "www.example.net. 300 IN A 192.0.2.2")
	e := &entry{msg: m, stored: time.Unix(0, 0), ttl: 300 * time.Second}
	f := &Forwarder{}
	now := time.Unix(10, 0)
	b.Run("reply", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = f.reply(m, e, now, false)
		}
	})
	b.Run("Msg.Copy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c := m.Copy()
			for _, rr := range c.Answer {
				rr.Header().Ttl -= 10
			}
		}
	})
}

// popOrNX answers names starting with "pop" with an A record, the rest
// NXDOMAIN with an SOA (cached for 300s).
func popOrNX(t *testing.T) dns.HandlerFunc {
	nx := answer(dns.RcodeNameError, nil, rrs(t, "example. 300 IN SOA ns.example. hm.example. 1 7200 900 1209600 300"))
	return func(w dns.ResponseWriter, r *dns.Msg) {
		if strings.HasPrefix(r.Question[0].Name, "pop") {
			aHandler("192.0.2.1", 300)(w, r)
			return
		}
		nx(w, r)
	}
}

// A random-subdomain flood of NXDOMAINs fills only the negative share of
// the cache: the popular positive names stay cached (no upstream query for
// them afterwards), and the flood's most recent answers are cached too.
func TestNegativeFloodKeepsPositive(t *testing.T) {
	u := startUpstream(t, popOrNX(t))
	const entries, share, popular, flood = 200, 25, 120, 1000
	f, _ := newTest(t, Config{Rules: defaultRule(u.addr), CacheEntries: entries, CacheShards: 1, CacheNegativeShare: share, Prefetch: -1})
	for i := range popular {
		resolve(t, f, query(fmt.Sprintf("pop%d.example.", i), dns.TypeA))
	}
	for i := range flood {
		if r := resolve(t, f, query(fmt.Sprintf("rnd%d.example.", i), dns.TypeA)); r.Rcode != dns.RcodeNameError {
			t.Fatalf("flood answer %s", dns.RcodeToString[r.Rcode])
		}
	}
	if s := f.Stats(); s.CacheSize != popular+entries*share/100 {
		t.Errorf("cache holds %d entries, want %d popular + %d negative", s.CacheSize, popular, entries*share/100)
	}
	before := u.queries.Load()
	for i := range popular {
		resolve(t, f, query(fmt.Sprintf("pop%d.example.", i), dns.TypeA))
	}
	resolve(t, f, query(fmt.Sprintf("rnd%d.example.", flood-1), dns.TypeA))
	if n := u.queries.Load() - before; n != 0 {
		t.Errorf("%d upstream queries after the flood, want 0: popular names were evicted", n)
	}
}

// Positive answers may use the whole cache; negative ones reclaim their
// share from them, evicting the oldest positive entries.
func TestNegativeShareReclaimed(t *testing.T) {
	u := startUpstream(t, popOrNX(t))
	f, _ := newTest(t, Config{Rules: defaultRule(u.addr), CacheEntries: 100, CacheShards: 1, CacheNegativeShare: 10, Prefetch: -1})
	for i := range 100 {
		resolve(t, f, query(fmt.Sprintf("pop%d.example.", i), dns.TypeA))
	}
	if s := f.Stats(); s.CacheSize != 100 || s.CacheEvictions != 0 {
		t.Fatalf("positives alone: size %d evictions %d, want 100 and 0", s.CacheSize, s.CacheEvictions)
	}
	for i := range 30 {
		resolve(t, f, query(fmt.Sprintf("rnd%d.example.", i), dns.TypeA))
	}
	// 10 negatives took the place of the 10 oldest positives, then evicted
	// each other.
	before := u.queries.Load()
	resolve(t, f, query("pop10.example.", dns.TypeA))
	resolve(t, f, query("rnd29.example.", dns.TypeA))
	if n := u.queries.Load() - before; n != 0 {
		t.Errorf("%d upstream queries, want 0 (pop10 and rnd29 cached)", n)
	}
	resolve(t, f, query("pop9.example.", dns.TypeA))
	if n := u.queries.Load() - before; n != 1 {
		t.Errorf("pop9 not refetched: %d upstream queries, want 1", n)
	}
	// 10 positives and 20 negatives evicted by the flood, and pop10, the
	// oldest positive, by pop9's return.
	if s := f.Stats(); s.CacheSize != 100 || s.CacheEvictions != 31 {
		t.Errorf("size %d evictions %d, want 100 and 31", s.CacheSize, s.CacheEvictions)
	}
}
