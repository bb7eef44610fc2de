package server

import (
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
	if l.inSlow.Add(1) > maxSlow {
		l.inSlow.Add(-1)
		l.s.stats.SlowDropped.Add(1)
		return
	}
	l.slow.Add(1)
	cp := append([]byte(nil), pkt...) // now: the reader reuses pkt's buffer for the next batch
	go func() {
		defer l.inSlow.Add(-1)
		l.serveSlow(cp, addr)
	}()
}

// serveSlow runs one datagram through the full handler, with the checks
// miekg's server applies before its handler.
func (l *udpListener) serveSlow(pkt []byte, addr *net.UDPAddr) {
	defer l.slow.Done()
	w := &udpWriter{l: l, addr: addr}
	if len(pkt) < 12 {
		return // not even a header: any reply could be used to amplify
	}
	hdr := dns.Header{
		Id:      binary.BigEndian.Uint16(pkt),
		Bits:    binary.BigEndian.Uint16(pkt[2:]),
		Qdcount: binary.BigEndian.Uint16(pkt[4:]),
		Ancount: binary.BigEndian.Uint16(pkt[6:]),
		Nscount: binary.BigEndian.Uint16(pkt[8:]),
		Arcount: binary.BigEndian.Uint16(pkt[10:]),
	}
	reject := func(rcode int) {
		m := new(dns.Msg)
		m.Id = hdr.Id
		m.Response = true
		m.Opcode = int(hdr.Bits>>11) & 0xF
		m.Rcode = rcode
		l.s.stats.FormErr.Add(1)
		w.WriteMsg(m)
	}
	switch acceptQuery(hdr) {
	case dns.MsgIgnore:
		return
	case dns.MsgReject:
		reject(dns.RcodeFormatError)
		return
	case dns.MsgRejectNotImplemented:
		reject(dns.RcodeNotImplemented)
		return
	}
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil {
		reject(dns.RcodeFormatError)
		return
	}
	if t := req.IsTsig(); t != nil {
		// What miekg's server does for TCP: verify over the raw bytes.
		w.tsigStatus = dns.TsigVerifyWithProvider(pkt, tsigProvider{l.s}, "", false)
		w.requestMAC = t.MAC
	}
	l.s.ServeDNS(w, req)
}

// udpWriter is the dns.ResponseWriter of one slow-path datagram.
type udpWriter struct {
	l          *udpListener
	addr       *net.UDPAddr
	tsigStatus error
	requestMAC string
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
)

// fastUDP answers pkt from the zones' wire data when it is an ordinary
// authoritative query whose reply fits; otherwise it says which other way
// to go. It must answer exactly as the full handler would (the tests
// compare the two on a corpus and under fuzzing).
func (s *Server) fastUDP(pkt []byte, ip netip.Addr, out []byte, scratch *[256]byte, arrived time.Time) ([]byte, fastAction) {
	resp, act := s.fastAnswer(pkt, ip, out, scratch, arrived)
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

func (s *Server) fastAnswer(pkt []byte, ip netip.Addr, out []byte, scratch *[256]byte, arrived time.Time) ([]byte, fastAction) {
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
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT, dns.TypeMAILA, dns.TypeMAILB, dns.TypeDS:
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
		edns, do = true, pkt[o+7]&0x80 != 0
		limit = min(max(int(binary.BigEndian.Uint16(pkt[o+3:])), dns.MinMsgSize), s.udpSize)
		markers = hasOption(pkt[o+11:], loopOptionCode)
	} else if qend != len(pkt) {
		return nil, fastSlow
	}

	// qname aliases scratch: it must not outlive this call. Find, Match
	// and LookupWire keep no reference to it.
	qname := unsafe.String(&scratch[0], n)
	ip = ip.Unmap()
	pol := s.pol.Load()
	recurse := pol.fwd != nil && contains(pol.recurse, ip)
	snap := s.cfg.Store.Load()
	view, viewIdx := pol.viewOf(ip)
	z := pol.zoneFor(snap, view, qname)
	rd := flags&0x0100 != 0
	if z == nil {
		if recurse {
			resp, act := s.fastCached(pol.cached, pkt, out, qend, flags, qname, qtype, qclass, edns, do, markers, limit)
			if act == fastReply {
				path := pathCache
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
	rflags := uint16(0x8000) | flags&0x0110 // QR, RD and CD as asked
	if res.Kind != zonestore.Referral || an > 0 {
		rflags |= 0x0400 // AA
	}
	if recurse {
		rflags |= 0x0080 // RA
	}
	if res.Kind == zonestore.NXDomain {
		rflags |= dns.RcodeNameError
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
// forward() would for a hit; anything else goes to the full handler.
func (s *Server) fastCached(cached CachedWire, pkt, out []byte, qend int, flags uint16, qname string, qtype, qclass uint16, edns, do, markers bool, limit int) ([]byte, fastAction) {
	if cached == nil || markers {
		return nil, fastSlow
	}
	out = append(out, pkt[:qend]...)
	out, an, ns, ar, hflags, ok := cached.AppendCached(out, qname, qtype, qclass, do, flags&0x0010 != 0)
	if !ok {
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
	s.stats.FastPath.Add(1)
	return out, fastReply
}

// hasOption reports whether the OPT rdata b holds an option with this code.
func hasOption(b []byte, code uint16) bool {
	for len(b) >= 4 {
		if binary.BigEndian.Uint16(b) == code {
			return true
		}
		l := 4 + int(binary.BigEndian.Uint16(b[2:]))
		if l > len(b) {
			return true // malformed: let the full handler look
		}
		b = b[l:]
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
