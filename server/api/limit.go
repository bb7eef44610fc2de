package api

import (
	"net/netip"
	"sync"
	"time"
)

// authLimiter counts failed authentications per client (an IPv4 address,
// an IPv6 /64) in a leaky bucket: max failures fill it, one leaks out every
// window/max; a full bucket refuses every request of that client, good
// credentials included, so guessing costs a minute per handful of tries.
type authLimiter struct {
	mu    sync.Mutex
	max   float64
	every time.Duration
	now   func() time.Time
	by    map[netip.Prefix]*bucket
}

type bucket struct {
	level float64
	at    time.Time
}

func newAuthLimiter(max int, window time.Duration) *authLimiter {
	return &authLimiter{max: float64(max), every: window / time.Duration(max), now: time.Now, by: map[netip.Prefix]*bucket{}}
}

func clientKey(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// leak brings b up to now; the caller holds mu.
func (l *authLimiter) leak(b *bucket, now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.level -= float64(d) / float64(l.every)
		if b.level < 0 {
			b.level = 0
		}
		b.at = now
	}
}

func (l *authLimiter) blocked(a netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.by[clientKey(a)]
	if b == nil {
		return false
	}
	l.leak(b, l.now())
	return b.level > l.max-1
}

func (l *authLimiter) fail(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	k := clientKey(a)
	b := l.by[k]
	if b == nil {
		if len(l.by) > 100000 {
			l.gc(now)
		}
		b = &bucket{at: now}
		l.by[k] = b
	}
	l.leak(b, now)
	b.level++
}

// gc drops empty buckets so a scan from many addresses cannot grow the map
// for ever; the caller holds mu.
func (l *authLimiter) gc(now time.Time) {
	for k, b := range l.by {
		l.leak(b, now)
		if b.level == 0 {
			delete(l.by, k)
		}
	}
}
