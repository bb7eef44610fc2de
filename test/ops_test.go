package test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	proxyproto "github.com/pires/go-proxyproto"

	"hybridns/test/r53fake"
	"hybridns/test/refserver"
)

// opsInstance starts hybridns from a config file with an HTTP endpoint.
func opsInstance(t *testing.T, bin, cfg string, zones []refserver.Zone) (*refserver.Server, string) {
	t.Helper()
	port, _ := refserver.FreePort()
	http := fmt.Sprintf("127.0.0.1:%d", port)
	path := filepath.Join(t.TempDir(), "hybridns.yaml")
	os.WriteFile(path, []byte("http_listen: "+http+"\n"+cfg), 0o644)
	return refserver.StartHybridnsArgs(t, bin, zones, "--config", path), http
}

func writeZoneDir(t *testing.T) (string, []refserver.Zone) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "e2e.test.zone")
	os.WriteFile(file, []byte(e2eZone(1, "192.0.2.1")), 0o644)
	return dir, []refserver.Zone{{Origin: "e2e.test.", File: file}}
}

// metric reads one sample from /metrics by its exact series text.
func metric(t *testing.T, http, series string) float64 {
	t.Helper()
	code, body := httpStatus(t, "GET", "http://"+http+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, series+" ") {
			v, _ := strconv.ParseFloat(strings.TrimPrefix(line, series+" "), 64)
			return v
		}
	}
	return 0
}

// TestMetricsExactCounts: the query counters move by exactly the queries
// the test sends, by path and rcode.
func TestMetricsExactCounts(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	dir, zones := writeZoneDir(t)
	hyb, http := opsInstance(t, bin, "lame_duck: 0s\nzone_dir: "+dir+"\n", zones)
	hit := `hybridns_queries_total{path="authoritative",qtype="A",rcode="NOERROR",view="default"}`
	nx := `hybridns_queries_total{path="authoritative",qtype="A",rcode="NXDOMAIN",view="default"}`
	refused := `hybridns_queries_total{path="refused",qtype="MX",rcode="REFUSED",view="default"}`
	h0, n0, r0 := metric(t, http, hit), metric(t, http, nx), metric(t, http, refused)
	for i := 0; i < 17; i++ {
		ask(t, "udp", hyb.Addr, "www.e2e.test.", dns.TypeA)
	}
	for i := 0; i < 5; i++ {
		ask(t, "tcp", hyb.Addr, fmt.Sprintf("nope%d.e2e.test.", i), dns.TypeA)
	}
	for i := 0; i < 3; i++ {
		ask(t, "udp", hyb.Addr, "elsewhere.test.", dns.TypeMX)
	}
	if d := metric(t, http, hit) - h0; d != 17 {
		t.Errorf("authoritative NOERROR A moved by %v, want 17", d)
	}
	if d := metric(t, http, nx) - n0; d != 5 {
		t.Errorf("authoritative NXDOMAIN A moved by %v, want 5", d)
	}
	if d := metric(t, http, refused) - r0; d != 3 {
		t.Errorf("refused MX moved by %v, want 3", d)
	}
	if v := metric(t, http, `hybridns_zone_records{source="`+zones[0].File+`",view="default",zone="e2e.test."}`); v != 4 {
		t.Errorf("zone record gauge %v, want 4", v)
	}
	if v := metric(t, http, `hybridns_query_duration_seconds_count{path="authoritative"}`); v < 22 {
		t.Errorf("latency histogram count %v", v)
	}
}

// TestReadinessAfterData: /readyz is 503 until the Route 53 zones have
// data, 200 after.
func TestReadinessAfterData(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRETFAKE")
	f := r53fake.New()
	url := f.Start(t)
	zid := f.CreateZone("slow.example", false)
	f.Pause() // no Route 53 answer until the test has seen the state before it
	port, _ := refserver.FreePort()
	http := fmt.Sprintf("127.0.0.1:%d", port)
	hyb := refserver.StartHybridnsArgs(t, bin, nil, "--route53-zone", zid, "--route53-endpoint", url, "--http-listen", http)
	if code, _ := httpStatus(t, "GET", "http://"+http+"/readyz"); code != 503 {
		t.Fatalf("ready before any data: %d", code)
	}
	if code, _ := httpStatus(t, "GET", "http://"+http+"/healthz"); code != 200 {
		t.Fatalf("healthz while loading: %d (the process does answer DNS)", code)
	}
	f.Resume()
	eventually(t, 10*time.Second, "ready after the first sync", func() bool {
		code, _ := httpStatus(t, "GET", "http://"+http+"/readyz")
		return code == 200
	})
	if r := ask(t, "udp", hyb.Addr, "slow.example.", dns.TypeSOA); len(r.Answer) != 1 {
		t.Fatalf("%v", r)
	}
}

// TestDrainWithoutFailures: SIGTERM turns /readyz to 503 at once and keeps
// answering through the lame-duck period: a steady query load sees no
// failure while the load balancer would still send traffic.
func TestDrainWithoutFailures(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	dir, zones := writeZoneDir(t)
	// A long lame duck that the test ends itself (a second SIGTERM) once it
	// has seen enough queries answered during the drain: no guess at how
	// many fit in a period on a loaded machine.
	hyb, http := opsInstance(t, bin, "lame_duck: 60s\nzone_dir: "+dir+"\n", zones)
	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &dns.Client{Net: "udp", Timeout: time.Second}
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				m := new(dns.Msg)
				m.SetQuestion("www.e2e.test.", dns.TypeA)
				r, _, err := c.Exchange(m, hyb.Addr)
				sent.Add(1)
				if err != nil || firstA(r) != "192.0.2.1" {
					failed.Add(1)
				}
			}
		}()
	}
	eventually(t, 10*time.Second, "load running", func() bool { return sent.Load() >= 50 })
	hyb.Signal(syscall.SIGTERM)
	eventually(t, 10*time.Second, "readyz 503 while draining", func() bool {
		code, _ := httpStatus(t, "GET", "http://"+http+"/readyz")
		return code == 503
	})
	during := sent.Load()
	eventually(t, 30*time.Second, "200 queries during the drain", func() bool { return sent.Load() >= during+200 })
	close(stop)
	wg.Wait()
	t.Logf("%d queries, %d during the drain, %d failed", sent.Load(), sent.Load()-during, failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d of %d queries failed while draining", failed.Load(), sent.Load())
	}
	hyb.Signal(syscall.SIGTERM) // the second one ends the lame duck
	if code, err := hyb.Wait(15 * time.Second); err != nil || code != 0 {
		t.Fatalf("exit %d, %v", code, err)
	}
}

// TestReloadBrokenConfig: SIGHUP and POST /reload with a broken config keep
// serving the old one and report every error; a good config then applies.
func TestReloadBrokenConfig(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	dir, zones := writeZoneDir(t)
	up := upstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A 203.0.113.1")
		m.Answer = append(m.Answer, rr)
		w.WriteMsg(m)
	})
	port, _ := refserver.FreePort()
	http := fmt.Sprintf("127.0.0.1:%d", port)
	path := filepath.Join(t.TempDir(), "hybridns.yaml")
	good := fmt.Sprintf("http_listen: %s\nlame_duck: 0s\nzone_dir: %s\nforward_default: [%s]\nallow_recursion: [127.0.0.0/8]\naws: {builtin_rules: false}\n", http, dir, up)
	os.WriteFile(path, []byte(good), 0o644)
	hyb := refserver.StartHybridnsArgs(t, bin, zones, "--config", path)
	fwd := func() string { return firstA(askRD(t, hyb.Addr, "x.example.net.", dns.TypeA, true)) }
	if got := fwd(); got != "203.0.113.1" {
		t.Fatalf("forwarding before reload: %s", got)
	}
	os.WriteFile(path, []byte(good+"allow_recursoin: [10.0.0.0/8]\nviews: [{name: v, clients: [nonsense]}]\n"), 0o644)
	hyb.Signal(syscall.SIGHUP)
	eventually(t, 2*time.Second, "rejection logged", func() bool {
		return strings.Contains(hyb.Log(), "config rejected") && strings.Contains(hyb.Log(), "allow_recursoin")
	})
	code, body := httpStatus(t, "POST", "http://"+http+"/reload")
	if code != 400 || !strings.Contains(body, "allow_recursoin") {
		t.Fatalf("POST /reload with a broken config: %d %s", code, body)
	}
	os.WriteFile(path, []byte(good+"views: [{name: v, clients: [nonsense]}]\n"), 0o644)
	code, body = httpStatus(t, "POST", "http://"+http+"/reload")
	if code != 400 || !strings.Contains(body, "nonsense") {
		t.Fatalf("POST /reload with an invalid view: %d %s", code, body)
	}
	if got := fwd(); got != "203.0.113.1" {
		t.Fatalf("old config stopped serving: %s", got)
	}
	if got := firstA(ask(t, "udp", hyb.Addr, "www.e2e.test.", dns.TypeA)); got != "192.0.2.1" {
		t.Fatalf("zones lost: %s", got)
	}
	// A good change applies at once: no more recursion for loopback.
	os.WriteFile(path, []byte(strings.Replace(good, "allow_recursion: [127.0.0.0/8]", "allow_recursion: [10.0.0.0/8]", 1)), 0o644)
	if code, body := httpStatus(t, "POST", "http://"+http+"/reload"); code != 200 {
		t.Fatalf("good reload: %d %s", code, body)
	}
	if r := askRD(t, hyb.Addr, "x.example.net.", dns.TypeA, true); r.Rcode != dns.RcodeRefused {
		t.Fatalf("new ACL not applied: %v", r)
	}
}

// TestProxyProtocolView: a PROXY v2 header from the load balancer decides
// the client address the ACL sees.
func TestProxyProtocolView(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	up := upstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A 203.0.113.9")
		m.Answer = append(m.Answer, rr)
		w.WriteMsg(m)
	})
	hyb, _ := opsInstance(t, bin, fmt.Sprintf("lame_duck: 0s\nproxy_protocol: {enabled: true, trusted: [127.0.0.0/8]}\nforward_default: [%s]\nallow_recursion: [10.9.0.0/16]\naws: {builtin_rules: false}\n", up), nil)
	viaLB := func(client string) *dns.Msg {
		c, err := net.Dial("tcp", hyb.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		h := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv4,
			SourceAddr:      &net.TCPAddr{IP: net.ParseIP(client), Port: 40000},
			DestinationAddr: &net.TCPAddr{IP: net.ParseIP("10.9.0.53"), Port: 53}}
		if _, err := h.WriteTo(c); err != nil {
			t.Fatal(err)
		}
		co := &dns.Conn{Conn: c}
		m := new(dns.Msg)
		m.SetQuestion("www.example.net.", dns.TypeA)
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if err := co.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
		r, err := co.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := viaLB("10.9.4.4"); r.Rcode != dns.RcodeSuccess || firstA(r) != "203.0.113.9" {
		t.Fatalf("client inside allow_recursion via the LB: %v", r)
	}
	if r := viaLB("192.0.2.200"); r.Rcode != dns.RcodeRefused {
		t.Fatalf("client outside allow_recursion via the LB: %v", r)
	}
}

// TestRRLFlood: one client flooding over UDP is limited (most replies
// dropped, every 2nd limited one truncated) while another client, in
// another /24, is answered normally.
func TestRRLFlood(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	dir, zones := writeZoneDir(t)
	hyb, http := opsInstance(t, bin, "lame_duck: 0s\nzone_dir: "+dir+"\nrate_limit: {responses_per_second: 5, slip: 2, exempt_clients: []}\n", zones)
	flood, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	dst, _ := net.ResolveUDPAddr("udp", hyb.Addr)
	m := new(dns.Msg)
	m.SetQuestion("www.e2e.test.", dns.TypeA)
	pkt, _ := m.Pack()
	const n = 300
	for i := 0; i < n; i++ {
		flood.WriteTo(pkt, dst)
	}
	answered, truncated := 0, 0
	buf := make([]byte, 2048)
	for {
		flood.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		k, _, err := flood.ReadFrom(buf)
		if err != nil {
			break
		}
		var r dns.Msg
		if r.Unpack(buf[:k]) == nil {
			if r.Truncated {
				truncated++
			} else {
				answered++
			}
		}
	}
	t.Logf("flood of %d: %d answered, %d truncated", n, answered, truncated)
	if answered > 10 || truncated < n/4 || answered+truncated > n*3/4 {
		t.Fatalf("flood not limited: %d answered, %d truncated of %d", answered, truncated, n)
	}
	// Another client in another /24 is answered normally, every time.
	for i := 0; i < 5; i++ {
		if r := askFrom(t, "127.0.1.1", hyb.Addr, "www.e2e.test.", dns.TypeA); r.Truncated || firstA(r) != "192.0.2.1" {
			t.Fatalf("innocent client limited: %v", r)
		}
	}
	if v := metric(t, http, `hybridns_server_events_total{event="rrl_limited"}`); v < float64(n)/2 {
		t.Errorf("rrl_limited = %v", v)
	}
}
