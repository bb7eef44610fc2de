package server_test

import (
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/forwarder"
	"hybridns/forwarder/fwdtest"
	"hybridns/server"
	"hybridns/zonestore"
)

// BenchmarkForwardMiss sends UDP queries for names never asked before
// through a real server socket; each is a cache miss the forwarder sends to
// a loopback upstream answering NXDOMAIN. Concurrent clients, so the time
// per op is the inverse of the miss throughput; allocations are the whole
// process's per query (the stub upstream allocates nothing).
func BenchmarkForwardMiss(b *testing.B) {
	up := fwdtest.StartNXStub(b)
	f, err := forwarder.New(forwarder.Config{Rules: []forwarder.Rule{{Suffix: ".", Upstreams: []string{up.Addr}}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	s := start(b, server.Config{Store: zonestore.NewStore(), Forwarder: f}).udp
	var seq atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("udp", s)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		m := new(dns.Msg)
		m.SetQuestion("x.", dns.TypeA)
		m.SetEdns0(1232, false)
		buf := make([]byte, 0, 512)
		in := make([]byte, 2048)
		for pb.Next() {
			m.Id++
			m.Question[0].Name = "m" + strconv.FormatUint(seq.Add(1), 10) + ".bench.example."
			pkt, _ := m.PackBuffer(buf)
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(pkt); err != nil {
				b.Error(err)
				return
			}
			for {
				n, err := c.Read(in)
				if err != nil {
					b.Error(err)
					return
				}
				if n >= 12 && in[0] == pkt[0] && in[1] == pkt[1] {
					if in[3]&0xF != dns.RcodeNameError {
						b.Errorf("rcode %d", in[3]&0xF)
						return
					}
					break
				}
			}
		}
	})
}
