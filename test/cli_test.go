package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/test/refserver"
)

// TestSignals: SIGTERM keeps answering through the lame duck with /readyz
// at 503; SIGINT (Ctrl-C) stops at once, also during a lame duck.
func TestSignals(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	dir, zones := writeZoneDir(t)

	// SIGINT alone: no lame duck although one of a minute is configured.
	hyb, _ := opsInstance(t, bin, "lame_duck: 1m\nzone_dir: "+dir+"\n", zones)
	ask(t, "udp", hyb.Addr, "www.e2e.test.", dns.TypeA)
	hyb.Signal(syscall.SIGINT)
	if code, err := hyb.Wait(20 * time.Second); err != nil || code != 0 {
		t.Fatalf("SIGINT with lame_duck 1m: exit %d, %v (want an exit at once)", code, err)
	}

	// SIGTERM: draining, still answering; then Ctrl-C ends it.
	hyb, http := opsInstance(t, bin, "lame_duck: 1m\nzone_dir: "+dir+"\n", zones)
	ask(t, "udp", hyb.Addr, "www.e2e.test.", dns.TypeA)
	hyb.Signal(syscall.SIGTERM)
	eventually(t, 10*time.Second, "/readyz 503 while draining", func() bool {
		code, _ := httpStatus(t, "GET", "http://"+http+"/readyz")
		return code == 503
	})
	if r := ask(t, "udp", hyb.Addr, "www.e2e.test.", dns.TypeA); len(r.Answer) != 1 {
		t.Errorf("no answer during the lame duck: %v", r)
	}
	if _, err := hyb.Wait(0); err == nil {
		t.Fatal("SIGTERM stopped before the lame duck")
	}
	hyb.Signal(syscall.SIGINT)
	if code, err := hyb.Wait(20 * time.Second); err != nil || code != 0 {
		t.Fatalf("SIGINT during the lame duck: exit %d, %v", code, err)
	}
}

// TestFatalErrorJSON: under --log-format json (or log.format: json in the
// file) a fatal error is one JSON line listing every problem.
func TestFatalErrorJSON(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen: [\"127.0.0.1:5300\"]\nzone-dir: x\nlog: {level: chatty}\n"), 0o644)
	inFile := filepath.Join(dir, "json.yaml")
	os.WriteFile(inFile, []byte("listen: [\"127.0.0.1:5300\"]\nzone-dir: x\nlog: {format: json}\n"), 0o644)
	for _, args := range [][]string{
		{bin, "check", "--config", bad, "--log-format", "json"},
		{bin, "serve", "--config", bad, "--log-format=json"},
		{bin, "check", "--config", inFile},
	} {
		out, code := runCmd(t, dir, args...)
		if code != 1 {
			t.Errorf("%v: exit %d", args[1:], code)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var rec struct {
			Level  string   `json:"level"`
			Msg    string   `json:"msg"`
			Err    string   `json:"err"`
			Errors []string `json:"errors"`
		}
		if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &rec) != nil {
			t.Errorf("%v: not one JSON line:\n%s", args[1:], out)
			continue
		}
		if rec.Level != "ERROR" || rec.Msg != "hybridns stopped" || !strings.Contains(rec.Err, `bad.yaml:2:1: unknown key "zone-dir" (did you mean zone_dir?)`) && !strings.Contains(rec.Err, `json.yaml:2:1: unknown key "zone-dir"`) {
			t.Errorf("%v: %+v", args[1:], rec)
		}
	}
	// Text stays text.
	out, _ := runCmd(t, dir, bin, "check", "--config", bad)
	if !strings.HasPrefix(out, "hybridns: "+bad+":2:1: unknown key") {
		t.Errorf("text: %q", out)
	}
}

// TestQueryLogOnReload: log.queries turns query logging on and off with a
// reload, without a restart.
func TestQueryLogOnReload(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	dir, zones := writeZoneDir(t)
	port, _ := refserver.FreePort()
	httpAddr := "127.0.0.1:" + strconv.Itoa(port)
	path := filepath.Join(t.TempDir(), "hybridns.yaml")
	base := "http_listen: " + httpAddr + "\nlame_duck: 0s\nzone_dir: " + dir + "\n"
	os.WriteFile(path, []byte(base+"log: {queries: 0}\n"), 0o644)
	hyb := refserver.StartHybridnsArgs(t, bin, zones, "--config", path)
	ask(t, "udp", hyb.Addr, "before.e2e.test.", dns.TypeA)
	os.WriteFile(path, []byte(base+"log: {queries: 1}\n"), 0o644)
	if code, body := httpStatus(t, "POST", "http://"+httpAddr+"/reload"); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	ask(t, "udp", hyb.Addr, "after.e2e.test.", dns.TypeA)
	eventually(t, 10*time.Second, "the query after the reload logged", func() bool {
		return strings.Contains(hyb.Log(), "name=after.e2e.test.")
	})
	if strings.Contains(hyb.Log(), "name=before.e2e.test.") {
		t.Error("a query before the reload was logged with log.queries: 0")
	}
}
