package zonedir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

// writeOld writes a file that has not changed for a while (as every file
// is when the server starts), so a scan need not wait for it to be quiet.
func writeOld(t *testing.T, path, text string) {
	t.Helper()
	write(t, path, text)
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
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

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logBuf collects a loader's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLoader(dir string) (*Loader, *zonestore.Store, *logBuf) {
	store := zonestore.NewStore()
	buf := &logBuf{}
	log := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return New(dir, store, zonestore.DefaultView, log), store, buf
}

// watch runs l.Watch until the test ends and returns once it watches, with
// a channel that receives every scan's error.
func watch(t *testing.T, l *Loader) <-chan error {
	t.Helper()
	scans := make(chan error, 100)
	watching := make(chan struct{})
	l.onWatching = func() { close(watching) }
	l.onScan = func(err error) {
		select {
		case scans <- err:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Watch(ctx, time.Hour); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-watching:
	case <-done:
		t.Fatal("watch ended before watching")
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not start")
	}
	return scans
}

// scanWith waits for a scan whose error mentions want.
func scanWith(t *testing.T, scans <-chan error, want string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case err := <-scans:
			if err != nil && strings.Contains(err.Error(), want) {
				return
			}
		case <-timeout:
			t.Fatalf("no scan reported %q", want)
		}
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
	writeOld(t, a, zoneText("a.test.", 1, "192.0.2.10"))
	l, store, _ := newLoader(dir)
	l.SetOptions(Options{Quiet: 50 * time.Millisecond})
	if err := l.Scan(); err != nil {
		t.Fatal(err)
	}
	if got := answer(store, "www.a.test."); got != "192.0.2.10" {
		t.Fatalf("initial load: %s", got)
	}
	scans := watch(t, l)

	write(t, a, zoneText("a.test.", 2, "192.0.2.11"))
	waitFor(t, 5*time.Second, "changed file reloaded", func() bool { return answer(store, "www.a.test.") == "192.0.2.11" })

	b := filepath.Join(dir, "b.test.zone")
	write(t, b, zoneText("b.test.", 1, "192.0.2.20"))
	waitFor(t, 5*time.Second, "added file loaded", func() bool { return answer(store, "www.b.test.") == "192.0.2.20" })

	// A broken edit keeps the previous version serving: wait for the scan
	// that reports it, then look.
	write(t, a, zoneText("a.test.", 3, "192.0.2.12")+"bad 60 IN A 999.1.1.1\n")
	scanWith(t, scans, "a.test.zone")
	if got := answer(store, "www.a.test."); got != "192.0.2.11" {
		t.Fatalf("broken file replaced the zone: %s", got)
	}
	// Fixing it takes effect.
	write(t, a, zoneText("a.test.", 4, "192.0.2.13"))
	waitFor(t, 5*time.Second, "fixed file reloaded", func() bool { return answer(store, "www.a.test.") == "192.0.2.13" })

	os.Remove(b)
	waitFor(t, 5*time.Second, "removed file unloaded", func() bool { return answer(store, "www.b.test.") == "nozone" })
}

func TestScanReportsFileAndLine(t *testing.T) {
	dir := t.TempDir()
	writeOld(t, filepath.Join(dir, "ok.test.zone"), zoneText("ok.test.", 1, "192.0.2.1"))
	writeOld(t, filepath.Join(dir, "bad.test.zone"), zoneText("bad.test.", 1, "192.0.2.1")+"x 60 IN A nonsense\n")
	l, store, _ := newLoader(dir)
	err := l.Scan()
	if err == nil || !strings.Contains(err.Error(), "bad.test.zone") || !strings.Contains(err.Error(), "line: 6") {
		t.Fatalf("error should name file and line: %v", err)
	}
	if answer(store, "www.ok.test.") != "192.0.2.1" {
		t.Fatal("the good zone must load despite the broken one")
	}
	if _, err := Parse(dir, Options{}); err == nil {
		t.Fatal("Parse must report the broken file")
	}
}

// TestRejectVeto: a vetoed zone is not published; its file still claims
// the name, which answers SERVFAIL rather than fall through.
func TestRejectVeto(t *testing.T) {
	dir := t.TempDir()
	writeOld(t, filepath.Join(dir, "a.test.zone"), zoneText("a.test.", 1, "192.0.2.1"))
	l, store, _ := newLoader(dir)
	veto := true
	l.Reject = func(origin string) error {
		if veto {
			return fmt.Errorf("zone %s is also a forwarding rule", origin)
		}
		return nil
	}
	if err := l.Scan(); err == nil || !strings.Contains(err.Error(), "forwarding rule") {
		t.Fatalf("veto not reported: %v", err)
	}
	if got := answer(store, "www.a.test."); got != "servfail" {
		t.Fatalf("vetoed zone: %s, want the claim (servfail)", got)
	}
	// The file did not change, but the verdict did: Rescan retries it.
	veto = false
	if err := l.Rescan(); err != nil {
		t.Fatal(err)
	}
	if got := answer(store, "www.a.test."); got != "192.0.2.1" {
		t.Fatalf("after the veto is lifted: %s", got)
	}
}

// TestBrokenAtStartIsClaimed: a zone file that exists but never loaded
// claims its zone (SERVFAIL, never "no zone", which would be forwarded),
// Ready says which zone is missing, and the log does not pretend a
// previous version serves.
func TestBrokenAtStartIsClaimed(t *testing.T) {
	dir := t.TempDir()
	writeOld(t, filepath.Join(dir, "ok.test.zone"), zoneText("ok.test.", 1, "192.0.2.1"))
	corp := filepath.Join(dir, "corp.example.zone")
	writeOld(t, corp, "$ORIGIN corp.example.\n@ 60 IN NS ns\nns 60 IN A 192.0.2.1\nwww 60 IN A 192.0.2.2\n") // no SOA
	l, store, log := newLoader(dir)
	if err := l.Scan(); err == nil || !strings.Contains(err.Error(), "no SOA") {
		t.Fatalf("missing SOA not reported: %v", err)
	}
	if got := answer(store, "www.corp.example."); got != "servfail" {
		t.Fatalf("www.corp.example.: %s, want servfail", got)
	}
	if got := answer(store, "www.ok.test."); got != "192.0.2.1" {
		t.Fatalf("good zone: %s", got)
	}
	if err := l.Ready(); err == nil || !strings.Contains(err.Error(), "corp.example.") || strings.Contains(err.Error(), "ok.test.") {
		t.Fatalf("Ready = %v, want corp.example. named as never loaded", err)
	}
	if s := log.String(); strings.Contains(s, "keeps serving") || !strings.Contains(s, "never loaded") {
		t.Fatalf("log does not say what is true:\n%s", s)
	}
	writeOld(t, corp, zoneText("corp.example.", 1, "192.0.2.2"))
	if err := l.Scan(); err != nil {
		t.Fatal(err)
	}
	if got := answer(store, "www.corp.example."); got != "192.0.2.2" {
		t.Fatalf("fixed zone: %s", got)
	}
	if err := l.Ready(); err != nil {
		t.Fatalf("Ready after the fix: %v", err)
	}
	// Removing the file removes the zone, claim and all.
	os.Remove(corp)
	l.Scan()
	if got := answer(store, "www.corp.example."); got != "nozone" {
		t.Fatalf("removed zone: %s", got)
	}
}

// TestFailedStatKeepsZone: a file whose stat fails (a broken symlink, a
// symlink loop) is still there: its zone keeps serving. Only a file that is
// gone removes its zone.
func TestFailedStatKeepsZone(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "..data")
	os.Mkdir(data, 0o755)
	writeOld(t, filepath.Join(data, "a.test.zone"), zoneText("a.test.", 1, "192.0.2.1"))
	link := filepath.Join(dir, "a.test.zone")
	if err := os.Symlink(filepath.Join("..data", "a.test.zone"), link); err != nil {
		t.Fatal(err)
	}
	l, store, _ := newLoader(dir)
	if err := l.Scan(); err != nil {
		t.Fatal(err)
	}
	if got := answer(store, "www.a.test."); got != "192.0.2.1" {
		t.Fatalf("symlink inside the directory (ConfigMap): %s", got)
	}
	os.Remove(filepath.Join(data, "a.test.zone")) // the symlink dangles
	if err := l.Scan(); err == nil {
		t.Fatal("a dangling symlink must be reported")
	}
	if got := answer(store, "www.a.test."); got != "192.0.2.1" {
		t.Fatalf("dangling symlink deleted the served zone: %s", got)
	}
	os.Remove(link)
	os.Symlink("a.test.zone", link) // ELOOP
	if err := l.Scan(); err == nil {
		t.Fatal("a symlink loop must be reported")
	}
	if got := answer(store, "www.a.test."); got != "192.0.2.1" {
		t.Fatalf("symlink loop deleted the served zone: %s", got)
	}
	if err := l.Ready(); err != nil {
		t.Fatalf("a zone that loaded once stays ready: %v", err)
	}
	// A listing that fails keeps every zone.
	moved := dir + ".moved"
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(moved) })
	if err := l.Scan(); err == nil {
		t.Fatal("an unreadable directory must be reported")
	}
	if got := answer(store, "www.a.test."); got != "192.0.2.1" {
		t.Fatalf("failed listing deleted a zone: %s", got)
	}
	os.Rename(moved, dir)
	os.Remove(link)
	l.Scan()
	if got := answer(store, "www.a.test."); got != "nozone" {
		t.Fatalf("a removed file keeps its zone: %s", got)
	}
}

// TestFailedStatAtStartIsClaimed: a zone file that cannot be examined at
// start claims its zone too.
func TestFailedStatAtStartIsClaimed(t *testing.T) {
	dir := t.TempDir()
	os.Symlink("missing", filepath.Join(dir, "a.test.zone"))
	l, store, _ := newLoader(dir)
	if err := l.Scan(); err == nil {
		t.Fatal("dangling symlink not reported")
	}
	if got := answer(store, "www.a.test."); got != "servfail" {
		t.Fatalf("%s, want servfail", got)
	}
	if l.Ready() == nil {
		t.Fatal("ready with a zone that never loaded")
	}
}

// TestSpecialFiles: a FIFO, a symlink to /dev/zero and a symlink out of the
// directory are refused without being opened (a FIFO would block the scan
// for good, /dev/zero would fill memory, an outside file would be quoted in
// errors); the good zone next to them loads.
func TestSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	writeOld(t, filepath.Join(dir, "ok.test.zone"), zoneText("ok.test.", 1, "192.0.2.1"))
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.test.zone"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/dev/zero", filepath.Join(dir, "zero.test.zone"))
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("$ORIGIN out.test.\nTOPSECRET-LINE garbage here\n"), 0o600)
	os.Symlink(outside, filepath.Join(dir, "out.test.zone"))
	os.Mkdir(filepath.Join(dir, "dir.test.zone"), 0o755)

	l, store, log := newLoader(dir)
	errc := make(chan error, 1)
	go func() { errc <- l.Scan() }()
	var err error
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("scan blocked")
	}
	for _, want := range []string{"fifo.test.zone: not a regular file (FIFO)", "zero.test.zone: symlink resolves outside", "out.test.zone: symlink resolves outside"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(fmt.Sprint(err), "TOPSECRET") || strings.Contains(log.String(), "TOPSECRET") {
		t.Fatal("content of a file outside the directory was quoted")
	}
	if got := answer(store, "www.ok.test."); got != "192.0.2.1" {
		t.Fatalf("good zone: %s", got)
	}
	for _, name := range []string{"www.fifo.test.", "www.zero.test.", "www.out.test."} {
		if got := answer(store, name); got != "servfail" {
			t.Errorf("%s: %s, want servfail (claimed)", name, got)
		}
	}
	if got := answer(store, "www.dir.test."); got != "nozone" {
		t.Errorf("a directory is not a zone file: %s", got)
	}
	// check (Parse) follows the same rules and does not block either.
	go func() { _, err := Parse(dir, Options{}); errc <- err }()
	select {
	case err = <-errc:
		if err == nil || !strings.Contains(err.Error(), "FIFO") {
			t.Fatalf("Parse: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Parse blocked")
	}
}

func TestLimits(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.test.zone")
	writeOld(t, big, zoneText("big.test.", 1, "192.0.2.1")+strings.Repeat("; padding\n", 200))
	gen := filepath.Join(dir, "gen.test.zone")
	writeOld(t, gen, zoneText("gen.test.", 1, "192.0.2.1")+"$GENERATE 1-5000 h$ 60 IN A 10.0.0.1\n")
	l, store, _ := newLoader(dir)
	l.SetOptions(Options{MaxBytes: 1000, MaxRecords: 1000})
	err := l.Scan()
	if err == nil || !strings.Contains(err.Error(), "big.test.zone") || !strings.Contains(err.Error(), "more than the limit of 1000") {
		t.Fatalf("size limit: %v", err)
	}
	if !errors.Is(err, zonestore.ErrTooManyRecords) || !strings.Contains(err.Error(), "gen.test.zone") {
		t.Fatalf("records limit: %v", err)
	}
	if answer(store, "www.big.test.") != "servfail" || answer(store, "h1.gen.test.") != "servfail" {
		t.Fatal("refused zones must be claimed")
	}
	// Under the default limits both load.
	l.SetOptions(Options{})
	if err := l.Rescan(); err != nil {
		t.Fatal(err)
	}
	if answer(store, "www.big.test.") != "192.0.2.1" || answer(store, "h4999.gen.test.") != "10.0.0.1" {
		t.Fatal("zones within the limits must load")
	}
}

// TestHalfWrittenFileNotLoaded: a file rewritten in place in two steps is
// not read while it is being written, even by a scan that a SIGHUP or
// POST /reload asks for; the whole new version loads once quiet.
func TestHalfWrittenFileNotLoaded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "h.test.zone")
	var old, next strings.Builder
	old.WriteString(zoneText("h.test.", 1, "192.0.2.1"))
	next.WriteString(zoneText("h.test.", 2, "192.0.2.2"))
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&old, "h%d 60 IN A 10.0.0.%d\n", i, i%250)
		fmt.Fprintf(&next, "h%d 60 IN A 10.0.1.%d\n", i, i%250)
	}
	writeOld(t, path, old.String())
	l, store, _ := newLoader(dir)
	if err := l.Scan(); err != nil {
		t.Fatal(err)
	}
	// Long enough that no stall of this test makes the half look quiet.
	l.SetOptions(Options{Quiet: time.Minute})

	text := next.String()
	cut := strings.Index(text, "h150 60 IN A 10.0.1.15") + len("h150 60 IN A 10.0.1.1") // mid-line
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text[:cut]); err != nil {
		t.Fatal(err)
	}
	if err := l.Scan(); err != nil {
		t.Fatalf("a file being written is not an error: %v", err)
	}
	for name, want := range map[string]string{"www.h.test.": "192.0.2.1", "h150.h.test.": "10.0.0.150", "h199.h.test.": "10.0.0.199"} {
		if got := answer(store, name); got != want {
			t.Fatalf("half-written file published: %s = %s, want %s", name, got, want)
		}
	}
	if _, err := f.WriteString(text[cut:]); err != nil {
		t.Fatal(err)
	}
	l.Scan()
	if got := answer(store, "h150.h.test."); got != "10.0.0.150" {
		t.Fatalf("read while still fresh: %s", got)
	}
	l.SetOptions(Options{Quiet: 20 * time.Millisecond})
	waitFor(t, 5*time.Second, "the whole new version loads once quiet", func() bool {
		l.Scan()
		return answer(store, "h150.h.test.") == "10.0.1.150"
	})
	if got := answer(store, "h199.h.test."); got != "10.0.1.199" {
		t.Fatalf("h199: %s", got)
	}
}

// TestSerialMustIncrease: a changed file with the same serial loads with
// BIND's warning, or is refused when serials must increase.
func TestSerialMustIncrease(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.test.zone")
	writeOld(t, path, zoneText("s.test.", 5, "192.0.2.1"))
	l, store, log := newLoader(dir)
	if err := l.Scan(); err != nil {
		t.Fatal(err)
	}
	writeOld(t, path, zoneText("s.test.", 5, "192.0.2.2"))
	if err := l.Scan(); err != nil {
		t.Fatal(err)
	}
	if got := answer(store, "www.s.test."); got != "192.0.2.2" || !strings.Contains(log.String(), "zone serial unchanged") {
		t.Fatalf("same serial: %s, log:\n%s", got, log.String())
	}
	l.SetOptions(Options{SerialMustIncrease: true})
	writeOld(t, path, zoneText("s.test.", 5, "192.0.2.3"))
	if err := l.Scan(); err == nil || !strings.Contains(err.Error(), "zone serial unchanged") {
		t.Fatalf("same serial with must-increase: %v", err)
	}
	writeOld(t, path, zoneText("s.test.", 4, "192.0.2.3"))
	if err := l.Scan(); err == nil || !strings.Contains(err.Error(), "went backwards") {
		t.Fatalf("lower serial with must-increase: %v", err)
	}
	if got := answer(store, "www.s.test."); got != "192.0.2.2" {
		t.Fatalf("refused version served: %s", got)
	}
	writeOld(t, path, zoneText("s.test.", 6, "192.0.2.3"))
	if err := l.Scan(); err != nil {
		t.Fatal(err)
	}
	if got := answer(store, "www.s.test."); got != "192.0.2.3" {
		t.Fatalf("higher serial: %s", got)
	}
}

// TestOneFilePerZone: a second file for a zone already served is refused;
// the first keeps the zone.
func TestOneFilePerZone(t *testing.T) {
	dir := t.TempDir()
	writeOld(t, filepath.Join(dir, "d.test.zone"), zoneText("d.test.", 1, "192.0.2.1"))
	l, store, _ := newLoader(dir)
	if err := l.Scan(); err != nil {
		t.Fatal(err)
	}
	writeOld(t, filepath.Join(dir, "D.test.zone"), "broken\n")
	if err := l.Scan(); err == nil || !strings.Contains(err.Error(), "already served from") {
		t.Fatalf("second file for d.test.: %v", err)
	}
	if got := answer(store, "www.d.test."); got != "192.0.2.1" {
		t.Fatalf("the second file replaced the zone: %s", got)
	}
	if err := l.Ready(); err != nil {
		t.Fatal(err)
	}
}

// TestWatchFallsBackToPolling: a directory that cannot be watched (here:
// not there yet) is polled; its zones load when they appear.
func TestWatchFallsBackToPolling(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	l, store, log := newLoader(dir)
	l.SetOptions(Options{Quiet: 10 * time.Millisecond})
	if err := l.Scan(); err == nil {
		t.Fatal("missing directory not reported")
	}
	if l.Ready() == nil {
		t.Fatal("ready before the directory was read")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Watch(ctx, 20*time.Millisecond); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 5*time.Second, "polling announced", func() bool { return strings.Contains(log.String(), "polling") })
	os.Mkdir(dir, 0o755)
	writeOld(t, filepath.Join(dir, "p.test.zone"), zoneText("p.test.", 1, "192.0.2.3"))
	waitFor(t, 5*time.Second, "zone loaded by polling", func() bool { return answer(store, "www.p.test.") == "192.0.2.3" })
	waitFor(t, 5*time.Second, "ready", func() bool { return l.Ready() == nil })
}
