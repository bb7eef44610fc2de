package server

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/miekg/dns"

	"hybridns/zonestore"
)

// The UDP path is ours, not miekg's: readers pull batches of datagrams with
// recvmmsg, answer what they can straight from the zones' precomputed wire
// data (the fast path: authoritative answers that fit, no dns.Msg, no
// goroutine, no allocation but the source address), send the replies with
// one sendmmsg, and hand everything else — forwarding, malformed or unusual
// queries, replies that need truncation — to the full dns.Msg handler in its
// own goroutine so a slow upstream never stalls a reader.

const (
	udpBatch   = 32   // datagrams per recvmmsg/sendmmsg
	udpReadBuf = 4096 // queries are small; a longer one is cut and gets FORMERR
)

type udpListener struct {
	s       *Server
	conn    *net.UDPConn
	readers sync.WaitGroup
	slow    sync.WaitGroup // full-handler goroutines in flight
	closing atomic.Bool
	inSlow  atomic.Int64
	sys     udpSys // the platform's batch I/O
}

func (l *udpListener) start() {
	n := max(runtime.GOMAXPROCS(0), 1)
	for range n {
		l.readers.Add(1)
		go l.read()
	}
}

// shutdown stops the readers, waits for handlers in flight to reply, and
// closes the socket.
func (l *udpListener) shutdown(deadline <-chan struct{}) error {
	l.closing.Store(true)
	l.conn.SetReadDeadline(time.Unix(1, 0))
	// Readers always finish before the socket closes (they notice closing
	// within the receive timeout): on Linux they use the descriptor number
	// itself, which a close would hand to the next socket opened.
	l.readers.Wait()
	done := make(chan struct{})
	go func() { l.slow.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-deadline:
		err = errors.New("udp handlers still running")
	}
	l.conn.Close()
	return err
}

// maxSlow bounds full-handler goroutines in flight per listener; beyond it
// datagrams are dropped (and counted) rather than piling up goroutines
// behind a slow upstream.
const maxSlow = 4096

// goSlow hands a datagram to the full handler in its own goroutine.
func (l *udpListener) goSlow(pkt []byte, addr *net.UDPAddr) {
	l.goServe(pkt, func(cp []byte) { l.serveSlow(cp, addr, nil) })
}

// goMiss hands a forwarded query that missed the cache to serveMiss in its
// own goroutine, counted and bounded with the full handler's.
func (l *udpListener) goMiss(pkt []byte, ip netip.Addr, addr *net.UDPAddr, arrived time.Time) {
	l.goServe(pkt, func(cp []byte) { l.serveMiss(cp, ip, addr, arrived) })
}

func (l *udpListener) goServe(pkt []byte, serve func(cp []byte)) {
	if l.inSlow.Add(1) > maxSlow {
		l.inSlow.Add(-1)
		l.s.stats.SlowDropped.Add(1)
		return
	}
	l.slow.Add(1)
	cp := append([]byte(nil), pkt...) // now: the reader reuses pkt's buffer for the next batch
	go func() {
		defer l.inSlow.Add(-1)
		serve(cp)
	}()
}

// missBuf is a miss goroutine's reply buffer and scratch space.
type missBuf struct {
	out     []byte
	scratch [512]byte
}

var missBufPool = sync.Pool{New: func() any { return new(missBuf) }}

// serveMiss answers a cache miss without the full handler: fastUDPMiss
// runs the fast path again, which this time starts (or joins) the upstream
// fetch, waits for it and answers from the fetched entry's wire form, with
// the fast path's checks, counters, rate limit and query log. Whatever it
// cannot answer goes on to the full handler in this goroutine, with the
// fetch it started.
func (l *udpListener) serveMiss(pkt []byte, ip netip.Addr, addr *net.UDPAddr, arrived time.Time) {
	b := missBufPool.Get().(*missBuf)
	defer missBufPool.Put(b)
	if cap(b.out) < l.s.udpSize+64 {
		b.out = make([]byte, 0, l.s.udpSize+64)
	}
	mc := &missState{deadline: arrived.Add(l.s.cfg.QueryTimeout)}
	resp, act := l.s.fastUDPMiss(pkt, ip, b.out[:0], &b.scratch, arrived, mc)
	switch act {
	case fastReply:
		// Sent before Done: shutdown closes the socket only after Wait.
		if err := l.sendSlow(resp, addr); err != nil {
			l.s.stats.WriteErrors.Add(1)
		}
		l.slow.Done()
	case fastDrop:
		l.slow.Done()
	default:
		l.serveSlow(pkt, addr, mc)
	}
}

// serveSlow runs one datagram through checkQuery — the parser verdict TCP
// gets too — and the full handler. A panic is recovered: counted, logged,
// answered SERVFAIL. mc, if not nil, carries a fetch serveMiss started.
func (l *udpListener) serveSlow(pkt []byte, addr *net.UDPAddr, mc *missState) {
	defer l.slow.Done()
	w := &udpWriter{l: l, addr: addr, miss: mc}
	defer func() {
		if p := recover(); p != nil {
			l.s.panicked(p, "udp slow path")
			if b := l.s.packetReply(pkt, dns.RcodeServerFailure); b != nil {
				w.Write(b)
			}
		}
	}()
	req, rc := checkQuery(pkt)
	switch rc {
	case rcodeAccept:
		if t := req.IsTsig(); t != nil {
			// What miekg's server does for TCP: verify over the raw bytes.
			w.tsigStatus = dns.TsigVerifyWithProvider(pkt, tsigProvider{l.s}, "", false)
			w.requestMAC = t.MAC
		}
		l.s.ServeDNS(w, req)
	case rcodeDrop:
	default:
		l.s.writeError(w, req, rc)
	}
}

// udpWriter is the dns.ResponseWriter of one slow-path datagram.
type udpWriter struct {
	l          *udpListener
	addr       *net.UDPAddr
	tsigStatus error
	requestMAC string
	miss       *missState // a fetch started for this query (serveMiss), or nil
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.l.conn.LocalAddr() }
func (w *udpWriter) RemoteAddr() net.Addr { return w.addr }
func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	if m.IsTsig() != nil {
		b, _, err := dns.TsigGenerateWithProvider(m, tsigProvider{w.l.s}, w.requestMAC, false)
		if err != nil {
			return err
		}
		return w.l.sendSlow(b, w.addr)
	}
	b, err := m.Pack()
	if err != nil {
		return err
	}
	return w.l.sendSlow(b, w.addr)
}
func (w *udpWriter) Write(b []byte) (int, error) {
	if err := w.l.sendSlow(b, w.addr); err != nil {
		return 0, err
	}
	return len(b), nil
}
func (w *udpWriter) Close() error        { return nil }
func (w *udpWriter) TsigStatus() error   { return w.tsigStatus }
func (w *udpWriter) TsigTimersOnly(bool) {}
func (w *udpWriter) Hijack()             {}

type fastAction uint8

const (
	fastReply fastAction = iota // resp is the complete reply
	fastSlow                    // hand the datagram to the full handler
	fastDrop                    // send nothing
	fastMiss                    // a cache miss: hand the datagram to serveMiss
)

// fastUDP answers pkt from the zones' wire data when it is an ordinary
// authoritative query whose reply fits; otherwise it says which other way
// to go. It must answer exactly as the full handler would (the tests
// compare the two on a corpus and under fuzzing).
//
// A panic below is recovered and the datagram handed to the slow path,
// which answers it (SERVFAIL if it panics too).
func (s *Server) fastUDP(pkt []byte, ip netip.Addr, out []byte, scratch *[512]byte, arrived time.Time) (resp []byte, act fastAction) {
	return s.fastUDPMiss(pkt, ip, out, scratch, arrived, nil)
}

// fastUDPMiss is fastUDP; with mc non-nil it runs in a miss goroutine
// (serveMiss) and may wait there for the upstream fetch of a cache miss.
func (s *Server) fastUDPMiss(pkt []byte, ip netip.Addr, out []byte, scratch *[512]byte, arrived time.Time, mc *missState) (resp []byte, act fastAction) {
	defer func() {
		if p := recover(); p != nil {
			s.panicked(p, "udp fast path")
			resp, act = nil, fastSlow
		}
	}()
	resp, act = s.fastAnswer(pkt, ip, out, scratch, arrived, mc, false)
	if act != fastReply || s.rrl == nil {
		return resp, act
	}
	switch s.rrl.Check(ip, RRLKindOf(int(resp[3]&0xF)), arrived) {
	case RRLDrop:
		s.stats.RRLLimited.Add(1)
		return nil, fastDrop
	case RRLSlip:
		// Slip: an empty truncated reply, so a real client retries over
		// TCP while a spoofed victim gets nothing bigger than the query.
		s.stats.RRLLimited.Add(1)
		s.stats.RRLSlipped.Add(1)
		qend := 12
		if o, ok := questionEnd(pkt); ok {
			qend = o
		}
		binary.BigEndian.PutUint16(resp[2:], binary.BigEndian.Uint16(resp[2:])|0x0200)
		for i := 6; i < 12; i++ {
			resp[i] = 0
		}
		resp = resp[:qend]
		if binary.BigEndian.Uint16(pkt[10:]) == 1 && qend+11 <= len(pkt) && pkt[qend] == 0 && binary.BigEndian.Uint16(pkt[qend+1:]) == dns.TypeOPT {
			resp = appendOPT(resp, uint16(s.udpSize), pkt[qend+7]&0x80 != 0)
			binary.BigEndian.PutUint16(resp[10:], 1)
		}
		return resp, fastReply
	}
	return resp, act
}

// questionEnd returns the offset after the first question of pkt.
func questionEnd(pkt []byte) (int, bool) {
	off := 12
	for off < len(pkt) {
		l := int(pkt[off])
		if l == 0 {
			off += 5
			return off, off <= len(pkt)
		}
		if l&0xC0 != 0 {
			return 0, false
		}
		off += 1 + l
	}
	return 0, false
}

// scratch[:256] holds the question name; scratch[256:] is for names read
// from cached answers.
func (s *Server) fastAnswer(pkt []byte, ip netip.Addr, out []byte, scratch *[512]byte, arrived time.Time, mc *missState, tcp bool) ([]byte, fastAction) {
	if len(pkt) < 12 {
		return nil, fastDrop
	}
	flags := binary.BigEndian.Uint16(pkt[2:])
	if flags&0x8000 != 0 {
		return nil, fastDrop // a response: never answer it
	}
	if flags&0x7800 != 0 || binary.BigEndian.Uint16(pkt[4:]) != 1 ||
		binary.BigEndian.Uint16(pkt[6:]) != 0 || binary.BigEndian.Uint16(pkt[8:]) != 0 {
		return nil, fastSlow
	}
	arcount := binary.BigEndian.Uint16(pkt[10:])
	if arcount > 1 {
		return nil, fastSlow
	}
	// The question name, lower-cased into presentation form. Only plain
	// labels take this path: anything miekg would escape goes slow.
	off, n := 12, 0
	for {
		if off >= len(pkt) {
			return nil, fastSlow
		}
		ll := int(pkt[off])
		off++
		if ll == 0 {
			break
		}
		if ll > 63 || off+ll > len(pkt) || n+ll+1 > 254 {
			return nil, fastSlow
		}
		for _, c := range pkt[off : off+ll] {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '*':
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			default:
				return nil, fastSlow
			}
			scratch[n] = c
			n++
		}
		scratch[n] = '.'
		n++
		off += ll
	}
	if n == 0 {
		scratch[0] = '.'
		n = 1
	}
	if off+4 > len(pkt) {
		return nil, fastSlow
	}
	qtype := binary.BigEndian.Uint16(pkt[off:])
	qclass := binary.BigEndian.Uint16(pkt[off+2:])
	qend := off + 4
	if qclass != dns.ClassINET {
		return nil, fastSlow
	}
	switch qtype {
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeMAILA, dns.TypeMAILB, dns.TypeDS:
		return nil, fastSlow
	}
	// EDNS: exactly one well-formed OPT of version 0, or none.
	edns, do, limit, markers := false, false, dns.MinMsgSize, false
	if arcount == 1 {
		o := qend
		if o+11 > len(pkt) || pkt[o] != 0 || binary.BigEndian.Uint16(pkt[o+1:]) != dns.TypeOPT || pkt[o+6] != 0 {
			return nil, fastSlow // not an OPT, or version != 0 (BADVERS)
		}
		if o+11+int(binary.BigEndian.Uint16(pkt[o+9:])) != len(pkt) {
			return nil, fastSlow
		}
		var ok bool
		if ok, markers = fastOptions(pkt[o+11:]); !ok {
			return nil, fastSlow // checkQuery decides (FORMERR when miekg cannot read it)
		}
		if len(s.cfg.NSID) > 0 && hasOption(pkt[o+11:], dns.EDNS0NSID) {
			return nil, fastSlow // the one reply builder adds our NSID
		}
		edns, do = true, pkt[o+7]&0x80 != 0
		limit = min(max(int(binary.BigEndian.Uint16(pkt[o+3:])), dns.MinMsgSize), s.udpSize)
	} else if qend != len(pkt) {
		return nil, fastSlow
	}
	if tcp {
		limit = dns.MaxMsgSize // a TCP reply is bounded by its length field only
	}

	// qname aliases scratch: it must not outlive this call. Find, Match
	// and LookupWire keep no reference to it.
	qname := unsafe.String(&scratch[0], n)
	ip = ip.Unmap()
	pol := s.pol.Load()
	recurse := pol.fwd != nil && contains(pol.recurse, ip)
	snap := s.cfg.Store.Load()
	view, viewIdx := pol.viewOf(ip)
	if pol.queryRefused(ip) {
		return nil, fastSlow // the handler refuses it (allow_query of the view)
	}
	z := pol.zoneFor(snap, view, qname)
	rd := flags&0x0100 != 0
	if z == nil && tcp {
		return nil, fastSlow // forwarding over TCP: the full handler
	}
	if z == nil {
		if recurse {
			resp, act := s.fastCached(pol, snap, view, scratch, pkt, out, qend, flags, qname, qtype, qclass, edns, do, markers, limit, mc)
			if act == fastReply {
				path := pathCache
				if mc != nil && mc.fetched {
					path = pathForwarded // as the full handler counts a miss with RD
				}
				if resp[3]&0xF == dns.RcodeRefused {
					path = pathRefused
				}
				d := time.Since(arrived)
				s.metrics.observe(viewIdx, path, int(resp[3]&0xF), qtype, d)
				s.logQuery(ip, qname, qtype, int(resp[3]&0xF), path, d)
			}
			return resp, act
		}
		s.stats.Queries.Add(1)
		s.stats.Refused.Add(1)
		d := time.Since(arrived)
		s.metrics.observe(viewIdx, pathRefused, dns.RcodeRefused, qtype, d)
		s.logQuery(ip, qname, qtype, dns.RcodeRefused, pathRefused, d)
		return s.fastHeaderOnly(pkt, out, qend, flags, dns.RcodeRefused, edns, do), fastReply
	}
	cl := pol.routing
	cl.Addr = ip
	res := z.LookupWire(qname, qtype, &cl)
	if res.Alias != "" || (res.Chase != "" && recurse && rd) {
		return nil, fastSlow // we finish the chain for this client
	}
	out = append(out, pkt[:qend]...) // header (rewritten below) and question, as sent
	out, an, ns, ar, ok := res.AppendWire(out, qend-4-12)
	if !ok {
		return nil, fastSlow
	}
	if out, ar, ok = s.finishFast(out, ar, edns, do, limit); !ok {
		return nil, fastSlow // the full handler decides what to cut
	}
	rcode, aa, ra := decide(res.Kind, int(an), recurse)
	rflags := uint16(0x8000) | flags&0x0110 | uint16(rcode) // QR, RD and CD as asked
	if aa {
		rflags |= 0x0400
	}
	if ra {
		rflags |= 0x0080
	}
	binary.BigEndian.PutUint16(out[2:], rflags)
	binary.BigEndian.PutUint16(out[6:], an)
	binary.BigEndian.PutUint16(out[8:], ns)
	binary.BigEndian.PutUint16(out[10:], ar)
	s.stats.Queries.Add(1)
	s.stats.Authoritative.Add(1)
	s.stats.FastPath.Add(1)
	d := time.Since(arrived)
	s.metrics.observe(viewIdx, pathAuthoritative, int(rflags&0xF), qtype, d)
	s.logQuery(ip, qname, qtype, int(rflags&0xF), pathAuthoritative, d)
	return out, fastReply
}

// CachedWire is implemented by a forwarder that can answer cache hits in
// wire form (see forwarder.AppendCached).
type CachedWire interface {
	AppendCached(out []byte, qname string, qtype, qclass uint16, do, cd bool) (res []byte, an, ns, ar, flags uint16, ok bool)
}

// loopOptionCode is the EDNS option the forwarder marks its queries with;
// a query carrying one goes to the full handler, which checks whose it is.
const loopOptionCode = 65073

// fastCached answers a forwarded name from the forwarder's cache, exactly as
// forward() would for a hit; anything else goes to the full handler — also
// an answer with a CNAME or DNAME into a zone we serve for this client,
// whose chain forward() cuts and finishes from our own data.
func (s *Server) fastCached(pol *policy, snap *zonestore.Snapshot, view string, scratch *[512]byte, pkt, out []byte, qend int, flags uint16, qname string, qtype, qclass uint16, edns, do, markers bool, limit int, mc *missState) ([]byte, fastAction) {
	if pol.cached == nil || markers {
		return nil, fastSlow
	}
	if _, ok := pol.fwd.Match(qname); !ok {
		return nil, fastSlow // REFUSED: the handler says it
	}
	out = append(out, pkt[:qend]...)
	cd := flags&0x0010 != 0
	out, an, ns, ar, hflags, ok := pol.cached.AppendCached(out, qname, qtype, qclass, do, cd)
	if !ok {
		mw, miss := pol.cached.(MissWire)
		if !miss || flags&0x0100 == 0 {
			return nil, fastSlow // RD=0 gets what the cache holds: the handler says REFUSED
		}
		if mc == nil {
			return nil, fastMiss // the reader hands it to a miss goroutine
		}
		if out, an, ns, ar, hflags, ok = s.awaitMiss(mw, mc, out, qname, qtype, qclass, do, cd); !ok {
			return nil, fastSlow
		}
	}
	if qtype != dns.TypeCNAME && !s.chainStaysOut(pol, snap, view, out, qend, an, (*[256]byte)(scratch[256:])) {
		return nil, fastSlow
	}
	if out, ar, ok = s.finishFast(out, ar, edns, do, limit); !ok {
		return nil, fastSlow
	}
	binary.BigEndian.PutUint16(out[2:], 0x8000|flags&0x0110|0x0080|hflags)
	binary.BigEndian.PutUint16(out[6:], an)
	binary.BigEndian.PutUint16(out[8:], ns)
	binary.BigEndian.PutUint16(out[10:], ar)
	s.stats.Queries.Add(1)
	s.stats.Forwarded.Add(1)
	if mc == nil || !mc.fetched {
		s.stats.FastPath.Add(1)
	}
	return out, fastReply
}

// MissWire is implemented by a forwarder whose cache misses the UDP path
// can fetch and answer without the full handler (see forwarder.BeginMiss).
// The token is the forwarder's, opaque here.
type MissWire interface {
	BeginMiss(qname string, qtype, qclass uint16, do, cd bool) (token any, done <-chan struct{})
	AppendMiss(out []byte, token any, do bool) (res []byte, an, ns, ar, flags uint16, ok bool)
	ResolveMiss(ctx context.Context, req *dns.Msg, token any) (*dns.Msg, error)
}

// missState is what a miss goroutine knows beyond the datagram: the
// fetch it started, if any, which the full handler then finishes (a miss
// is never fetched twice), and the query's deadline.
type missState struct {
	miss     any       // the forwarder's token for the fetch, nil before it
	deadline time.Time // arrival + QueryTimeout, as forward's context
	fetched  bool      // answered from the fetch, not from the cache
}

// awaitMiss starts (or joins) the fetch of a cache miss, waits for it
// until the query's deadline and appends the answer as fastCached appends
// a hit. ok false: the full handler answers, finishing mc.miss if set.
func (s *Server) awaitMiss(mw MissWire, mc *missState, out []byte, qname string, qtype, qclass uint16, do, cd bool) (res []byte, an, ns, ar, flags uint16, ok bool) {
	m, done := mw.BeginMiss(qname, qtype, qclass, do, cd)
	if m == nil {
		return out, 0, 0, 0, 0, false
	}
	mc.miss = m
	t := time.NewTimer(time.Until(mc.deadline))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		return out, 0, 0, 0, 0, false // the handler's Resolve times out as before
	}
	res, an, ns, ar, flags, ok = mw.AppendMiss(out, m, do)
	mc.fetched = ok
	return res, an, ns, ar, flags, ok
}

// chainStaysOut reports whether no CNAME or DNAME among the an answer
// records of msg (from offset off) points into a zone we serve for view.
// False also when the records cannot be read.
func (s *Server) chainStaysOut(pol *policy, snap *zonestore.Snapshot, view string, msg []byte, off int, an uint16, buf *[256]byte) bool {
	for range an {
		end, ok := skipName(msg, off)
		if !ok || end+10 > len(msg) {
			return false
		}
		t := binary.BigEndian.Uint16(msg[end:])
		rdata := end + 10
		off = rdata + int(binary.BigEndian.Uint16(msg[end+8:]))
		if off > len(msg) {
			return false
		}
		if t != dns.TypeCNAME && t != dns.TypeDNAME {
			continue
		}
		n, ok := readName(msg, rdata, buf)
		if !ok {
			return false
		}
		// The name aliases buf; zoneFor keeps no reference to it.
		if pol.zoneFor(snap, view, unsafe.String(&buf[0], n)) != nil {
			return false
		}
	}
	return true
}

// skipName returns the offset after the (possibly compressed) name at off.
func skipName(msg []byte, off int) (int, bool) {
	for off < len(msg) {
		l := int(msg[off])
		switch {
		case l == 0:
			return off + 1, true
		case l&0xC0 == 0xC0:
			return off + 2, off+2 <= len(msg)
		case l&0xC0 != 0:
			return 0, false
		}
		off += 1 + l
	}
	return 0, false
}

// readName decodes the name at off into buf in lower-case presentation
// form, following compression pointers backwards. Names with bytes other
// than letters, digits, '-', '_' and '*' are not read (ok false): the
// caller then leaves the decision to the full handler.
func readName(msg []byte, off int, buf *[256]byte) (int, bool) {
	n := 0
	for hops := 0; hops < 128; hops++ {
		if off >= len(msg) {
			return 0, false
		}
		l := int(msg[off])
		switch {
		case l == 0:
			if n == 0 {
				buf[0] = '.'
				n = 1
			}
			return n, true
		case l&0xC0 == 0xC0:
			if off+1 >= len(msg) {
				return 0, false
			}
			ptr := int(binary.BigEndian.Uint16(msg[off:]) & 0x3FFF)
			if ptr >= off {
				return 0, false
			}
			off = ptr
			continue
		case l&0xC0 != 0:
			return 0, false
		}
		if off+1+l > len(msg) || n+l+1 > 254 {
			return 0, false
		}
		for _, c := range msg[off+1 : off+1+l] {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '*':
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			default:
				return 0, false
			}
			buf[n] = c
			n++
		}
		buf[n] = '.'
		n++
		off += 1 + l
	}
	return 0, false
}

// fastOptions checks the OPT rdata b as miekg's parser will read it: every
// option whole, and no option whose content miekg validates unless we
// check it the same way (client subnet); such queries go to the slow path,
// where checkQuery gives the verdict. markers reports a loop marker.
func fastOptions(b []byte) (ok, markers bool) {
	for len(b) > 0 {
		if len(b) < 4 {
			return false, false
		}
		code := binary.BigEndian.Uint16(b)
		l := 4 + int(binary.BigEndian.Uint16(b[2:]))
		if l > len(b) {
			return false, false
		}
		switch code {
		case loopOptionCode:
			markers = true
		case healthOptionCode:
			return false, false // our health probe: the handler answers it uncounted
		case dns.EDNS0NSID, dns.EDNS0DAU, dns.EDNS0DHU, dns.EDNS0N3U, dns.EDNS0COOKIE, dns.EDNS0PADDING:
			// opaque bytes to miekg
		case dns.EDNS0SUBNET:
			if !subnetOK(b[4:l]) {
				return false, false
			}
		default:
			if code <= dns.EDNS0ZONEVERSION {
				return false, false // a code miekg parses: the slow path looks
			}
		}
		b = b[l:]
	}
	return true, markers
}

// subnetOK mirrors miekg's EDNS0_SUBNET checks (RFC 7871).
func subnetOK(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	source, scope := b[2], b[3]
	switch binary.BigEndian.Uint16(b) {
	case 0:
		return source == 0
	case 1:
		return source <= 32 && scope <= 32
	case 2:
		return source <= 128 && scope <= 128
	}
	return false
}

// finishFast adds our OPT for EDNS clients and checks the reply fits the
// client's buffer; ok false sends the query to the full handler.
func (s *Server) finishFast(out []byte, ar uint16, edns, do bool, limit int) ([]byte, uint16, bool) {
	if edns {
		out = appendOPT(out, uint16(s.udpSize), do)
		ar++
	}
	return out, ar, len(out) <= limit
}

// fastHeaderOnly builds a reply with no records but the OPT.
func (s *Server) fastHeaderOnly(pkt, out []byte, qend int, flags uint16, rcode int, edns, do bool) []byte {
	out = append(out, pkt[:qend]...)
	binary.BigEndian.PutUint16(out[2:], 0x8000|flags&0x0110|uint16(rcode))
	binary.BigEndian.PutUint16(out[6:], 0)
	binary.BigEndian.PutUint16(out[8:], 0)
	binary.BigEndian.PutUint16(out[10:], 0)
	if edns {
		out = appendOPT(out, uint16(s.udpSize), do)
		binary.BigEndian.PutUint16(out[10:], 1)
	}
	return out
}

// appendOPT appends our OPT record: root owner, our buffer size, version 0,
// the DO bit echoed, no options.
func appendOPT(b []byte, size uint16, do bool) []byte {
	var f byte
	if do {
		f = 0x80
	}
	return append(b, 0, 0, 41, byte(size>>8), byte(size), 0, 0, f, 0, 0, 0)
}
