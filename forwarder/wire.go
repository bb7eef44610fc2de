package forwarder

import (
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

// cloneKey returns k with its own copy of the name, for keys that outlive a
// fast-path call.
func cloneKey(k cacheKey) cacheKey {
	k.name = strings.Clone(k.name)
	return k
}
