package server

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Response rate limiting (RRL), after BIND's rate-limit { … } clause.
//
// Model. Every client block (the client address masked to IPv4PrefixLen or
// IPv6PrefixLen; IPv4-mapped IPv6 addresses count as IPv4) has one credit
// balance per response kind (RRLResponse, RRLNXDomain, RRLError), each with
// its own rate r. A balance is a token bucket: it refills continuously at r
// tokens per second up to a cap of r (burst r: a quiet client may get r
// answers at once), and every response costs one token. A response is sent
// when at least one whole token is there. As in BIND, a limited (dropped or
// slipped) response is charged too, driving the balance into debt, down to
// -(r × Window): a client that keeps asking faster than r gets nothing more
// after its initial burst (not a trickle of r a second) until it slows down,
// and after a flood stops it takes up to Window for answers to resume. With
// a negative Window limited responses are not charged and the limiter is a
// plain token bucket (rate r, burst r) that lets r a second through any flood.
//
// BIND credits whole seconds and forgets an entry idle for Window; this
// refills with nanosecond resolution in exact integer arithmetic (balances
// are kept in billionths of a token), which comes to the same within a
// second of rounding.
//
// Simplification: BIND keys its buckets by (client block, qname or
// wildcard/zone bucket, qtype, response kind); here a bucket is per (client
// block, kind) only, so one block's answers for different names share a
// budget. That is stricter for a block that legitimately asks many names
// (a big resolver behind one /24 should get a higher rate or an Exempt
// entry) and makes the table smaller and the check cheaper: the three kinds
// live in one table entry, so there is one lookup per response.
//
// Table. Entries live in a fixed array allocated once by NewRRL: a
// set-associative cache of 8-way sets, each set with its own mutex (the
// lock-light hot path: two readers contend only when their blocks hash to
// the same set). A new block takes an empty way of its set or evicts the way
// used least recently, so memory is bounded by MaxTableSize entries (about 56
// bytes each) whatever the number of sources. The hash is keyed with a
// random seed so that a spoofer cannot aim at one set to evict a victim's
// entry (an evicted entry comes back with a full balance, as in BIND when
// max-table-size is hit). Check allocates nothing.
//
// Check is for UDP responses only: over TCP the source address is not
// spoofable and BIND does not rate-limit there either.

// RRLConfig mirrors BIND's rate-limit options that matter here.
type RRLConfig struct {
	// ResponsesPerSecond is the rate (and burst) per client block for
	// normal answers, including NODATA and referrals; 0 (or negative)
	// turns RRL off: NewRRL returns nil. Rates are capped at 1,000,000.
	ResponsesPerSecond int
	// NXDomainsPerSecond is the rate for NXDOMAIN answers: 0 means
	// ResponsesPerSecond, negative means NXDOMAIN is never limited.
	NXDomainsPerSecond int
	// ErrorsPerSecond is the rate for error responses (REFUSED, FORMERR,
	// SERVFAIL, NOTIMP, …): 0 means ResponsesPerSecond, negative means
	// errors are never limited.
	ErrorsPerSecond int
	// Window bounds the debt of a limited client: its balance goes no lower
	// than -(rate × Window), so a flood is forgotten at most Window after
	// it stops. 0 means 15s (BIND's default); positive values are clamped
	// to [1s, 1h] (BIND's range); negative means limited responses are not
	// charged (a plain token bucket).
	Window time.Duration
	// Slip: every Slip-th limited response (per block and kind) is sent
	// truncated (RRLSlip: TC=1, no records, so a real client retries over
	// TCP) instead of dropped. 0 drops all, 1 truncates all. Note that the
	// zero value therefore drops all: BIND's default is DefaultRRLSlip (2),
	// which a caller translating a BIND config should set. Clamped to
	// [0, 10] as in BIND.
	Slip int
	// IPv4PrefixLen and IPv6PrefixLen size the client blocks: 0 means 24
	// and 56 (BIND's defaults); larger values are clamped to 32 and 128.
	IPv4PrefixLen int
	IPv6PrefixLen int
	// Exempt networks are never limited. Nil means DefaultRRLExempt()
	// (loopback); an empty non-nil slice exempts nobody.
	Exempt []netip.Prefix
	// MaxTableSize bounds the number of client blocks tracked; 0 means
	// 100000. The table is allocated up front (about 56 bytes an entry).
	MaxTableSize int
}

// DefaultRRLSlip is BIND's default slip: every second limited response is
// sent truncated.
const DefaultRRLSlip = 2

// DefaultRRLExempt returns the Exempt list used when RRLConfig.Exempt is
// nil (loopback), new on every call.
func DefaultRRLExempt() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
	}
}

// RRLKind is the category of a response, each with its own rate.
type RRLKind uint8

const (
	RRLResponse RRLKind = iota // NOERROR, with or without answers
	RRLNXDomain                // NXDOMAIN
	RRLError                   // REFUSED, FORMERR, SERVFAIL and other errors
	rrlKinds
)

// RRLKindOf maps a response code to its kind.
func RRLKindOf(rcode int) RRLKind {
	switch rcode {
	case 0: // NOERROR
		return RRLResponse
	case 3: // NXDOMAIN
		return RRLNXDomain
	default:
		return RRLError
	}
}

func (k RRLKind) String() string {
	switch k {
	case RRLResponse:
		return "response"
	case RRLNXDomain:
		return "nxdomain"
	case RRLError:
		return "error"
	}
	return "invalid"
}

// RRLAction is what to do with a response.
type RRLAction uint8

const (
	RRLSend RRLAction = iota // send it as usual
	RRLDrop                  // send nothing
	RRLSlip                  // send an empty, truncated (TC=1) response instead
)

func (a RRLAction) String() string {
	switch a {
	case RRLSend:
		return "send"
	case RRLDrop:
		return "drop"
	case RRLSlip:
		return "slip"
	}
	return "invalid"
}

const (
	rrlToken    = int64(time.Second) // one response, in billionths of a token
	rrlWays     = 8                  // entries per set
	rrlMaxRate  = 1_000_000
	rrlMaxSlip  = 10
	rrlFamilyV4 = 1
	rrlFamilyV6 = 2
)

// RRL is a response rate limiter, safe for concurrent use. A nil *RRL never
// limits.
type RRL struct {
	rate   [rrlKinds]int64 // tokens a second; 0: kind never limited
	full   [rrlKinds]int64 // cap, in billionths of a token
	floor  [rrlKinds]int64 // lowest balance (debt), in billionths
	debt   bool            // charge limited responses
	slip   uint8
	ways   int
	mask4  uint32
	mask6  [2]uint64 // hi, lo
	exempt []netip.Prefix
	seed   [3]uint64
	sets   []rrlSet
}

type rrlSet struct {
	mu               sync.Mutex
	slipped, dropped atomic.Uint64 // written under mu, read by Stats without
	e                [rrlWays]rrlEntry
}

// rrlEntry is one client block's three buckets.
type rrlEntry struct {
	hi, lo uint64 // masked address; IPv4 in the low 32 bits of lo
	last   int64  // Unix ns the balances were last refilled to
	bal    [rrlKinds]int64
	fam    uint8 // 0: empty
	slip   [rrlKinds]uint8
}

// NewRRL returns a limiter for cfg, or nil (which never limits) when
// cfg.ResponsesPerSecond is not positive.
func NewRRL(cfg RRLConfig) *RRL {
	if cfg.ResponsesPerSecond <= 0 {
		return nil
	}
	r := &RRL{debt: cfg.Window >= 0}
	window := cfg.Window
	switch {
	case window == 0:
		window = 15 * time.Second
	case window > 0:
		window = min(max(window, time.Second), time.Hour)
	}
	for k, n := range [rrlKinds]int{cfg.ResponsesPerSecond, cfg.NXDomainsPerSecond, cfg.ErrorsPerSecond} {
		if n == 0 {
			n = cfg.ResponsesPerSecond
		}
		if n < 0 {
			continue // never limited
		}
		rate := int64(min(n, rrlMaxRate))
		r.rate[k] = rate
		r.full[k] = rate * rrlToken
		if r.debt {
			// rate × window in billionths: window is in ns, so rate×ns.
			// ≤ 1e6 × 3.6e12, well inside int64.
			r.floor[k] = -rate * int64(window)
		}
	}
	r.slip = uint8(min(max(cfg.Slip, 0), rrlMaxSlip))

	p4, p6 := cfg.IPv4PrefixLen, cfg.IPv6PrefixLen
	if p4 <= 0 {
		p4 = 24
	}
	if p6 <= 0 {
		p6 = 56
	}
	p4, p6 = min(p4, 32), min(p6, 128)
	r.mask4 = ^uint32(0) << (32 - p4)
	if p6 <= 64 {
		r.mask6 = [2]uint64{^uint64(0) << (64 - p6), 0}
	} else {
		r.mask6 = [2]uint64{^uint64(0), ^uint64(0) << (128 - p6)}
	}

	exempt := cfg.Exempt
	if exempt == nil {
		exempt = DefaultRRLExempt()
	}
	r.exempt = make([]netip.Prefix, 0, len(exempt))
	for _, p := range exempt {
		if !p.IsValid() {
			continue
		}
		// Clients are unmapped, so an IPv4-mapped prefix must be too.
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		r.exempt = append(r.exempt, p.Masked())
	}

	size := cfg.MaxTableSize
	if size <= 0 {
		size = 100_000
	}
	r.ways = min(size, rrlWays)
	r.sets = make([]rrlSet, size/r.ways)
	for i := range r.seed {
		r.seed[i] = rand.Uint64()
	}
	return r
}

// Check accounts for one response of the given kind to client at time now
// and says whether to send it, drop it or send a truncated one instead.
// Only now's wall-clock reading is used (the caller passes time.Now(), or a
// coarser clock it already has, once per batch, say).
func (r *RRL) Check(client netip.Addr, kind RRLKind, now time.Time) RRLAction {
	if r == nil || kind >= rrlKinds || r.rate[kind] == 0 {
		return RRLSend
	}
	client = client.Unmap().WithZone("") // a zone never matches a prefix
	var hi, lo uint64
	var fam uint8
	switch {
	case client.Is4():
		a := client.As4()
		lo = uint64(binary.BigEndian.Uint32(a[:]) & r.mask4)
		fam = rrlFamilyV4
	case client.Is6():
		a := client.As16()
		hi = binary.BigEndian.Uint64(a[:8]) & r.mask6[0]
		lo = binary.BigEndian.Uint64(a[8:]) & r.mask6[1]
		fam = rrlFamilyV6
	default:
		return RRLSend // no address, nothing to key on
	}
	for _, p := range r.exempt {
		if p.Contains(client) {
			return RRLSend
		}
	}

	s := &r.sets[r.setOf(hi, lo, fam)]
	t := now.UnixNano()
	s.mu.Lock()
	e := r.entry(s, hi, lo, fam, t)
	r.refill(e, t)
	k := kind
	if e.bal[k] >= rrlToken {
		e.bal[k] -= rrlToken
		s.mu.Unlock()
		return RRLSend
	}
	if r.debt {
		e.bal[k] = max(e.bal[k]-rrlToken, r.floor[k])
	}
	act := RRLDrop
	if r.slip > 0 {
		if e.slip[k]++; e.slip[k] >= r.slip {
			e.slip[k] = 0
			act = RRLSlip
		}
	}
	if act == RRLSlip {
		s.slipped.Add(1)
	} else {
		s.dropped.Add(1)
	}
	s.mu.Unlock()
	return act
}

// Stats returns how many responses have been limited since NewRRL, and how
// those split into slipped (sent truncated) and dropped; limited = slipped +
// dropped. It walks the whole table, so it is for metrics, not per query.
func (r *RRL) Stats() (limited, slipped, dropped uint64) {
	if r == nil {
		return 0, 0, 0
	}
	for i := range r.sets {
		slipped += r.sets[i].slipped.Load()
		dropped += r.sets[i].dropped.Load()
	}
	return slipped + dropped, slipped, dropped
}

// entry finds the block's entry in s, or makes one with full balances in an
// empty way or in place of the least recently used. s.mu is held.
func (r *RRL) entry(s *rrlSet, hi, lo uint64, fam uint8, t int64) *rrlEntry {
	var victim *rrlEntry
	for i := range r.ways {
		e := &s.e[i]
		if e.fam == fam && e.lo == lo && e.hi == hi {
			return e
		}
		switch {
		case e.fam == 0:
			if victim == nil || victim.fam != 0 {
				victim = e
			}
		case victim == nil || victim.fam != 0 && e.last < victim.last:
			victim = e
		}
	}
	*victim = rrlEntry{hi: hi, lo: lo, last: t, bal: r.full, fam: fam}
	return victim
}

// refill credits e's balances for the time since e.last. Times that go
// back a little (readers race to the lock with their own now) credit
// nothing; a step back of more than a second is the wall clock being set
// back, and re-anchors the entry there rather than freezing its refill
// until the clock catches up.
func (r *RRL) refill(e *rrlEntry, t int64) {
	elapsed := t - e.last
	if elapsed <= 0 {
		if elapsed < -int64(time.Second) {
			e.last = t
		}
		return
	}
	e.last = t
	for k := range e.bal {
		rate := r.rate[k]
		need := r.full[k] - e.bal[k]
		if rate == 0 || need <= 0 {
			continue
		}
		// elapsed > need/rate means elapsed×rate ≥ need: full. Otherwise
		// elapsed×rate ≤ need ≤ rate×(1s+window), which cannot overflow.
		if elapsed > need/rate {
			e.bal[k] = r.full[k]
		} else {
			e.bal[k] += elapsed * rate
		}
	}
}

// setOf hashes a block to its set with a seeded multiply-mix (wyhash's
// mum), so that which blocks share a set cannot be predicted from outside.
func (r *RRL) setOf(hi, lo uint64, fam uint8) uint64 {
	h1, l1 := bits.Mul64(hi^r.seed[0], lo^r.seed[1]^uint64(fam)<<56)
	h2, l2 := bits.Mul64(h1^l1^r.seed[2], 0x9e3779b97f4a7c15)
	idx, _ := bits.Mul64(h2^l2, uint64(len(r.sets)))
	return idx
}
