package forwarder

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Upstream UDP transport. Each upstream keeps a few long-lived connected
// UDP sockets instead of opening, connecting and closing one per query
// (which cost more than half of a cache miss: socket, connect, epoll
// registration and close are four system calls and a netpoller round trip
// each). A reader goroutine per socket hands every reply to the query it
// answers, matched by Id and question; anything else is dropped and counted
// (UpstreamStats.Mismatched).
//
// Off-path spoofing resistance (RFC 5452) is the same as with a fresh
// socket per query. An attacker who cannot see our traffic must guess, for
// one spoofed datagram to be accepted:
//
//   - the source port: every socket is bound by the kernel to a random port
//     of its ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by
//     default: about 28,000 ports, ~14.8 bits), and the connected socket
//     accepts datagrams only from the upstream's address and port;
//   - the Id: 16 bits, drawn for every query from math/rand/v2's generator
//     (ChaCha8, seeded by the runtime from the operating system's random
//     source) and never reused among a socket's outstanding queries;
//   - the question (name, type, class) of the outstanding query with that Id.
//
// So with Q queries outstanding to an upstream, a spoofed datagram with a
// guessed port and Id hits one of them with probability at most
// Q / (ports × 65536) — as before, where the Q queries sat on Q sockets:
// the Q queries are now spread over udpSockets ports instead of Q ports,
// udpSockets/ports chance to hit a port times (Q/udpSockets)/65536 to hit an
// Id on it. Sockets are rotated — replaced by a fresh one with a new random
// port after udpRotateQueries queries or udpRotateAge, whichever comes
// first — so a port that somehow leaked is of use to an attacker only
// briefly. A TC reply still sends the query to TCP (exchange).
const (
	udpSockets       = 4    // per upstream; a query picks one at random
	udpRotateQueries = 1024 // queries sent on a socket before it is replaced
	udpRotateAge     = 10 * time.Second
	// udpMaxOutstanding bounds a socket's outstanding queries well below
	// the 65,536 Ids, so finding a free Id stays cheap.
	udpMaxOutstanding = 16384
)

var errUDPBusy = errors.New("too many outstanding udp queries")

// udpSock is one connected socket with the queries outstanding on it. Its
// fields are guarded by the upstream's umu.
type udpSock struct {
	conn    *net.UDPConn
	born    time.Time
	sent    int
	wait    map[uint16]*udpCall
	retired bool // takes no new queries; closed once wait is empty
}

// udpCall is one outstanding query. Pooled: a call is reused only after it
// has left its socket's wait map and its channel is empty.
type udpCall struct {
	name          string // canonical question, for matching the reply
	qtype, qclass uint16
	ch            chan udpResult // capacity 1: the reader never blocks
	timer         *time.Timer    // the attempt's deadline; stopped when pooled
}

type udpResult struct {
	m   *dns.Msg
	err error
}

var udpCallPool = sync.Pool{New: func() any { return &udpCall{ch: make(chan udpResult, 1)} }}

var queryBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// exchangeUDP sends q (whose Id it sets) on one of u's sockets and waits for
// the matching reply, the deadline dl, ctx's end, or a socket error. The
// deadline is a timer kept with the pooled call, not a context: a context
// with a deadline costs five allocations and a timer of its own per query.
func (u *upstream) exchangeUDP(ctx context.Context, dl time.Time, q *dns.Msg) (*dns.Msg, error) {
	bp := queryBufPool.Get().(*[]byte)
	defer queryBufPool.Put(bp)
	q.Id = 0
	wire, err := packUpstream((*bp)[:0], q)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: pack query: %w", u.addr, err)
	}
	*bp = wire[:0]
	c := udpCallPool.Get().(*udpCall)
	c.name, c.qtype, c.qclass = q.Question[0].Name, q.Question[0].Qtype, q.Question[0].Qclass
	s, id, err := u.register(c)
	if err != nil {
		udpCallPool.Put(c)
		u.errs.Add(1)
		return nil, fmt.Errorf("upstream %s: %w", u.addr, err)
	}
	q.Id = id
	binary.BigEndian.PutUint16(wire, id)
	u.queries.Add(1)
	if _, err := s.conn.Write(wire); err != nil {
		u.forget(s, id, c)
		u.errs.Add(1)
		return nil, fmt.Errorf("upstream %s: udp write: %w", u.addr, err)
	}
	if c.timer == nil {
		c.timer = time.NewTimer(time.Until(dl))
	} else {
		c.timer.Reset(time.Until(dl))
	}
	select {
	case res := <-c.ch:
		c.timer.Stop()
		udpCallPool.Put(c)
		if res.err != nil && !errors.Is(res.err, errTruncated) {
			u.errs.Add(1)
			return nil, fmt.Errorf("upstream %s: udp: %w", u.addr, res.err)
		}
		return res.m, res.err
	case <-c.timer.C:
		u.forget(s, id, c)
		u.timeouts.Add(1)
		return nil, fmt.Errorf("upstream %s: udp: %w", u.addr, errTimeout)
	case <-ctx.Done():
		c.timer.Stop()
		u.forget(s, id, c)
		return nil, u.readErr("udp", ctx, ctx.Err())
	}
}

// register puts c on a socket under a fresh Id, opening (or rotating) the
// socket of a randomly chosen slot when needed.
func (u *upstream) register(c *udpCall) (*udpSock, uint16, error) {
	now := time.Now()
	u.umu.Lock()
	defer u.umu.Unlock()
	if u.uclosed {
		return nil, 0, net.ErrClosed
	}
	i := rand.IntN(udpSockets)
	s := u.socks[i]
	if s != nil && (s.sent >= udpRotateQueries || now.Sub(s.born) >= udpRotateAge) {
		u.retire(i)
		s = nil
	}
	if s == nil {
		conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(u.ap))
		if err != nil {
			return nil, 0, err
		}
		s = &udpSock{conn: conn, born: now, wait: make(map[uint16]*udpCall)}
		u.socks[i] = s
		go u.readUDP(s)
	}
	if len(s.wait) >= udpMaxOutstanding {
		return nil, 0, errUDPBusy
	}
	for {
		id := uint16(rand.Uint32())
		if _, taken := s.wait[id]; !taken {
			s.wait[id] = c
			s.sent++
			return s, id, nil
		}
	}
}

// retire takes slot i's socket out of use; it closes when its last
// outstanding query ends. u.umu is held.
func (u *upstream) retire(i int) {
	s := u.socks[i]
	u.socks[i] = nil
	s.retired = true
	u.closeIfDone(s)
}

// forget removes c from s after its caller gave up, and returns c to the
// pool. If the reader delivered meanwhile, the result is drained.
func (u *upstream) forget(s *udpSock, id uint16, c *udpCall) {
	u.umu.Lock()
	delivered := s.wait[id] != c
	if !delivered {
		delete(s.wait, id)
		u.closeIfDone(s)
	}
	u.umu.Unlock()
	if delivered {
		<-c.ch
	}
	udpCallPool.Put(c)
}

// closeIfDone closes a retired socket with nothing outstanding. u.umu is held.
func (u *upstream) closeIfDone(s *udpSock) {
	if s.retired && len(s.wait) == 0 {
		_ = s.conn.Close()
	}
}

// readUDP is s's reader: it hands each reply to the query it answers and
// drops the rest. A read error (the socket closed, or an ICMP error such as
// port unreachable, which concerns every query on it since all go to the
// same address) ends every outstanding query with that error and retires
// the socket.
func (u *upstream) readUDP(s *udpSock) {
	bp := udpBufPool.Get().(*[]byte)
	defer udpBufPool.Put(bp)
	buf := *bp
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			u.failAll(s, err)
			return
		}
		if n < 12 {
			u.mismatched.Add(1)
			continue
		}
		id := binary.BigEndian.Uint16(buf)
		u.umu.Lock()
		_, known := s.wait[id]
		u.umu.Unlock()
		if !known {
			u.mismatched.Add(1)
			continue
		}
		var res udpResult
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			// Some servers cut a reply mid-record and set TC; the header is
			// intact, so fall back to TCP rather than wait for the deadline.
			if buf[2]&0x02 == 0 {
				u.mismatched.Add(1)
				continue
			}
			res.err, r = errTruncated, nil
		} else if !r.Response || len(r.Question) != 1 {
			if !r.Response || !r.Truncated || len(r.Question) != 0 {
				u.mismatched.Add(1)
				continue
			}
			res.err, r = errTruncated, nil
		} else {
			res.m = r
		}
		if !u.deliver(s, id, r, res) {
			u.mismatched.Add(1)
		}
	}
}

// deliver hands res to the query outstanding on s under id, if it is still
// there and (for a parsed reply r) asked r's question. The match is made
// under the lock, so a call reused for another query is never handed an
// answer to its previous one.
func (u *upstream) deliver(s *udpSock, id uint16, r *dns.Msg, res udpResult) bool {
	u.umu.Lock()
	defer u.umu.Unlock()
	c := s.wait[id]
	if c == nil {
		return false
	}
	if r != nil {
		q := r.Question[0]
		if q.Qtype != c.qtype || q.Qclass != c.qclass || !strings.EqualFold(q.Name, c.name) {
			return false
		}
	}
	delete(s.wait, id)
	c.ch <- res
	u.closeIfDone(s)
	return true
}

// failAll ends every query outstanding on s with err and retires s.
func (u *upstream) failAll(s *udpSock, err error) {
	u.umu.Lock()
	defer u.umu.Unlock()
	for i, x := range u.socks {
		if x == s {
			u.socks[i] = nil
		}
	}
	s.retired = true
	for id, c := range s.wait {
		delete(s.wait, id)
		c.ch <- udpResult{err: err}
	}
	_ = s.conn.Close()
}

// closeUDP closes every socket; their readers end the queries on them.
func (u *upstream) closeUDP() {
	u.umu.Lock()
	defer u.umu.Unlock()
	for i, s := range u.socks {
		if s != nil {
			u.socks[i] = nil
			s.retired = true
			_ = s.conn.Close()
		}
	}
}

// packUpstream appends to buf the wire form of q, a query for an upstream,
// over UDP or TCP. packQuery only reads q; miekg's packer, the way for any
// other shape, writes the OPT's extended-rcode bits, so it must never see
// one of the OPTs upstreamQuery shares between queries (those have no
// options, so packQuery always takes them).
func packUpstream(buf []byte, q *dns.Msg) ([]byte, error) {
	if wire, ok := packQuery(buf, q); ok {
		return wire, nil
	}
	return q.PackBuffer(buf)
}

// packQuery appends to buf the wire form of q, a query as upstreamQuery
// builds it — header, one question, an OPT whose options are all
// EDNS0_LOCAL — without miekg's general packer, which allocates a
// compression map and more per call. ok is false for any other shape.
func packQuery(buf []byte, q *dns.Msg) ([]byte, bool) {
	if len(q.Question) != 1 || len(q.Answer) != 0 || len(q.Ns) != 0 || len(q.Extra) > 1 || q.Response || q.Rcode != 0 {
		return buf, false
	}
	var opt *dns.OPT
	rdlen := 0
	if len(q.Extra) == 1 {
		var ok bool
		if opt, ok = q.Extra[0].(*dns.OPT); !ok {
			return buf, false
		}
		for _, o := range opt.Option {
			l, ok := o.(*dns.EDNS0_LOCAL)
			if !ok {
				return buf, false
			}
			rdlen += 4 + len(l.Data)
		}
	}
	flags := uint16(q.Opcode&0xF) << 11
	if q.RecursionDesired {
		flags |= 1 << 8
	}
	if q.AuthenticatedData {
		flags |= 1 << 5
	}
	if q.CheckingDisabled {
		flags |= 1 << 4
	}
	qn := q.Question[0]
	start := len(buf)
	need := 12 + 255 + 4 + 11 + rdlen
	if cap(buf)-start < need {
		buf = append(make([]byte, 0, start+need), buf...)
	}
	b := buf[:start+12]
	binary.BigEndian.PutUint16(b[start:], q.Id)
	binary.BigEndian.PutUint16(b[start+2:], flags)
	binary.BigEndian.PutUint16(b[start+4:], 1)
	binary.BigEndian.PutUint16(b[start+6:], 0)
	binary.BigEndian.PutUint16(b[start+8:], 0)
	binary.BigEndian.PutUint16(b[start+10:], uint16(len(q.Extra)))
	off, err := dns.PackDomainName(qn.Name, b[:cap(b)], len(b), nil, false)
	if err != nil {
		return buf, false
	}
	b = binary.BigEndian.AppendUint16(b[:off], qn.Qtype)
	b = binary.BigEndian.AppendUint16(b, qn.Qclass)
	if opt != nil {
		b = append(b, 0) // root owner
		b = binary.BigEndian.AppendUint16(b, dns.TypeOPT)
		b = binary.BigEndian.AppendUint16(b, opt.Hdr.Class) // UDP size
		b = binary.BigEndian.AppendUint32(b, opt.Hdr.Ttl)   // extended rcode, version, DO
		b = binary.BigEndian.AppendUint16(b, uint16(rdlen))
		for _, o := range opt.Option {
			l := o.(*dns.EDNS0_LOCAL)
			b = binary.BigEndian.AppendUint16(b, l.Code)
			b = binary.BigEndian.AppendUint16(b, uint16(len(l.Data)))
			b = append(b, l.Data...)
		}
	}
	return b, true
}
