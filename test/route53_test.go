package test

import (
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"

	"hybridns/test/r53fake"
	"hybridns/test/refserver"
)

func r53set(name, typ string, ttl int64, values ...string) types.ResourceRecordSet {
	rs := types.ResourceRecordSet{Name: aws.String(name), Type: types.RRType(typ), TTL: aws.Int64(ttl)}
	for _, v := range values {
		rs.ResourceRecords = append(rs.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
	}
	return rs
}

func seed(t *testing.T, f *r53fake.Fake, zone string, sets ...types.ResourceRecordSet) {
	t.Helper()
	for _, rs := range sets {
		if err := f.PutRecordSet(zone, rs); err != nil {
			t.Fatal(err)
		}
	}
}

// askFrom queries from a chosen loopback source address (views by client).
func askFrom(t *testing.T, src, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}}}
	return exchangeMsg(t, c, addr, m)
}

func httpStatus(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRoute53Mirror runs the binary against the Route 53 fake: records,
// a weighted group, an alias to a load balancer resolved through the
// forwarder, split horizon by view, readiness, POST /sync, and a restart
// with the API down that serves everything from the snapshot.
func TestRoute53Mirror(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRETFAKE")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	f := r53fake.New()
	url := f.Start(t)
	pub := f.CreateZone("shop.example", false)
	priv := f.CreateZone("shop.example", true, r53fake.VPC{ID: "vpc-prod", Region: "us-east-1"})
	w := func(rs types.ResourceRecordSet, id string, weight int64) types.ResourceRecordSet {
		rs.SetIdentifier, rs.Weight = aws.String(id), aws.Int64(weight)
		return rs
	}
	seed(t, f, pub,
		r53set("www.shop.example", "A", 300, "198.51.100.10"),
		w(r53set("canary.shop.example", "A", 60, "198.51.100.21"), "stable", 3),
		w(r53set("canary.shop.example", "A", 60, "198.51.100.22"), "canary", 1),
		types.ResourceRecordSet{Name: aws.String("lb.shop.example"), Type: "A",
			AliasTarget: &types.AliasTarget{DNSName: aws.String("dualstack.shop-lb.us-east-1.elb.amazonaws.com."), HostedZoneId: aws.String("Z35SXDOTRQ7X7K")}},
	)
	seed(t, f, priv, r53set("www.shop.example", "A", 60, "10.0.0.10"), r53set("db.shop.example", "A", 60, "10.0.0.20"))

	// The load balancer's name is answered by an "upstream" resolver.
	up := upstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Qtype == dns.TypeA && strings.HasSuffix(r.Question[0].Name, "elb.amazonaws.com.") {
			for _, ip := range []string{"203.0.113.5", "203.0.113.6"} {
				rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A " + ip)
				m.Answer = append(m.Answer, rr)
			}
		}
		w.WriteMsg(m)
	})

	dir := t.TempDir()
	snap := filepath.Join(dir, "snapshots")
	cfgFile := filepath.Join(dir, "hybridns.yaml")
	httpPort, _ := refserver.FreePort()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	os.WriteFile(cfgFile, []byte(fmt.Sprintf(`
http_listen: %s
lame_duck: 0s
snapshot_dir: %s
forward_default: [%s]
allow_recursion: [127.0.0.0/8]
aws: {builtin_rules: false}
views:
  - name: prod
    clients: [127.0.0.2/32]
    vpcs: [vpc-prod]
route53:
  zones: [%s, %s]
  endpoint: %s
  interval: 1h
  rps: 50
  burst: 20
`, httpAddr, snap, up, pub, priv, url)), 0o644)

	hyb := refserver.StartHybridnsArgs(t, bin, []refserver.Zone{{Origin: "shop.example."}}, "--config", cfgFile)
	eventually(t, 5*time.Second, "ready", func() bool { code, _ := httpStatus(t, "GET", "http://"+httpAddr+"/readyz"); return code == 200 })

	t.Run("records and split horizon", func(t *testing.T) {
		for _, tc := range []struct{ src, name, want string }{
			{"127.0.0.1", "www.shop.example.", "198.51.100.10"},
			{"127.0.0.2", "www.shop.example.", "10.0.0.10"},
			{"127.0.0.2", "db.shop.example.", "10.0.0.20"},
			{"127.0.0.1", "db.shop.example.", "NXDOMAIN"},
			{"127.0.0.2", "canary.shop.example.", "NXDOMAIN"}, // the private zone lacks it: no fallback
		} {
			r := askFrom(t, tc.src, hyb.Addr, tc.name, dns.TypeA)
			if got := firstA(r); got != tc.want || !r.Authoritative {
				t.Errorf("%s from %s = %s (aa=%v), want %s", tc.name, tc.src, got, r.Authoritative, tc.want)
			}
		}
	})
	t.Run("alias to a load balancer", func(t *testing.T) {
		r := askFrom(t, "127.0.0.1", hyb.Addr, "lb.shop.example.", dns.TypeA)
		if len(r.Answer) != 2 || !r.Authoritative || r.Answer[0].Header().Name != "lb.shop.example." || r.Answer[0].Header().Ttl > 60 {
			t.Fatalf("%v", r)
		}
	})
	t.Run("weighted within 5%", func(t *testing.T) {
		const n = 10000
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		conn, err := c.Dial(hyb.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		canary := 0
		for i := 0; i < n; i++ {
			m := new(dns.Msg)
			m.SetQuestion("canary.shop.example.", dns.TypeA)
			r, _, err := c.ExchangeWithConn(m, conn)
			if err != nil {
				t.Fatal(err)
			}
			if firstA(r) == "198.51.100.22" {
				canary++
			}
		}
		if got := float64(canary) / n; math.Abs(got-0.25) > 0.05*0.25 {
			t.Fatalf("weight 1 of 4 answered %.3f of the time", got)
		}
	})
	t.Run("change visible after POST /sync", func(t *testing.T) {
		seed(t, f, pub, r53set("www.shop.example", "A", 300, "198.51.100.11"))
		if code, body := httpStatus(t, "POST", "http://"+httpAddr+"/sync?zone="+pub); code != 200 {
			t.Fatalf("POST /sync: %d %s", code, body)
		}
		eventually(t, 3*time.Second, "new address", func() bool {
			return firstA(askFrom(t, "127.0.0.1", hyb.Addr, "www.shop.example.", dns.TypeA)) == "198.51.100.11"
		})
	})
	t.Run("sync --once and export", func(t *testing.T) {
		out, code := runCmd(t, dir, bin, "sync", "--once", "--config", cfgFile)
		if code != 0 || !strings.Contains(out, "shop.example.") || !strings.Contains(out, "API CALLS") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		cmd := exec.Command(bin, "export", "--zone", pub, "--route53-endpoint", url)
		cmd.Env = os.Environ()
		zf, err := cmd.Output()
		if err != nil {
			t.Fatalf("export: %v", err)
		}
		for _, want := range []string{"$ORIGIN shop.example.", "www.shop.example.\t300\tIN\tA\t198.51.100.11", "routing=weighted", "ALIAS A dualstack.shop-lb"} {
			if !strings.Contains(string(zf), want) {
				t.Errorf("export lacks %q:\n%s", want, zf)
			}
		}
	})

	// Restart with the API unreachable: everything comes from the snapshot.
	hyb.Signal(syscall.SIGTERM)
	if code, err := hyb.Wait(5 * time.Second); err != nil || code != 0 {
		t.Fatalf("stop: %d %v", code, err)
	}
	deadCfg := strings.Replace(mustRead(t, cfgFile), "endpoint: "+url, "endpoint: http://127.0.0.1:1", 1)
	os.WriteFile(cfgFile, []byte(deadCfg), 0o644)
	start := time.Now()
	hyb2 := refserver.StartHybridnsArgs(t, bin, []refserver.Zone{{Origin: "shop.example."}}, "--config", cfgFile)
	t.Logf("answering from the snapshot %v after start", time.Since(start).Round(time.Millisecond))
	if got := firstA(askFrom(t, "127.0.0.2", hyb2.Addr, "www.shop.example.", dns.TypeA)); got != "10.0.0.10" {
		t.Fatalf("private zone from snapshot: %s", got)
	}
	if got := firstA(askFrom(t, "127.0.0.1", hyb2.Addr, "www.shop.example.", dns.TypeA)); got != "198.51.100.11" {
		t.Fatalf("public zone from snapshot: %s", got)
	}
	if code, _ := httpStatus(t, "GET", "http://"+httpAddr+"/readyz"); code != 200 {
		t.Fatalf("not ready from the snapshot: %d", code)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRoute53NoDataNoAPI: no snapshot and no API access fail readiness,
// not the process.
func TestRoute53NoDataNoAPI(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRETFAKE")
	httpPort, _ := refserver.FreePort()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", httpPort)
	hyb := refserver.StartHybridnsArgs(t, bin, nil, "--route53-zone", "Z0000000000000000001", "--route53-endpoint", "http://127.0.0.1:1",
		"--http-listen", httpAddr, "--snapshot-dir", t.TempDir())
	// Wait for the event, not a guess at its time: the first sync has
	// failed (logged); after it, readiness is still 503 and the process
	// still answers.
	eventually(t, 30*time.Second, "the first sync to fail", func() bool {
		return strings.Contains(hyb.Log(), "failed")
	})
	if code, _ := httpStatus(t, "GET", "http://"+httpAddr+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz = %d, want 503", code)
	}
	if r := ask(t, "udp", hyb.Addr, "nothing.example.", dns.TypeA); r == nil {
		t.Fatal("process no longer answers DNS")
	}
}

// TestRoute53Throttled: Throttling from Route 53 through a whole failed
// sync never loses a zone, the fake never sees more than the configured
// rate, and the mirror catches up once the throttling ends.
func TestRoute53Throttled(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRETFAKE")
	f := r53fake.New()
	url := f.Start(t)
	var ids []string
	for i := 0; i < 3; i++ {
		id := f.CreateZone(fmt.Sprintf("t%d.example", i), false)
		for j := 0; j < 600; j++ {
			seed(t, f, id, r53set(fmt.Sprintf("h%d.t%d.example", j, i), "A", 60, "192.0.2.1"))
		}
		ids = append(ids, id)
	}
	hyb := refserver.StartHybridnsArgs(t, bin, []refserver.Zone{{Origin: "t0.example."}, {Origin: "t1.example."}, {Origin: "t2.example."}},
		"--route53-zone", strings.Join(ids, ","), "--route53-endpoint", url, "--route53-interval", "2s", "--route53-rps", "5")
	f.ResetRequests()
	f.Throttle(true)
	seed(t, f, ids[0], r53set("h1.t0.example", "A", 60, "192.0.2.2"))
	// Throttled until a sync has failed as a whole (every retry used up):
	// an event, where a wall-clock period could end before anything failed.
	deadline := time.Now().Add(2 * time.Minute) // failure deadline only
	queries := 0
	for !strings.Contains(hyb.Log(), "sync failed, serving the last good data") {
		if time.Now().After(deadline) {
			t.Fatal("no sync failed while throttled")
		}
		for i := range ids {
			r := askFrom(t, "127.0.0.1", hyb.Addr, fmt.Sprintf("h5.t%d.example.", i), dns.TypeA)
			if firstA(r) != "192.0.2.1" {
				t.Fatalf("zone t%d lost while throttled: %v", i, r)
			}
			queries++
		}
		time.Sleep(20 * time.Millisecond) // pacing the probe queries, not synchronizing
	}
	f.Throttle(false)
	eventually(t, 15*time.Second, "change picked up after the throttling", func() bool {
		return firstA(askFrom(t, "127.0.0.1", hyb.Addr, "h1.t0.example.", dns.TypeA)) == "192.0.2.2"
	})
	reqs := f.Requests()
	maxIn, throttled := 0, 0
	for i := range reqs {
		if reqs[i].Throttled() {
			throttled++
		}
		n := 0
		for j := i; j < len(reqs) && reqs[j].At.Sub(reqs[i].At) < time.Second; j++ {
			n++
		}
		maxIn = max(maxIn, n)
	}
	t.Logf("%d queries answered while throttled; %d API requests (%d throttled), at most %d in any second", queries, len(reqs), throttled, maxIn)
	if throttled == 0 || maxIn > 5+10 {
		t.Fatalf("%d throttled, %d requests in one second (limit 5/s, burst 10)", throttled, maxIn)
	}
}
