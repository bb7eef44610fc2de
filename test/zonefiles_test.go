package test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/test/refserver"
)

// TestZoneFileViews: split horizon with zone files: a view's zone_dir and
// zones: serve its clients, shadowing the default view's zone of the same
// name; other clients get the default zone. Zones are listed BIND style
// (db.corp.example) and may $INCLUDE files of their directory.
func TestZoneFileViews(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	root := t.TempDir()
	outside, inside := filepath.Join(root, "outside"), filepath.Join(root, "inside")
	os.Mkdir(outside, 0o755)
	os.Mkdir(inside, 0o755)
	old := time.Now().Add(-time.Hour)
	for path, text := range map[string]string{
		filepath.Join(outside, "db.corp.example"): e2eZone(1, "203.0.113.10"),
		filepath.Join(inside, "db.corp.example"):  e2eZone(1, "10.0.0.10") + "$INCLUDE hosts.inc\n",
		filepath.Join(inside, "hosts.inc"):        "db 300 IN A 10.0.0.20\n",
	} {
		os.WriteFile(path, []byte(text), 0o644)
		os.Chtimes(path, old, old)
	}
	cfg := "lame_duck: 0s\nzone_dir: outside\nzones: [{name: e2e.test, file: db.corp.example}]\n" +
		"views:\n  - name: inside\n    clients: [127.0.0.2/32]\n    zone_dir: inside\n    zones: [{name: e2e.test, file: db.corp.example}]\n" +
		"  - name: locked\n    clients: [127.0.0.3/32]\n    allow_query: []\n"
	path := filepath.Join(root, "hybridns.yaml")
	port, _ := refserver.FreePort()
	os.WriteFile(path, []byte("http_listen: 127.0.0.1:"+itoa(port)+"\n"+cfg), 0o644)
	out, code := runCmd(t, root, bin, "check", "--config", path)
	if code != 0 || !strings.Contains(out, "view inside") || !strings.Contains(out, "ok: 2 zones") {
		t.Fatalf("check: exit %d\n%s", code, out)
	}
	hyb := refserver.StartHybridnsArgs(t, bin, nil, "--config", path)
	if got := firstA(askFrom(t, "127.0.0.1", hyb.Addr, "www.e2e.test.", dns.TypeA)); got != "203.0.113.10" {
		t.Errorf("default client: %s, want the default view's 203.0.113.10", got)
	}
	if got := firstA(askFrom(t, "127.0.0.2", hyb.Addr, "www.e2e.test.", dns.TypeA)); got != "10.0.0.10" {
		t.Errorf("inside client: %s, want the inside view's 10.0.0.10", got)
	}
	if got := firstA(askFrom(t, "127.0.0.2", hyb.Addr, "db.e2e.test.", dns.TypeA)); got != "10.0.0.20" {
		t.Errorf("inside client, $INCLUDEd name: %s", got)
	}
	if r := askFrom(t, "127.0.0.3", hyb.Addr, "www.e2e.test.", dns.TypeA); r.Rcode != dns.RcodeRefused {
		t.Errorf("client of a view with allow_query []: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	if r := askFrom(t, "127.0.0.1", hyb.Addr, "db.e2e.test.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("default client sees the inside view's name: %v", r)
	}
}

// TestCheckZoneAndUnmatched: `check --zone NAME FILE` works like
// named-checkzone; check warns about files that match no zone and fails
// with nothing to check.
func TestCheckZoneAndUnmatched(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	dir := t.TempDir()
	zones := filepath.Join(dir, "zones")
	os.Mkdir(zones, 0o755)
	os.WriteFile(filepath.Join(zones, "e2e.test.zone"), []byte(e2eZone(7, "192.0.2.1")), 0o644)
	os.WriteFile(filepath.Join(zones, "db.forgotten"), []byte(e2eZone(1, "192.0.2.2")), 0o644)
	out, code := runCmd(t, dir, bin, "check", "--zone", "e2e.test", filepath.Join(zones, "e2e.test.zone"))
	if code != 0 || out != "zone e2e.test/IN: loaded serial 7 (4 records)\nOK\n" {
		t.Errorf("check --zone: exit %d %q", code, out)
	}
	out, code = runCmd(t, dir, bin, "check", "--zone", "other.test", filepath.Join(zones, "e2e.test.zone"))
	if code != 1 || !strings.Contains(out, "record is outside zone other.test.") || !strings.HasSuffix(out, "zone other.test/IN: not loaded due to errors\n") {
		t.Errorf("check --zone, wrong zone: exit %d %q", code, out)
	}
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("listen: [\"127.0.0.1:5300\"]\nzone_dir: zones\n"), 0o644)
	out, code = runCmd(t, dir, bin, "check", "--config", cfg)
	if code != 0 || !strings.Contains(out, "warning: "+filepath.Join(zones, "db.forgotten")+" matches no zone and is not served") {
		t.Errorf("unmatched file: exit %d\n%s", code, out)
	}
	os.WriteFile(cfg, []byte("listen: [\"127.0.0.1:5300\"]\n"), 0o644)
	if out, code = runCmd(t, dir, bin, "check", "--config", cfg); code != 1 || !strings.Contains(out, "nothing to check") {
		t.Errorf("nothing to check: exit %d %q", code, out)
	}
	if out, code = runCmd(t, dir, bin, "check"); code != 1 || !strings.Contains(out, "nothing to check") {
		t.Errorf("no config: exit %d %q", code, out)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
