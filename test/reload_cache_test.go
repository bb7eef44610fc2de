package test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"hybridns/test/refserver"
)

// TestReloadKeepsForwarderCache: a reload that changes cache and upstream
// settings keeps the cached answers (no new upstream query); the new keys
// are accepted by the binary.
func TestReloadKeepsForwarderCache(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	var queries atomic.Int64
	up := upstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Name != "." {
			queries.Add(1)
			rr, _ := dns.NewRR(r.Question[0].Name + " 300 IN A 203.0.113.1")
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})
	port, _ := refserver.FreePort()
	http := fmt.Sprintf("127.0.0.1:%d", port)
	path := filepath.Join(t.TempDir(), "hybridns.yaml")
	base := fmt.Sprintf("http_listen: %s\nlame_duck: 0s\nforward_default: [%s]\nallow_recursion: [127.0.0.0/8]\naws: {builtin_rules: false}\n", http, up)
	os.WriteFile(path, []byte(base), 0o644)
	hyb := refserver.StartHybridnsArgs(t, bin, nil, "--config", path)
	for range 2 {
		if got := firstA(askRD(t, hyb.Addr, "x.example.net.", dns.TypeA, true)); got != "203.0.113.1" {
			t.Fatalf("before reload: %s", got)
		}
	}
	os.WriteFile(path, []byte(base+"cache: {entries: 5000, max_bytes: 67108864}\nupstream: {max_fails: 0, fetches_per_zone: 50, max_in_flight_per_upstream: 200}\n"), 0o644)
	if code, body := httpStatus(t, "POST", "http://"+http+"/reload"); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	if got := firstA(askRD(t, hyb.Addr, "x.example.net.", dns.TypeA, true)); got != "203.0.113.1" {
		t.Fatalf("after reload: %s", got)
	}
	if n := queries.Load(); n != 1 {
		t.Errorf("upstream queries %d, want 1: the reload dropped the cache", n)
	}
	os.WriteFile(path, []byte(base+"cache: {max_bytes: -1}\n"), 0o644)
	if code, body := httpStatus(t, "POST", "http://"+http+"/reload"); code != 400 {
		t.Errorf("negative cache.max_bytes accepted: %d %s", code, body)
	}
}
