package test

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/test/refserver"
)

// countingUpstream is an in-process loopback resolver that answers every A
// query with 203.0.113.66 and remembers every name it was asked.
type countingUpstream struct {
	addr  string
	mu    sync.Mutex
	names []string
}

func newCountingUpstream(t *testing.T) *countingUpstream {
	u := &countingUpstream{}
	u.addr = upstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		u.mu.Lock()
		u.names = append(u.names, strings.ToLower(r.Question[0].Name))
		u.mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		if r.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A 203.0.113.66")
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})
	return u
}

// asked returns how many queries for names at or below suffix it got.
func (u *countingUpstream) asked(suffix string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, name := range u.names {
		if name == suffix || strings.HasSuffix(name, "."+suffix) {
			n++
		}
	}
	return n
}

func zoneFor(origin string, serial int, addr string) string {
	return strings.ReplaceAll(e2eZone(serial, addr), "e2e.test.", origin)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := refserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// TestBrokenZoneAtStartNotForwarded: a zone file that exists but does not
// load (no SOA) claims its zone from the start: its names get SERVFAIL and
// never reach forward_default, /readyz stays 503 naming it, `check` fails,
// and the log does not claim a previous version serves. Once fixed, it
// loads and the instance turns ready.
func TestBrokenZoneAtStartNotForwarded(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	up := newCountingUpstream(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.test.zone")
	writeAtomic(t, good, zoneFor("good.test.", 1, "192.0.2.1"))
	corp := filepath.Join(dir, "corp.example.zone")
	noSOA := "$ORIGIN corp.example.\n$TTL 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\nwww IN A 192.0.2.5\n"
	writeAtomic(t, corp, noSOA)

	out, code := runCmd(t, dir, bin, "check", "--listen", "127.0.0.1:5300", "--zone-dir", dir)
	if code == 0 || !strings.Contains(out, "corp.example.zone") || !strings.Contains(out, "no SOA") {
		t.Fatalf("check: exit %d\n%s", code, out)
	}

	httpAddr := freeAddr(t)
	srv := refserver.StartHybridnsArgs(t, bin, []refserver.Zone{{Origin: "good.test.", File: good}},
		"--zone-dir", dir, "--forward-default", up.addr, "--http-listen", httpAddr)

	for _, netw := range []string{"udp", "tcp"} {
		for _, name := range []string{"www.corp.example.", "corp.example.", "new.corp.example."} {
			for _, rd := range []bool{true, false} {
				m := new(dns.Msg)
				m.SetQuestion(name, dns.TypeA)
				m.RecursionDesired = rd
				r := exchangeMsg(t, &dns.Client{Net: netw, Timeout: 3 * time.Second}, srv.Addr, m)
				if r.Rcode != dns.RcodeServerFailure || len(r.Answer) != 0 {
					t.Fatalf("%s %s rd=%v: want SERVFAIL, got\n%v", netw, name, rd, r)
				}
			}
		}
	}
	// The forwarder works: a name nobody serves does reach the upstream.
	if got := firstA(askRD(t, srv.Addr, "www.elsewhere.test.", dns.TypeA, true)); got != "203.0.113.66" {
		t.Fatalf("forwarding itself is broken: %s", got)
	}
	if n := up.asked("corp.example."); n != 0 {
		t.Fatalf("the upstream was asked %d times about corp.example.", n)
	}
	if up.asked("elsewhere.test.") == 0 {
		t.Fatal("the counting upstream saw nothing")
	}
	code, body := httpStatus(t, "GET", "http://"+httpAddr+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "corp.example.") {
		t.Fatalf("/readyz = %d %q, want 503 naming corp.example.", code, body)
	}
	log := srv.Log()
	if strings.Contains(log, "keeps serving") || strings.Contains(log, "previous version") {
		t.Fatalf("the log claims a previous version serves:\n%s", log)
	}
	if !strings.Contains(log, "never loaded") {
		t.Fatalf("the log does not say the zone never loaded:\n%s", log)
	}

	writeAtomic(t, corp, zoneFor("corp.example.", 1, "192.0.2.5"))
	eventually(t, 10*time.Second, "the fixed zone is served", func() bool {
		return firstA(ask(t, "udp", srv.Addr, "www.corp.example.", dns.TypeA)) == "192.0.2.5"
	})
	eventually(t, 10*time.Second, "ready once every zone loaded", func() bool {
		code, _ := httpStatus(t, "GET", "http://"+httpAddr+"/readyz")
		return code == http.StatusOK
	})
	if n := up.asked("corp.example."); n != 0 {
		t.Fatalf("the upstream was asked %d times about corp.example.", n)
	}
}

// TestSpecialFilesInZoneDir: a FIFO and a symlink to /dev/zero in the zone
// directory neither block the scan nor fill memory: a new good zone still
// loads, SIGHUP rescans, `check` ends, and SIGTERM stops the process.
func TestSpecialFilesInZoneDir(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.test.zone")
	writeAtomic(t, good, zoneFor("good.test.", 1, "192.0.2.1"))
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.test.zone"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.test.zone")); err != nil {
		t.Fatal(err)
	}

	// check must end by itself; the context only keeps a blocked one from
	// outliving the test.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "check", "--listen", "127.0.0.1:5300", "--zone-dir", dir)
	outb, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatal("check blocked on a special file")
	}
	if out := string(outb); err == nil || !strings.Contains(out, "FIFO") || !strings.Contains(out, "outside the zone directory") {
		t.Fatalf("check: %v\n%s", err, out)
	}

	srv := refserver.StartHybridnsArgs(t, bin, []refserver.Zone{{Origin: "good.test.", File: good}}, "--zone-dir", dir)
	for _, name := range []string{"www.fifo.test.", "www.zero.test."} {
		if r := ask(t, "udp", srv.Addr, name, dns.TypeA); r.Rcode != dns.RcodeServerFailure {
			t.Fatalf("%s: %s, want SERVFAIL (claimed, not loaded)", name, dns.RcodeToString[r.Rcode])
		}
	}

	writeAtomic(t, filepath.Join(dir, "new.test.zone"), zoneFor("new.test.", 1, "192.0.2.7"))
	eventually(t, 10*time.Second, "a new zone loads beside the special files", func() bool {
		return firstA(ask(t, "udp", srv.Addr, "www.new.test.", dns.TypeA)) == "192.0.2.7"
	})
	if err := srv.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "SIGHUP rescan finishes", func() bool { return strings.Contains(srv.Log(), "config reloaded") })
	if err := srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := srv.Wait(10 * time.Second); err != nil || code != 0 {
		t.Fatalf("SIGTERM: exit %d, %v\n%s", code, err, srv.Log())
	}
}

var zoneLoadedLine = regexp.MustCompile(`msg="zone loaded" .*zone=h\.test\. .*records=(\d+) serial=(\d+)`)

// TestSlowRewriteNeverPublishesHalf: a zone file overwritten in place in
// two steps, with a rescan (SIGHUP) in between, never serves the first
// half; the whole new version loads once the file is quiet.
func TestSlowRewriteNeverPublishesHalf(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	dir := t.TempDir()
	zones := filepath.Join(dir, "zones")
	os.Mkdir(zones, 0o755)
	path := filepath.Join(zones, "h.test.zone")
	build := func(serial int, net string) string {
		var b strings.Builder
		b.WriteString(zoneFor("h.test.", serial, "192.0.2.1"))
		for i := 0; i < 200; i++ {
			fmt.Fprintf(&b, "h%d IN A %s.%d\n", i, net, i%250)
		}
		return b.String()
	}
	writeAtomic(t, path, build(1, "10.0.0"))
	cfg := filepath.Join(dir, "hybridns.yaml")
	// A quiet period long enough that no stall of this test lets the half
	// pass for a finished file.
	writeAtomic(t, cfg, "zone_dir: "+zones+"\nzone_quiet: 3s\nhttp_listen: \"off\"\nlame_duck: 0s\nlog: {level: debug}\n")
	srv := refserver.StartHybridnsArgs(t, bin, []refserver.Zone{{Origin: "h.test.", File: path}}, "--config", cfg)
	if got := firstA(ask(t, "udp", srv.Addr, "h150.h.test.", dns.TypeA)); got != "10.0.0.150" {
		t.Fatalf("h150: %s", got)
	}

	text := build(2, "10.0.1")
	cut := strings.Index(text, "h150 IN A 10.0.1.150") + len("h150 IN A 10.0.1.15") // mid-line
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events := strings.Count(srv.Log(), "zone dir event")
	if _, err := f.WriteString(text[:cut]); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the watcher sees the write", func() bool { return strings.Count(srv.Log(), "zone dir event") > events })
	reloads := strings.Count(srv.Log(), "config reloaded")
	if err := srv.Signal(syscall.SIGHUP); err != nil { // rescans at once
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the SIGHUP rescan ran", func() bool { return strings.Count(srv.Log(), "config reloaded") > reloads })
	for name, want := range map[string]string{"h150.h.test.": "10.0.0.150", "h199.h.test.": "10.0.0.199", "h0.h.test.": "10.0.0.0"} {
		if got := firstA(ask(t, "udp", srv.Addr, name, dns.TypeA)); got != want {
			t.Fatalf("half-written file published: %s = %s, want %s", name, got, want)
		}
	}
	if _, err := f.WriteString(text[cut:]); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the whole new version loads once quiet", func() bool {
		return firstA(ask(t, "udp", srv.Addr, "h150.h.test.", dns.TypeA)) == "10.0.1.150"
	})
	if got := firstA(ask(t, "udp", srv.Addr, "h199.h.test.", dns.TypeA)); got != "10.0.1.199" {
		t.Fatalf("h199: %s", got)
	}
	loads := zoneLoadedLine.FindAllStringSubmatch(srv.Log(), -1)
	if len(loads) != 2 {
		t.Fatalf("want 2 loads (start, whole new version), got %d:\n%s", len(loads), srv.Log())
	}
	for _, l := range loads {
		if l[1] != "204" {
			t.Fatalf("a load with %s records, want 204 (the half was published):\n%s", l[1], srv.Log())
		}
	}
}

// TestLibrariesLeaveProcessStateAlone: tuning the runtime (GC percent,
// memory limit, threads) is the program's business; no library package
// may call it.
func TestLibrariesLeaveProcessStateAlone(t *testing.T) {
	root := repoRoot(t)
	banned := map[string]bool{"SetGCPercent": true, "SetMemoryLimit": true, "SetMaxThreads": true, "SetMaxStack": true, "GOMAXPROCS": false}
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == "cmd" || rel == "test" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			if (pkg.Name == "debug" && banned[sel.Sel.Name]) || (pkg.Name == "runtime" && sel.Sel.Name == "GOMAXPROCS" && len(call.Args) == 1 && !isZero(call.Args[0])) {
				t.Errorf("%s: %s.%s changes process state from a library", fset.Position(call.Pos()), pkg.Name, sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("only %d library files checked", checked)
	}
}

func isZero(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	return ok && lit.Value == "0"
}
