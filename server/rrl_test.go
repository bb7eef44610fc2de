package server

import (
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var rrlT0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// rrlCount tallies actions.
type rrlCount struct{ sent, slipped, dropped int }

func (c *rrlCount) add(a RRLAction) {
	switch a {
	case RRLSend:
		c.sent++
	case RRLSlip:
		c.slipped++
	case RRLDrop:
		c.dropped++
	}
}

func (c rrlCount) limited() int { return c.slipped + c.dropped }

// rrlUsed counts the occupied table entries.
func rrlUsed(r *RRL) int {
	n := 0
	for i := range r.sets {
		r.sets[i].mu.Lock()
		for j := range r.ways {
			if r.sets[i].e[j].fam != 0 {
				n++
			}
		}
		r.sets[i].mu.Unlock()
	}
	return n
}

func rrlAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// burst sends n checks at the same instant and tallies them.
func rrlBurst(r *RRL, a netip.Addr, k RRLKind, n int, now time.Time) rrlCount {
	var c rrlCount
	for range n {
		c.add(r.Check(a, k, now))
	}
	return c
}

func TestRRLFlood(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		slip                   int
		sent, slipped, dropped int
	}{
		// 1,000 queries spread over one second at rate 10: the burst of 10
		// is answered, then the balance sinks into debt and stays there, so
		// the refill of 10/s during that second buys nothing more.
		{"slip2", 2, 10, 495, 495},
		{"slip0", 0, 10, 0, 990},
		{"slip1", 1, 10, 990, 0},
		{"slip3", 3, 10, 330, 660},
		{"slip-clamped", 50, 10, 99, 891}, // BIND's maximum is 10
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRRL(RRLConfig{ResponsesPerSecond: 10, Slip: tc.slip})
			var flood, other rrlCount
			for i := range 1000 {
				now := rrlT0.Add(time.Duration(i) * time.Millisecond)
				// Sources all over one /24 (spoofed, say).
				a := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
				act := flood.sent
				flood.add(r.Check(a, RRLResponse, now))
				if flood.sent > act && i >= 10 {
					t.Fatalf("query %d answered after the burst", i)
				}
				// A well-behaved client in another /24, 10 queries over
				// the same second: never limited.
				if i%100 == 0 {
					other.add(r.Check(rrlAddr("203.0.113.7"), RRLResponse, now))
				}
			}
			want := rrlCount{tc.sent, tc.slipped, tc.dropped}
			if flood != want {
				t.Errorf("flood: got %+v, want %+v", flood, want)
			}
			if other != (rrlCount{sent: 10}) {
				t.Errorf("other client: got %+v, want all 10 sent", other)
			}
			limited, slipped, dropped := r.Stats()
			if limited != uint64(want.limited()) || slipped != uint64(want.slipped) || dropped != uint64(want.dropped) {
				t.Errorf("Stats() = %d, %d, %d; want %d, %d, %d", limited, slipped, dropped, want.limited(), want.slipped, want.dropped)
			}
		})
	}
}

// The order within a run of limited responses with slip 2 is drop, slip,
// drop, slip, … as in BIND.
func TestRRLSlipOrder(t *testing.T) {
	r := NewRRL(RRLConfig{ResponsesPerSecond: 1, Slip: 2})
	a := rrlAddr("192.0.2.1")
	want := []RRLAction{RRLSend, RRLDrop, RRLSlip, RRLDrop, RRLSlip, RRLDrop}
	for i, w := range want {
		if got := r.Check(a, RRLResponse, rrlT0); got != w {
			t.Fatalf("check %d: got %v, want %v", i, got, w)
		}
	}
}

func TestRRLBlocks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      RRLConfig
		a, b     string
		sameBloc bool
	}{
		{"v4 same /24", RRLConfig{}, "192.0.2.1", "192.0.2.254", true},
		{"v4 other /24", RRLConfig{}, "192.0.2.1", "192.0.3.1", false},
		{"v4 mapped is v4", RRLConfig{}, "192.0.2.1", "::ffff:192.0.2.77", true},
		{"v4 /32", RRLConfig{IPv4PrefixLen: 32}, "192.0.2.1", "192.0.2.2", false},
		{"v4 /16", RRLConfig{IPv4PrefixLen: 16}, "192.0.2.1", "192.0.200.2", true},
		{"v4 /99 clamps to /32", RRLConfig{IPv4PrefixLen: 99}, "192.0.2.1", "192.0.2.2", false},
		{"v6 same /56", RRLConfig{}, "2001:db8:0:1200::1", "2001:db8:0:12ff:ffff:ffff:ffff:ffff", true},
		{"v6 other /56", RRLConfig{}, "2001:db8:0:1200::1", "2001:db8:0:1300::1", false},
		{"v6 /64", RRLConfig{IPv6PrefixLen: 64}, "2001:db8:0:1200::1", "2001:db8:0:12ff::1", false},
		{"v6 /120", RRLConfig{IPv6PrefixLen: 120}, "2001:db8::1", "2001:db8::ff", true},
		{"v6 /120 other", RRLConfig{IPv6PrefixLen: 120}, "2001:db8::1", "2001:db8::1:1", false},
		{"v6 zone ignored", RRLConfig{}, "fe80::1%eth0", "fe80::2%eth1", true},
		{"v4 vs v6 zeros", RRLConfig{IPv4PrefixLen: 8, IPv6PrefixLen: 8}, "0.0.0.1", "::1:0:0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.ResponsesPerSecond, cfg.Slip = 10, 2
			r := NewRRL(cfg)
			a, b := rrlAddr(tc.a), rrlAddr(tc.b)
			if c := rrlBurst(r, a, RRLResponse, 6, rrlT0); c.sent != 6 {
				t.Fatalf("first address: %+v, want 6 sent", c)
			}
			c := rrlBurst(r, b, RRLResponse, 10, rrlT0)
			want := 10
			if tc.sameBloc {
				want = 4 // the rest of the shared burst
			}
			if c.sent != want {
				t.Errorf("second address: %d sent, want %d", c.sent, want)
			}
		})
	}
}

func TestRRLExempt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		exempt  []netip.Prefix
		addr    string
		limited bool
	}{
		{"default v4 loopback", nil, "127.0.0.1", false},
		{"default v4 loopback /8", nil, "127.200.3.4", false},
		{"default v6 loopback", nil, "::1", false},
		{"default mapped loopback", nil, "::ffff:127.0.0.1", false},
		{"default v6 loopback with zone", nil, "::1%lo", false},
		{"default others limited", nil, "192.0.2.1", true},
		{"default ::2 limited", nil, "::2", true},
		{"custom", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "10.1.2.3", false},
		{"custom replaces default", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "127.0.0.1", true},
		{"custom mapped prefix", []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}, "10.1.2.3", false},
		{"custom unmasked prefix", []netip.Prefix{netip.MustParsePrefix("2001:db8::1/32")}, "2001:db8:ffff::9", false},
		{"empty exempts nobody", []netip.Prefix{}, "127.0.0.1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRRL(RRLConfig{ResponsesPerSecond: 5, Slip: 2, Exempt: tc.exempt})
			c := rrlBurst(r, rrlAddr(tc.addr), RRLResponse, 1000, rrlT0)
			want := rrlCount{sent: 1000}
			if tc.limited {
				want = rrlCount{sent: 5, slipped: 497, dropped: 498}
			}
			if c != want {
				t.Errorf("got %+v, want %+v", c, want)
			}
		})
	}
}

func TestRRLRefill(t *testing.T) {
	a := rrlAddr("192.0.2.1")
	type step struct {
		at   time.Duration // since rrlT0
		n    int           // queries at that instant
		sent int           // how many of them are answered
	}
	for _, tc := range []struct {
		name  string
		cfg   RRLConfig
		steps []step
	}{
		{"bucket", RRLConfig{ResponsesPerSecond: 10, Window: -1}, []step{
			{0, 20, 10},
			{50 * time.Millisecond, 5, 0}, // half a token
			{100 * time.Millisecond, 5, 1},
			{time.Second, 20, 9},
			{time.Hour, 20, 10}, // capped at the burst
		}},
		// Rate 10, Window 2s: debt goes down to -20 tokens.
		{"debt", RRLConfig{ResponsesPerSecond: 10, Window: 2 * time.Second}, []step{
			{0, 100, 10},        // balance 10 → -20 (floor)
			{time.Second, 1, 0}, // -10 → -11
			{2*time.Second + 100*time.Millisecond, 1, 0}, // -11+11 = 0 → -1
			{2*time.Second + 300*time.Millisecond, 2, 1}, // -1+2 = 1 → 0 → -1
			{10 * time.Second, 20, 10},                   // full again
		}},
		{"default window 15s", RRLConfig{ResponsesPerSecond: 10}, []step{
			{0, 1000, 10},            // → -150
			{15 * time.Second, 1, 0}, // -150+150 = 0 → -1
			{15*time.Second + 200*time.Millisecond, 5, 1},
			{60 * time.Second, 20, 10},
		}},
		{"window clamped to 1s", RRLConfig{ResponsesPerSecond: 10, Window: time.Millisecond}, []step{
			{0, 100, 10},                      // → -10
			{time.Second, 1, 0},               // 0 → -1
			{2100 * time.Millisecond, 20, 10}, // -1 + 11 → full
		}},
		{"steady at the rate", RRLConfig{ResponsesPerSecond: 10}, func() []step {
			var s []step
			for i := range 100 {
				s = append(s, step{time.Duration(i) * 100 * time.Millisecond, 1, 1})
			}
			return s
		}()},
		{"rate not dividing 1s", RRLConfig{ResponsesPerSecond: 3, Window: -1}, []step{
			{0, 5, 3},
			{333333333, 1, 0}, // a nanosecond short of a token
			{333333334, 1, 1},
		}},
		{"time going backwards credits nothing", RRLConfig{ResponsesPerSecond: 10, Window: -1}, []step{
			{time.Second, 10, 10},
			{0, 1, 0},
			{time.Second, 1, 0},
			{time.Second + 100*time.Millisecond, 2, 1},
			// The wall clock set back an hour: refill resumes from there.
			{time.Second - time.Hour, 1, 0},
			{time.Second - time.Hour + 200*time.Millisecond, 3, 2},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Slip = 2
			r := NewRRL(tc.cfg)
			for i, s := range tc.steps {
				c := rrlBurst(r, a, RRLResponse, s.n, rrlT0.Add(s.at))
				if c.sent != s.sent {
					t.Fatalf("step %d (+%v, %d queries): %d sent, want %d", i, s.at, s.n, c.sent, s.sent)
				}
			}
		})
	}
}

func TestRRLKinds(t *testing.T) {
	a := rrlAddr("192.0.2.1")
	for _, tc := range []struct {
		name           string
		cfg            RRLConfig
		resp, nx, errs int // sent out of 100 of each, all at once
	}{
		{"defaults to responses", RRLConfig{ResponsesPerSecond: 10}, 10, 10, 10},
		{"own rates", RRLConfig{ResponsesPerSecond: 10, NXDomainsPerSecond: 3, ErrorsPerSecond: 1}, 10, 3, 1},
		{"higher own rates", RRLConfig{ResponsesPerSecond: 2, NXDomainsPerSecond: 50, ErrorsPerSecond: 20}, 2, 50, 20},
		{"negative never limits", RRLConfig{ResponsesPerSecond: 10, NXDomainsPerSecond: -1, ErrorsPerSecond: -1}, 10, 100, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Slip = 2
			r := NewRRL(tc.cfg)
			// Interleave the kinds: each has its own bucket.
			var got [3]rrlCount
			for range 100 {
				for k := range RRLKind(3) {
					got[k].add(r.Check(a, k, rrlT0))
				}
			}
			for k, want := range []int{tc.resp, tc.nx, tc.errs} {
				if got[k].sent != want {
					t.Errorf("%v: %d sent, want %d", RRLKind(k), got[k].sent, want)
				}
			}
		})
	}
	// Refill applies to every kind, including those not checked meanwhile.
	r := NewRRL(RRLConfig{ResponsesPerSecond: 10, NXDomainsPerSecond: 2, Window: -1})
	rrlBurst(r, a, RRLNXDomain, 5, rrlT0)
	rrlBurst(r, a, RRLResponse, 5, rrlT0.Add(500*time.Millisecond))
	if c := rrlBurst(r, a, RRLNXDomain, 5, rrlT0.Add(time.Second)); c.sent != 2 {
		t.Errorf("NXDOMAIN after 1s: %d sent, want 2", c.sent)
	}
	// An invalid kind is never limited.
	if c := rrlBurst(r, a, RRLKind(7), 100, rrlT0); c.sent != 100 {
		t.Errorf("invalid kind: %+v", c)
	}
	for rcode, want := range map[int]RRLKind{0: RRLResponse, 3: RRLNXDomain, 1: RRLError, 2: RRLError, 5: RRLError, 4: RRLError} {
		if got := RRLKindOf(rcode); got != want {
			t.Errorf("RRLKindOf(%d) = %v, want %v", rcode, got, want)
		}
	}
}

func TestRRLNil(t *testing.T) {
	for _, cfg := range []RRLConfig{{}, {ResponsesPerSecond: -1, NXDomainsPerSecond: 5}} {
		if r := NewRRL(cfg); r != nil {
			t.Errorf("NewRRL(%+v) = %p, want nil", cfg, r)
		}
	}
	var r *RRL
	for i := range 1000 {
		if got := r.Check(rrlAddr("192.0.2.1"), RRLKind(i%3), rrlT0); got != RRLSend {
			t.Fatalf("nil RRL: %v", got)
		}
	}
	if l, s, d := r.Stats(); l != 0 || s != 0 || d != 0 {
		t.Errorf("nil Stats: %d %d %d", l, s, d)
	}
	// An invalid address is not keyed, so not limited.
	r = NewRRL(RRLConfig{ResponsesPerSecond: 1})
	if c := rrlBurst(r, netip.Addr{}, RRLResponse, 10, rrlT0); c.sent != 10 {
		t.Errorf("invalid address: %+v", c)
	}
}

// A million distinct client blocks: the table stays at MaxTableSize and the
// heap does not grow.
func TestRRLTableBounded(t *testing.T) {
	for _, max := range []int{0, 1000, 5} {
		r := NewRRL(RRLConfig{ResponsesPerSecond: 1, MaxTableSize: max})
		if max == 0 {
			max = 100_000
		}
		if got := len(r.sets) * r.ways; got > max || got < max-rrlWays {
			t.Fatalf("MaxTableSize %d: capacity %d", max, got)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		n := 1_000_000
		if testing.Short() {
			n = 200_000
		}
		for i := range n {
			var a netip.Addr
			if i%2 == 0 {
				a = netip.AddrFrom4([4]byte{10 + byte(i>>16), byte(i >> 8), byte(i), 9}) // distinct /24 each
			} else {
				a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 24), byte(i >> 16), byte(i >> 8), 0, 15: 1}) // distinct /56 each
			}
			r.Check(a, RRLKind(i%3), rrlT0.Add(time.Duration(i)*time.Microsecond))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		used := rrlUsed(r)
		if used > max || used < max*9/10 {
			t.Errorf("MaxTableSize %d: %d entries in use", max, used)
		}
		if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 1<<20 {
			t.Errorf("MaxTableSize %d: heap grew %d bytes over %d clients", max, grew, n)
		}
		if max == 5 {
			// One set of 5 ways, so the loop's last 5 blocks are in it.
			if len(r.sets) != 1 || r.ways != 5 {
				t.Errorf("MaxTableSize 5: %d sets of %d", len(r.sets), r.ways)
			}
		}
	}
}

// Eviction takes the least recently used entry, so a client that keeps
// flooding stays limited while one-off sources come and go.
func TestRRLEvictsLeastRecent(t *testing.T) {
	r := NewRRL(RRLConfig{ResponsesPerSecond: 1, MaxTableSize: rrlWays, Slip: 2})
	if len(r.sets) != 1 {
		t.Fatalf("want one set, have %d", len(r.sets))
	}
	flooder := rrlAddr("198.51.100.1")
	at := func(ms int) time.Time { return rrlT0.Add(time.Duration(ms) * time.Millisecond) }
	rrlBurst(r, flooder, RRLResponse, 10, at(0)) // limited, in debt
	for i := range 100 {
		// A fresh block every ms; the flooder keeps asking every 5 ms.
		a := netip.AddrFrom4([4]byte{10, 0, byte(i), 1})
		if got := r.Check(a, RRLResponse, at(i+1)); got != RRLSend {
			t.Fatalf("fresh client %d: %v", i, got)
		}
		if i%5 == 0 {
			if got := r.Check(flooder, RRLResponse, at(i+1)); got == RRLSend {
				t.Fatalf("flooder answered at %d ms: evicted", i+1)
			}
		}
	}
	if used := rrlUsed(r); used != rrlWays {
		t.Errorf("%d entries in use, want %d", used, rrlWays)
	}
	// Once it stops, the flooder is eventually evicted and starts afresh.
	for i := range rrlWays {
		r.Check(netip.AddrFrom4([4]byte{10, 1, byte(i), 1}), RRLResponse, at(200+i))
	}
	if got := r.Check(flooder, RRLResponse, at(300)); got != RRLSend {
		t.Errorf("flooder after eviction: %v", got)
	}
}

func TestRRLZeroAllocs(t *testing.T) {
	r := NewRRL(RRLConfig{ResponsesPerSecond: 10, Slip: 2, MaxTableSize: 64})
	addrs := []netip.Addr{
		rrlAddr("192.0.2.1"), rrlAddr("::ffff:192.0.2.9"), rrlAddr("2001:db8::1"),
		rrlAddr("fe80::1%eth0"), rrlAddr("127.0.0.1"), rrlAddr("::1"),
	}
	i := 0
	allocs := testing.AllocsPerRun(10000, func() {
		i++
		a := addrs[i%len(addrs)]
		if i%3 == 0 {
			a = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), 1}) // new blocks: evictions
		}
		r.Check(a, RRLKind(i%3), rrlT0.Add(time.Duration(i)*time.Microsecond))
	})
	if allocs != 0 {
		t.Errorf("Check: %v allocs per call", allocs)
	}
	if allocs := testing.AllocsPerRun(100, func() { r.Stats() }); allocs != 0 {
		t.Errorf("Stats: %v allocs per call", allocs)
	}
}

// Four goroutines hammer one block and many others; run with -race. The
// shared block gets exactly its burst (the debt absorbs the refill of the
// few milliseconds the test spans) and Stats agrees with what was returned.
func TestRRLConcurrent(t *testing.T) {
	const (
		workers = 4
		perG    = 20000
		rate    = 100
	)
	r := NewRRL(RRLConfig{ResponsesPerSecond: rate, Slip: 2})
	shared := rrlAddr("192.0.2.1")
	var wg sync.WaitGroup
	counts := make([]rrlCount, workers)
	others := make([]rrlCount, workers)
	for g := range workers {
		wg.Go(func() {
			for i := range perG {
				// Each goroutine has its own clock, so times interleave
				// out of order at the lock, as with real readers.
				now := rrlT0.Add(time.Duration(i) * 250 * time.Nanosecond)
				a := shared
				c := &counts[g]
				if i%4 == 3 {
					a = netip.AddrFrom4([4]byte{10, byte(g), byte(i >> 2), 1}) // 1024 blocks: no eviction
					c = &others[g]
				}
				c.add(r.Check(a, RRLKind(i%3*(i&1)), now))
			}
		})
	}
	wg.Wait()
	var sh, ot rrlCount
	for g := range workers {
		sh.sent += counts[g].sent
		sh.slipped += counts[g].slipped
		sh.dropped += counts[g].dropped
		ot.sent += others[g].sent
		ot.slipped += others[g].slipped
		ot.dropped += others[g].dropped
	}
	total := sh.sent + sh.limited()
	if total != workers*perG*3/4 {
		t.Fatalf("shared block: %d checks counted", total)
	}
	// Kinds used on the shared block: i%3*(i&1) over i%4 != 3 → 0, 1, 2.
	if sh.sent != 3*rate {
		t.Errorf("shared block: %d sent, want %d (the burst of each kind)", sh.sent, 3*rate)
	}
	// Per (block, kind) every 2nd limited one slips; over 3 kinds the
	// rounding is off by at most one each.
	if d := sh.dropped - sh.slipped; d < 0 || d > 3 {
		t.Errorf("shared block: %d slipped, %d dropped", sh.slipped, sh.dropped)
	}
	limited, slipped, dropped := r.Stats()
	if want := sh.limited() + ot.limited(); limited != uint64(want) ||
		slipped != uint64(sh.slipped+ot.slipped) || dropped != uint64(sh.dropped+ot.dropped) {
		t.Errorf("Stats() = %d, %d, %d; counted %d, %d, %d", limited, slipped, dropped,
			want, sh.slipped+ot.slipped, sh.dropped+ot.dropped)
	}
	if used := rrlUsed(r); used != 1+workers*256 {
		t.Errorf("%d entries in use, want %d", used, 1+workers*256)
	}
}

// Four goroutines churning a small table: evictions race with lookups.
func TestRRLConcurrentChurn(t *testing.T) {
	const workers, perG, size = 4, 50000, 64
	r := NewRRL(RRLConfig{ResponsesPerSecond: 2, Slip: 3, MaxTableSize: size})
	var wg sync.WaitGroup
	counts := make([]rrlCount, workers)
	for g := range workers {
		wg.Go(func() {
			for i := range perG {
				// Half the checks hit one hot block per goroutine (it stays
				// in the table, so it is limited whatever the hash seed);
				// the rest churn through 400 blocks per goroutine.
				a := netip.AddrFrom4([4]byte{10, byte(g), 200, 1})
				switch i % 4 {
				case 1:
					a = netip.AddrFrom4([4]byte{10, byte(g), byte(i % 100), 1})
				case 3:
					a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(g), byte(i % 100), 15: 1})
				}
				counts[g].add(r.Check(a, RRLKind(i%3), rrlT0.Add(time.Duration(i)*time.Microsecond)))
			}
		})
	}
	wg.Wait()
	var limited, slipped, dropped uint64
	for _, c := range counts {
		limited += uint64(c.limited())
		slipped += uint64(c.slipped)
		dropped += uint64(c.dropped)
	}
	if limited == 0 || slipped == 0 {
		t.Errorf("nothing limited: %+v", counts)
	}
	if l, s, d := r.Stats(); l != limited || s != slipped || d != dropped {
		t.Errorf("Stats() = %d, %d, %d; counted %d, %d, %d", l, s, d, limited, slipped, dropped)
	}
	if used := rrlUsed(r); used > size {
		t.Errorf("%d entries in use, max %d", used, size)
	}
}

func BenchmarkRRLCheck(b *testing.B) {
	b.Run("one-client", func(b *testing.B) {
		r := NewRRL(RRLConfig{ResponsesPerSecond: 10, Slip: 2})
		a := rrlAddr("192.0.2.1")
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			r.Check(a, RRLResponse, rrlT0.Add(time.Duration(i)))
		}
	})
	b.Run("many-clients", func(b *testing.B) {
		r := NewRRL(RRLConfig{ResponsesPerSecond: 10, Slip: 2})
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), 1}) // 64k blocks, table 100k
			r.Check(a, RRLResponse, rrlT0.Add(time.Duration(i)))
		}
	})
	b.Run("churn-v6", func(b *testing.B) {
		r := NewRRL(RRLConfig{ResponsesPerSecond: 10, Slip: 2, MaxTableSize: 10000})
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 24), byte(i >> 16), byte(i >> 8), 0, 15: 1})
			r.Check(a, RRLResponse, rrlT0.Add(time.Duration(i)))
		}
	})
	b.Run("exempt", func(b *testing.B) {
		r := NewRRL(RRLConfig{ResponsesPerSecond: 10})
		a := rrlAddr("127.0.0.1")
		b.ReportAllocs()
		for b.Loop() {
			r.Check(a, RRLResponse, rrlT0)
		}
	})
	b.Run("nil", func(b *testing.B) {
		var r *RRL
		a := rrlAddr("192.0.2.1")
		b.ReportAllocs()
		for b.Loop() {
			r.Check(a, RRLResponse, rrlT0)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		r := NewRRL(RRLConfig{ResponsesPerSecond: 10, Slip: 2})
		b.ReportAllocs()
		var worker atomic.Uint32
		b.RunParallel(func(pb *testing.PB) {
			g, i := byte(worker.Add(1)), 0
			for pb.Next() {
				i++
				a := netip.AddrFrom4([4]byte{10, g, byte(i >> 8), byte(i)}) // 64k blocks per goroutine
				r.Check(a, RRLResponse, rrlT0.Add(time.Duration(i)))
			}
		})
	})
}
