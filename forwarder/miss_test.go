package forwarder

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"hybridns/forwarder/fwdtest"
)

// BenchmarkResolveMiss resolves a name never asked before, so every
// iteration is a cache miss that goes to a loopback upstream answering
// NXDOMAIN: the forwarder's whole miss path (coalescing, fetch, upstream
// exchange, scrub, store, reply). Serial: the time is one miss's latency.
func BenchmarkResolveMiss(b *testing.B) {
	up := fwdtest.StartNXStub(b)
	f, _ := newTest(b, Config{Rules: defaultRule(up.Addr)})
	ctx := context.Background()
	req := query("x.example.", dns.TypeA)
	req.SetEdns0(1232, false)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		req.Question[0].Name = "n" + strconv.Itoa(i) + ".bench.example."
		r, err := f.Resolve(ctx, req)
		if err != nil || r.Rcode != dns.RcodeNameError {
			b.Fatalf("miss %d: %v %v", i, r, err)
		}
	}
	if got := up.Queries.Load(); got < int64(i) {
		b.Fatalf("upstream saw %d queries for %d misses", got, i)
	}
}

// BenchmarkResolveMissParallel is BenchmarkResolveMiss with concurrent
// clients: the time per op is the inverse of the miss throughput.
func BenchmarkResolveMissParallel(b *testing.B) {
	up := fwdtest.StartNXStub(b)
	f, _ := newTest(b, Config{Rules: defaultRule(up.Addr)})
	ctx := context.Background()
	var seq atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		req := query("x.example.", dns.TypeA)
		req.SetEdns0(1232, false)
		for pb.Next() {
			req.Question[0].Name = "p" + strconv.FormatUint(seq.Add(1), 10) + ".bench.example."
			if r, err := f.Resolve(ctx, req); err != nil || r.Rcode != dns.RcodeNameError {
				b.Errorf("%v %v", r, err)
				return
			}
		}
	})
}

// packQuery writes exactly what miekg's packer writes for every query shape
// upstreamQuery builds.
func TestPackQueryMatchesMiekg(t *testing.T) {
	f, _ := newTest(t, Config{Rules: defaultRule("127.0.0.1:1")})
	marker := &dns.EDNS0_LOCAL{Code: LoopOptionCode, Data: []byte("12345678")}
	tests := []struct {
		k       cacheKey
		carried []dns.EDNS0
	}{
		{cacheKey{name: "www.example.com.", qtype: dns.TypeA, qclass: dns.ClassINET}, nil},
		{cacheKey{name: ".", qtype: dns.TypeNS, qclass: dns.ClassINET}, nil},
		{cacheKey{name: "x.example.", qtype: dns.TypeAAAA, qclass: dns.ClassINET, do: true, cd: true}, nil},
		{cacheKey{name: `a\.b\032c.example.`, qtype: dns.TypeTXT, qclass: dns.ClassCHAOS}, []dns.EDNS0{marker}},
		{cacheKey{name: "y.example.", qtype: dns.TypeMX, qclass: dns.ClassINET, do: true}, []dns.EDNS0{marker, marker}},
	}
	for _, tc := range tests {
		q := f.upstreamQuery(tc.k, tc.carried)
		q.Id = 0xBEEF
		want, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		got, ok := packQuery(make([]byte, 0, 8), q)
		if !ok || string(got) != string(want) {
			t.Errorf("%s: packQuery ok=%v\n got %x\nwant %x", tc.k.name, ok, got, want)
		}
	}
}
