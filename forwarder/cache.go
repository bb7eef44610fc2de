package forwarder

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/miekg/dns"
)

// cacheKey identifies one cached answer. DO and CD are part of the key because
// they change what an upstream returns (RRSIGs; unvalidated data). AD is not:
// every upstream query carries AD=1, so the entry is the same whatever the
// client sent, and reply (or AppendCached, which leaves AD entries to Resolve
// for clients without DO) clears AD for a client that set neither DO nor AD.
type cacheKey struct {
	name   string // canonical: lower case, fully qualified
	qtype  uint16
	qclass uint16
	do, cd bool
}

// hash is FNV-1a over the key, inlined so a lookup does not allocate a
// hash.Hash.
func (k cacheKey) hash() uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for i := 0; i < len(k.name); i++ {
		h ^= uint64(k.name[i])
		h *= prime
	}
	var flags uint64
	if k.do {
		flags |= 1
	}
	if k.cd {
		flags |= 2
	}
	for _, b := range [...]uint64{uint64(k.qtype >> 8), uint64(k.qtype & 0xff), uint64(k.qclass >> 8), uint64(k.qclass & 0xff), flags} {
		h ^= b
		h *= prime
	}
	return h
}

// entry is one cached reply. msg, stored and ttl never change after the entry
// is published; TTLs are computed on read as ttl minus time elapsed since
// stored (CoreDNS cache item). The atomics only steer prefetch and
// serve-stale.
type entry struct {
	msg    *dns.Msg      // OPT stripped, RR TTLs normalized (clamped) at store time
	stored time.Time     // when the reply was received
	ttl    time.Duration // freshness lifetime: the entry's "original TTL"
	stale  bool          // may be served stale after expiry (NOERROR/NXDOMAIN)
	wire   *wireForm     // packed for fast hits; nil if not packable
	size   int64         // cost charged to the cache's byte bound, set by add

	hits        atomic.Uint32 // cache hits during this entry's life (prefetch trigger)
	prefetching atomic.Bool   // a background refresh was started for this entry
	retryAt     atomic.Int64  // unix nanos: serve stale without asking upstream until then
}

func (e *entry) fresh(now time.Time) bool { return now.Sub(e.stored) < e.ttl }

// cache is a set of shards bounded by entries and by bytes; golang-lru's
// simplelru has no lock of its own, so each shard takes one and sharding by
// key hash spreads lock contention on the hit path.
//
// Every shard keeps two LRUs: one for positive answers and one for
// everything else (NXDOMAIN, NODATA, remembered SERVFAILs). Negative
// entries may fill at most negShare percent of a shard's entries and bytes;
// beyond that a new one evicts the oldest negative one, never a positive
// one. Positive answers may use the whole shard, and when it is full
// either kind evicts the oldest positive entry while negatives stay within
// their share. So a random-subdomain flood of NXDOMAINs takes at most the
// negative share and cannot evict the names people use (CoreDNS keeps a
// success and a denial cache for this reason), while a cache without
// negative traffic loses nothing.
type cache struct {
	shards    []*shard
	mask      uint64
	staleTTL  time.Duration // how long past expiry an entry is kept for serve-stale; 0 = off
	evictions atomic.Uint64 // entries pushed out by the entry or byte bound
}

// shard is one lock over the positive and the negative LRU and their
// bounds.
type shard struct {
	mu                   sync.Mutex
	pos, neg             part
	maxEntries, negLimit int   // all entries; negative ones
	maxBytes, negBytes   int64 // all bytes; those of negative entries
}

// part is one LRU with its byte account. bytes is kept up to date by the
// eviction callback, which simplelru runs for every removal.
type part struct {
	lru   *simplelru.LRU[cacheKey, *entry]
	bytes int64
}

// parts returns the shard's two LRUs, positive first.
func (s *shard) parts() [2]*part { return [2]*part{&s.pos, &s.neg} }

// minShardBytes keeps a shard able to hold the largest DNS message.
const minShardBytes = 256 << 10

// DefaultNegativeShare is the default percentage of the cache's entries and
// bytes given to negative answers.
const DefaultNegativeShare = 25

// entryOverhead approximates the heap held by an entry beyond its packed
// reply: the entry and dns.Msg structs, the LRU element and map slot, the key.
const entryOverhead = 400

// rrOverhead approximates the heap of one unpacked RR (struct, header,
// interface) beyond its wire bytes.
const rrOverhead = 120

// cost estimates the heap an entry holds: its reply once packed (the wire
// form), once more as unpacked RRs (rdata and names take about their wire
// size again), and a fixed overhead per RR and per entry. Measured against
// runtime heap: a one-A reply 683 B (estimate 652), a 60 KB TXT answer
// 132 KB (121 KB), 3,500 A records 533 KB (539 KB).
func (e *entry) cost(k cacheKey) int64 {
	n := int64(entryOverhead + len(k.name))
	packed := 0
	if e.wire != nil {
		packed = len(e.wire.data)
		n += int64(packed + 2*len(e.wire.ttls))
	} else {
		packed = e.msg.Len()
	}
	n += int64(packed)
	n += int64(rrOverhead * (len(e.msg.Answer) + len(e.msg.Ns) + len(e.msg.Extra)))
	return n
}

// negative reports whether e goes to the negative side of the cache:
// anything but a NOERROR reply with answer records.
func (e *entry) negative() bool {
	return e.msg.Rcode != dns.RcodeSuccess || len(e.msg.Answer) == 0
}

// newCache builds a cache of entries and maxBytes in total, at most
// negShare percent of either for negative answers.
func newCache(entries int, maxBytes int64, shards, negShare int, staleTTL time.Duration) (*cache, error) {
	// Keep at least a few entries per shard; tiny caches would otherwise
	// evict by hash collision rather than by recency. Likewise every shard
	// must hold a maximal message.
	for shards > 1 && (entries/shards < 16 || maxBytes/int64(shards) < minShardBytes) {
		shards /= 2
	}
	per := (entries + shards - 1) / shards
	perBytes := maxBytes / int64(shards)
	c := &cache{shards: make([]*shard, shards), mask: uint64(shards - 1), staleTTL: staleTTL}
	for i := range c.shards {
		s := &shard{maxEntries: per, negLimit: max(per*negShare/100, 1), maxBytes: perBytes, negBytes: perBytes * int64(negShare) / 100}
		for _, p := range s.parts() {
			// Both LRUs may hold a whole shard; add enforces the bounds.
			l, err := simplelru.NewLRU[cacheKey, *entry](per, func(_ cacheKey, e *entry) { p.bytes -= e.size })
			if err != nil {
				return nil, err
			}
			p.lru = l
		}
		c.shards[i] = s
	}
	return c, nil
}

func (c *cache) shard(k cacheKey) *shard {
	return c.shards[k.hash()&c.mask]
}

// get returns the entry for k and whether it is fresh at now. A non-fresh
// entry is returned only while it may still be served stale; one past that
// window is dropped.
func (c *cache) get(k cacheKey, now time.Time) (*entry, bool) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &s.pos
	e, ok := p.lru.Get(k)
	if !ok {
		p = &s.neg
		if e, ok = p.lru.Get(k); !ok {
			return nil, false
		}
	}
	if e.fresh(now) {
		return e, true
	}
	if e.stale && now.Sub(e.stored) < e.ttl+c.staleTTL {
		return e, false
	}
	p.lru.Remove(k)
	return nil, false
}

// add stores e under k, on the positive or the negative side, and evicts
// until the shard is within its bounds (see cache). An entry larger than
// what its side may hold is not stored.
func (c *cache) add(k cacheKey, e *entry) {
	e.size = e.cost(k)
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	p, limit := &s.pos, s.maxBytes
	if e.negative() {
		p, limit = &s.neg, s.negBytes
	}
	if e.size > limit {
		return
	}
	// A replaced entry, on either side, leaves through the callback, not
	// as an eviction.
	s.pos.lru.Remove(k)
	s.neg.lru.Remove(k)
	if p.lru.Add(k, e) {
		c.evictions.Add(1)
	}
	p.bytes += e.size
	for {
		negOver := s.neg.bytes > s.negBytes || s.neg.lru.Len() > s.negLimit
		allOver := s.pos.bytes+s.neg.bytes > s.maxBytes || s.pos.lru.Len()+s.neg.lru.Len() > s.maxEntries
		if !negOver && !allOver {
			return
		}
		victim := &s.pos
		if negOver || s.pos.lru.Len() == 0 {
			victim = &s.neg
		}
		if _, _, ok := victim.lru.RemoveOldest(); !ok {
			return
		}
		c.evictions.Add(1)
	}
}

func (c *cache) len() int {
	n := 0
	for _, s := range c.shards {
		s.mu.Lock()
		n += s.pos.lru.Len() + s.neg.lru.Len()
		s.mu.Unlock()
	}
	return n
}

// bytes is the summed cost of every entry.
func (c *cache) bytes() int64 {
	var n int64
	for _, s := range c.shards {
		s.mu.Lock()
		n += s.pos.bytes + s.neg.bytes
		s.mu.Unlock()
	}
	return n
}

// each calls fn for every entry, each side of each shard from its least to
// its most recently used, so adding them elsewhere in that order keeps
// recency.
func (c *cache) each(fn func(k cacheKey, e *entry)) {
	for _, s := range c.shards {
		for _, p := range s.parts() {
			s.mu.Lock()
			keys := p.lru.Keys()
			vals := p.lru.Values()
			s.mu.Unlock()
			for i := range keys {
				fn(keys[i], vals[i])
			}
		}
	}
}

// ttlPolicy holds the knobs of classify.
type ttlPolicy struct {
	minTTL, maxTTL time.Duration
	negMaxTTL      time.Duration
	servFailTTL    time.Duration // 0: SERVFAIL not cached
}

// classify decides whether an upstream reply is cacheable and for how long,
// in one place (CoreDNS response.Typify + dnsutil.MinimalTTL). ttl == 0 means
// "do not cache"; staleOK says the entry may be served stale after expiry.
// For cacheable replies it normalizes every RR's TTL in place (clamps, RFC
// 2308 SOA TTL) so that "TTL minus elapsed" stays meaningful for the entry's
// whole life: m must be owned by the caller and already stripped of OPT.
func (p *ttlPolicy) classify(m *dns.Msg) (ttl time.Duration, staleOK bool) {
	if m.Truncated {
		return 0, false // partial answer: the client must see TC and retry
	}
	switch m.Rcode {
	case dns.RcodeServerFailure:
		return p.servFailTTL, false
	case dns.RcodeSuccess:
		if len(m.Answer) > 0 {
			return p.positive(m)
		}
		return p.negative(m)
	case dns.RcodeNameError:
		return p.negative(m)
	}
	return 0, false // REFUSED, FORMERR, NOTIMP...: not worth remembering
}

func (p *ttlPolicy) positive(m *dns.Msg) (time.Duration, bool) {
	lo, hi := secs(p.minTTL), secs(p.maxTTL)
	least := ^uint32(0)
	for _, sec := range [...][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			t := h.Ttl
			if soa, ok := rr.(*dns.SOA); ok {
				t = min(t, soa.Minttl) // RFC 2308 §5 for an SOA riding along
			}
			t = max(min(t, hi), lo)
			h.Ttl = t
			least = min(least, t)
		}
	}
	if least == 0 {
		return 0, false
	}
	return time.Duration(least) * time.Second, true
}

// negative caches NXDOMAIN/NODATA per RFC 2308 §5: only with an SOA in the
// authority section, for min(SOA TTL, SOA MINIMUM) capped by negMaxTTL.
func (p *ttlPolicy) negative(m *dns.Msg) (time.Duration, bool) {
	var soa *dns.SOA
	for _, rr := range m.Ns {
		if s, ok := rr.(*dns.SOA); ok {
			soa = s
			break
		}
	}
	if soa == nil {
		return 0, false // a referral or a bare negative: RFC 2308 §5 says don't
	}
	ttl := min(soa.Hdr.Ttl, soa.Minttl, secs(p.negMaxTTL))
	if ttl == 0 {
		return 0, false
	}
	for _, sec := range [...][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			h.Ttl = min(h.Ttl, ttl)
			if _, ok := rr.(*dns.SOA); ok {
				h.Ttl = ttl
			}
		}
	}
	return time.Duration(ttl) * time.Second, true
}

// holds reports whether e, stored under another policy, is one p could
// have stored: every TTL inside p's clamps (positive answers) or within its
// negative cap. Stored messages are normalized, so this is a bound check.
func (p *ttlPolicy) holds(e *entry) bool {
	m := e.msg
	if m.Rcode == dns.RcodeServerFailure {
		return e.ttl <= p.servFailTTL
	}
	if m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 {
		lo, hi := secs(p.minTTL), secs(p.maxTTL)
		for _, sec := range [...][]dns.RR{m.Answer, m.Ns, m.Extra} {
			for _, rr := range sec {
				if t := rr.Header().Ttl; t < lo || t > hi {
					return false
				}
			}
		}
		return true
	}
	return e.ttl <= p.negMaxTTL
}

// secs converts a duration to a TTL, saturating.
func secs(d time.Duration) uint32 {
	s := d / time.Second
	if s <= 0 {
		return 0
	}
	if s > 1<<31-1 {
		return 1<<31 - 1
	}
	return uint32(s)
}
