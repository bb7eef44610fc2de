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

// blobRef is a run of packed records with uncompressed owners, in the
// zone's wire arena. When every record's owner is the same ancestor of any
// query name that can produce the blob (the zone apex for a negative
// answer's SOA, the cut for a referral's NS), suffixLen is that owner's wire
// length, and AppendWire compresses it into a pointer into the question.
// The zero value holds no records.
type blobRef struct {
	off, end  uint32
	count     uint16
	suffixLen uint16
}

func (z *Zone) blobData(r blobRef) []byte { return z.wire[r.off:r.end] }

// wireRefs points at the precomputed wire data behind a Result.
type wireRefs struct {
	z     *Zone
	ans   [maxWireSets]int32 // indexes in z.sets
	nans  int8               // RRsets in ans; -1: the answer has no wire form
	an    int32              // answer records (in the Result's Answer when it is filled)
	ns    blobRef
	extra blobRef
}

// counted returns w with an answer records.
func (w wireRefs) counted(an int32) wireRefs {
	w.an = an
	return w
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
		if w.z.owner(&w.z.sets[w.ans[i]]) == name {
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
	z := r.wire.z
	if z == nil {
		return b, 0, 0, 0, r.wire.nans == 0 // nothing to write
	}
	start := len(b)
	for i := 0; i < int(r.wire.nans); i++ {
		set := &z.sets[r.wire.ans[i]]
		an += uint16(set.count)
		data := z.wire[set.off:set.end]
		if i == 0 {
			b = append(b, data...)
			continue
		}
		// Later links of a chain: the owner is the link's own name.
		owner := &z.nodes[set.owner]
		if owner.ext < 0 || z.nodeExt[owner.ext].wname.end == 0 {
			return b[:start], 0, 0, 0, false // not a CNAME target: cannot happen
		}
		wname := z.blobData(z.nodeExt[owner.ext].wname)
		for off := 0; off < len(data); {
			end := off + 12 + int(binary.BigEndian.Uint16(data[off+10:]))
			b = append(b, wname...)
			b = append(b, data[off+2:end]...)
			off = end
		}
	}
	if r.wire.ns.count > 0 {
		if r.Kind == Referral && r.wire.nans > 0 {
			// A CNAME led into the delegation: the cut is not an
			// ancestor of the question, nothing to point at.
			qnameLen = 0
		}
		b = r.wire.ns.appendTo(b, z.wire, qnameLen)
		ns = r.wire.ns.count
	}
	if r.wire.extra.count > 0 {
		b = append(b, z.blobData(r.wire.extra)...)
		ar = r.wire.extra.count
	}
	return b, an, ns, ar, true
}

// appendTo appends the blob's records, owners compressed into a pointer to
// where that owner's name sits inside the question when it is a suffix of it.
func (bl blobRef) appendTo(b, arena []byte, qnameLen int) []byte {
	data := arena[bl.off:bl.end]
	suffixLen := int(bl.suffixLen)
	if suffixLen == 0 || suffixLen > qnameLen {
		return append(b, data...)
	}
	ptr := 12 + qnameLen - suffixLen
	if suffixLen == 1 || ptr > 0x3FFF {
		return append(b, data...) // the root is one byte already
	}
	for off := 0; off < len(data); {
		end := off + suffixLen + 10 + int(binary.BigEndian.Uint16(data[off+suffixLen+8:]))
		b = append(b, 0xC0|byte(ptr>>8), byte(ptr))
		b = append(b, data[off+suffixLen:end]...)
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

func wireLen(name string, buf []byte) (uint16, error) {
	w, err := packName(name, buf)
	return uint16(len(w)), err
}

// appendBlob appends rrs packed with uncompressed owners.
func appendBlob(out []byte, rrs []dns.RR, buf []byte) ([]byte, error) {
	for _, rr := range rrs {
		n, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			return nil, fmt.Errorf("pack %s: %w", rr.Header().Name, err)
		}
		out = append(out, buf[:n]...)
	}
	return out, nil
}
