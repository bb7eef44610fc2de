package zonedir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/zonestore"
)

func zoneText(origin string, serial int, addr string) string {
	return fmt.Sprintf("$ORIGIN %s\n@ 60 IN SOA ns hm %d 2 3 4 5\n@ 60 IN NS ns\nns 60 IN A 192.0.2.1\nwww 60 IN A %s\n", origin, serial, addr)
}

func write(t *testing.T, path, text string) {
	t.Helper()
	// Write then rename, as editors and config managers do, so a reader
	// never sees half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func answer(store *zonestore.Store, name string) string {
	z := store.Load().Find(zonestore.DefaultView, name)
	if z == nil {
		return "nozone"
	}
	res := z.Lookup(name, dns.TypeA)
	if len(res.Answer) == 0 {
		return res.Kind.String()
	}
	return res.Answer[0].(*dns.A).A.String()
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOriginOf(t *testing.T) {
	for file, want := range map[string]string{
		"corp.example.zone":         "corp.example.",
		"/x/Corp.Example.zone":      "corp.example.",
		"2.0.192.in-addr.arpa.zone": "2.0.192.in-addr.arpa.",
		"root.zone":                 ".",
		".hidden.zone":              "",
		"corp.example.zone.swp":     "",
		"corp.example":              "",
		".zone":                     "",
	} {
		if got := OriginOf(file); got != want {
			t.Errorf("OriginOf(%q) = %q, want %q", file, got, want)
		}
	}
}

func TestWatchReloads(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.test.zone")
	write(t, a, zoneText("a.test.", 1, "192.0.2.10"))
	store := zonestore.NewStore()
	l := New(dir, store, zonestore.DefaultView, nil)
	if err := l.Scan(); err != nil {
		t.Fatal(err)
	}
	if got := answer(store, "www.a.test."); got != "192.0.2.10" {
		t.Fatalf("initial load: %s", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Watch(ctx, 50*time.Millisecond, time.Hour); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(50 * time.Millisecond) // let the watcher register

	write(t, a, zoneText("a.test.", 2, "192.0.2.11"))
	waitFor(t, 2*time.Second, "changed file reloaded", func() bool { return answer(store, "www.a.test.") == "192.0.2.11" })

	b := filepath.Join(dir, "b.test.zone")
	write(t, b, zoneText("b.test.", 1, "192.0.2.20"))
	waitFor(t, 2*time.Second, "added file loaded", func() bool { return answer(store, "www.b.test.") == "192.0.2.20" })

	// A broken edit keeps the previous version serving.
	write(t, a, zoneText("a.test.", 3, "192.0.2.12")+"bad 60 IN A 999.1.1.1\n")
	time.Sleep(400 * time.Millisecond)
	if got := answer(store, "www.a.test."); got != "192.0.2.11" {
		t.Fatalf("broken file replaced the zone: %s", got)
	}
	// Fixing it takes effect.
	write(t, a, zoneText("a.test.", 4, "192.0.2.13"))
	waitFor(t, 2*time.Second, "fixed file reloaded", func() bool { return answer(store, "www.a.test.") == "192.0.2.13" })

	os.Remove(b)
	waitFor(t, 2*time.Second, "removed file unloaded", func() bool { return answer(store, "www.b.test.") == "nozone" })
}

func TestScanReportsFileAndLine(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "ok.test.zone"), zoneText("ok.test.", 1, "192.0.2.1"))
	write(t, filepath.Join(dir, "bad.test.zone"), zoneText("bad.test.", 1, "192.0.2.1")+"x 60 IN A nonsense\n")
	store := zonestore.NewStore()
	err := New(dir, store, zonestore.DefaultView, nil).Scan()
	if err == nil || !strings.Contains(err.Error(), "bad.test.zone") || !strings.Contains(err.Error(), "line: 6") {
		t.Fatalf("error should name file and line: %v", err)
	}
	if answer(store, "www.ok.test.") != "192.0.2.1" {
		t.Fatal("the good zone must load despite the broken one")
	}
	if _, err := Parse(dir); err == nil {
		t.Fatal("Parse must report the broken file")
	}
}

func TestRejectVeto(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.test.zone"), zoneText("a.test.", 1, "192.0.2.1"))
	store := zonestore.NewStore()
	l := New(dir, store, zonestore.DefaultView, nil)
	l.Reject = func(origin string) error { return fmt.Errorf("zone %s is also a forwarding rule", origin) }
	if err := l.Scan(); err == nil || !strings.Contains(err.Error(), "forwarding rule") {
		t.Fatalf("veto not reported: %v", err)
	}
	if answer(store, "www.a.test.") != "nozone" {
		t.Fatal("vetoed zone published")
	}
}
