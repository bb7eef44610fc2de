package zonestore

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

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

// syntheticRRs returns the records of buildSynthetic's zone, made once.
func syntheticRRs(n int) []dns.RR {
	rrs := make([]dns.RR, 0, n+2)
	soa, _ := dns.NewRR("mem.test. 60 IN SOA ns.mem.test. hm.mem.test. 1 2 3 4 5")
	ns, _ := dns.NewRR("mem.test. 60 IN NS ns.mem.test.")
	rrs = append(rrs, soa, ns)
	for i := 0; i < n; i++ {
		rrs = append(rrs, &dns.A{Hdr: dns.RR_Header{Name: fmt.Sprintf("host-%d.sub%d.mem.test.", i, i%100), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
			A: net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).To4()})
	}
	return rrs
}

// BenchmarkBuild times Add and Build of 1,000,000 A records made beforehand
// (the zone-file parser's share is not in it):
//
//	go test -run XXX -bench 'Build$' -benchtime 3x ./zonestore/
func BenchmarkBuild(b *testing.B) {
	rrs := syntheticRRs(1_000_000)
	for _, hint := range []int{0, len(rrs)} {
		b.Run(fmt.Sprintf("grow=%d", hint), func(b *testing.B) {
			b.ReportAllocs()
			var build time.Duration
			cpu0 := cpuTime()
			for b.Loop() {
				zb := NewBuilder("mem.test.")
				zb.Grow(hint)
				for _, rr := range rrs {
					if err := zb.Add(rr); err != nil {
						b.Fatal(err)
					}
				}
				start := time.Now()
				z, err := zb.Build()
				if err != nil {
					b.Fatal(err)
				}
				build += time.Since(start)
				if z.Records() != len(rrs) {
					b.Fatalf("%d records, want %d", z.Records(), len(rrs))
				}
			}
			b.ReportMetric(float64(build.Milliseconds())/float64(b.N), "build-ms/op")
			// CPU time (user+system, page faults included) is steadier
			// than wall time on a machine shared with other work.
			b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}

// cpuTime returns the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// mixedRRs is a zone of the shapes real zones have besides hosts: per 10
// names, 6 with an A (two of them also with AAAA), 1 CNAME, 1 MX with its
// in-zone exchanger, 1 TXT, and a delegation with NS and glue.
func mixedRRs(n int) []dns.RR {
	var rrs []dns.RR
	add := func(s string) {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		rrs = append(rrs, rr)
	}
	add("mix.test. 60 IN SOA ns.mix.test. hm.mix.test. 1 2 3 4 5")
	add("mix.test. 60 IN NS ns.mix.test.")
	add("ns.mix.test. 60 IN A 192.0.2.53")
	for i := 0; len(rrs) < n; i++ {
		h := fmt.Sprintf("h%d.mix.test.", i)
		ip := fmt.Sprintf("10.%d.%d.%d", byte(i>>16), byte(i>>8), byte(i))
		switch i % 10 {
		case 0, 1, 2, 3:
			add(h + " 300 IN A " + ip)
		case 4, 5:
			add(h + " 300 IN A " + ip)
			add(h + " 300 IN AAAA 2001:db8::" + fmt.Sprintf("%x", i&0xffff))
		case 6:
			add(h + fmt.Sprintf(" 300 IN CNAME h%d.mix.test.", i-6))
		case 7:
			add(h + fmt.Sprintf(" 300 IN MX 10 h%d.mix.test.", i-7))
		case 8:
			add(h + " 300 IN TXT \"v=spf1 ip4:" + ip + " -all\"")
		case 9:
			add(h + " 300 IN NS ns." + h)
			add("ns." + h + " 300 IN A " + ip)
		}
	}
	return rrs
}

// BenchmarkZoneMemoryMixed reports the heap held per record of a
// 1,000,000-record zone of mixed types (mixedRRs).
func BenchmarkZoneMemoryMixed(b *testing.B) {
	const n = 1_000_000
	rrs := mixedRRs(n)
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		zb := NewBuilder("mix.test.")
		for _, rr := range rrs {
			if err := zb.Add(rr); err != nil {
				b.Fatal(err)
			}
		}
		z, err := zb.Build()
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(z.Records()), "bytes/record")
		runtime.KeepAlive(z)
	}
}

// BenchmarkLookupWire measures the fast path's lookup and wire append: what
// a UDP answer from a zone costs inside zonestore.
func BenchmarkLookupWire(b *testing.B) {
	z := mustZone(b, testZone, "example.org.")
	// name, query: one of each kind of answer.
	for _, q := range [][2]string{{"hit", "www A"}, {"nodata", "www AAAA"}, {"nxdomain", "nope A"},
		{"referral", "a.b.sub A"}, {"cname", "alias A"}, {"mx", "@ MX"}} {
		label, typ, _ := strings.Cut(q[1], " ")
		qname := label + ".example.org."
		if label == "@" {
			qname = "example.org."
		}
		qtype := dns.StringToType[typ]
		b.Run(q[0], func(b *testing.B) {
			out := make([]byte, 0, 2048)
			b.ReportAllocs()
			for b.Loop() {
				res := z.LookupWire(qname, qtype, nil)
				res.AppendWire(out, len(qname)+1)
			}
		})
	}
}

// TestConcurrentDecode: readers of a fresh zone decode its records (the
// dns.Msg path's cache) at the same time and all get the answers a warm zone
// gives; run with -race.
func TestConcurrentDecode(t *testing.T) {
	queries := []struct {
		name  string
		qtype uint16
	}{
		{"www.example.org.", dns.TypeA}, {"example.org.", dns.TypeMX}, {"a.b.sub.example.org.", dns.TypeA},
		{"example.org.", dns.TypeNS}, {"chain1.example.org.", dns.TypeA}, {"x.wild.example.org.", dns.TypeTXT},
		{"example.org.", dns.TypeANY}, {"_sip._tcp.example.org.", dns.TypeSRV},
	}
	show := func(res Result) string {
		var sb strings.Builder
		fmt.Fprintf(&sb, "%s|", res.Kind)
		for _, sec := range [][]dns.RR{res.Answer, res.Ns, res.Extra} {
			for _, rr := range sec {
				sb.WriteString(rr.String() + ";")
			}
			sb.WriteString("|")
		}
		return sb.String()
	}
	warm := mustZone(t, testZone, "example.org.")
	want := make([]string, len(queries))
	for i, q := range queries {
		want[i] = show(warm.Lookup(q.name, q.qtype))
	}
	z := mustZone(t, testZone, "example.org.")
	const readers = 8
	errs := make(chan error, readers)
	for range readers {
		go func() {
			for i, q := range queries {
				if got := show(z.Lookup(q.name, q.qtype)); got != want[i] {
					errs <- fmt.Errorf("%s %s: got %s want %s", q.name, dns.TypeToString[q.qtype], got, want[i])
					return
				}
			}
			errs <- nil
		}()
	}
	for range readers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestAddKeepsCallersRecord: Add leaves the caller's record as it was (it
// lower-cases a copy), AddOwned lower-cases the record it is handed; both
// store the same data, decoded records equal what was added, and a set
// takes its first record's TTL.
func TestAddKeepsCallersRecord(t *testing.T) {
	base := []string{"o.test. 60 IN SOA NS.o.test. HM.o.test. 1 2 3 4 5", "o.test. 60 IN NS ns.o.test."}
	for _, owned := range []bool{false, true} {
		b := NewBuilder("O.test")
		add := b.Add
		if owned {
			add = b.AddOwned
		}
		for _, s := range base {
			if err := add(mustRR(t, s)); err != nil {
				t.Fatal(err)
			}
		}
		mx := mustRR(t, "Mail.O.test. 300 IN MX 10 MX1.O.test.")
		a1, a2 := mustRR(t, "mx1.o.test. 300 IN A 192.0.2.1"), mustRR(t, "MX1.o.test. 900 IN A 192.0.2.2")
		txt := mustRR(t, `mail.o.test. 300 IN TXT "Keep Case"`)
		for _, rr := range []dns.RR{mx, a1, a2, a1, txt} {
			if err := add(rr); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := mx.(*dns.MX).Mx, map[bool]string{false: "MX1.O.test.", true: "mx1.o.test."}[owned]; got != want {
			t.Errorf("owned=%v: the caller's MX target is %q, want %q", owned, got, want)
		}
		z, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		res := z.Lookup("mail.o.test.", dns.TypeMX)
		if got := fmt.Sprint(res.Answer, res.Extra); got != "[mail.o.test.\t300\tIN\tMX\t10 mx1.o.test.] [mx1.o.test.\t300\tIN\tA\t192.0.2.1 mx1.o.test.\t300\tIN\tA\t192.0.2.2]" {
			t.Errorf("owned=%v: MX answer %s", owned, got)
		}
		if got := fmt.Sprint(z.Lookup("mail.o.test.", dns.TypeTXT).Answer); got != "[mail.o.test.\t300\tIN\tTXT\t\"Keep Case\"]" {
			t.Errorf("owned=%v: TXT answer %s", owned, got)
		}
		if z.Records() != 6 || len(z.RRs()) != 6 {
			t.Errorf("owned=%v: %d records, RRs %d, want 6", owned, z.Records(), len(z.RRs()))
		}
	}
}

// TestLargeRecords: records near the limits (a long SOA, a 60,000-byte TXT
// set member) build and answer as added.
func TestLargeRecords(t *testing.T) {
	label := strings.Repeat("a", 63)
	long := label + "." + label + "." + label + "." + strings.Repeat("b", 50) + ".l.test."
	b := NewBuilder("l.test.")
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: "l.test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60}, Ns: long, Mbox: long, Serial: 1, Minttl: 60}
	txt := &dns.TXT{Hdr: dns.RR_Header{Name: long, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}}
	for range 240 {
		txt.Txt = append(txt.Txt, strings.Repeat("x", 250))
	}
	for _, rr := range []dns.RR{soa, mustRR(t, "l.test. 60 IN NS ns.l.test."), txt} {
		if err := b.Add(rr); err != nil {
			t.Fatal(err)
		}
	}
	z, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if got := z.Lookup(long, dns.TypeTXT).Answer; len(got) != 1 || got[0].String() != txt.String() {
		t.Errorf("TXT of %d strings did not round-trip", len(txt.Txt))
	}
	if res := z.Lookup("nope.l.test.", dns.TypeA); res.Kind != NXDomain || res.Ns[0].(*dns.SOA).Ns != long {
		t.Errorf("negative answer: %v %v", res.Kind, res.Ns)
	}
}
