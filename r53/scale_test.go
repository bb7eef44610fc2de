package r53

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"hybridns/test/r53fake"
	"hybridns/zonestore"
)

// BenchmarkSync200Zones measures a first sync and a no-change refresh of
// 200 zones × 1,000 record sets at the default 5 requests a second:
//
//	go test -run XXX -bench Sync200Zones -benchtime 1x -timeout 30m ./r53/
func BenchmarkSync200Zones(b *testing.B) {
	f := r53fake.New()
	url := f.Start(b)
	var ids []string
	for i := 0; i < 200; i++ {
		id := f.CreateZone(fmt.Sprintf("z%03d.example", i), false)
		for j := 0; j < 998; j++ {
			put(b, f, id, rrset(fmt.Sprintf("h%d.z%03d.example", j, i), "A", 300, "192.0.2.1"))
		}
		ids = append(ids, id)
	}
	for b.Loop() {
		s, _ := NewSyncer(newClient(b, url, DefaultRPS, DefaultBurst), zonestore.NewStore(), Config{Zones: ids})
		start := time.Now()
		rep, err := s.SyncOnce(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(rep.Calls), "calls/first-sync")
		b.ReportMetric(time.Since(start).Seconds(), "s/first-sync")
		start = time.Now()
		rep, err = s.SyncOnce(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		changed := 0
		for _, z := range rep.Zones {
			if z.Changed {
				changed++
			}
		}
		b.ReportMetric(float64(rep.Calls), "calls/refresh")
		b.ReportMetric(time.Since(start).Seconds(), "s/refresh")
		b.ReportMetric(float64(changed), "swaps/refresh")
	}
}

// BenchmarkSnapshotStart measures the time from nothing to every zone
// served from a snapshot of 1,000,000 records, and the heap per record:
//
//	go test -run XXX -bench SnapshotStart -benchtime 1x -timeout 30m ./r53/
func BenchmarkSnapshotStart(b *testing.B) {
	dir := b.TempDir()
	const zones, perZone = 10, 100_000
	s := &Syncer{cfg: Config{SnapshotDir: dir}}
	for i := 0; i < zones; i++ {
		name := fmt.Sprintf("z%d.example.", i)
		sets := []types.ResourceRecordSet{
			rrset(name, "SOA", 900, "ns-1.awsdns-1.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"),
			rrset(name, "NS", 172800, "ns-1.awsdns-1.com."),
		}
		for j := 0; j < perZone; j++ {
			sets = append(sets, rrset(fmt.Sprintf("h%d.%s", j, name), "A", 300, fmt.Sprintf("10.%d.%d.%d", i, j>>8&255, j&255)))
		}
		if err := s.writeSnapshot(snapshotMeta{ID: fmt.Sprintf("Z%020d", i), Name: name}, sets); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		store := zonestore.NewStore()
		s2, _ := NewSyncer(nil, store, Config{Discover: true, SnapshotDir: dir})
		start := time.Now()
		n, err := s2.LoadSnapshots()
		if err != nil || n != zones || !s2.Ready() {
			b.Fatalf("%d zones: %v", n, err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/ready")
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(zones*perZone), "heap-bytes/record")
		runtime.KeepAlive(store)
		_ = aws.String
	}
}
