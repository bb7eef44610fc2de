// Package fwdtest holds test doubles for code that forwards queries: a
// loopback upstream cheap enough that benchmarks of the miss path measure
// the forwarder, not the upstream.
package fwdtest

import (
	"bytes"
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
)

// NXStub is a UDP upstream on 127.0.0.1 that answers every query NXDOMAIN
// with an SOA for "." in the authority section (negative TTL 300), the way
// an authoritative Knot answers random subdomains. It parses and builds
// replies in place, allocating nothing per query, so allocations counted by
// a benchmark are the caller's. It echoes the query's OPT as none.
type NXStub struct {
	Addr    string
	Queries atomic.Int64
	conn    *net.UDPConn
}

// nxSOA is ". 300 IN SOA a. b. 1 7200 900 1209600 300" in wire form.
var nxSOA = []byte{
	0,    // owner "."
	0, 6, // SOA
	0, 1, // IN
	0, 0, 1, 44, // TTL 300
	0, 26, // rdlength
	1, 'a', 0, // mname
	1, 'b', 0, // rname
	0, 0, 0, 1, // serial
	0, 0, 0x1c, 0x20, // refresh 7200
	0, 0, 0x03, 0x84, // retry 900
	0, 0x12, 0x75, 0, // expire 1209600
	0, 0, 1, 44, // minimum 300
}

// StartNXStub starts an NXStub; it stops when the test ends.
func StartNXStub(tb testing.TB) *NXStub {
	tb.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	s := &NXStub{Addr: c.LocalAddr().String(), conn: c}
	tb.Cleanup(func() { c.Close() })
	go s.serve()
	return s
}

func (s *NXStub) serve() {
	buf := make([]byte, 4096)
	out := make([]byte, 0, 4096)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		q := buf[:n]
		end, ok := questionEnd(q)
		if !ok || binary.BigEndian.Uint16(q[4:]) != 1 {
			continue
		}
		s.Queries.Add(1)
		out = append(out[:0], q[:end]...)
		out[2] = 0x80 | q[2]&0x01 // QR, RD echoed
		out[3] = 0x80 | 3         // RA, NXDOMAIN
		binary.BigEndian.PutUint16(out[6:], 0)
		binary.BigEndian.PutUint16(out[8:], 1)
		binary.BigEndian.PutUint16(out[10:], 0)
		out = append(out, nxSOA...)
		_, _ = s.conn.WriteToUDPAddrPort(out, from)
	}
}

// questionEnd returns the offset after the first question of pkt. The
// stub serves benchmarks whose names are plain labels, so the name ends at
// the first zero byte.
func questionEnd(pkt []byte) (int, bool) {
	if len(pkt) < 12 {
		return 0, false
	}
	i := bytes.IndexByte(pkt[12:], 0)
	end := 12 + i + 5
	return end, i >= 0 && end <= len(pkt)
}
