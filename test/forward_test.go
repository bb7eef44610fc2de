package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/test/refserver"
)

// onpremZone is served by Knot, standing in for the on-prem DNS servers.
const onpremZone = `$ORIGIN onprem.example.
$TTL 3600
@     IN SOA ns1 hostmaster 1 3600 600 86400 5
      IN NS  ns1
ns1   IN A   127.0.0.1
host  2 IN A 10.1.2.3
db    IN A   10.1.2.4
`

// corpZone is served by hybridns; app points into the on-prem domain.
const corpZone = `$ORIGIN corp.example.
$TTL 300
@   IN SOA ns1 hostmaster 1 3600 600 86400 60
    IN NS  ns1
ns1 IN A   127.0.0.1
app IN CNAME db.onprem.example.
www IN A   192.0.2.80
`

// onpremSetup starts Knot serving onpremZone (the on-prem resolver) and
// hybridns serving corpZone from a zone directory, forwarding
// onprem.example to Knot, with more flags from args(knot's address).
func onpremSetup(t *testing.T, args func(knot string) []string) (knot, hyb *refserver.Server) {
	t.Helper()
	bin := refserver.BuildHybridns(t)
	dir := t.TempDir()
	onpremFile := filepath.Join(dir, "onprem.example.zone")
	os.WriteFile(onpremFile, []byte(onpremZone), 0o644)
	knot = refserver.StartKnot(t, []refserver.Zone{{Origin: "onprem.example.", File: onpremFile}})
	zones := filepath.Join(dir, "zones")
	os.Mkdir(zones, 0o755)
	corpFile := filepath.Join(zones, "corp.example.zone")
	os.WriteFile(corpFile, []byte(corpZone), 0o644)
	hyb = refserver.StartHybridnsArgs(t, bin, []refserver.Zone{{Origin: "corp.example.", File: corpFile}},
		append([]string{"--zone-dir", zones, "--forward", "onprem.example=" + knot.Addr}, args(knot.Addr)...)...)
	return knot, hyb
}

// askRD sends an EDNS query over UDP with RD as given.
func askRD(t *testing.T, addr, name string, qtype uint16, rd bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = rd
	m.SetEdns0(1232, false)
	return exchangeMsg(t, &dns.Client{Net: "udp", Timeout: 3 * time.Second}, addr, m)
}

// TestForwardingEndToEnd runs hybridns in front of a real Knot instance as
// the on-prem resolver: conditional forwarding, caching with decreasing
// TTLs, a CNAME chased from a served zone through the forwarder, negative
// answers, cache-only answers for RD=0, and serve-stale once Knot is gone.
func TestForwardingEndToEnd(t *testing.T) {
	knot, hyb := onpremSetup(t, func(knot string) []string { return []string{"--allow-recursion", "127.0.0.0/8"} })

	t.Run("conditional forward", func(t *testing.T) {
		r := askRD(t, hyb.Addr, "db.onprem.example.", dns.TypeA, true)
		if r.Rcode != dns.RcodeSuccess || firstA(r) != "10.1.2.4" || r.Authoritative || !r.RecursionAvailable {
			t.Fatalf("%v", r)
		}
	})
	t.Run("rd=0 answered from cache only", func(t *testing.T) {
		r := askRD(t, hyb.Addr, "db.onprem.example.", dns.TypeA, false)
		if firstA(r) != "10.1.2.4" {
			t.Fatalf("cached name: %v", r)
		}
		r = askRD(t, hyb.Addr, "never.onprem.example.", dns.TypeA, false)
		if r.Rcode != dns.RcodeRefused {
			t.Fatalf("uncached name without RD: %v", r)
		}
	})
	t.Run("cname chased through the forwarder", func(t *testing.T) {
		r := askRD(t, hyb.Addr, "app.corp.example.", dns.TypeA, true)
		if len(r.Answer) != 2 || firstA(r) != "10.1.2.4" || !r.RecursionAvailable {
			t.Fatalf("%v", r)
		}
		// Without RD we are only the authority: the CNAME alone.
		r = askRD(t, hyb.Addr, "app.corp.example.", dns.TypeA, false)
		if len(r.Answer) != 1 || !r.Authoritative {
			t.Fatalf("%v", r)
		}
	})
	t.Run("negative answer with the SOA", func(t *testing.T) {
		r := askRD(t, hyb.Addr, "nothere.onprem.example.", dns.TypeA, true)
		if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
			t.Fatalf("%v", r)
		}
	})
	t.Run("ttl decreases in the cache", func(t *testing.T) {
		first := askRD(t, hyb.Addr, "ns1.onprem.example.", dns.TypeA, true)
		if len(first.Answer) != 1 {
			t.Fatalf("%v", first)
		}
		var second *dns.Msg
		eventually(t, 10*time.Second, "the cached TTL to decrease", func() bool {
			second = askRD(t, hyb.Addr, "ns1.onprem.example.", dns.TypeA, true)
			return len(second.Answer) == 1 && second.Answer[0].Header().Ttl < first.Answer[0].Header().Ttl
		})
	})
	t.Run("serve stale when the upstream is gone", func(t *testing.T) {
		r := askRD(t, hyb.Addr, "host.onprem.example.", dns.TypeA, true)
		if firstA(r) != "10.1.2.3" {
			t.Fatalf("%v", r)
		}
		knot.Signal(syscall.SIGKILL)
		knot.Wait(5 * time.Second)
		// The record's TTL is 2 s: until it expires the cache answers with
		// the remaining TTL, after it with the stale answer's 30. Every
		// reply on the way must be the address.
		eventually(t, 15*time.Second, "the stale answer with TTL 30", func() bool {
			r = askRD(t, hyb.Addr, "host.onprem.example.", dns.TypeA, true)
			if firstA(r) != "10.1.2.3" {
				t.Fatalf("want the cached or stale answer, got %v", r)
			}
			return r.Answer[0].Header().Ttl == 30
		})
		// Authoritative answers do not depend on the upstream at all.
		if r := askRD(t, hyb.Addr, "www.corp.example.", dns.TypeA, true); firstA(r) != "192.0.2.80" {
			t.Fatalf("%v", r)
		}
	})
}

// TestRecursionRefusedOutsideACL: a client outside allow_recursion gets
// REFUSED for forwarded names and still gets authoritative answers.
func TestRecursionRefusedOutsideACL(t *testing.T) {
	_, hyb := onpremSetup(t, func(knot string) []string {
		return []string{"--forward-default", knot, "--allow-recursion", "10.0.0.0/8"}
	})
	for _, name := range []string{"db.onprem.example.", "www.example.net."} {
		r := askRD(t, hyb.Addr, name, dns.TypeA, true)
		if r.Rcode != dns.RcodeRefused || r.RecursionAvailable {
			t.Fatalf("%s: %v", name, r)
		}
	}
	if r := askRD(t, hyb.Addr, "www.corp.example.", dns.TypeA, true); firstA(r) != "192.0.2.80" || !r.Authoritative {
		t.Fatalf("%v", r)
	}
}

// TestForwardingLoops: an upstream that is our own address is refused at
// start; a loop through two instances is cut at once with SERVFAIL instead
// of ping-ponging until the deadline.
func TestForwardingLoops(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	out, code := runCmd(t, repoRoot(t), bin, "check", "--listen", "127.0.0.1:5399", "--forward-default", "127.0.0.1:5399")
	if code == 0 || !strings.Contains(strings.ToLower(out), "loop") {
		t.Fatalf("self-forwarding accepted: exit %d: %s", code, out)
	}

	pa, err := refserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	pb, err := refserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	a := refserver.StartHybridnsArgs(t, bin, nil, "--listen", fmt.Sprintf("127.0.0.1:%d", pa),
		"--forward", fmt.Sprintf("loop.test=127.0.0.1:%d", pb), "--allow-recursion", "127.0.0.0/8")
	refserver.StartHybridnsArgs(t, bin, nil, "--listen", fmt.Sprintf("127.0.0.1:%d", pb),
		"--forward", fmt.Sprintf("loop.test=127.0.0.1:%d", pa), "--allow-recursion", "127.0.0.0/8")
	start := time.Now()
	r := askRD(t, a.Addr, "x.loop.test.", dns.TypeA, true)
	if r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("loop answered %s", dns.RcodeToString[r.Rcode])
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("loop took %v to cut", d)
	}
	eventually(t, 2*time.Second, "loop logged", func() bool { return strings.Contains(a.Log(), "forwarding loop") })
}
