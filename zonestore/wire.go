package zonestore

import (
	"encoding/binary"
	"fmt"

	"github.com/miekg/dns"
)

// The wire form of a zone's records is computed once at build time, so the
// server's fast path can answer most queries by copying bytes: no dns.Msg,
// no name compression work, no allocation. Names inside rdata are written
// uncompressed (always legal); an answer's first owner is a pointer to the
// question, which also gives the client back its own spelling (0x20).

// maxWireSets bounds the RRsets of an answer expressible in wire form (a
// CNAME chain of up to maxWireSets-1 links); longer answers use dns.Msg.
const maxWireSets = 6

// blob is a run of packed records with uncompressed owners. When every
// record's owner is the same ancestor of any query name that can produce
// the blob (the zone apex for a negative answer's SOA, the cut for a
// referral's NS), suffixLen is that owner's wire length, and AppendWire
// compresses it into a pointer into the question.
type blob struct {
	data      []byte
	count     uint16
	suffixLen int
}

// wireRefs points at the precomputed wire data behind a Result.
type wireRefs struct {
	ans   [maxWireSets]*rrset
	nans  int8 // RRsets in ans; -1: the answer has no wire form
	ns    *blob
	extra *blob
}

func (w *wireRefs) add(next wireRefs) {
	if w.nans < 0 || next.nans < 0 || int(w.nans)+int(next.nans) > maxWireSets {
		w.nans = -1
		return
	}
	copy(w.ans[w.nans:], next.ans[:next.nans])
	w.nans += next.nans
}

func (w *wireRefs) seen(name string) bool {
	for i := 0; i < int(w.nans); i++ {
		if w.ans[i].owner.name == name {
			return true
		}
	}
	return false
}

// AppendWire appends the answer, authority and additional sections of r to
// b in wire form and returns their record counts. The message's question
// must start at offset 12 (it always does: one question after the header).
// ok is false when r has no precomputed wire form (ANY, long chains,
// wildcard links inside a chain); then the caller packs r's record slices.
// qnameLen is the wire length of the question name.
func (r *Result) AppendWire(b []byte, qnameLen int) (out []byte, an, ns, ar uint16, ok bool) {
	if r.wire.nans < 0 {
		return b, 0, 0, 0, false
	}
	for i := 0; i < int(r.wire.nans); i++ {
		set := r.wire.ans[i]
		an += uint16(len(set.rrs))
		if i == 0 {
			b = append(b, set.wire...)
			continue
		}
		// Later links of a chain: the owner is the link's own name.
		for off := 0; off < len(set.wire); {
			end := off + 12 + int(binary.BigEndian.Uint16(set.wire[off+10:]))
			b = append(b, set.owner.wname...)
			b = append(b, set.wire[off+2:end]...)
			off = end
		}
	}
	if r.wire.ns != nil {
		if r.Kind == Referral && r.wire.nans > 0 {
			// A CNAME led into the delegation: the cut is not an
			// ancestor of the question, nothing to point at.
			qnameLen = 0
		}
		b = r.wire.ns.appendTo(b, qnameLen)
		ns = r.wire.ns.count
	}
	if r.wire.extra != nil {
		b = append(b, r.wire.extra.data...)
		ar = r.wire.extra.count
	}
	return b, an, ns, ar, true
}

// appendTo appends the blob's records, owners compressed into a pointer to
// where that owner's name sits inside the question when it is a suffix of it.
func (bl *blob) appendTo(b []byte, qnameLen int) []byte {
	if bl.suffixLen == 0 || bl.suffixLen > qnameLen {
		return append(b, bl.data...)
	}
	ptr := 12 + qnameLen - bl.suffixLen
	if bl.suffixLen == 1 || ptr > 0x3FFF {
		return append(b, bl.data...) // the root is one byte already
	}
	for off := 0; off < len(bl.data); {
		end := off + bl.suffixLen + 10 + int(binary.BigEndian.Uint16(bl.data[off+bl.suffixLen+8:]))
		b = append(b, 0xC0|byte(ptr>>8), byte(ptr))
		b = append(b, bl.data[off+bl.suffixLen:end]...)
		off = end
	}
	return b
}

// packName returns name in uncompressed wire form.
func packName(name string, buf []byte) ([]byte, error) {
	n, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("pack name %s: %w", name, err)
	}
	return append([]byte(nil), buf[:n]...), nil
}

func wireLen(name string, buf []byte) (int, error) {
	w, err := packName(name, buf)
	return len(w), err
}

// packBlob packs rrs with uncompressed owners.
func packBlob(rrs []dns.RR, buf []byte) (*blob, error) {
	if len(rrs) == 0 {
		return nil, nil
	}
	var out []byte
	for _, rr := range rrs {
		n, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			return nil, fmt.Errorf("pack %s: %w", rr.Header().Name, err)
		}
		out = append(out, buf[:n]...)
	}
	return &blob{data: out[:len(out):len(out)], count: uint16(len(rrs))}, nil
}

// packPointerSet packs rrs with each owner replaced by a pointer to offset
// 12, where the question name starts.
func packPointerSet(rrs []dns.RR, ownerLen int, buf []byte) ([]byte, error) {
	var out []byte
	for _, rr := range rrs {
		n, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			return nil, fmt.Errorf("pack %s: %w", rr.Header().Name, err)
		}
		out = append(out, 0xC0, 12)
		out = append(out, buf[ownerLen:n]...)
	}
	return out[:len(out):len(out)], nil
}

// buildWire precomputes the wire forms of every node of z.
func (z *Zone) buildWire() error {
	var err error
	buf := make([]byte, dns.MaxMsgSize) // scratch, reused for every record
	if z.negWire, err = packBlob(z.negSOA, buf); err != nil {
		return err
	}
	if z.negWire.suffixLen, err = wireLen(z.origin, buf); err != nil {
		return err
	}
	for _, n := range z.nodes {
		if n.wname, err = packName(n.name, buf); err != nil {
			return err
		}
		for i := range n.rrsets {
			set := &n.rrsets[i]
			set.owner = n
			if set.wire, err = packPointerSet(set.rrs, len(n.wname), buf); err != nil {
				return err
			}
			if set.extraWire, err = packBlob(set.extra, buf); err != nil {
				return err
			}
			for _, v := range set.variants {
				v.set.owner = n
				if v.set.wire, err = packPointerSet(v.set.rrs, len(n.wname), buf); err != nil {
					return err
				}
			}
		}
		if n.cut == n {
			if n.refNSWire, err = packBlob(n.refNS, buf); err != nil {
				return err
			}
			n.refNSWire.suffixLen = len(n.wname)
			if n.refGlueWire, err = packBlob(n.refGlue, buf); err != nil {
				return err
			}
		}
	}
	return nil
}
