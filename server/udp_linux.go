package server

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strconv"
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

type udpSys struct {
	fd int
	rc syscall.RawConn // for waiting in the netpoller (see readBatches)
}

// spinTries is how many non-blocking reads a reader makes before it
// blocks. Under load the next datagrams are usually a few microseconds
// away; catching them saves the sleep and wake-up, which on a loaded core
// (and in VMs, where interrupts are costly) cost more than the reads.
// Measured with test/bench: about +10% queries per CPU-second at 4.
const spinTries = 4

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
	l.sys.rc = rc
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
	var (
		in      [udpBatch]mmsghdr
		inIov   [udpBatch]syscall.Iovec
		names   [udpBatch]syscall.RawSockaddrAny
		out     [udpBatch]mmsghdr
		outIov  [udpBatch]syscall.Iovec
		inBufs  [udpBatch][]byte
		outBufs [udpBatch][]byte
		scratch [512]byte
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
	var (
		r     uintptr
		errno syscall.Errno
	)
	// recv reads a batch without waiting; as a RawConn.Read callback it
	// asks the netpoller to wait while nothing is queued.
	recv := func(fd uintptr) bool {
		r, _, errno = syscall.RawSyscall6(unix.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(&in[0])), udpBatch, unix.MSG_DONTWAIT, 0, 0)
		return errno != syscall.EAGAIN
	}
	for !l.closing.Load() {
		for i := range in {
			in[i].hdr.Namelen = uint32(unsafe.Sizeof(names[i]))
		}
		errno = syscall.EAGAIN
		for try := 0; try < spinTries && errno == syscall.EAGAIN; try++ {
			recv(uintptr(l.sys.fd))
		}
		if errno == syscall.EAGAIN && l.inSlow.Load() > 0 {
			// Full-handler goroutines are in flight (cache misses waiting
			// on upstreams): wait in the netpoller, which leaves this P to
			// them. A reader blocked in the kernel keeps its P until the
			// runtime's monitor takes it back — 20 µs to 10 ms later —
			// and with GOMAXPROCS=1 every upstream reply waited that long:
			// misses ran at half the rate with the core half idle.
			runtime.UnlockOSThread()
			err := l.sys.rc.Read(recv)
			runtime.LockOSThread()
			if err != nil {
				// The shutdown deadline (closing is set before it) or a
				// closed socket (the next read says EBADF): look again
				// now, not after a blocking read's receive timeout.
				continue
			}
		}
		if errno == syscall.EAGAIN {
			// MSG_WAITFORONE: block for the first datagram, then take what
			// else is queued.
			r, _, errno = syscall.Syscall6(unix.SYS_RECVMMSG, uintptr(l.sys.fd),
				uintptr(unsafe.Pointer(&in[0])), udpBatch, unix.MSG_WAITFORONE, 0, 0)
		}
		if errno != 0 {
			switch errno {
			case syscall.EAGAIN, syscall.EINTR:
				continue // the receive timeout: look at closing again
			case syscall.EBADF:
				return true
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
				l.goSlow(pkt, slowAddr(&names[i], ap))
			case fastMiss:
				l.goMiss(pkt, ap.Addr(), slowAddr(&names[i], ap), arrived)
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
	return true
}

// sockaddrToAddrPort reads a kernel sockaddr without allocating. The port
// is in network byte order whatever the machine's.
func sockaddrToAddrPort(sa *syscall.RawSockaddrAny) (netip.AddrPort, bool) {
	switch sa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), port), true
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(p.Addr), port), true
	}
	return netip.AddrPort{}, false
}

// slowAddr is the full handler's view of the sender, link-local scope
// included so a reply to fe80::… can be sent.
func slowAddr(sa *syscall.RawSockaddrAny, ap netip.AddrPort) *net.UDPAddr {
	a := net.UDPAddrFromAddrPort(ap)
	if sa.Addr.Family == syscall.AF_INET6 {
		if p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa)); p.Scope_id != 0 {
			a.Zone = strconv.FormatUint(uint64(p.Scope_id), 10)
		}
	}
	return a
}

// sendSlow sends a full-handler reply. The socket is blocking for the
// readers' sake, so this send must not wait: MSG_DONTWAIT, and a full
// socket buffer drops the reply as it would drop any datagram.
func (l *udpListener) sendSlow(b []byte, addr *net.UDPAddr) error {
	var sa syscall.Sockaddr
	if ip4 := addr.IP.To4(); ip4 != nil {
		s4 := &syscall.SockaddrInet4{Port: addr.Port}
		copy(s4.Addr[:], ip4)
		sa = s4
	} else {
		s6 := &syscall.SockaddrInet6{Port: addr.Port}
		copy(s6.Addr[:], addr.IP.To16())
		if addr.Zone != "" {
			if id, err := strconv.ParseUint(addr.Zone, 10, 32); err == nil {
				s6.ZoneId = uint32(id)
			} else if ifi, err := net.InterfaceByName(addr.Zone); err == nil {
				s6.ZoneId = uint32(ifi.Index)
			}
		}
		sa = s6
	}
	for {
		err := syscall.Sendto(l.sys.fd, b, syscall.MSG_DONTWAIT, sa)
		if err != syscall.EINTR {
			return err
		}
	}
}
