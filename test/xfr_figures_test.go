package test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/test/refserver"
	"hybridns/zonestore"
)

// procStatus returns VmRSS and VmHWM of pid in MiB.
func procStatus(pid int) (rss, hwm float64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		var kb float64
		if strings.HasPrefix(l, "VmRSS:") {
			fmt.Sscanf(strings.TrimPrefix(l, "VmRSS:"), "%f", &kb)
			rss = kb / 1024
		}
		if strings.HasPrefix(l, "VmHWM:") {
			fmt.Sscanf(strings.TrimPrefix(l, "VmHWM:"), "%f", &kb)
			hwm = kb / 1024
		}
	}
	return
}

func millionZone(path string, n int) {
	f, _ := os.Create(path)
	defer f.Close()
	fmt.Fprintf(f, "$ORIGIN million.example.\n$TTL 300\n@ IN SOA ns hm 1 3600 600 86400 60\n@ IN NS ns\nns IN A 192.0.2.1\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(f, "h%d IN A 10.%d.%d.%d\n", i, i>>16&255, i>>8&255, i&255)
	}
}

// BenchmarkXfrFigures measures (it asserts nothing about speed): AXFR of a
// 1,000,000-record zone from hybridns and from Knot in the same run (time,
// process memory), and the journal's memory per change. It takes minutes
// and a GiB of memory: go test -run XXX -bench XfrFigures -benchtime 1x ./test/
func BenchmarkXfrFigures(t *testing.B) {
	const n = 1000000
	refserver.ReadyTimeout = 5 * time.Minute
	bin := refserver.BuildHybridns(t)
	dir := t.TempDir()
	zoneDir := filepath.Join(dir, "zones")
	os.Mkdir(zoneDir, 0o755)
	zfile := filepath.Join(zoneDir, "million.example.zone")
	millionZone(zfile, n)
	cfg := filepath.Join(dir, "hybridns.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
lame_duck: 0s
http_listen: "off"
zone_dir: %s
zone_max_records: 2000000
tsig_keys: [{name: xfr-key, algorithm: hmac-sha256, secret: "%s"}]
transfer: [{keys: [xfr-key], networks: [127.0.0.0/8]}]
`, zoneDir, xfrSecret)), 0o644)
	start := time.Now()
	hyb := refserver.StartHybridnsArgs(t, bin, []refserver.Zone{{Origin: "million.example."}}, "--config", cfg)
	t.Logf("hybridns loaded %d records in %v", n, time.Since(start))
	start = time.Now()
	knot := refserver.StartKnotConfig(t, []refserver.Zone{{Origin: "million.example."}}, func(dir string) string {
		return fmt.Sprintf(`key:
  - id: xfr-key
    algorithm: hmac-sha256
    secret: %s
acl:
  - id: xfr
    address: 127.0.0.1
    key: xfr-key
    action: transfer
zone:
  - domain: million.example.
    file: %q
    acl: xfr
    zonefile-sync: -1
    journal-content: none
`, xfrSecret, zfile)
	})
	t.Logf("knotd loaded %d records in %v", n, time.Since(start))
	for _, s := range []*refserver.Server{hyb, knot} {
		rss0, _ := procStatus(s.PID())
		for i := 0; i < 2; i++ {
			rrs, took := axfrCopy(t, s.Addr, "million.example.")
			if len(rrs) != n+4 {
				t.Fatalf("%s: %d records", s.Name, len(rrs))
			}
			rss, hwm := procStatus(s.PID())
			t.Logf("%s AXFR %d: %d records in %v; RSS before %.0f MiB, after %.0f MiB, peak %.0f MiB", s.Name, i, len(rrs), took, rss0, rss, hwm)
		}
	}

	// Journal memory per change: one record changed per version of a
	// 100,000-record zone.
	store := zonestore.NewStore()
	j := store.EnableJournal(zonestore.JournalConfig{Versions: 1000, MaxBytes: 1 << 30})
	build := func(serial uint32, changed int) *zonestore.Zone {
		b := zonestore.NewBuilder("j.example.")
		rr, _ := dns.NewRR(fmt.Sprintf("j.example. 300 IN SOA ns.j.example. hm.j.example. %d 1 1 1 1", serial))
		b.Add(rr)
		ns, _ := dns.NewRR("j.example. 300 IN NS ns.j.example.")
		b.Add(ns)
		for i := 0; i < 100000; i++ {
			v := 1
			if i == changed {
				v = int(serial)
			}
			b.Add(&dns.A{Hdr: dns.RR_Header{Name: fmt.Sprintf("h%d.j.example.", i), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: []byte{10, 0, byte(v >> 8), byte(v)}})
		}
		z, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		return z
	}
	store.PutZone("", build(1, -1))
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	const changes = 200
	var swaps time.Duration
	for s := uint32(2); s < 2+changes; s++ {
		z := build(s, int(s))
		t0 := time.Now()
		store.PutZone("", z) // the journal's diff runs here
		swaps += time.Since(t0)
	}
	t.Logf("publishing a version of a 100,000-record zone with its journal diff: %v on average", swaps/changes)
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	v, b := j.Stats()
	t.Logf("journal: %d changes of one record in a 100,000-record zone: %d wire bytes held (%.0f per change); heap grew %.1f KiB (%.0f bytes per change, zone versions collected)",
		v, b, float64(b)/float64(v), float64(int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc))/1024, float64(int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc))/float64(v))
	runtime.KeepAlive(store)
}
