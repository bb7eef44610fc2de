package forwarder

import (
	"context"
	"encoding/binary"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// A cache hit on the server's UDP fast path is answered from the entry's
// packed form: the stored reply packed once (compressed, without OPT), plus
// the offsets of its TTL fields. A hit copies the sections' bytes and
// rewrites the TTLs — no dns.Msg, no RR copies, no allocation. Compression
// pointers stay valid because the client's question has the same length as
// the cached one (same name, any case) and sits at the same offset.

// wireForm is an entry's reply in wire form.
type wireForm struct {
	data       []byte   // the whole packed reply
	sections   int      // offset of the answer section in data
	ttls       []uint16 // offsets of every RR's TTL field in data
	an, ns, ar uint16
	flags      uint16 // rcode and AD as the upstream sent them
}

// packWire packs m for fast hits; nil when m cannot take that path.
func packWire(m *dns.Msg) *wireForm {
	if len(m.Question) != 1 || m.Rcode > 0xF {
		return nil
	}
	c := *m
	c.Id = 0
	c.Compress = true
	data, err := c.Pack()
	if err != nil || len(data) > dns.MaxMsgSize {
		return nil
	}
	w := &wireForm{data: data}
	off := 12
	off, ok := skipName(data, off)
	if !ok || off+4 > len(data) {
		return nil
	}
	off += 4
	w.sections = off
	w.an, w.ns, w.ar = uint16(len(m.Answer)), uint16(len(m.Ns)), uint16(len(m.Extra))
	for i := 0; i < len(m.Answer)+len(m.Ns)+len(m.Extra); i++ {
		if off, ok = skipName(data, off); !ok || off+10 > len(data) {
			return nil
		}
		if binary.BigEndian.Uint16(data[off:]) == dns.TypeOPT {
			return nil // never cached with an OPT: do not guess
		}
		w.ttls = append(w.ttls, uint16(off+4))
		off += 10 + int(binary.BigEndian.Uint16(data[off+8:]))
	}
	if off != len(data) {
		return nil
	}
	w.flags = uint16(m.Rcode)
	if m.AuthenticatedData {
		w.flags |= flagAD
	}
	return w
}

// flagAD is the AD bit in the second header word.
const flagAD = 1 << 5

// skipName returns the offset after the (possibly compressed) name at off.
func skipName(b []byte, off int) (int, bool) {
	for off < len(b) {
		l := int(b[off])
		switch {
		case l == 0:
			return off + 1, true
		case l&0xC0 == 0xC0:
			return off + 2, off+2 <= len(b)
		case l&0xC0 != 0:
			return 0, false
		}
		off += 1 + l
	}
	return 0, false
}

// AppendCached answers a forwarded query from a fresh cache entry in wire
// form: it appends the answer, authority and additional sections to out,
// which must already hold the reply's header and the client's question
// (12 + question bytes), and returns the counts and the header bits to set
// (rcode, AD; AD only when do is set). qname must be canonical; it is not retained. ok is false on
// a miss or when the entry has no wire form; the caller then uses Resolve.
func (f *Forwarder) AppendCached(out []byte, qname string, qtype, qclass uint16, do, cd bool) (res []byte, an, ns, ar, flags uint16, ok bool) {
	if f.cache == nil {
		return out, 0, 0, 0, 0, false
	}
	k := cacheKey{name: qname, qtype: qtype, qclass: qclass, do: do, cd: cd}
	now := f.now()
	e, fresh := f.cache.get(k, now)
	if !fresh || e.wire == nil || len(out) != e.wire.sections {
		return out, 0, 0, 0, 0, false
	}
	if e.wire.flags&flagAD != 0 && !do {
		// RFC 6840 §5.7: AD goes only to a client that set DO or AD; the
		// query's AD bit is not passed in here, so Resolve decides.
		return out, 0, 0, 0, 0, false
	}
	f.hits.Add(1)
	f.maybePrefetch(k, e, now)
	return e.appendWire(out, now)
}

// appendWire appends e's sections in wire form to out, every TTL reduced by
// the whole seconds elapsed since e was stored.
func (e *entry) appendWire(out []byte, now time.Time) (res []byte, an, ns, ar, flags uint16, ok bool) {
	var elapsed uint32
	if d := now.Sub(e.stored); d > 0 {
		elapsed = uint32(d / time.Second)
	}
	w := e.wire
	out = append(out, w.data[w.sections:]...)
	for _, o := range w.ttls {
		ttl := binary.BigEndian.Uint32(out[o:])
		if ttl > elapsed {
			ttl -= elapsed
		} else {
			ttl = 0
		}
		binary.BigEndian.PutUint32(out[o:], ttl)
	}
	return out, w.an, w.ns, w.ar, w.flags, true
}

// A cache miss of the server's UDP fast path need not go through the full
// handler either: the server starts the fetch with BeginMiss (Resolve's
// first half, without a dns.Msg), waits on Done, and answers from the
// fetched entry's wire form with AppendMiss. When it cannot — the reply is
// not a plain answer (an error, a stale fallback, no wire form), or does
// not fit — it hands the Miss to the full handler, whose ResolveMiss
// finishes exactly as Resolve would have (Resolve's second half), so no
// query is fetched twice and the counters count each once.

// Miss is a fast-path cache miss whose fetch has started (or been joined).
// The server holds it as an opaque token (it reaches the forwarder only
// through interfaces of its own).
type Miss struct {
	f   *Forwarder
	k   cacheKey
	old *entry // a stale entry to fall back on, or nil
	c   *call
}

// BeginMiss does for a fast-path query what Resolve does before it waits:
// the cache lookup, the rule, the coalesced fetch and the counters. The
// query must carry no loop marker and its qname must be canonical (it is
// copied). It returns the Miss as token and a channel closed when the
// fetch has ended; a nil token, having counted nothing, when Resolve must
// run whole instead: the entry is fresh or being served stale, no rule
// matches, the cache is off, or the forwarder is closed.
func (f *Forwarder) BeginMiss(qname string, qtype, qclass uint16, do, cd bool) (token any, done <-chan struct{}) {
	if f.cache == nil {
		return nil, nil
	}
	k := cacheKey{name: qname, qtype: qtype, qclass: qclass, do: do, cd: cd}
	now := f.now()
	old, fresh := f.cache.get(k, now)
	if fresh || (old != nil && now.UnixNano() < old.retryAt.Load()) {
		return nil, nil
	}
	r := f.match(k.name)
	if r == nil {
		return nil, nil
	}
	k = cloneKey(k) // qname may borrow the caller's buffer
	c, leader, err := f.flight.do(k, func() (*entry, error) { return f.fetch(k, r, nil) })
	if err != nil {
		return nil, nil
	}
	f.misses.Add(1)
	if !leader {
		f.coalesced.Add(1)
	}
	return &Miss{f: f, k: k, old: old, c: c}, c.done
}

// AppendMiss answers the Miss token of BeginMiss, once its fetch has ended,
// as AppendCached answers a hit: out holds the reply's header and the
// client's question. ok is false unless the fetch got a plain answer (no
// error, not SERVFAIL) with a wire form that an AD rule does not keep from
// this client; the caller then hands the token to the full handler
// (ResolveMiss).
func (f *Forwarder) AppendMiss(out []byte, token any, do bool) (res []byte, an, ns, ar, flags uint16, ok bool) {
	m, _ := token.(*Miss)
	if m == nil {
		return out, 0, 0, 0, 0, false
	}
	e := m.c.e
	if m.f != f || m.c.err != nil || e.msg.Rcode == dns.RcodeServerFailure || e.wire == nil ||
		len(out) != e.wire.sections || (e.wire.flags&flagAD != 0 && !do) {
		return out, 0, 0, 0, 0, false
	}
	return e.appendWire(out, f.now())
}

// ResolveMiss is Resolve for req, whose fetch BeginMiss started (token):
// it waits for that fetch instead of looking up and fetching again. A nil
// token, or one for another question or forwarder, means Resolve.
func (f *Forwarder) ResolveMiss(ctx context.Context, req *dns.Msg, token any) (*dns.Msg, error) {
	m, _ := token.(*Miss)
	if m == nil || m.f != f || len(req.Question) != 1 || f.IsLoop(req) || len(foreignMarkers(req)) > 0 || key(req) != m.k {
		return f.Resolve(ctx, req)
	}
	return f.await(ctx, req, m.k, m.old, m.c)
}

// cloneKey returns k with its own copy of the name, for keys that outlive a
// fast-path call.
func cloneKey(k cacheKey) cacheKey {
	k.name = strings.Clone(k.name)
	return k
}
