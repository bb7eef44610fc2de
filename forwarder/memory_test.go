package forwarder

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkCacheEntryMemory reports the heap held per cached answer (a
// typical forwarded reply: one A record), packed wire form included:
//
//	go test -run XXX -bench CacheEntryMemory -benchtime 1x ./forwarder/
func BenchmarkCacheEntryMemory(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		f, err := New(Config{Rules: []Rule{{Suffix: ".", Upstreams: []string{"192.0.2.1:53"}}}, CacheEntries: n * 2})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("host-%d.example.com.", i)
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			m.Response, m.RecursionAvailable = true, true
			rr, _ := dns.NewRR(name + " 300 IN A 198.51.100.1")
			m.Answer = append(m.Answer, rr)
			f.store(cacheKey{name: name, qtype: dns.TypeA, qclass: dns.ClassINET}, m)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := f.Stats().CacheSize; got != n {
			b.Fatalf("%d entries cached", got)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/entry")
		f.Close()
	}
}
