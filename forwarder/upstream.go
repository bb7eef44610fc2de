package forwarder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

const (
	// tcpPoolSize idle TCP connections are kept per upstream. Queries are not
	// pipelined, so this is also how many TCP exchanges reuse a connection
	// concurrently without dialing.
	tcpPoolSize = 4
	// ednsUDPSize is what we advertise upstream (DNS flag day 2020).
	ednsUDPSize = 1232
	// udpReadSize is large enough for any UDP datagram, so an upstream that
	// ignores our EDNS size is not misread as garbage.
	udpReadSize = 65535
)

var (
	errTimeout   = errors.New("timeout")
	errTruncated = errors.New("truncated reply")
)

var udpBufPool = sync.Pool{New: func() any { b := make([]byte, udpReadSize); return &b }}

// upstream is one resolver address. It is shared by every rule naming the
// same address, so health and counters are per address.
type upstream struct {
	addr string         // "host:port", as in Stats
	ap   netip.AddrPort // unmapped, for source address checks
	log  *slog.Logger

	fails    atomic.Int32 // consecutive failed health probes
	down     atomic.Bool
	suspect  atomic.Bool  // an exchange failed since the last good probe: probe it
	inflight atomic.Int64 // exchanges running now
	busy     atomic.Uint64

	queries, tcpQueries, timeouts, errs, softErrs, mismatched atomic.Uint64
	answers, rttNanos                                         atomic.Uint64 // for the mean round trip

	mu     sync.Mutex // guards closed and sends to idle after close
	closed bool
	idle   chan *dns.Conn

	umu     sync.Mutex // guards socks, uclosed and every udpSock's fields
	socks   [udpSockets]*udpSock
	uclosed bool
}

func newUpstream(addr string, log *slog.Logger) (*upstream, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", addr, err)
	}
	return &upstream{
		addr: addr,
		ap:   netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()),
		log:  log.With(slog.String("upstream", addr)),
		idle: make(chan *dns.Conn, tcpPoolSize),
	}, nil
}

// success records a reply from u: it is reachable.
func (u *upstream) success() {
	u.fails.Store(0)
	u.suspect.Store(false)
	if u.down.CompareAndSwap(true, false) {
		u.log.Info("upstream up")
	}
}

// probeFailed counts a failed health probe; maxFails in a row mark u down.
func (u *upstream) probeFailed(maxFails int, err error) {
	if n := u.fails.Add(1); int(n) >= maxFails && u.down.CompareAndSwap(false, true) {
		u.log.Warn("upstream down", slog.Int("failed_probes", int(n)), slog.Any("err", err))
	}
}

// exchange sends q (whose Id it overwrites) and returns a validated reply,
// retrying over TCP when the UDP reply is truncated; it gives up at dl or
// when ctx ends. Only network failures and timeouts count against health;
// the caller judges rcodes.
func (u *upstream) exchange(ctx context.Context, dl time.Time, q *dns.Msg) (r *dns.Msg, err error) {
	start := time.Now()
	defer func() {
		if err == nil {
			u.answers.Add(1)
			u.rttNanos.Add(uint64(time.Since(start)))
		}
	}()
	r, err = u.exchangeUDP(ctx, dl, q) // sets a fresh Id: never the client's
	if errors.Is(err, errTruncated) || (err == nil && r.Truncated) {
		q.Id = uint16(rand.Uint32())
		tctx, cancel := context.WithDeadline(ctx, dl)
		defer cancel()
		tr, terr := u.exchangeTCP(tctx, q)
		if terr == nil {
			return tr, nil
		}
		if r != nil {
			// TCP failed but we hold a usable truncated UDP reply: return it so
			// the client can retry over TCP itself, after trying others.
			return r, fmt.Errorf("upstream %s: tcp retry after truncation: %w", u.addr, terr)
		}
		return nil, terr
	}
	return r, err
}

// exchangeTCP takes an idle pooled connection (or dials one), does one
// query/reply on it and returns it to the pool. A pooled connection the
// server has since closed fails fast; we retry once on a fresh dial.
func (u *upstream) exchangeTCP(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	u.tcpQueries.Add(1)
	for attempt := 0; ; attempt++ {
		co, reused, err := u.getConn(ctx)
		if err != nil {
			u.errs.Add(1)
			return nil, fmt.Errorf("upstream %s: tcp dial: %w", u.addr, err)
		}
		dl, _ := ctx.Deadline() // zero (no deadline) also clears a pooled conn's old one
		_ = co.SetDeadline(dl)
		stop := context.AfterFunc(ctx, func() { _ = co.SetDeadline(time.Unix(1, 0)) })
		u.queries.Add(1)
		r, err := u.roundTrip(co, q)
		if !stop() {
			// The cancel hook ran and poisoned the deadline: don't pool it.
			_ = co.Close()
			if err == nil {
				return r, nil
			}
			return nil, u.readErr("tcp", ctx, err)
		}
		if err != nil {
			_ = co.Close()
			if reused && attempt == 0 && !isTimeout(err) {
				continue
			}
			return nil, u.readErr("tcp", ctx, err)
		}
		_ = co.SetDeadline(time.Time{})
		u.putConn(co)
		return r, nil
	}
}

func (u *upstream) roundTrip(co *dns.Conn, q *dns.Msg) (*dns.Msg, error) {
	wire, err := packUpstream(nil, q) // not WriteMsg: it would write the shared OPT
	if err != nil {
		return nil, fmt.Errorf("pack query: %w", err)
	}
	if _, err := co.Write(wire); err != nil {
		return nil, err
	}
	r, err := co.ReadMsg()
	if err != nil {
		return nil, err
	}
	// Without pipelining the next message on the stream must be ours; if it
	// is not, the stream is out of step and the connection is discarded.
	if r.Id != q.Id || !r.Response || !sameQuestion(q, r) {
		u.mismatched.Add(1)
		return nil, errors.New("tcp reply does not match query")
	}
	return r, nil
}

func (u *upstream) getConn(ctx context.Context) (*dns.Conn, bool, error) {
	select {
	case co := <-u.idle:
		return co, true, nil
	default:
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		return nil, false, err
	}
	return &dns.Conn{Conn: c}, false, nil
}

func (u *upstream) putConn(co *dns.Conn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		_ = co.Close()
		return
	}
	select {
	case u.idle <- co:
	default:
		_ = co.Close()
	}
}

func (u *upstream) close() {
	u.umu.Lock()
	u.uclosed = true
	u.umu.Unlock()
	u.closeUDP()
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed = true
	for {
		select {
		case co := <-u.idle:
			_ = co.Close()
		default:
			return
		}
	}
}

func (u *upstream) readErr(proto string, ctx context.Context, err error) error {
	if isTimeout(err) || ctx.Err() != nil {
		u.timeouts.Add(1)
		return fmt.Errorf("upstream %s: %s: %w", u.addr, proto, errTimeout)
	}
	u.errs.Add(1)
	return fmt.Errorf("upstream %s: %s: %w", u.addr, proto, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sameQuestion compares the single question of query and reply; the name
// case-insensitively, since upstreams may not echo our case (0x20).
func sameQuestion(q, r *dns.Msg) bool {
	if len(r.Question) != 1 {
		return false
	}
	a, b := q.Question[0], r.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// pool is the ordered set of upstreams of one rule.
type pool struct {
	ups    []*upstream
	policy Policy
	next   atomic.Uint32 // round-robin cursor
}

// order returns the upstreams to try, in order: the policy picks the
// starting point; down upstreams are left out (the health probe brings them
// back), so the result is empty when every one is down. Without health
// checking (health false) nothing is ever down and all are returned.
func (p *pool) order(buf []*upstream, health bool) []*upstream {
	n := len(p.ups)
	start := 0
	switch p.policy {
	case PolicyRandom:
		start = rand.IntN(n)
	case PolicyRoundRobin:
		start = int((p.next.Add(1) - 1) % uint32(n))
	}
	// Read each health flag once, so a concurrent flip cannot list an
	// upstream twice or drop it.
	buf = buf[:0]
	for i := range n {
		if u := p.ups[(start+i)%n]; !health || !u.down.Load() {
			buf = append(buf, u)
		}
	}
	return buf
}
