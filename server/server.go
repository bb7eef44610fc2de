// Package server owns the DNS listeners and the query handler: it picks the
// client's view, answers from the zone store, hands other names to the
// forwarder when the client may recurse, and fits every reply to the
// client's buffer.
package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"hybridns/zonestore"
)

// Forwarder is what the handler needs from the forwarding path; it is
// satisfied by *forwarder.Forwarder and wired in cmd.
type Forwarder interface {
	// Resolve answers req through the upstreams and cache. The reply is
	// owned by the caller.
	Resolve(ctx context.Context, req *dns.Msg) (*dns.Msg, error)
	// Match returns the most specific forwarding rule for a canonical name.
	Match(qname string) (suffix string, ok bool)
	// CacheOnly answers from the cache alone (RD=0 clients).
	CacheOnly(req *dns.Msg) (*dns.Msg, bool)
	// IsLoop reports whether req is one of our own forwarded queries.
	IsLoop(req *dns.Msg) bool
}

// View is a named set of client networks; its clients see the zones of the
// store's view of the same name on top of the public (default) zones.
type View struct {
	Name    string
	Clients []netip.Prefix
	// AllowQuery, when not nil, is who of the view's clients may query
	// (BIND's allow-query in a view): others get REFUSED.
	AllowQuery []netip.Prefix
}

// Config configures a Server. Store is required; everything else has a
// usable zero value.
type Config struct {
	Listen    []string // host:port, UDP and TCP on each; default "127.0.0.1:53"
	Store     *zonestore.Store
	Forwarder Forwarder // nil: authoritative only
	// AllowRecursion lists the client networks that may use the forwarder.
	// Nil means DefaultRecursionClients(); an empty non-nil slice means nobody.
	AllowRecursion []netip.Prefix
	Views          []View
	// UDPSize is the EDNS buffer size we advertise and the most we send
	// over UDP (RFC 9715 / DNS flag day 2020: 1232).
	UDPSize        uint16
	TCPIdleTimeout time.Duration // RFC 7766 idle timeout, default 10s
	ReadTimeout    time.Duration // first read on a new TCP connection, default 2s
	WriteTimeout   time.Duration // default 2s
	QueryTimeout   time.Duration // overall deadline of a forwarded query, default 5s
	// ProxyProtocol takes PROXY protocol v2 headers on TCP connections
	// from ProxyTrusted, which must not be empty; a header from anyone
	// else closes the connection.
	ProxyProtocol bool
	ProxyTrusted  []netip.Prefix
	MaxTCPConns   int // default 1000
	// MaxTCPConnsPerClient caps the open TCP connections of one client
	// address (after PROXY protocol), default DefaultMaxTCPConnsPerClient.
	MaxTCPConnsPerClient int
	// QueryLog, when set, gets one line for a QueryLogSample fraction of
	// queries.
	QueryLog       *slog.Logger
	QueryLogSample float64
	// RRL is response rate limiting for UDP (zero value: off).
	RRL RRLConfig
	// Routing tells routing policies (Route 53 weighted, failover,
	// geolocation, …) about health and locations; Addr is set per query.
	Routing zonestore.Client
	// TSIGKeys are the shared secrets requests may be signed with; a
	// signed request with any other key gets NOTAUTH/BADKEY.
	TSIGKeys []TSIGKey
	// UpdatePolicy holds each zone's update-policy rules (canonical zone
	// name → rules); a zone without an entry takes no updates.
	UpdatePolicy map[string][]UpdateRule
	// Updater changes zones at their source; nil: every UPDATE is REFUSED.
	Updater Updater
	// Notify takes NOTIFY for secondary zones; nil: NOTAUTH.
	Notify NotifyReceiver
	// UpdateTimeout bounds one UPDATE, Route 53 retries included
	// (default 30s).
	UpdateTimeout time.Duration
	// Journal holds the zones' recent differences for IXFR (nil: IXFR
	// is answered with the whole zone).
	Journal *zonestore.Journal
	// CatalogZone, when set, is the name of the RFC 9432 catalog zone
	// kept in each of CatalogViews (nil: the default view and every
	// configured view), listing the zones that view serves.
	CatalogZone  string
	CatalogViews []string
	// NSID is this instance's name server identifier (RFC 5001), sent in
	// the reply's OPT to a query that asks for it; empty: none is sent.
	NSID   []byte
	Logger *slog.Logger
}

// DefaultRecursionClients returns loopback, RFC 1918, RFC 6598 shared
// space and RFC 4193 unique-local addresses: the networks of a VPC and its
// on-prem peers. The slice is new on every call: the caller may change it.
func DefaultRecursionClients() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("fc00::/7"),
	}
}

// Server is a running set of DNS listeners sharing one handler.
type Server struct {
	cfg      Config
	qlSample atomic.Uint64 // query-log fraction (float64 bits); SetQueryLogSample changes it
	log      *slog.Logger
	udpSize  int
	servers  []*dns.Server // TCP
	udp      []*udpListener
	udpAddrs []net.Addr
	tcpAddrs []net.Addr
	mu       sync.Mutex
	started  bool
	baseCtx  context.Context
	cancel   context.CancelFunc
	stats    Stats
	metrics  *queryMetrics
	rrl      *RRL // nil: no rate limiting
	pol      atomic.Pointer[policy]
	polMu    sync.Mutex // serializes Reconfigure
	updates  updateStats
	// zone transfers out, NOTIFY, catalog zones (xfr*.go)
	xfrMetrics xfrMetrics
	xfr        *xfrLoop
}

// Policy is the part of the configuration that can change while serving
// (SIGHUP): who may recurse, through which forwarder, which views exist,
// how routing policies see clients.
type Policy struct {
	Forwarder      Forwarder
	AllowRecursion []netip.Prefix // nil: DefaultRecursionClients()
	Views          []View
	Routing        zonestore.Client
	TSIGKeys       []TSIGKey
	UpdatePolicy   map[string][]UpdateRule
	Transfer       []TransferRule
}

// policy is a Policy as the handler reads it, swapped atomically so a
// query sees one policy from start to end.
type policy struct {
	fwd     Forwarder
	cached  CachedWire // the forwarder's wire-form cache, if it has one
	recurse []netip.Prefix
	views   []View
	viewIdx []int // metrics index of each view
	routing zonestore.Client
	keys    keyring
	// updatePolicy: canonical zone → rules
	updatePolicy map[string][]UpdateRule
	// catalogName is the per-view catalogs' name: never handed to a
	// follower's key in place of the fleet catalog of the same name.
	catalogName string
	transfer    []TransferRule
}

// Reconfigure puts a new policy in force for the queries that start after
// it returns; queries in flight finish under the old one.
func (s *Server) Reconfigure(p Policy) error {
	for _, v := range p.Views {
		if v.Name == zonestore.DefaultView {
			return errors.New("server: a view needs a name")
		}
	}
	s.polMu.Lock()
	defer s.polMu.Unlock()
	np := &policy{fwd: p.Forwarder, recurse: slices.Clone(p.AllowRecursion), views: slices.Clone(p.Views), routing: p.Routing,
		catalogName: canonicalOrEmpty(s.cfg.CatalogZone),
		keys:        keyring{}, updatePolicy: map[string][]UpdateRule{}}
	for _, k := range p.TSIGKeys {
		np.keys[k.Name] = k
	}
	for _, r := range p.Transfer {
		keys := make([]string, len(r.Keys))
		for i, k := range r.Keys {
			keys[i] = dns.CanonicalName(k)
		}
		r.Keys = keys
		np.transfer = append(np.transfer, r)
	}
	for zone, rules := range p.UpdatePolicy {
		np.updatePolicy[dns.CanonicalName(zone)] = rules
	}
	if np.recurse == nil {
		np.recurse = DefaultRecursionClients()
	}
	if cw, ok := p.Forwarder.(CachedWire); ok && p.Forwarder != nil {
		np.cached = cw
	}
	for _, v := range p.Views {
		np.viewIdx = append(np.viewIdx, s.metrics.viewIndex(v.Name))
	}
	s.pol.Store(np)
	return nil
}

// Stats are the handler's counters, read with Load.
type Stats struct {
	Queries, Authoritative, Forwarded, Refused, ServFail, FormErr, Truncated, Loops, WriteErrors atomic.Uint64
	// UDPBatches and UDPDatagrams count recvmmsg calls and what they
	// returned: their ratio is the batching the load achieves.
	UDPBatches, UDPDatagrams, FastPath  atomic.Uint64
	RRLLimited, RRLSlipped, TCPRejected atomic.Uint64
	// TSIG failures by RFC 8945 error.
	TSIGBadKey, TSIGBadSig, TSIGBadTime atomic.Uint64
	SlowDropped                         atomic.Uint64 // datagrams dropped: too many full-handler goroutines
	TCPClientRejected                   atomic.Uint64 // TCP connections closed at the per-client cap (also in TCPRejected)
}

// New validates cfg and returns a server that is not yet listening.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: no zone store")
	}
	if len(cfg.Listen) == 0 {
		cfg.Listen = []string{"127.0.0.1:53"}
	}
	if cfg.UDPSize == 0 {
		cfg.UDPSize = 1232
	}
	cfg.NSID = bytes.Clone(cfg.NSID) // ours: the caller's slice may change
	if cfg.ProxyProtocol && len(cfg.ProxyTrusted) == 0 {
		// An empty list must not mean "anyone": every client could
		// claim an inside address and pass the ACLs and views.
		return nil, errors.New("server: PROXY protocol needs the trusted proxy networks (ProxyTrusted)")
	}
	if cfg.UDPSize < dns.MinMsgSize {
		return nil, fmt.Errorf("server: udp size %d below %d", cfg.UDPSize, dns.MinMsgSize)
	}
	if cfg.TCPIdleTimeout == 0 {
		cfg.TCPIdleTimeout = 10 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 2 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 2 * time.Second
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = 5 * time.Second
	}
	if cfg.UpdateTimeout == 0 {
		cfg.UpdateTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger.With(slog.String("component", "server")),
		udpSize: int(cfg.UDPSize),
		metrics: newQueryMetrics(),
		rrl:     NewRRL(cfg.RRL),
	}
	s.xfr = newXfrLoop(s)
	s.SetQueryLogSample(cfg.QueryLogSample)
	if err := s.Reconfigure(Policy{Forwarder: cfg.Forwarder, AllowRecursion: cfg.AllowRecursion, Views: cfg.Views, Routing: cfg.Routing,
		TSIGKeys: cfg.TSIGKeys, UpdatePolicy: cfg.UpdatePolicy}); err != nil {
		return nil, err
	}
	return s, nil
}

// Stats returns the live counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Start binds every listen address (UDP and TCP) and serves until Shutdown.
// It returns once all listeners are bound, or the first bind error.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("server: already started")
	}
	s.baseCtx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	var lc net.ListenConfig
	for _, addr := range s.cfg.Listen {
		pc, ln, err := listenPair(ctx, &lc, addr)
		if err != nil {
			s.closeAll()
			return err
		}
		uc := pc.(*net.UDPConn)
		s.udpAddrs = append(s.udpAddrs, pc.LocalAddr())
		s.tcpAddrs = append(s.tcpAddrs, ln.Addr())
		ul, err := newUDPListener(s, uc)
		if err != nil {
			uc.Close()
			ln.Close()
			s.closeAll()
			return fmt.Errorf("listen udp %s: %w", addr, err)
		}
		s.udp = append(s.udp, ul)
		s.servers = append(s.servers, s.newDNSServer(&dns.Server{Listener: s.wrapTCP(ln), Net: "tcp"}))
	}
	for _, l := range s.udp {
		l.start()
	}
	for _, srv := range s.servers {
		ready := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(ready) }
		go func(srv *dns.Server) {
			if err := srv.ActivateAndServe(); err != nil {
				s.log.Error("listener stopped", slog.String("net", srv.Net), slog.Any("err", err))
			}
		}(srv)
		<-ready
	}
	s.started = true
	s.xfr.start(s.baseCtx)
	for i := range s.udpAddrs {
		s.log.Info("listening", slog.String("udp", s.udpAddrs[i].String()), slog.String("tcp", s.tcpAddrs[i].String()))
	}
	return nil
}

func (s *Server) newDNSServer(srv *dns.Server) *dns.Server {
	srv.Handler = s
	srv.ReadTimeout = s.cfg.ReadTimeout
	srv.WriteTimeout = s.cfg.WriteTimeout
	idle := s.cfg.TCPIdleTimeout
	srv.IdleTimeout = func() time.Duration { return idle }
	srv.MaxTCPQueries = -1 // RFC 7766: keep serving a connection while it is used
	srv.MsgAcceptFunc = acceptQuery
	srv.TsigProvider = tsigProvider{s}
	// Every TCP message passes checkQuery first, as UDP datagrams do: one
	// parser verdict, and error replies built by reply, never miekg's
	// rewrite of the request.
	srv.DecorateReader = func(r dns.Reader) dns.Reader { return &tcpReader{Reader: r, s: s} }
	return srv
}

func (s *Server) closeAll() {
	for _, l := range s.udp {
		l.conn.Close()
	}
	s.udp = nil
	for _, srv := range s.servers {
		if srv.PacketConn != nil {
			srv.PacketConn.Close()
		}
		if srv.Listener != nil {
			srv.Listener.Close()
		}
	}
	s.servers, s.udpAddrs, s.tcpAddrs = nil, nil, nil
}

// Addrs returns the bound UDP and TCP addresses, in Listen order.
func (s *Server) Addrs() (udp, tcp []net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.udpAddrs...), append([]net.Addr(nil), s.tcpAddrs...)
}

// Shutdown stops accepting queries and waits, until ctx ends, for the ones
// in flight to be answered. s.mu is held only to take the listeners, not
// while waiting: Addrs (and so /healthz) answers throughout.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.started {
		s.mu.Unlock()
		return nil
	}
	s.started = false
	servers, udp, cancel := s.servers, s.udp, s.cancel
	s.mu.Unlock()
	var errs []error
	var wg sync.WaitGroup
	var emu sync.Mutex
	for _, srv := range servers {
		wg.Add(1)
		go func(srv *dns.Server) {
			defer wg.Done()
			// miekg waits for in-flight handlers before closing the socket.
			if err := srv.ShutdownContext(ctx); err != nil {
				emu.Lock()
				errs = append(errs, fmt.Errorf("shutdown %s listener: %w", srv.Net, err))
				emu.Unlock()
			}
		}(srv)
	}
	for _, l := range udp {
		wg.Add(1)
		go func(l *udpListener) {
			defer wg.Done()
			if err := l.shutdown(ctx.Done()); err != nil {
				emu.Lock()
				errs = append(errs, fmt.Errorf("shutdown udp listener: %w", err))
				emu.Unlock()
			}
		}(l)
	}
	wg.Wait()
	cancel()
	s.log.Info("stopped", slog.Uint64("queries", s.stats.Queries.Load()), slog.Uint64("udp_batches", s.stats.UDPBatches.Load()),
		slog.Uint64("udp_datagrams", s.stats.UDPDatagrams.Load()), slog.Uint64("fast_path", s.stats.FastPath.Load()))
	return errors.Join(errs...)
}

// acceptQuery is the header stage of checkQuery (and miekg's accept hook,
// which sees only what checkQuery passed): responses are dropped (no
// reflection), opcodes we do not serve get NOTIMP, a QUERY with anything
// but exactly one question and at most OPT and TSIG gets FORMERR. Routing
// another opcode (UPDATE) means a case here, in msgShape and in ServeDNS.
func acceptQuery(dh dns.Header) dns.MsgAcceptAction {
	const qrBit = 1 << 15
	if dh.Bits&qrBit != 0 {
		return dns.MsgIgnore
	}
	switch int(dh.Bits>>11) & 0xF {
	case dns.OpcodeQuery:
		// One authority record: an IXFR's SOA (RFC 1995 §3).
		if dh.Qdcount != 1 || dh.Ancount > 0 || dh.Nscount > 1 || dh.Arcount > 2 {
			return dns.MsgReject
		}
		return dns.MsgAccept
	case dns.OpcodeUpdate, dns.OpcodeNotify:
		// RFC 2136 §3.1.1: exactly one zone; prerequisites, updates and
		// additional records (TSIG) in any number. RFC 1996 §3.7: a
		// NOTIFY has one question and may carry the new SOA.
		if dh.Qdcount != 1 {
			return dns.MsgReject
		}
		return dns.MsgAccept
	}
	return dns.MsgRejectNotImplemented
}

// listenPair binds UDP on addr and TCP on the port UDP got, so ":0" yields
// one port for both. With port 0 the kernel's UDP port may be taken for TCP
// by someone else: then it tries again with another port.
func listenPair(ctx context.Context, lc *net.ListenConfig, addr string) (net.PacketConn, net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	for attempt := 0; ; attempt++ {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp %s: %w", addr, err)
		}
		if _, ok := pc.(*net.UDPConn); !ok {
			pc.Close()
			return nil, nil, fmt.Errorf("listen udp %s: not a UDP socket", addr)
		}
		tcpAddr := pc.LocalAddr().String()
		ln, err := lc.Listen(ctx, "tcp", tcpAddr)
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if port != "0" || attempt >= 10 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("listen tcp %s: %w", tcpAddr, err)
		}
	}
}

func canonicalOrEmpty(name string) string {
	if name == "" {
		return ""
	}
	return zonestore.Canonical(name)
}
