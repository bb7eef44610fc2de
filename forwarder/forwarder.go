// Package forwarder resolves queries outside our zones: it picks a forwarding
// rule by longest suffix, answers from a sharded cache (bounded by entries and
// bytes) when it can, and otherwise asks the rule's upstream pool
// (health-checked by probes, with failover and UDP->TCP retry, bounded per
// rule, per upstream and per zone), coalescing identical misses, scrubbing
// replies to the question's bailiwick, prefetching hot entries and serving
// stale answers when every upstream fails.
//
// It imports no other project package: the server reaches it through its own
// Resolver interface.
package forwarder

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Policy orders a rule's upstreams for each query.
type Policy string

// Policies. The empty Policy means PolicyRandom.
const (
	PolicyRandom     Policy = "random"
	PolicyRoundRobin Policy = "round_robin"
	PolicySequential Policy = "sequential"
)

// Rule forwards names at or below Suffix to Upstreams. Suffix "." is the
// default rule. Upstreams use ParseUpstream syntax ("vpc", "IP", "IP:port",
// "[IPv6]:port").
type Rule struct {
	Suffix    string
	Upstreams []string
	Policy    Policy
}

// Config configures a Forwarder; zero values mean the documented defaults.
type Config struct {
	Rules    []Rule        // conditional rules; a Rule with Suffix "." is the default
	Timeout  time.Duration // per upstream attempt (default 2s)
	Deadline time.Duration // overall per client query (default 5s)
	// MaxInFlight bounds the upstream fetches of one rule (default 1000), so
	// a dead upstream or a flood under one rule cannot take the capacity of
	// the others; over it: ErrOverloaded.
	MaxInFlight int
	// UpstreamMaxInFlight bounds the exchanges in flight to one upstream
	// address, across rules (default 1000). A busy upstream is skipped for
	// the next one; when all are busy: ErrOverloaded.
	UpstreamMaxInFlight int
	// FetchesPerZone bounds concurrent fetches for distinct names under one
	// zone whose fetches are stuck (BIND's fetches-per-zone; default 100;
	// negative: unlimited). A forwarder does not know zone cuts, so the
	// "zone" of a name is its parent, shortened to at most two labels below
	// the rule's suffix: rnd123.victim.example and rnd456.victim.example
	// share one budget under the default rule. A zone at the bound whose
	// fetches have had no reply for half the Timeout refuses more at once
	// (ErrOverloaded); a zone that keeps answering is not held back by a
	// burst of distinct names.
	FetchesPerZone int

	CacheEntries int   // default 100000; negative disables the cache
	CacheBytes   int64 // bound on the cache's estimated heap (default 256 MiB; see entry.cost)
	CacheShards  int   // default 64; a power of two (halved while shards would hold < 16 entries)
	// CacheNegativeShare is the percentage of CacheEntries and CacheBytes
	// that negative answers (NXDOMAIN, NODATA, remembered SERVFAILs) may
	// fill, 1 to 90 (default 25). A negative answer beyond it evicts
	// another negative one, never a positive one, so a flood of random
	// names cannot evict the names people use; positive answers may use
	// the whole cache.
	CacheNegativeShare int
	MinTTL             time.Duration // clamp for positive answers (default 0)
	MaxTTL             time.Duration // clamp for positive answers (default 24h)
	NegMaxTTL          time.Duration // cap for RFC 2308 negative caching (default 1h)
	ServFailTTL        time.Duration // SERVFAIL caching (default 5s, at most 30s; negative disables)
	StaleTTL           time.Duration // RFC 8767 serve-stale window past expiry (default 24h; negative disables)
	Prefetch           int           // hits after which a near-expiry entry is refreshed (default 3; negative disables)

	HealthCheckInterval time.Duration // probe period for suspect and down upstreams (default 2s)
	// MaxFails is how many consecutive failed health probes mark an
	// upstream down (default 3; negative turns health checking off: no
	// probes, never down). A failed query does not count by itself: it
	// makes the upstream suspect and starts a probe (". NS"), as CoreDNS
	// does, so one broken domain cannot take a healthy upstream down.
	MaxFails   int
	LocalAddrs []string // our listen addresses; an upstream equal to one is a loop
	// VPCCIDR resolves the "vpc" upstream keyword (see ParseUpstream,
	// AWSRules). Empty means the link-local 169.254.169.253.
	VPCCIDR string
	Logger  *slog.Logger
}

// Sentinel errors, for errors.Is.
var (
	ErrOverloaded = errors.New("forwarder: too many upstream queries in flight")
	ErrNoUpstream = errors.New("forwarder: no forwarding rule matches")
	ErrAllFailed  = errors.New("forwarder: all upstreams failed")
	// ErrLoop is returned by Resolve for a query carrying our own loop marker
	// (the server should check IsLoop first and log "forwarding loop").
	ErrLoop = errors.New("forwarder: query carries our loop marker")
	// ErrClosed is returned by Resolve on a miss after Close.
	ErrClosed = errors.New("forwarder: closed")
)

// LoopOptionCode is the EDNS0 local-use option (RFC 6891 §9: 65001-65534)
// carrying our per-process nonce in every upstream query.
const LoopOptionCode = 65073

// staleAnswerTTL is the TTL of stale answers (RFC 8767 §4 recommends 30).
const staleAnswerTTL = 30

const maxServFailTTL = 30 * time.Second

type rule struct {
	suffix   string
	pool     *pool
	inflight atomic.Int64 // fetches running under this rule
}

// DefaultCacheBytes is the default bound of the cache's estimated heap.
const DefaultCacheBytes = 256 << 20

// Forwarder is safe for concurrent use.
type Forwarder struct {
	log      *slog.Logger
	rules    map[string]*rule // by canonical suffix, without the default
	def      *rule            // Suffix "." or nil
	ups      []*upstream      // every distinct upstream, sorted by address
	nonce    [8]byte
	opts     [2]*dns.OPT // our upstream OPT without and with DO; read-only
	cache    *cache      // nil when disabled
	ttl      ttlPolicy
	timeout  time.Duration
	deadline time.Duration
	maxIn    int64 // per rule
	maxUp    int64 // per upstream
	perZone  int   // 0: unlimited
	maxFails int   // 0: health checking off
	prefetch int
	interval time.Duration
	wake     chan struct{} // asks the health loop to probe suspects now

	zmu   sync.Mutex
	zones map[string]*zoneState // fetches in flight per zone (see zoneOf)

	// now is the clock of the cache; tests replace it to age entries.
	now func() time.Time

	flight   flight
	inflight atomic.Int64

	ctx    context.Context // cancelled by Close; parent of upstream work
	cancel context.CancelFunc
	wg     sync.WaitGroup // health loop
	once   sync.Once

	hits, misses, coalesced, staleServed, prefetches, overloaded atomic.Uint64
	zoneLimited, upstreamBusy, downFast, failCached              atomic.Uint64
}

// New validates cfg and starts the health prober. All configuration problems
// are reported at once, each naming its rule.
func New(cfg Config) (*Forwarder, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(slog.String("component", "forwarder"))

	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	dur := func(name string, d *time.Duration, def time.Duration) {
		if *d < 0 {
			bad("%s: negative duration %v", name, *d)
		}
		if *d == 0 {
			*d = def
		}
	}
	dur("timeout", &cfg.Timeout, 2*time.Second)
	dur("deadline", &cfg.Deadline, 5*time.Second)
	dur("health check interval", &cfg.HealthCheckInterval, 2*time.Second)
	dur("min ttl", &cfg.MinTTL, 0)
	dur("max ttl", &cfg.MaxTTL, 24*time.Hour)
	dur("negative max ttl", &cfg.NegMaxTTL, time.Hour)
	if cfg.MinTTL > cfg.MaxTTL {
		bad("min ttl %v above max ttl %v", cfg.MinTTL, cfg.MaxTTL)
	}
	switch {
	case cfg.ServFailTTL == 0:
		cfg.ServFailTTL = 5 * time.Second
	case cfg.ServFailTTL > maxServFailTTL:
		cfg.ServFailTTL = maxServFailTTL // a longer outage memory hurts more than it saves
	case cfg.ServFailTTL < 0:
		cfg.ServFailTTL = 0
	}
	switch {
	case cfg.StaleTTL == 0:
		cfg.StaleTTL = 24 * time.Hour
	case cfg.StaleTTL < 0:
		cfg.StaleTTL = 0
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 1000
	} else if cfg.MaxInFlight < 0 {
		bad("max in flight: negative %d", cfg.MaxInFlight)
	}
	if cfg.UpstreamMaxInFlight == 0 {
		cfg.UpstreamMaxInFlight = 1000
	} else if cfg.UpstreamMaxInFlight < 0 {
		bad("upstream max in flight: negative %d", cfg.UpstreamMaxInFlight)
	}
	switch {
	case cfg.FetchesPerZone == 0:
		cfg.FetchesPerZone = 100
	case cfg.FetchesPerZone < 0:
		cfg.FetchesPerZone = 0
	}
	switch {
	case cfg.MaxFails == 0:
		cfg.MaxFails = 3
	case cfg.MaxFails < 0:
		cfg.MaxFails = 0
	}
	if cfg.CacheBytes == 0 {
		cfg.CacheBytes = DefaultCacheBytes
	} else if cfg.CacheBytes < 0 {
		bad("cache bytes: negative %d", cfg.CacheBytes)
	}
	if cfg.Prefetch == 0 {
		cfg.Prefetch = 3
	}
	if cfg.CacheEntries == 0 {
		cfg.CacheEntries = 100000
	}
	switch {
	case cfg.CacheNegativeShare == 0:
		cfg.CacheNegativeShare = DefaultNegativeShare
	case cfg.CacheNegativeShare < 1 || cfg.CacheNegativeShare > 90:
		bad("cache negative share: %d%% is not between 1 and 90", cfg.CacheNegativeShare)
	}
	if cfg.CacheShards == 0 {
		cfg.CacheShards = 64
	} else if cfg.CacheShards < 0 || cfg.CacheShards&(cfg.CacheShards-1) != 0 {
		bad("cache shards: %d is not a power of two", cfg.CacheShards)
	}

	f := &Forwarder{
		log:      log,
		rules:    make(map[string]*rule),
		ttl:      ttlPolicy{minTTL: cfg.MinTTL, maxTTL: cfg.MaxTTL, negMaxTTL: cfg.NegMaxTTL, servFailTTL: cfg.ServFailTTL},
		timeout:  cfg.Timeout,
		deadline: cfg.Deadline,
		maxIn:    int64(cfg.MaxInFlight),
		maxUp:    int64(cfg.UpstreamMaxInFlight),
		perZone:  cfg.FetchesPerZone,
		maxFails: cfg.MaxFails,
		prefetch: cfg.Prefetch,
		interval: cfg.HealthCheckInterval,
		wake:     make(chan struct{}, 1),
		zones:    make(map[string]*zoneState),
		now:      time.Now,
		flight:   flight{m: make(map[cacheKey]*call)},
	}
	if _, err := rand.Read(f.nonce[:]); err != nil {
		return nil, fmt.Errorf("forwarder: loop marker nonce: %w", err)
	}
	f.opts = [2]*dns.OPT{f.opt(false), f.opt(true)}

	locals, err := parseLocalAddrs(cfg.LocalAddrs)
	if err != nil {
		errs = append(errs, err)
	}
	byAddr := make(map[string]*upstream)
	for i, r := range cfg.Rules {
		name := fmt.Sprintf("rule %d (%q)", i, r.Suffix)
		suffix := dns.CanonicalName(strings.TrimSpace(r.Suffix))
		if r.Suffix == "" {
			bad("%s: empty suffix (use \".\" for the default rule)", name)
			continue
		}
		if _, ok := dns.IsDomainName(suffix); !ok {
			bad("%s: invalid domain name", name)
			continue
		}
		if _, dup := f.rules[suffix]; dup || (suffix == "." && f.def != nil) {
			bad("%s: duplicate suffix %s", name, suffix)
			continue
		}
		policy := r.Policy
		switch policy {
		case "":
			policy = PolicyRandom
		case PolicyRandom, PolicyRoundRobin, PolicySequential:
		default:
			bad("%s: unknown policy %q (want random, round_robin or sequential)", name, r.Policy)
		}
		if len(r.Upstreams) == 0 {
			bad("%s: no upstreams", name)
			continue
		}
		p := &pool{policy: policy}
		for _, s := range r.Upstreams {
			addr, err := ParseUpstream(s, cfg.VPCCIDR)
			if err != nil {
				bad("%s: %w", name, err)
				continue
			}
			ap := netip.MustParseAddrPort(addr)
			if l, loop := locals.match(ap); loop {
				bad("%s: upstream %s is our own listen address %s (forwarding loop)", name, addr, l)
				continue
			}
			u := byAddr[addr]
			if u == nil {
				if u, err = newUpstream(addr, log); err != nil {
					bad("%s: %w", name, err)
					continue
				}
				byAddr[addr] = u
				f.ups = append(f.ups, u)
			}
			if slices.Contains(p.ups, u) {
				bad("%s: upstream %s listed twice", name, addr)
				continue
			}
			p.ups = append(p.ups, u)
		}
		if len(p.ups) == 0 {
			continue
		}
		rl := &rule{suffix: suffix, pool: p}
		if suffix == "." {
			f.def = rl
		} else {
			f.rules[suffix] = rl
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(f.ups, func(a, b *upstream) int { return strings.Compare(a.addr, b.addr) })

	if cfg.CacheEntries > 0 {
		c, err := newCache(cfg.CacheEntries, cfg.CacheBytes, cfg.CacheShards, cfg.CacheNegativeShare, cfg.StaleTTL)
		if err != nil {
			return nil, fmt.Errorf("forwarder: cache: %w", err)
		}
		f.cache = c
	}

	f.ctx, f.cancel = context.WithCancel(context.Background())
	if f.maxFails > 0 {
		f.wg.Go(f.healthLoop)
	}
	return f, nil
}

// Match returns the suffix of the most specific rule for qname, which must be
// a canonical (lower-case, fully qualified) name. It does not allocate.
func (f *Forwarder) Match(qname string) (suffix string, ok bool) {
	if r := f.match(qname); r != nil {
		return r.suffix, true
	}
	return "", false
}

// match walks qname's label boundaries from the left, so the first map hit
// is the longest matching suffix.
func (f *Forwarder) match(qname string) *rule {
	if len(f.rules) > 0 {
		for off, end := 0, false; !end; off, end = dns.NextLabel(qname, off) {
			if r, ok := f.rules[qname[off:]]; ok {
				return r
			}
		}
	}
	return f.def
}

// maxHops is how many forwarders' loop markers a query may carry before we
// refuse to forward it further.
const maxHops = 4

// foreignMarkers returns the loop markers of other forwarders that req
// carries (at most maxHops are read).
func foreignMarkers(req *dns.Msg) []dns.EDNS0 {
	opt := req.IsEdns0()
	if opt == nil {
		return nil
	}
	var out []dns.EDNS0
	for _, o := range opt.Option {
		if l, ok := o.(*dns.EDNS0_LOCAL); ok && l.Code == LoopOptionCode && len(out) < maxHops {
			out = append(out, &dns.EDNS0_LOCAL{Code: LoopOptionCode, Data: append([]byte(nil), l.Data...)})
		}
	}
	return out
}

// IsLoop reports whether req carries this process's loop marker, i.e. it is
// one of our own upstream queries that came back to us.
func (f *Forwarder) IsLoop(req *dns.Msg) bool {
	opt := req.IsEdns0()
	if opt == nil {
		return false
	}
	for _, o := range opt.Option {
		if l, ok := o.(*dns.EDNS0_LOCAL); ok && l.Code == LoopOptionCode && string(l.Data) == string(f.nonce[:]) {
			return true
		}
	}
	return false
}

// Resolve answers req (one question) from the cache or the matching rule's
// upstreams. The reply is the caller's: its header, sections and RR headers
// are fresh copies it may change (RR data slices such as A/AAAA addresses and
// TXT strings are shared with the cache and must not be written in place).
// reply.Id is req.Id and the question is req's, case preserved. The reply
// carries no OPT record: the caller owns EDNS towards its client.
//
// An upstream SERVFAIL is returned as a reply when every upstream failed and
// at least one said SERVFAIL; when none answered it returns an error wrapping
// ErrAllFailed. In both cases, and on ErrOverloaded, an expired answer still
// inside the StaleTTL window is served instead, with TTL 30 (RFC 8767), and
// for ServFailTTL after such a failure it is served without asking upstream.
// A fetch that got no reply at all is remembered as SERVFAIL for
// ServFailTTL: later queries get that SERVFAIL reply from the cache. The
// reply is scrubbed to the question's chain and the rule's bailiwick (see
// scrub), and its AD bit is set only if the upstream set it and req has DO
// or AD (RFC 6840 §5.7).
// Other errors: ErrNoUpstream (no rule), ErrLoop (req carries our marker),
// ErrOverloaded (a bound of the rule, the zone or every upstream was hit),
// ErrClosed, or the caller's context error.
func (f *Forwarder) Resolve(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	if len(req.Question) != 1 {
		return nil, fmt.Errorf("forwarder: want exactly one question, got %d", len(req.Question))
	}
	if f.IsLoop(req) {
		return nil, ErrLoop
	}
	carried := foreignMarkers(req)
	if len(carried) >= maxHops {
		return nil, fmt.Errorf("%w: %d forwarders already on the path", ErrLoop, len(carried))
	}
	k := key(req)
	now := f.now()
	var old *entry
	if f.cache != nil {
		e, fresh := f.cache.get(k, now)
		if fresh {
			f.hits.Add(1)
			f.maybePrefetch(k, e, now)
			return f.reply(req, e, now, false), nil
		}
		old = e
		// A stale entry whose refresh failed recently: answer stale without
		// asking upstream again (RFC 8767 §5 failure recheck).
		if old != nil && now.UnixNano() < old.retryAt.Load() {
			f.staleServed.Add(1)
			return f.reply(req, old, now, true), nil
		}
	}
	f.misses.Add(1)
	r := f.match(k.name)
	if r == nil {
		return nil, fmt.Errorf("%w for %s", ErrNoUpstream, k.name)
	}
	c, leader, err := f.flight.do(k, func() (*entry, error) { return f.fetch(k, r, carried) })
	if err != nil {
		return nil, err
	}
	if !leader {
		f.coalesced.Add(1)
	}
	return f.await(ctx, req, k, old, c)
}

// await is the second half of Resolve: it waits for the fetch c of k and
// answers req from its result, from old (stale) when the fetch failed, or
// with the error.
func (f *Forwarder) await(ctx context.Context, req *dns.Msg, k cacheKey, old *entry, c *call) (*dns.Msg, error) {
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("forwarder: %s: %w", k.name, ctx.Err())
	}
	now := f.now()
	if c.err == nil && c.e.msg.Rcode != dns.RcodeServerFailure {
		return f.reply(req, c.e, now, false), nil
	}
	if old != nil && f.cache != nil && now.Sub(old.stored) < old.ttl+f.cache.staleTTL {
		if f.ttl.servFailTTL > 0 {
			old.retryAt.Store(now.Add(f.ttl.servFailTTL).UnixNano())
		}
		f.staleServed.Add(1)
		return f.reply(req, old, now, true), nil
	}
	if c.err != nil {
		return nil, c.err
	}
	return f.reply(req, c.e, now, false), nil
}

// CacheOnly answers req from fresh cache entries only, without upstream
// traffic (for clients that did not ask for recursion). The reply follows
// Resolve's rules.
func (f *Forwarder) CacheOnly(req *dns.Msg) (*dns.Msg, bool) {
	if f.cache == nil || len(req.Question) != 1 {
		return nil, false
	}
	k := key(req)
	now := f.now()
	e, fresh := f.cache.get(k, now)
	if !fresh {
		f.misses.Add(1)
		return nil, false
	}
	f.hits.Add(1)
	return f.reply(req, e, now, false), true
}

// wantsAD reports whether req signals it understands AD (DO or AD set).
func wantsAD(req *dns.Msg) bool {
	if req.AuthenticatedData {
		return true
	}
	opt := req.IsEdns0()
	return opt != nil && opt.Do()
}

func key(req *dns.Msg) cacheKey {
	q := req.Question[0]
	k := cacheKey{name: dns.Fqdn(strings.ToLower(q.Name)), qtype: q.Qtype, qclass: q.Qclass, cd: req.CheckingDisabled}
	if opt := req.IsEdns0(); opt != nil {
		k.do = opt.Do()
	}
	return k
}

// maybePrefetch refreshes a popular entry in the background when less than a
// tenth of its life is left, so hot names never miss (CoreDNS cache prefetch).
func (f *Forwarder) maybePrefetch(k cacheKey, e *entry, now time.Time) {
	// Only answers are worth refreshing early; a cached SERVFAIL should
	// expire and be retried by a client, not kept alive by popularity.
	if f.prefetch <= 0 || !e.stale || e.hits.Add(1) < uint32(f.prefetch) {
		return
	}
	if left := e.ttl - now.Sub(e.stored); left*10 >= e.ttl {
		return
	}
	if !e.prefetching.CompareAndSwap(false, true) {
		return
	}
	r := f.match(k.name)
	if r == nil {
		return
	}
	k = cloneKey(k) // the fast path's key may borrow the caller's buffer
	// Joins an in-flight miss for the same key instead of adding a query.
	if _, leader, err := f.flight.do(k, func() (*entry, error) { return f.fetch(k, r, nil) }); err == nil && leader {
		f.prefetches.Add(1)
	}
}

// fetch asks r's upstreams in policy order until one gives a usable answer,
// stores the result in the cache and returns it. It runs detached from any
// client: coalesced followers and the cache want its result even if the
// client that started it went away.
//
// Bounds, each refusing at once with ErrOverloaded rather than queueing:
// fetches per rule, fetches per zone (zoneOf), exchanges per upstream (a
// busy upstream is skipped). Down upstreams are not tried while another is
// up; when all are down the fetch fails without sending, and the failure is
// remembered for ServFailTTL like a timeout, so a flood for a dead name or
// rule does not hold slots.
func (f *Forwarder) fetch(k cacheKey, r *rule, carried []dns.EDNS0) (*entry, error) {
	if r.inflight.Add(1) > f.maxIn {
		r.inflight.Add(-1)
		f.overloaded.Add(1)
		return nil, fmt.Errorf("%w (rule %s: %d)", ErrOverloaded, r.suffix, f.maxIn)
	}
	defer r.inflight.Add(-1)
	f.inflight.Add(1)
	defer f.inflight.Add(-1)
	replied := false // some upstream answered: the zone is not stuck
	if zone, ok := f.enterZone(k.name, r.suffix); !ok {
		f.zoneLimited.Add(1)
		return nil, fmt.Errorf("%w (%d fetches for zone %s without a reply)", ErrOverloaded, f.perZone, zone)
	} else if f.perZone > 0 {
		defer func() { f.leaveZone(zone, replied) }()
	}
	// The overall deadline is a time, not a context: each attempt waits
	// until the earlier of it and its own timeout (exchange), so a fetch
	// costs no context or timer beyond its attempts'.
	deadline := time.Now().Add(f.deadline)

	// Pass on the markers of the forwarders before us, so a loop through
	// several instances (A → B → A) comes back to one that knows its own.
	q := f.upstreamQuery(k, carried)
	var (
		buf       [8]*upstream
		servfail  *dns.Msg // first SERVFAIL: returned if nobody does better
		truncated *dns.Msg // TC reply whose TCP retry failed
		errs      []error
		busy      int
	)
	ups := r.pool.order(buf[:0], f.maxFails > 0)
	if len(ups) == 0 {
		f.downFast.Add(1)
		errs = append(errs, fmt.Errorf("every upstream of rule %s is down; probing", r.suffix))
	}
	for _, u := range ups {
		now := time.Now()
		if err := f.ctx.Err(); err != nil || !now.Before(deadline) {
			errs = append(errs, fmt.Errorf("overall deadline %v: %w", f.deadline, cmp.Or(err, context.DeadlineExceeded)))
			break
		}
		if u.inflight.Add(1) > f.maxUp {
			u.inflight.Add(-1)
			u.busy.Add(1)
			f.upstreamBusy.Add(1)
			busy++
			errs = append(errs, fmt.Errorf("upstream %s: %d exchanges in flight", u.addr, f.maxUp))
			continue
		}
		dl := now.Add(f.timeout)
		if deadline.Before(dl) {
			dl = deadline
		}
		m, err := u.exchange(f.ctx, dl, q)
		u.inflight.Add(-1)
		if err != nil {
			if m != nil && truncated == nil {
				truncated = m
			}
			if f.ctx.Err() == nil { // shutting down is not the upstream's fault
				f.suspect(u)
			}
			f.log.Debug("upstream attempt failed", slog.String("rule", r.suffix), slog.String("qname", k.name), slog.Any("err", err))
			errs = append(errs, err)
			continue
		}
		u.success()
		replied = true
		scrub(m, k.name, k.qtype, r.suffix)
		if m.Rcode == dns.RcodeServerFailure || m.Rcode == dns.RcodeRefused {
			// Soft error: this upstream can't answer, another may.
			u.softErrs.Add(1)
			if m.Rcode == dns.RcodeServerFailure && servfail == nil {
				servfail = m
			}
			errs = append(errs, fmt.Errorf("upstream %s: rcode %s", u.addr, dns.RcodeToString[m.Rcode]))
			continue
		}
		return f.store(k, m), nil
	}
	if servfail != nil {
		return f.store(k, servfail), nil
	}
	if truncated != nil {
		return f.store(k, truncated), nil
	}
	if busy > 0 && busy == len(ups) {
		f.overloaded.Add(1)
		return nil, fmt.Errorf("%w for %s (rule %s): %w", ErrOverloaded, k.name, r.suffix, errors.Join(errs...))
	}
	if f.ctx.Err() == nil {
		// Remember the failure briefly (a timeout is a SERVFAIL to the
		// client): the next queries for this name are answered from the
		// cache instead of waiting on the same dead path again.
		f.rememberFailure(k)
	}
	return nil, fmt.Errorf("%w for %s (rule %s): %w", ErrAllFailed, k.name, r.suffix, errors.Join(errs...))
}

// rememberFailure caches a SERVFAIL for k for ServFailTTL.
func (f *Forwarder) rememberFailure(k cacheKey) {
	if f.cache == nil || f.ttl.servFailTTL <= 0 {
		return
	}
	m := &dns.Msg{
		MsgHdr:   dns.MsgHdr{Response: true, Opcode: dns.OpcodeQuery, RecursionDesired: true, RecursionAvailable: true, Rcode: dns.RcodeServerFailure},
		Question: []dns.Question{{Name: k.name, Qtype: k.qtype, Qclass: k.qclass}},
	}
	f.failCached.Add(1)
	f.store(k, m)
}

// zoneOf is the budget key of qname under the rule suffix: its parent
// name, shortened to at most two labels below the suffix (the suffix
// itself for a name directly below it). It is a substring of qname.
func zoneOf(qname, suffix string) string {
	labels, sl := dns.CountLabel(qname), dns.CountLabel(suffix)
	keep := max(min(labels-1, sl+2), min(sl, labels))
	if keep <= 0 {
		return "."
	}
	off, _ := dns.PrevLabel(qname, keep)
	return qname[off:]
}

// zoneState counts the fetches of one zone (see zoneOf).
type zoneState struct {
	n      int       // in flight
	lastOK time.Time // last fetch that got a reply (or when the zone was first seen)
}

// enterZone takes a fetch slot of qname's zone; false when the zone is at
// its bound and stuck: no fetch of it got a reply for half the timeout.
func (f *Forwarder) enterZone(qname, suffix string) (string, bool) {
	if f.perZone <= 0 {
		return "", true
	}
	zone := zoneOf(qname, suffix)
	now := f.now()
	f.zmu.Lock()
	defer f.zmu.Unlock()
	st := f.zones[zone]
	if st == nil {
		st = &zoneState{lastOK: now}
		f.zones[zone] = st
	}
	if st.n >= f.perZone && now.Sub(st.lastOK) >= f.timeout/2 {
		return zone, false
	}
	st.n++
	return zone, true
}

func (f *Forwarder) leaveZone(zone string, replied bool) {
	now := f.now()
	f.zmu.Lock()
	defer f.zmu.Unlock()
	st := f.zones[zone]
	if replied {
		st.lastOK = now
	}
	if st.n--; st.n <= 0 {
		delete(f.zones, zone)
	}
}

// upstreamQuery builds the query we send: the canonical question, RD, the
// client's CD and DO, EDNS0 with our UDP size, the loop marker and the
// markers carried from forwarders before us. Nothing else of the client's
// OPT (cookies, ECS, padding) goes upstream.
func (f *Forwarder) upstreamQuery(k cacheKey, carried []dns.EDNS0) *dns.Msg {
	// AD set: we want to know whether the upstream validated the data
	// (RFC 6840 §5.7), whatever the client asked; reply() decides per
	// client whether AD goes back, so the cache key need not carry AD.
	b := new(queryBuf)
	m := &b.m
	m.MsgHdr = dns.MsgHdr{Opcode: dns.OpcodeQuery, RecursionDesired: true, AuthenticatedData: true, CheckingDisabled: k.cd}
	b.q[0] = dns.Question{Name: k.name, Qtype: k.qtype, Qclass: k.qclass}
	m.Question = b.q[:]
	// Without carried markers the OPT is one of two built at start: it is
	// only read (packUpstream), never changed.
	b.extra[0] = f.opts[b2i(k.do)]
	if len(carried) > 0 {
		o := f.opt(k.do)
		o.Option = append(o.Option, carried...)
		b.extra[0] = o
	}
	m.Extra = b.extra[:]
	return m
}

// queryBuf co-allocates an upstream query with its question and additional
// arrays.
type queryBuf struct {
	m     dns.Msg
	q     [1]dns.Question
	extra [1]dns.RR
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (f *Forwarder) opt(do bool) *dns.OPT {
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(ednsUDPSize)
	if do {
		o.SetDo()
	}
	o.Option = []dns.EDNS0{&dns.EDNS0_LOCAL{Code: LoopOptionCode, Data: f.nonce[:]}}
	return o
}

// store strips the upstream's OPT (and with it anything echoing our loop
// marker), classifies the reply and caches it when it is cacheable. It
// returns the entry in either case; callers build their replies from it.
func (f *Forwarder) store(k cacheKey, m *dns.Msg) *entry {
	m.Extra = slices.DeleteFunc(m.Extra, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeOPT })
	ttl, staleOK := f.ttl.classify(m)
	e := &entry{msg: m, stored: f.now(), ttl: ttl, stale: staleOK}
	if ttl <= 0 || f.cache == nil {
		return e
	}
	e.wire = packWire(m)
	if m.Rcode == dns.RcodeServerFailure {
		// Keep a servable answer, fresh (a failed prefetch) or stale,
		// rather than replace it with a failure.
		if old, _ := f.cache.get(k, e.stored); old != nil && old.msg.Rcode != dns.RcodeServerFailure {
			return e
		}
	}
	f.cache.add(k, e)
	return e
}

// replyBuf co-allocates a reply with its one-question array: one allocation
// instead of two on the hit path.
type replyBuf struct {
	m dns.Msg
	q [1]dns.Question
}

// reply builds the caller-owned answer to req from e: the header copied from
// the cached message, the client's Id and question, and a copy of every RR
// with its TTL reduced by the time elapsed since e was stored (or set to 30
// for a stale answer).
func (f *Forwarder) reply(req *dns.Msg, e *entry, now time.Time, stale bool) *dns.Msg {
	src := e.msg
	b := new(replyBuf)
	m := &b.m
	m.MsgHdr = src.MsgHdr
	m.Id = req.Id
	m.Response = true
	m.Authoritative = false // we are not the authority for forwarded data
	m.RecursionDesired = req.RecursionDesired
	m.CheckingDisabled = req.CheckingDisabled
	// RFC 6840 §5.7: AD only to a client that asked with DO or AD.
	m.AuthenticatedData = src.AuthenticatedData && wantsAD(req)
	m.Compress = true
	b.q[0] = req.Question[0]
	m.Question = b.q[:]

	var elapsed uint32
	if d := now.Sub(e.stored); d > 0 {
		elapsed = uint32(d / time.Second)
	}
	na, nn, ne := len(src.Answer), len(src.Ns), len(src.Extra)
	if na+nn+ne == 0 {
		return m
	}
	// One backing array for all three sections; the full slice expressions
	// keep a caller's append to one section from overwriting the next.
	rrs := make([]dns.RR, na+nn+ne)
	for i, rr := range src.Answer {
		rrs[i] = agedCopy(rr, elapsed, stale)
	}
	for i, rr := range src.Ns {
		rrs[na+i] = agedCopy(rr, elapsed, stale)
	}
	for i, rr := range src.Extra {
		rrs[na+nn+i] = agedCopy(rr, elapsed, stale)
	}
	if na > 0 {
		m.Answer = rrs[:na:na]
	}
	if nn > 0 {
		m.Ns = rrs[na : na+nn : na+nn]
	}
	if ne > 0 {
		m.Extra = rrs[na+nn:]
	}
	return m
}

func agedCopy(rr dns.RR, elapsed uint32, stale bool) dns.RR {
	c := shallowCopy(rr)
	h := c.Header()
	switch {
	case stale:
		h.Ttl = staleAnswerTTL
	case h.Ttl > elapsed:
		h.Ttl -= elapsed
	default:
		h.Ttl = 0
	}
	return c
}

// shallowCopy copies an RR struct without deep-copying its data slices. For
// the common types below that is one allocation instead of dns.Copy's two or
// more; their remaining fields are strings and integers, so the copy is
// independent except for A/AAAA addresses and TXT strings, which are shared
// read-only with the cache.
func shallowCopy(rr dns.RR) dns.RR {
	switch r := rr.(type) {
	case *dns.A:
		c := *r
		return &c
	case *dns.AAAA:
		c := *r
		return &c
	case *dns.CNAME:
		c := *r
		return &c
	case *dns.NS:
		c := *r
		return &c
	case *dns.PTR:
		c := *r
		return &c
	case *dns.MX:
		c := *r
		return &c
	case *dns.SOA:
		c := *r
		return &c
	case *dns.SRV:
		c := *r
		return &c
	case *dns.TXT:
		c := *r
		return &c
	case *dns.RRSIG:
		c := *r
		return &c
	}
	return dns.Copy(rr)
}

// Stats is a snapshot of the forwarder's counters.
type Stats struct {
	CacheHits      uint64 // answered from a fresh entry (Resolve or CacheOnly)
	CacheMisses    uint64
	CacheEvictions uint64 // entries pushed out by the entry or byte bound
	CacheSize      int
	CacheBytes     int64  // estimated heap of the cached entries (see Config.CacheBytes)
	Coalesced      uint64 // misses that joined another query's upstream fetch
	StaleServed    uint64 // RFC 8767 stale answers
	Prefetches     uint64 // background refreshes started
	Overloaded     uint64 // fetches refused by the per-rule bound, or because every upstream was busy
	ZoneLimited    uint64 // fetches refused by FetchesPerZone
	UpstreamBusy   uint64 // upstreams skipped at their in-flight bound
	DownFast       uint64 // fetches failed at once: every upstream of the rule down
	FailCached     uint64 // failed fetches remembered as SERVFAIL for ServFailTTL
	InFlight       int64  // upstream fetches running now
	Upstreams      []UpstreamStats
}

// UpstreamStats counts one upstream address's exchanges.
type UpstreamStats struct {
	Addr       string
	Up         bool
	Fails      int // consecutive failed health probes
	InFlight   int64
	Queries    uint64 // datagrams/messages sent, UDP and TCP, probes included
	TCPQueries uint64 // TCP exchanges (TC retries)
	Timeouts   uint64
	Errors     uint64        // network errors other than timeouts
	SoftErrors uint64        // SERVFAIL or REFUSED answers
	Mismatched uint64        // replies ignored: wrong source, Id or question
	Busy       uint64        // times skipped at its in-flight bound
	Answers    uint64        // exchanges that got a reply
	RTT        time.Duration // summed over those exchanges (mean = RTT/Answers)
}

// Stats returns current counters.
func (f *Forwarder) Stats() Stats {
	s := Stats{
		CacheHits:    f.hits.Load(),
		CacheMisses:  f.misses.Load(),
		Coalesced:    f.coalesced.Load(),
		StaleServed:  f.staleServed.Load(),
		Prefetches:   f.prefetches.Load(),
		Overloaded:   f.overloaded.Load(),
		ZoneLimited:  f.zoneLimited.Load(),
		UpstreamBusy: f.upstreamBusy.Load(),
		DownFast:     f.downFast.Load(),
		FailCached:   f.failCached.Load(),
		InFlight:     f.inflight.Load(),
		Upstreams:    make([]UpstreamStats, 0, len(f.ups)),
	}
	if f.cache != nil {
		s.CacheEvictions = f.cache.evictions.Load()
		s.CacheSize = f.cache.len()
		s.CacheBytes = f.cache.bytes()
	}
	for _, u := range f.ups {
		s.Upstreams = append(s.Upstreams, UpstreamStats{
			Addr: u.addr, Up: !u.down.Load(), Fails: int(u.fails.Load()), InFlight: u.inflight.Load(),
			Queries: u.queries.Load(), TCPQueries: u.tcpQueries.Load(),
			Timeouts: u.timeouts.Load(), Errors: u.errs.Load(),
			SoftErrors: u.softErrs.Load(), Mismatched: u.mismatched.Load(), Busy: u.busy.Load(), Answers: u.answers.Load(), RTT: time.Duration(u.rttNanos.Load()),
		})
	}
	return s
}

// Close stops the health prober and background refreshes, waits for
// in-flight upstream fetches to end and closes pooled TCP connections. Cache
// hits are still answered afterwards; misses get ErrClosed.
func (f *Forwarder) Close() error {
	f.once.Do(func() {
		f.cancel()
		f.flight.close()
		f.wg.Wait()
		for _, u := range f.ups {
			u.close()
		}
	})
	return nil
}

// suspect records a failed exchange with u: it does not count against u's
// health by itself, but asks the health loop to probe u now.
func (f *Forwarder) suspect(u *upstream) {
	if f.maxFails <= 0 {
		return
	}
	u.suspect.Store(true)
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// healthLoop probes suspect and down upstreams with ". NS", at once when a
// query failed and then every interval until a probe succeeds. Only probes
// count towards MaxFails: a domain whose servers time out does not make
// its upstream look down for everything else.
func (f *Forwarder) healthLoop() {
	t := time.NewTicker(f.interval)
	defer t.Stop()
	// A flood of failures must not become a flood of probes: wake-up
	// rounds are at least gap apart; a wake inside the gap is deferred.
	gap := min(f.interval/10, 200*time.Millisecond)
	var last time.Time
	var deferred <-chan time.Time
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
		case <-deferred:
			deferred = nil
		case <-f.wake:
			if wait := gap - time.Since(last); wait > 0 {
				if deferred == nil {
					deferred = time.After(wait)
				}
				continue
			}
		}
		last = time.Now()
		var wg sync.WaitGroup
		for _, u := range f.ups {
			if u.suspect.Load() || u.down.Load() {
				wg.Go(func() { f.probe(u) })
			}
		}
		wg.Wait()
	}
}

func (f *Forwarder) probe(u *upstream) {
	q := f.upstreamQuery(cacheKey{name: ".", qtype: dns.TypeNS, qclass: dns.ClassINET}, nil)
	if _, err := u.exchangeUDP(f.ctx, time.Now().Add(f.timeout), q); err == nil {
		u.success()
	} else if f.ctx.Err() == nil {
		u.probeFailed(f.maxFails, err)
	}
}

// call is one in-flight upstream fetch that identical misses wait on.
type call struct {
	done chan struct{}
	e    *entry
	err  error
}

// flight coalesces identical misses (dnsproxy pending.go): one fetch per key,
// run in its own goroutine so a leader whose client gives up does not cancel
// it for the followers. Keyed by cacheKey, so no key string is built.
type flight struct {
	mu     sync.Mutex
	m      map[cacheKey]*call
	closed bool
	wg     sync.WaitGroup
}

func (g *flight) do(k cacheKey, fn func() (*entry, error)) (c *call, leader bool, err error) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, false, ErrClosed
	}
	if c, ok := g.m[k]; ok {
		g.mu.Unlock()
		return c, false, nil
	}
	c = &call{done: make(chan struct{})}
	g.m[k] = c
	g.wg.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.wg.Done()
		c.e, c.err = fn()
		g.mu.Lock()
		delete(g.m, k)
		g.mu.Unlock()
		close(c.done)
	}()
	return c, true, nil
}

func (g *flight) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}

// localAddrs are our listen addresses; an unspecified IP stands for every
// local address on its port.
type localAddrs struct {
	exact    []netip.AddrPort
	anyPorts []uint16 // ports listened on 0.0.0.0 / ::
	localIPs []netip.Addr
}

func parseLocalAddrs(ss []string) (localAddrs, error) {
	var l localAddrs
	var errs []error
	for _, s := range ss {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			// A bare IP listens on port 53.
			host, port = s, "53"
		}
		var ap netip.AddrPort
		if host == "" {
			ap, err = netip.ParseAddrPort("0.0.0.0:" + port)
		} else {
			ap, err = netip.ParseAddrPort(net.JoinHostPort(host, port))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("local address %q: %w", s, err))
			continue
		}
		a := ap.Addr().Unmap()
		if a.IsUnspecified() {
			l.anyPorts = append(l.anyPorts, ap.Port())
			continue
		}
		l.exact = append(l.exact, netip.AddrPortFrom(a, ap.Port()))
	}
	if len(l.anyPorts) > 0 {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					if ip, ok := netip.AddrFromSlice(n.IP); ok {
						l.localIPs = append(l.localIPs, ip.Unmap())
					}
				}
			}
		}
	}
	return l, errors.Join(errs...)
}

// match reports whether upstream ap is one of our own listeners.
func (l localAddrs) match(ap netip.AddrPort) (string, bool) {
	for _, e := range l.exact {
		if e == ap {
			return e.String(), true
		}
	}
	for _, p := range l.anyPorts {
		if p != ap.Port() {
			continue
		}
		if ap.Addr().IsLoopback() || slices.Contains(l.localIPs, ap.Addr()) {
			return fmt.Sprintf("*:%d", p), true
		}
	}
	return "", false
}

// Inherit copies into f's cache the entries of old's cache that are still
// valid under f's settings, so a reload does not start cold: entries whose
// name is forwarded by a rule of another suffix or with other upstreams are
// dropped, as are remembered failures (a reload is often the fix) and
// entries whose TTLs f's clamps would not have allowed. Call it before f
// serves; it returns how many entries were kept. Entries are copied, never
// shared, and f's bounds apply as they are added.
func (f *Forwarder) Inherit(old *Forwarder) int {
	if f.cache == nil || old == nil || old.cache == nil || old == f {
		return 0
	}
	now := f.now()
	kept := 0
	old.cache.each(func(k cacheKey, e *entry) {
		if e.msg.Rcode == dns.RcodeServerFailure || !sameRoute(old.match(k.name), f.match(k.name)) {
			return
		}
		if !e.fresh(now) && !(e.stale && now.Sub(e.stored) < e.ttl+f.cache.staleTTL) {
			return
		}
		if !f.ttl.holds(e) {
			return
		}
		f.cache.add(k, &entry{msg: e.msg, stored: e.stored, ttl: e.ttl, stale: e.stale, wire: e.wire})
		kept++
	})
	return kept
}

// sameRoute reports whether two rules send a name the same way: the same
// suffix and the same set of upstream addresses.
func sameRoute(a, b *rule) bool {
	if a == nil || b == nil || a.suffix != b.suffix || len(a.pool.ups) != len(b.pool.ups) {
		return false
	}
	for _, u := range a.pool.ups {
		if !slices.ContainsFunc(b.pool.ups, func(v *upstream) bool { return v.addr == u.addr }) {
			return false
		}
	}
	return true
}
