package test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/test/refserver"
)

// TestSoak runs hybridns for a bounded time (SOAK_SECONDS, default 40, at
// most 120) at a steady query rate while its zone is replaced every second
// and its upstream flaps between answering and silence: no query may go
// unanswered, authoritative answers stay right, forwarded names keep being
// answered (fresh or stale), and the heap stays flat.
func TestSoak(t *testing.T) {
	seconds := 40
	if v := os.Getenv("SOAK_SECONDS"); v != "" {
		fmt.Sscan(v, &seconds)
	}
	seconds = min(max(seconds, 10), 120)
	bin := refserver.BuildHybridns(t)

	var upAlive atomic.Bool
	upAlive.Store(true)
	up := upstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if !upAlive.Load() {
			return // silent: the forwarder times out
		}
		m := new(dns.Msg)
		m.SetReply(r)
		rr, _ := dns.NewRR(r.Question[0].Name + " 2 IN A 198.51.100.7")
		m.Answer = append(m.Answer, rr)
		w.WriteMsg(m)
	})
	dir := t.TempDir()
	file := filepath.Join(dir, "soak.test.zone")
	zone := func(serial int) string {
		s := fmt.Sprintf("$ORIGIN soak.test.\n$TTL 60\n@ IN SOA ns hm %d 60 60 600 30\n@ IN NS ns\nns IN A 127.0.0.1\n", serial)
		for i := 0; i < 2000; i++ {
			s += fmt.Sprintf("h%d IN A 10.0.%d.%d\n", i, i/250, i%250+1)
		}
		return s
	}
	os.WriteFile(file, []byte(zone(1)), 0o644)
	hyb, http := opsInstance(t, bin, fmt.Sprintf("lame_duck: 0s\nzone_dir: %s\nforward_default: [%s]\nallow_recursion: [127.0.0.0/8]\n"+
		"aws: {builtin_rules: false}\nupstream: {timeout: 300ms, deadline: 800ms}\ncache: {stale_ttl: 1h}\nlog: {level: error}\n", dir, up),
		[]refserver.Zone{{Origin: "soak.test.", File: file}})

	// Warm the cache for the forwarded names.
	for i := 0; i < 20; i++ {
		askRD(t, hyb.Addr, fmt.Sprintf("f%d.ext.test.", i), dns.TypeA, true)
	}
	heapStart := metric(t, http, "go_memstats_heap_alloc_bytes")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // swap the zone every second
		defer wg.Done()
		for serial := 2; ; serial++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			tmp := file + ".tmp"
			os.WriteFile(tmp, []byte(zone(serial)), 0o644)
			os.Rename(tmp, file)
		}
	}()
	go func() { // flap the upstream every 1.5 s
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(1500 * time.Millisecond):
				upAlive.Store(!upAlive.Load())
			}
		}
	}()
	var sent, unanswered, wrong atomic.Int64
	var qwg sync.WaitGroup
	for w := 0; w < 4; w++ {
		qwg.Add(1)
		go func(w int) {
			defer qwg.Done()
			c := &dns.Client{Net: "udp", Timeout: 3 * time.Second}
			tick := time.NewTicker(10 * time.Millisecond) // 100 qps per worker
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				m := new(dns.Msg)
				auth := i%2 == 0
				if auth {
					m.SetQuestion(fmt.Sprintf("h%d.soak.test.", (i*31+w)%2000), dns.TypeA)
				} else {
					m.SetQuestion(fmt.Sprintf("f%d.ext.test.", (i+w)%20), dns.TypeA)
				}
				r, _, err := c.Exchange(m, hyb.Addr)
				sent.Add(1)
				switch {
				case err != nil:
					unanswered.Add(1)
				case r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1:
					wrong.Add(1)
				}
			}
		}(w)
	}
	// The heap is compared between the end of the first quarter (zones
	// swapped, caches filled: the steady state) and the end.
	time.Sleep(time.Duration(seconds) * time.Second / 4)
	heapBefore := metric(t, http, "go_memstats_heap_alloc_bytes")
	time.Sleep(time.Duration(seconds) * time.Second * 3 / 4)
	// The soak is long enough in queries too, however slow the machine:
	// keep going until they are sent (a count reached, not a rate required).
	eventually(t, time.Duration(seconds)*time.Second*4, "the soak's queries", func() bool { return sent.Load() >= int64(seconds)*200 })
	close(stop)
	qwg.Wait()
	wg.Wait()
	heapAfter := metric(t, http, "go_memstats_heap_alloc_bytes")
	t.Logf("%d s: %d queries, %d unanswered, %d wrong; heap %.1f MiB at start, %.1f MiB after a quarter, %.1f MiB at the end",
		seconds, sent.Load(), unanswered.Load(), wrong.Load(), heapStart/(1<<20), heapBefore/(1<<20), heapAfter/(1<<20))
	if unanswered.Load() != 0 || wrong.Load() != 0 {
		t.Fatalf("%d unanswered, %d wrong of %d", unanswered.Load(), wrong.Load(), sent.Load())
	}
	if heapAfter > 2*heapBefore+32<<20 {
		t.Fatalf("heap grew from %.1f to %.1f MiB", heapBefore/(1<<20), heapAfter/(1<<20))
	}
}
