package server

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On Linux the readers make the recvmmsg/sendmmsg system calls themselves,
// on a blocking socket, each locked to its own thread. A reader then sleeps
// in the kernel and is woken straight by the arriving datagram: one context
// switch per batch, where Go's netpoller needs several (park, epoll wake,
// hand-off between threads), which on a loaded core costs more than the
// DNS work itself. Source addresses stay raw sockaddrs: parsed without
// allocation, handed back unchanged to sendmmsg.

type udpSys struct{ fd int }

// mmsghdr is struct mmsghdr of <sys/socket.h>.
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
	_   [4]byte
}

func newUDPListener(s *Server, conn *net.UDPConn) (*udpListener, error) {
	l := &udpListener{s: s, conn: conn}
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("udp socket: %w", err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		l.sys.fd = int(fd)
		if serr = syscall.SetNonblock(int(fd), false); serr != nil {
			return
		}
		// Wake a blocked reader now and then so shutdown is noticed.
		tv := syscall.Timeval{Usec: 200_000}
		serr = syscall.SetsockoptTimeval(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return nil, fmt.Errorf("udp socket: %w", err)
	}
	return l, nil
}

func (l *udpListener) read() {
	defer l.readers.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s := l.s
	var (
		in      [udpBatch]mmsghdr
		inIov   [udpBatch]syscall.Iovec
		names   [udpBatch]syscall.RawSockaddrAny
		out     [udpBatch]mmsghdr
		outIov  [udpBatch]syscall.Iovec
		inBufs  [udpBatch][]byte
		outBufs [udpBatch][]byte
		scratch [256]byte
	)
	for i := range in {
		inBufs[i] = make([]byte, udpReadBuf)
		outBufs[i] = make([]byte, 0, s.udpSize+64)
		inIov[i].Base = &inBufs[i][0]
		inIov[i].SetLen(udpReadBuf)
		in[i].hdr.Iov = &inIov[i]
		in[i].hdr.Iovlen = 1
		in[i].hdr.Name = (*byte)(unsafe.Pointer(&names[i]))
	}
	for !l.closing.Load() {
		for i := range in {
			in[i].hdr.Namelen = uint32(unsafe.Sizeof(names[i]))
		}
		// MSG_WAITFORONE: block for the first datagram, then take what
		// else is queued.
		r, _, errno := syscall.Syscall6(unix.SYS_RECVMMSG, uintptr(l.sys.fd),
			uintptr(unsafe.Pointer(&in[0])), udpBatch, unix.MSG_WAITFORONE, 0, 0)
		if errno != 0 {
			switch errno {
			case syscall.EAGAIN, syscall.EINTR:
				continue // the receive timeout: look at closing again
			case syscall.EBADF:
				return
			}
			s.log.Warn("udp read", slog.String("err", errno.Error()))
			continue
		}
		n := int(r)
		arrived := time.Now()
		s.stats.UDPBatches.Add(1)
		s.stats.UDPDatagrams.Add(uint64(n))
		k := 0
		for i := 0; i < n; i++ {
			pkt := inBufs[i][:in[i].n]
			ap, ok := sockaddrToAddrPort(&names[i])
			if !ok {
				continue
			}
			resp, act := s.fastUDP(pkt, ap.Addr(), outBufs[k][:0], &scratch, arrived)
			switch act {
			case fastReply:
				outIov[k].Base = &resp[0]
				outIov[k].SetLen(len(resp))
				out[k].hdr = syscall.Msghdr{Name: in[i].hdr.Name, Namelen: in[i].hdr.Namelen, Iov: &outIov[k]}
				out[k].hdr.Iovlen = 1
				k++
			case fastSlow:
				l.slow.Add(1)
				go l.serveSlow(append([]byte(nil), pkt...), net.UDPAddrFromAddrPort(ap))
			}
		}
		for sent := 0; sent < k; {
			r, _, errno := syscall.Syscall6(unix.SYS_SENDMMSG, uintptr(l.sys.fd),
				uintptr(unsafe.Pointer(&out[sent])), uintptr(k-sent), 0, 0, 0)
			if errno != 0 {
				if errno == syscall.EINTR {
					continue
				}
				s.stats.WriteErrors.Add(1)
				sent++ // skip the datagram that failed
				continue
			}
			sent += int(r)
		}
		runtime.KeepAlive(inBufs)
		runtime.KeepAlive(outBufs)
	}
}

// sockaddrToAddrPort reads a kernel sockaddr without allocating.
func sockaddrToAddrPort(sa *syscall.RawSockaddrAny) (netip.AddrPort, bool) {
	switch sa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := uint16(p.Port>>8) | uint16(p.Port<<8)
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), port), true
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		port := uint16(p.Port>>8) | uint16(p.Port<<8)
		return netip.AddrPortFrom(netip.AddrFrom16(p.Addr), port), true
	}
	return netip.AddrPort{}, false
}
