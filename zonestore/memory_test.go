package zonestore

import (
	"fmt"
	"net"
	"runtime"
	"testing"

	"github.com/miekg/dns"
)

// buildSynthetic builds a zone of n A records under distinct names, the
// shape of a large Route 53 zone of hosts.
func buildSynthetic(tb testing.TB, n int) *Zone {
	b := NewBuilder("mem.test.")
	soa, _ := dns.NewRR("mem.test. 60 IN SOA ns.mem.test. hm.mem.test. 1 2 3 4 5")
	ns, _ := dns.NewRR("mem.test. 60 IN NS ns.mem.test.")
	b.Add(soa)
	b.Add(ns)
	for i := 0; i < n; i++ {
		b.Add(&dns.A{Hdr: dns.RR_Header{Name: fmt.Sprintf("host-%d.sub%d.mem.test.", i, i%100), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
			A: net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).To4()})
	}
	z, err := b.Build()
	if err != nil {
		tb.Fatal(err)
	}
	return z
}

// BenchmarkZoneMemory reports the heap held per record of a built zone:
//
//	go test -run XXX -bench ZoneMemory -benchtime 1x ./zonestore/
func BenchmarkZoneMemory(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		z := buildSynthetic(b, n)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/record")
		runtime.KeepAlive(z)
	}
}

// BenchmarkLookupLarge measures lookups in a 1,000,000-record zone, where map
// sizes exceed the CPU caches.
func BenchmarkLookupLarge(b *testing.B) {
	z := buildSynthetic(b, 1_000_000)
	names := make([]string, 4096)
	for i := range names {
		names[i] = fmt.Sprintf("host-%d.sub%d.mem.test.", i*241, (i*241)%100)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		z.Lookup(names[i&4095], dns.TypeA)
		i++
	}
}
