package forwarder

import (
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/dns"
)

// cacheKey identifies one cached answer. DO and CD are part of the key because
// they change what an upstream returns (RRSIGs; unvalidated data).
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

	hits        atomic.Uint32 // cache hits during this entry's life (prefetch trigger)
	prefetching atomic.Bool   // a background refresh was started for this entry
	retryAt     atomic.Int64  // unix nanos: serve stale without asking upstream until then
}

func (e *entry) fresh(now time.Time) bool { return now.Sub(e.stored) < e.ttl }

// cache is a set of LRU shards; golang-lru's Cache has a single mutex, so
// sharding by key hash spreads lock contention on the hit path.
type cache struct {
	shards    []*lru.Cache[cacheKey, *entry]
	mask      uint64
	staleTTL  time.Duration // how long past expiry an entry is kept for serve-stale; 0 = off
	evictions atomic.Uint64
}

func newCache(entries, shards int, staleTTL time.Duration) (*cache, error) {
	// Keep at least a few entries per shard; tiny caches would otherwise
	// evict by hash collision rather than by recency.
	for shards > 1 && entries/shards < 16 {
		shards /= 2
	}
	per := (entries + shards - 1) / shards
	c := &cache{shards: make([]*lru.Cache[cacheKey, *entry], shards), mask: uint64(shards - 1), staleTTL: staleTTL}
	for i := range c.shards {
		s, err := lru.New[cacheKey, *entry](per)
		if err != nil {
			return nil, err
		}
		c.shards[i] = s
	}
	return c, nil
}

func (c *cache) shard(k cacheKey) *lru.Cache[cacheKey, *entry] {
	return c.shards[k.hash()&c.mask]
}

// get returns the entry for k and whether it is fresh at now. A non-fresh
// entry is returned only while it may still be served stale; one past that
// window is dropped.
func (c *cache) get(k cacheKey, now time.Time) (*entry, bool) {
	s := c.shard(k)
	e, ok := s.Get(k)
	if !ok {
		return nil, false
	}
	if e.fresh(now) {
		return e, true
	}
	if e.stale && now.Sub(e.stored) < e.ttl+c.staleTTL {
		return e, false
	}
	// Remove only if nobody replaced it meanwhile.
	if cur, ok := s.Peek(k); ok && cur == e {
		s.Remove(k)
	}
	return nil, false
}

func (c *cache) add(k cacheKey, e *entry) {
	if c.shard(k).Add(k, e) {
		c.evictions.Add(1)
	}
}

func (c *cache) len() int {
	n := 0
	for _, s := range c.shards {
		n += s.Len()
	}
	return n
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
