//go:build !linux

package server

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchConn is the part of ipv4.PacketConn / ipv6.PacketConn we use.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

type udpSys struct{ batch batchConn }

func newUDPListener(s *Server, conn *net.UDPConn) (*udpListener, error) {
	l := &udpListener{s: s, conn: conn}
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() != nil {
		l.sys.batch = ipv4.NewPacketConn(conn)
	} else {
		l.sys.batch = ipv6.NewPacketConn(conn)
	}
	return l, nil
}

func (l *udpListener) read() {
	defer l.readers.Done()
	for !l.readBatches() {
	}
}

// readBatches reads and answers batches until the listener closes (true).
// A panic in the per-packet work is recovered — counted, logged — and the
// reader goes on with fresh buffers (false).
func (l *udpListener) readBatches() (done bool) {
	defer func() {
		if p := recover(); p != nil {
			l.s.panicked(p, "udp reader")
			done = l.closing.Load()
		}
	}()
	s := l.s
	in := make([]ipv4.Message, udpBatch)
	out := make([]ipv4.Message, udpBatch)
	outBufs := make([][]byte, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, udpReadBuf)}
		out[i].Buffers = make([][]byte, 1)
		outBufs[i] = make([]byte, 0, s.udpSize+64)
	}
	var scratch [512]byte
	for {
		n, err := l.sys.batch.ReadBatch(in, 0)
		if err != nil {
			if l.closing.Load() || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
				return true
			}
			s.log.Warn("udp read", slog.Any("err", err))
			continue
		}
		arrived := time.Now()
		s.stats.UDPBatches.Add(1)
		s.stats.UDPDatagrams.Add(uint64(n))
		k := 0
		for i := 0; i < n; i++ {
			pkt := in[i].Buffers[0][:in[i].N]
			addr, _ := in[i].Addr.(*net.UDPAddr)
			if addr == nil {
				continue
			}
			ip, _ := netip.AddrFromSlice(addr.IP)
			resp, act := s.fastUDP(pkt, ip, outBufs[k][:0], &scratch, arrived)
			switch act {
			case fastReply:
				out[k].Buffers[0] = resp
				out[k].Addr = addr
				k++
			case fastSlow:
				l.goSlow(pkt, addr)
			case fastMiss:
				l.goMiss(pkt, ip, addr, arrived)
			}
		}
		for sent := 0; sent < k; {
			m, err := l.sys.batch.WriteBatch(out[sent:k], 0)
			if err != nil {
				s.stats.WriteErrors.Add(1)
				sent++ // skip the datagram that failed
				continue
			}
			sent += m
		}
	}
}

// sendSlow sends a full-handler reply.
func (l *udpListener) sendSlow(b []byte, addr *net.UDPAddr) error {
	_, err := l.conn.WriteToUDP(b, addr)
	return err
}
