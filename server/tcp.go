package server

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// DefaultMaxTCPConnsPerClient is the default cap on open TCP connections
// from one client address (Config.MaxTCPConnsPerClient).
const DefaultMaxTCPConnsPerClient = 64

// errClientLimit fails the first read of a connection whose client (known
// only once the PROXY header is read) already has its share open.
var errClientLimit = errors.New("server: too many TCP connections from this client")

// wrapTCP applies the TCP listener options: a cap on open connections, a
// cap per client address, and PROXY protocol v2 (as AWS network load
// balancers send it) so that views and ACLs see the client, not the
// balancer. A PROXY header is taken only from ProxyTrusted peers; anyone
// else who sends one is disconnected (New refuses PROXY protocol without a
// trusted list).
func (s *Server) wrapTCP(ln net.Listener) net.Listener {
	max := s.cfg.MaxTCPConns
	if max <= 0 {
		max = 1000
	}
	perClient := s.cfg.MaxTCPConnsPerClient
	if perClient <= 0 {
		perClient = DefaultMaxTCPConnsPerClient
	}
	lim := &clientLimits{max: perClient, open: map[netip.Addr]int{}, rejected: &s.stats.TCPRejected, perClient: &s.stats.TCPClientRejected}
	// miekg sets no write deadline: without one a client that stops
	// reading holds its handler (and, for a zone transfer, a whole zone
	// version) forever.
	ll := &limitListener{Listener: ln, max: int64(max), rejected: &s.stats.TCPRejected, clients: lim,
		writeTimeout: tcpWriteTimeout(s.cfg.WriteTimeout)}
	if !s.cfg.ProxyProtocol {
		return ll
	}
	trusted := s.cfg.ProxyTrusted
	ll.deferClient = func(peer netip.Addr) bool { return contains(trusted, peer) }
	pl := &proxyproto.Listener{
		Listener:          ll,
		ReadHeaderTimeout: 2 * time.Second,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if contains(trusted, addrOf(o.Upstream)) {
				return proxyproto.USE, nil
			}
			// Anyone else who sends a header is cut off at the first
			// read: a client must not pick its own address, and a
			// silently ignored header hides a misconfigured balancer.
			return proxyproto.REJECT, nil
		},
	}
	return &proxiedClientListener{Listener: pl, clients: lim}
}

// addrOf is the unmapped IP of a TCP address (invalid for anything else).
func addrOf(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(t.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// clientLimits counts open connections per client address.
type clientLimits struct {
	max                 int
	mu                  sync.Mutex
	open                map[netip.Addr]int
	rejected, perClient *atomic.Uint64
}

// acquire takes a slot for ip, or reports (and counts) that it has none.
func (l *clientLimits) acquire(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip] >= l.max {
		l.rejected.Add(1)
		l.perClient.Add(1)
		return false
	}
	l.open[ip]++
	return true
}

func (l *clientLimits) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.open[ip]; n <= 1 {
		delete(l.open, ip)
	} else {
		l.open[ip] = n - 1
	}
}

// tcpWriteTimeout is the deadline of one TCP write: the configured write
// timeout, at least 10s (a transfer message is up to 64 KiB).
func tcpWriteTimeout(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return 10 * time.Second
	}
	return d
}

// limitListener closes connections beyond max at once, so a flood of idle
// TCP clients cannot exhaust file descriptors, and connections beyond the
// per-client cap, so one address cannot take every slot.
type limitListener struct {
	net.Listener
	max      int64
	open     atomic.Int64
	rejected *atomic.Uint64
	clients  *clientLimits
	// deferClient reports whether a peer is a trusted proxy: its
	// connections are counted by the client its PROXY header names, once
	// read (proxiedClientListener), not by the proxy's own address.
	deferClient func(peer netip.Addr) bool
	// writeTimeout bounds each write (0: none).
	writeTimeout time.Duration
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.rejected.Add(1)
			c.Close()
			continue
		}
		cc := &countedConn{Conn: c, l: l}
		peer := addrOf(c.RemoteAddr())
		if l.deferClient == nil || !l.deferClient(peer) {
			if !l.clients.acquire(peer) {
				cc.Close()
				continue
			}
			cc.client, cc.held = peer, true
		}
		return cc, nil
	}
}

type countedConn struct {
	net.Conn
	l      *limitListener
	once   sync.Once
	client netip.Addr
	held   bool // a per-client slot is taken for client
}

func (c *countedConn) Write(b []byte) (int, error) {
	if c.l.writeTimeout > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.l.writeTimeout))
	}
	return c.Conn.Write(b)
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.l.open.Add(-1)
		if c.held {
			c.l.clients.release(c.client)
		}
	})
	return c.Conn.Close()
}

// proxiedClientListener counts the connections of a trusted proxy against
// the client named in their PROXY header.
type proxiedClientListener struct {
	net.Listener // *proxyproto.Listener
	clients      *clientLimits
}

func (l *proxiedClientListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if pc, ok := c.(*proxyproto.Conn); ok {
		if cc, ok := pc.Raw().(*countedConn); ok && !cc.held {
			return &proxiedConn{Conn: c, clients: l.clients}, nil
		}
	}
	return c, nil
}

// proxiedConn reads the PROXY header (in the connection's own goroutine,
// not the accept loop) at its first read and takes a slot for the client it
// names; with no slot left, every read fails and the server closes it.
type proxiedConn struct {
	net.Conn
	clients *clientLimits
	once    sync.Once
	client  netip.Addr
	held    bool
	closed  sync.Once
}

func (c *proxiedConn) Read(b []byte) (int, error) {
	c.once.Do(func() {
		c.client = addrOf(c.Conn.RemoteAddr()) // reads the header
		c.held = c.clients.acquire(c.client)
	})
	if !c.held {
		return 0, errClientLimit
	}
	return c.Conn.Read(b)
}

func (c *proxiedConn) Close() error {
	c.once.Do(func() {}) // no slot can be taken after this
	c.closed.Do(func() {
		if c.held {
			c.clients.release(c.client)
		}
	})
	return c.Conn.Close()
}
