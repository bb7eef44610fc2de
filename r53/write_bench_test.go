package r53

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/test/r53fake"
	"hybridns/zonestore"
)

// BenchmarkUpdateThroughput sends UPDATEs through the writer at the
// default Route 53 budget (5 requests a second, burst 10) and reports the
// sustained rate: it should be the API's rate, since each update is one
// ChangeResourceRecordSets and nothing else waits on the budget. Run with
// -benchtime 1x: one run sends 60 updates (about 10 s).
//
//	go test -run XXX -bench UpdateThroughput -benchtime 1x ./r53
func BenchmarkUpdateThroughput(b *testing.B) {
	for _, writers := range []int{1, 4} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			f := r53fake.New()
			url := f.Start(b)
			zid := f.CreateZone("tp.example", false)
			store := zonestore.NewStore()
			s, err := NewSyncer(newClient(b, url, DefaultRPS, DefaultBurst), store, Config{Zones: []string{zid}})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.SyncOnce(context.Background()); err != nil {
				b.Fatal(err)
			}
			const n = 60
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				var wg sync.WaitGroup
				next := make(chan int, n)
				for i := range n {
					next <- i
				}
				close(next)
				for range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range next {
							rr, _ := dns.NewRR(fmt.Sprintf("h%d.tp.example. 60 IN A 192.0.2.%d", i, i%250+1))
							res, err := s.Update(context.Background(), zid, nil, []dns.RR{rr}, nil)
							if err != nil || res.Rcode != dns.RcodeSuccess {
								b.Errorf("update %d: %v %v", i, res.Rcode, err)
							}
						}
					}()
				}
				wg.Wait()
				el := time.Since(start)
				b.ReportMetric(float64(n)/el.Seconds(), "updates/s")
				// After the burst of 10 the budget allows 5 a second.
				b.ReportMetric(float64(n-DefaultBurst)/DefaultRPS/el.Seconds(), "of-budget")
				if got := f.Calls("ChangeResourceRecordSets"); got < n {
					b.Fatalf("%d calls for %d updates", got, n)
				}
				f.ResetRequests()
			}
		})
	}
}

// BenchmarkUpdateLatency is the writer's time from an UPDATE to its reply
// (Route 53 accepted it, the zone is patched): what a client waits when the
// API budget is not spent. Each op is one update; the limiter allows 50/s.
//
//	go test -run XXX -bench UpdateLatency -benchtime 40x ./r53
func BenchmarkUpdateLatency(b *testing.B) {
	for _, size := range []int{0, 20000} {
		b.Run(fmt.Sprintf("zone=%d", size), func(b *testing.B) { benchUpdateLatency(b, size) })
	}
}

func benchUpdateLatency(b *testing.B, size int) {
	f := r53fake.New()
	url := f.Start(b)
	zid := f.CreateZone("lat.example", false)
	for i := range size {
		if err := f.PutRecordSet(zid, rrset(fmt.Sprintf("s%d.lat.example.", i), "A", 300, fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255))); err != nil {
			b.Fatal(err)
		}
	}
	store := zonestore.NewStore()
	s, err := NewSyncer(newClient(b, url, 50, 50), store, Config{Zones: []string{zid}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.SyncOnce(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		rr, _ := dns.NewRR(fmt.Sprintf("h%d.lat.example. 60 IN A 192.0.2.%d", i, i%250+1))
		res, err := s.Update(context.Background(), zid, nil, []dns.RR{rr}, nil)
		if err != nil || res.Rcode != dns.RcodeSuccess {
			b.Fatalf("update %d: %v %v", i, res.Rcode, err)
		}
		if z := store.Load().Find("", "lat.example."); z.Lookup(rr.Header().Name, dns.TypeA).Kind != zonestore.Answer {
			b.Fatal("not visible after the reply")
		}
	}
}
