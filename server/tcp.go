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
	var l net.Listener = &limitListener{Listener: ln, max: int64(max), rejected: &s.stats.TCPRejected}
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

// limitListener closes connections beyond max at once, so a flood of idle
// TCP clients cannot exhaust file descriptors.
type limitListener struct {
	net.Listener
	max      int64
	open     atomic.Int64
	rejected *atomic.Uint64
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

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}
