package r53

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"

	"hybridns/test/r53fake"
	"hybridns/zonestore"
)

// coldZone is one zone of a generated snapshot directory and where it must
// answer.
type coldZone struct {
	name, view, addr string
}

const coldViews = 10

// writeColdSnapshots writes n small zones as Route 53 snapshot files (the
// format writeSnapshot uses, without its fsyncs): every fifth zone public,
// the rest private to one of coldViews VPCs (view "v<k>" for VPC
// "vpc-<k>"), and every 50th private zone named like the public zone
// before it (split horizon). It returns the zones and the syncer config
// that maps the VPCs to the views.
func writeColdSnapshots(tb testing.TB, dir string, n int) ([]coldZone, Config) {
	tb.Helper()
	cfg := Config{Discover: true, SnapshotDir: dir, Views: map[string][]string{}}
	for k := range coldViews {
		cfg.Views[fmt.Sprintf("vpc-%d", k)] = []string{fmt.Sprintf("v%d", k)}
	}
	zones := make([]coldZone, 0, n)
	for i := range n {
		z := coldZone{name: fmt.Sprintf("z%05d.example.", i), addr: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}
		meta := snapshotMeta{ID: fmt.Sprintf("Z%020d", i), Serial: uint32(1000 + i), Synced: time.Unix(1_700_000_000, 0)}
		if i%5 != 0 {
			k := (i / 5) % coldViews
			z.view = fmt.Sprintf("v%d", k)
			meta.Private, meta.VPCs = true, []string{fmt.Sprintf("vpc-%d", k)}
			if i%50 == 1 {
				z.name = zones[i-1].name // shadows the public zone in one view
			}
		}
		meta.Name = z.name
		sets := []types.ResourceRecordSet{
			rrset(z.name, "SOA", 900, "ns-1.awsdns-1.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"),
			rrset(z.name, "NS", 172800, "ns-1.awsdns-1.com."),
			rrset("www."+z.name, "A", 300, z.addr),
			rrset("mail."+z.name, "A", 300, "192.0.2.25"),
		}
		writeSnapshotFile(tb, filepath.Join(dir, meta.ID+snapshotExt), meta, sets)
		zones = append(zones, z)
	}
	return zones, cfg
}

func writeSnapshotFile(tb testing.TB, path string, meta snapshotMeta, sets []types.ResourceRecordSet) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := encodeSnapshot(f, meta, sets); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// cpuTime is the process's user+system CPU time so far: with other work
// on the machine, CPU seconds say more than wall seconds.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// coldLoad loads dir into a fresh store and counts the snapshots published
// on the way.
func coldLoad(tb testing.TB, cfg Config, want int) (*zonestore.Store, *Syncer, int64, time.Duration) {
	tb.Helper()
	store := zonestore.NewStore()
	var publishes atomic.Int64
	store.Observe(func(_, _ *zonestore.Snapshot) { publishes.Add(1) })
	s, err := NewSyncer(nil, store, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	n, err := s.LoadSnapshots()
	took := time.Since(start)
	if err != nil || n != want {
		tb.Fatalf("loaded %d of %d zones: %v", n, want, err)
	}
	if !s.Ready() {
		tb.Fatal("not ready after loading every zone from the snapshot")
	}
	return store, s, publishes.Load(), took
}

// TestColdStartManyZones: 10,000 zones in 10 views load from a snapshot
// directory, each answers in its view (public zones in every view, a
// view's own zone of a public name shadowing it there only), and they are
// published in a few batches, not one snapshot per zone per view.
func TestColdStartManyZones(t *testing.T) {
	const n = 10_000
	zones, cfg := writeColdSnapshots(t, t.TempDir(), n)
	store, s, publishes, took := coldLoad(t, cfg, n)
	t.Logf("%d zones in %d views ready in %v, %d publishes", n, coldViews, took, publishes)
	// One publish per batch; batches are cut by time (snapshotBatch).
	if limit := int64(took/snapshotBatch) + 2; publishes > limit {
		t.Errorf("%d publishes for %d zones in %v; want at most %d", publishes, n, took, limit)
	}
	// The serial is the snapshot header's; the record sets kept for the
	// write path are the file's, untouched.
	if z := store.Load().Zone(zonestore.DefaultView, zones[0].name); z.Serial() != 1000 {
		t.Errorf("%s: serial %d, want the header's 1000", zones[0].name, z.Serial())
	}
	s.mu.Lock()
	soa := aws.ToString(s.zones[fmt.Sprintf("Z%020d", 0)].rsets[0].ResourceRecords[0].Value)
	s.mu.Unlock()
	if !strings.Contains(soa, "awsdns-hostmaster.amazon.com. 1 7200") {
		t.Errorf("kept SOA record set changed: %s", soa)
	}
	shadowed := map[string]string{} // public name → the view whose own zone shadows it
	for _, z := range zones {
		if z.view != "" {
			shadowed[z.name] = z.view
		}
	}
	snap := store.Load()
	check := func(view, name, want string) {
		t.Helper()
		qname := "www." + name
		zone := snap.Find(view, qname)
		if zone == nil {
			t.Fatalf("view %q: no zone for %s", view, qname)
		}
		res := zone.Lookup(qname, dns.TypeA)
		if len(res.Answer) != 1 || res.Answer[0].(*dns.A).A.String() != want {
			t.Fatalf("view %q: %s A = %v, want %s", view, qname, res.Answer, want)
		}
	}
	for i, z := range zones {
		if z.view != "" {
			check(z.view, z.name, z.addr)
			if other := fmt.Sprintf("v%d", (i/5+1)%coldViews); snap.Find(other, "www."+z.name) != nil && shadowed[z.name] == "" {
				t.Fatalf("private zone %s (view %s) is visible in view %s", z.name, z.view, other)
			}
			continue
		}
		check(zonestore.DefaultView, z.name, z.addr)
		for k := range coldViews {
			if v := fmt.Sprintf("v%d", k); shadowed[z.name] != v {
				check(v, z.name, z.addr)
			}
		}
	}
}

// benchLoad is one timed cold start: it reports wall and CPU seconds to
// ready and returns the number of publishes.
func benchLoad(b *testing.B, cfg Config, want int) int64 {
	runtime.GC()
	// As the daemon loads snapshots (cmd/hybridns: GOGC 400 meanwhile).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	cpu := cpuTime(b)
	_, s, publishes, took := coldLoad(b, cfg, want)
	b.ReportMetric(took.Seconds(), "s/ready")
	b.ReportMetric((cpuTime(b) - cpu).Seconds(), "cpu-s/ready")
	// The fingerprints follow in the background; wait for them so that
	// nothing else runs meanwhile, and say how long they took.
	start := time.Now()
	s.mu.Lock()
	var waits []chan struct{}
	for _, z := range s.zones {
		waits = append(waits, z.hashing)
	}
	s.mu.Unlock()
	for _, w := range waits {
		<-w
	}
	b.ReportMetric(time.Since(start).Seconds(), "s/fingerprint-after-ready")
	return publishes
}

// BenchmarkColdStart reports the seconds from nothing to ready for a
// snapshot directory of 10,000 small zones in 10 views, and for one zone
// of 1,000,000 records with the split of the load into reading the file,
// converting record sets and building the zone:
//
//	go test -run XXX -bench ColdStart -benchtime 1x -count 3 ./r53/
func BenchmarkColdStart(b *testing.B) {
	b.Run("10k-zones-10-views", func(b *testing.B) {
		_, cfg := writeColdSnapshots(b, b.TempDir(), 10_000)
		for b.Loop() {
			b.ReportMetric(float64(benchLoad(b, cfg, 10_000)), "publishes")
		}
	})
	b.Run("1M-records", func(b *testing.B) {
		dir := b.TempDir()
		const name = "big.example."
		sets := []types.ResourceRecordSet{
			rrset(name, "SOA", 900, "ns-1.awsdns-1.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"),
			rrset(name, "NS", 172800, "ns-1.awsdns-1.com."),
		}
		for j := range 1_000_000 - 2 {
			sets = append(sets, rrset(fmt.Sprintf("h%d.%s", j, name), "A", 300, fmt.Sprintf("10.%d.%d.%d", j>>16&255, j>>8&255, j&255)))
		}
		path := filepath.Join(dir, "ZBIG"+snapshotExt)
		writeSnapshotFile(b, path, snapshotMeta{ID: "ZBIG", Name: name, Serial: 7}, sets)
		sets = nil
		cfg := Config{Discover: true, SnapshotDir: dir}
		for b.Loop() {
			benchLoad(b, cfg, 1)
			// The parts, one after the other, outside the timed load.
			runtime.GC()
			start := time.Now()
			_, rsets, err := readSnapshot(path)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(time.Since(start).Seconds(), "s/read")
			start = time.Now()
			converted := 0
			convertSets(rsets, func(_ *types.ResourceRecordSet, _ *RecordSet, err error) {
				if err == nil {
					converted++
				}
			})
			if converted != len(rsets) {
				b.Fatalf("%d of %d record sets converted", converted, len(rsets))
			}
			b.ReportMetric(time.Since(start).Seconds(), "s/convert")
			start = time.Now()
			if _, _, err := BuildZone(name, "ZBIG", rsets); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(time.Since(start).Seconds(), "s/convert+build")
		}
	})
}

// TestSnapshotThenUnchangedSync: the fingerprint of a zone loaded from the
// snapshot is computed after the load; a sync that finds the same data
// waits for it (here until its deadline, the hashing held back) and
// publishes nothing: same serial, no new version.
func TestSnapshotThenUnchangedSync(t *testing.T) {
	f := r53fake.New()
	url := f.Start(t)
	zid := f.CreateZone("same.example", false)
	put(t, f, zid, rrset("www.same.example", "A", 60, "10.0.0.9"))
	dir := t.TempDir()
	cfg := Config{Zones: []string{zid}, SnapshotDir: dir}
	s, _ := NewSyncer(newClient(t, url, 1000, 100), zonestore.NewStore(), cfg)
	if _, err := s.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	serial := s.store.Load().Zone(zonestore.DefaultView, "same.example.").Serial()

	store := zonestore.NewStore()
	s2, _ := NewSyncer(newClient(t, url, 1000, 100), store, cfg)
	gate := make(chan struct{})
	s2.fingerprintGate = gate
	if n, err := s2.LoadSnapshots(); n != 1 || err != nil {
		t.Fatalf("loaded %d: %v", n, err)
	}
	loaded := store.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if rep := s2.SyncZone(ctx, zid); rep.Err == nil || rep.Changed {
		t.Fatalf("sync before the fingerprint: changed %v, err %v; want it to wait", rep.Changed, rep.Err)
	}
	close(gate)
	if rep := s2.SyncZone(context.Background(), zid); rep.Err != nil || rep.Changed {
		t.Fatalf("sync after the cold start: changed %v, err %v", rep.Changed, rep.Err)
	}
	if store.Load() != loaded {
		t.Error("unchanged data was published again")
	}
	if got := store.Load().Zone(zonestore.DefaultView, "same.example.").Serial(); got != serial {
		t.Errorf("serial %d after the cold start, %d before", got, serial)
	}
}

// TestLoadLargeSnapshotZone: a zone of many decoding chunks is built while
// its file is decoded — the SOA (here in a middle chunk) carries the
// header's serial, every name answers, the kept record sets are the
// file's — and a file broken near its end loads nothing.
func TestLoadLargeSnapshotZone(t *testing.T) {
	const name, n = "large.example.", 20_000
	var sets []types.ResourceRecordSet
	for j := range n {
		sets = append(sets, rrset(fmt.Sprintf("h%d.%s", j, name), "A", 300, fmt.Sprintf("10.1.%d.%d", j>>8&255, j&255)))
		if j == n/2 {
			sets = append(sets,
				rrset(name, "SOA", 900, "ns-1.awsdns-1.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"),
				rrset(name, "NS", 172800, "ns-1.awsdns-1.com."))
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "ZLARGE"+snapshotExt)
	writeSnapshotFile(t, path, snapshotMeta{ID: "ZLARGE", Name: name, Serial: 4242}, sets)
	if info, err := os.Stat(path); err != nil || info.Size() < 4*decodeChunk {
		t.Fatalf("snapshot of %v bytes (%v); want several decoding chunks", info.Size(), err)
	}
	store, s, _, _ := coldLoad(t, Config{Discover: true, SnapshotDir: dir}, 1)
	z := store.Load().Zone(zonestore.DefaultView, name)
	if z.Serial() != 4242 {
		t.Errorf("serial %d, want the header's 4242", z.Serial())
	}
	for _, j := range []int{0, n / 2, n - 1} {
		q := fmt.Sprintf("h%d.%s", j, name)
		if res := z.Lookup(q, dns.TypeA); len(res.Answer) != 1 {
			t.Errorf("%s: %v", q, res.Answer)
		}
	}
	s.mu.Lock()
	kept := s.zones["ZLARGE"].rsets
	s.mu.Unlock()
	if len(kept) != len(sets) || !reflect.DeepEqual(kept[n/2+1], sets[n/2+1]) {
		t.Errorf("kept %d record sets; SOA %v, want the file's %v", len(kept), kept[n/2+1].ResourceRecords, sets[n/2+1].ResourceRecords)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(data, []byte("\n"))
	lines[len(lines)-3] = []byte(`{"Name":`)
	if err := os.WriteFile(path, bytes.Join(lines, []byte("\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	s2, _ := NewSyncer(nil, zonestore.NewStore(), Config{Discover: true, SnapshotDir: dir})
	if n, err := s2.LoadSnapshots(); n != 0 || err == nil || !strings.Contains(err.Error(), fmt.Sprintf("record set %d:", len(sets)-1)) {
		t.Fatalf("broken file: loaded %d, err %v", n, err)
	}
}

// TestDecodeLinesBlankLines: chunks decode into ranges sized by their
// line count; blank lines leave gaps that are closed before the parts are
// handed on. Sets spanning several chunks, with blank lines in various
// places (none, one per set, runs of them), come out in order, each
// once, and the parts handed to each are the returned slice in order.
func TestDecodeLinesBlankLines(t *testing.T) {
	const n = 30_000 // several 1 MiB chunks
	var sets []types.ResourceRecordSet
	for j := range n {
		sets = append(sets, rrset(fmt.Sprintf("h%d.example.", j), "A", 300, fmt.Sprintf("10.0.%d.%d", j>>8&255, j&255)))
	}
	for _, tc := range []struct {
		name  string
		blank func(j int) string // lines before set j
	}{
		{"none", func(int) string { return "" }},
		{"every-set", func(int) string { return "\n" }},
		{"runs", func(j int) string {
			if j%997 == 0 {
				return strings.Repeat(" \n", 500)
			}
			return ""
		}},
		{"first-chunk-only", func(j int) string {
			if j < 1000 {
				return "\n\n"
			}
			return ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body bytes.Buffer
			for j, rs := range sets {
				body.WriteString(tc.blank(j))
				line, err := json.Marshal(rs)
				if err != nil {
					t.Fatal(err)
				}
				body.Write(line)
				body.WriteByte('\n')
			}
			var parts int
			handed := 0
			got, err := decodeSnapshot("mem", snapshotMeta{Sets: n}, body.Bytes(), func(part []types.ResourceRecordSet) {
				parts++
				handed += len(part)
			})
			if err != nil {
				t.Fatal(err)
			}
			if parts < 2 || handed != n {
				t.Fatalf("%d parts, %d sets handed on; want several parts, %d sets", parts, handed, n)
			}
			if !reflect.DeepEqual(got, sets) {
				for j := range min(len(got), len(sets)) {
					if !reflect.DeepEqual(got[j], sets[j]) {
						t.Fatalf("set %d: %s, want %s", j, aws.ToString(got[j].Name), aws.ToString(sets[j].Name))
					}
				}
				t.Fatalf("%d sets, want %d", len(got), len(sets))
			}
		})
	}
}
