package server

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// wrapTCP applies the TCP listener options: a cap on open connections, and
// PROXY protocol v2 (as AWS network load balancers send it) so that views
// and ACLs see the client, not the balancer.
func (s *Server) wrapTCP(ln net.Listener) net.Listener {
	max := s.cfg.MaxTCPConns
	if max <= 0 {
		max = 1000
	}
	// miekg sets no write deadline: without one a client that stops
	// reading holds its handler (and, for a zone transfer, a whole zone
	// version) forever.
	var l net.Listener = &limitListener{Listener: ln, max: int64(max), rejected: &s.stats.TCPRejected,
		writeTimeout: tcpWriteTimeout(s.cfg.WriteTimeout)}
	if s.cfg.ProxyProtocol {
		trusted := s.cfg.ProxyTrusted
		l = &proxyproto.Listener{
			Listener:          l,
			ReadHeaderTimeout: 2 * time.Second,
			ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
				if len(trusted) == 0 {
					return proxyproto.USE, nil
				}
				if a, ok := o.Upstream.(*net.TCPAddr); ok {
					ip, _ := netip.AddrFromSlice(a.IP)
					if contains(trusted, ip.Unmap()) {
						return proxyproto.USE, nil
					}
				}
				// A header from anyone else is read and ignored: a client
				// must not pick its own address.
				return proxyproto.IGNORE, nil
			},
		}
	}
	return l
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
// TCP clients cannot exhaust file descriptors.
type limitListener struct {
	net.Listener
	max      int64
	open     atomic.Int64
	rejected *atomic.Uint64
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
		return &countedConn{Conn: c, l: l}, nil
	}
}

type countedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *countedConn) Write(b []byte) (int, error) {
	if c.l.writeTimeout > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.l.writeTimeout))
	}
	return c.Conn.Write(b)
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}
