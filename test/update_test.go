package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"

	"hybridns/r53"
	"hybridns/test/r53fake"
	"hybridns/test/refserver"
)

const (
	ddnsSecret = "c2VjcmV0LWtleS1mb3ItZGRucy11cGRhdGVzLW9mLWh5YnJpZG5z" // hmac-sha256
	dhcpSecret = "ZGhjcC1rZXktc2VjcmV0LWZvci10aGUtZHluLXN1YnRyZWU="
	vpcSecret  = "dnBjLWEta2V5LXNlY3JldC1mb3ItdGhlLXByaXZhdGUtem9uZS1vZi10aGUtdnBjLWEtdmlldy0xMjM0NTY3OA=="
)

// fakeSet returns the fake's record set (name, type) as "TTL v1,v2" with
// values sorted, or "" when it does not exist; aliases as "ALIAS target".
func fakeSet(f *r53fake.Fake, zone, name, typ string) string {
	for _, rs := range f.RecordSets(zone) {
		n, _ := r53.UnescapeName(aws.ToString(rs.Name))
		if n != dns.Fqdn(name) || string(rs.Type) != typ || rs.SetIdentifier != nil {
			continue
		}
		if rs.AliasTarget != nil {
			return "ALIAS " + aws.ToString(rs.AliasTarget.DNSName)
		}
		var vals []string
		for _, r := range rs.ResourceRecords {
			vals = append(vals, aws.ToString(r.Value))
		}
		slices.Sort(vals)
		return fmt.Sprintf("%d %s", aws.ToInt64(rs.TTL), strings.Join(vals, ","))
	}
	return ""
}

// answerSet is what hybridns answers for (name, type): "TTL v1,v2" sorted,
// or the rcode name when there is no answer.
func answerSet(t *testing.T, addr, name string, qtype uint16) string {
	t.Helper()
	r := ask(t, "udp", addr, name, qtype)
	var vals []string
	var ttl uint32
	for _, rr := range r.Answer {
		if rr.Header().Rrtype != qtype {
			continue
		}
		ttl = rr.Header().Ttl
		s := rr.String()
		vals = append(vals, strings.TrimSpace(s[len(rr.Header().String()):]))
	}
	if len(vals) == 0 {
		if r.Rcode == dns.RcodeSuccess {
			return "NODATA"
		}
		return dns.RcodeToString[r.Rcode]
	}
	slices.Sort(vals)
	return fmt.Sprintf("%d %s", ttl, strings.Join(vals, ","))
}

func soaSerial(t *testing.T, addr, zone string) uint32 {
	t.Helper()
	r := ask(t, "udp", addr, zone, dns.TypeSOA)
	if len(r.Answer) != 1 {
		t.Fatalf("SOA %s: %v", zone, r)
	}
	return r.Answer[0].(*dns.SOA).Serial
}

type updateEnv struct {
	f        *r53fake.Fake
	zone     string // hosted zone ID
	private  string // the private zone of the same name (view vpc-a)
	hyb      *refserver.Server
	bin      string
	cfg      string
	dir      string
	httpAddr string
	keyFile  string
}

// startUpdateEnv runs the binary mirroring mirror.example. from the fake,
// with the config shape: an inline key, a BIND key file, BIND
// update-policy rules.
func startUpdateEnv(t *testing.T) *updateEnv {
	t.Helper()
	e := &updateEnv{bin: refserver.BuildHybridns(t), f: r53fake.New(), dir: t.TempDir()}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRETFAKE")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	url := e.f.Start(t)
	e.zone = e.f.CreateZone("mirror.example", false)
	seed(t, e.f, e.zone,
		r53set("www.mirror.example", "A", 300, "192.0.2.1"),
		r53set("two.mirror.example", "A", 300, "192.0.2.21", "192.0.2.22"),
		r53set("old.mirror.example", "A", 120, "192.0.2.30"),
		r53set("old.mirror.example", "TXT", 120, `"gone soon"`),
		r53set("mail.mirror.example", "MX", 3600, "10 mx1.mirror.example."),
		types.ResourceRecordSet{Name: aws.String("lb.mirror.example"), Type: "A",
			AliasTarget: &types.AliasTarget{DNSName: aws.String("www.mirror.example."), HostedZoneId: aws.String(e.zone)}},
		types.ResourceRecordSet{Name: aws.String("w.mirror.example"), Type: "A", TTL: aws.Int64(60), SetIdentifier: aws.String("a"), Weight: aws.Int64(1),
			ResourceRecords: []types.ResourceRecord{{Value: aws.String("192.0.2.40")}}},
	)
	e.private = e.f.CreateZone("mirror.example", true, r53fake.VPC{ID: "vpc-a", Region: "us-east-1"})
	seed(t, e.f, e.private, r53set("www.mirror.example", "A", 60, "10.0.0.1"))
	e.keyFile = filepath.Join(e.dir, "dhcp.key")
	os.WriteFile(e.keyFile, []byte("# written by tsig-keygen\nkey \"dhcp-key\" {\n\talgorithm hmac-sha256;\n\tsecret \""+dhcpSecret+"\";\n};\n"), 0o600)
	port, _ := refserver.FreePort()
	e.httpAddr = fmt.Sprintf("127.0.0.1:%d", port)
	e.cfg = filepath.Join(e.dir, "hybridns.yaml")
	os.WriteFile(e.cfg, []byte(fmt.Sprintf(`
http_listen: %s
lame_duck: 0s
snapshot_dir: %s
views:
  - {name: vpc-a, clients: [127.0.0.2/32], vpcs: [vpc-a]}
tsig_keys:
  - {name: ddns-key, algorithm: hmac-sha256, secret: "%s"}
  - {name: vpc-key, algorithm: hmac-sha512, secret: "%s", view: vpc-a}
tsig_key_files: [%s]
update_policy:                                # per zone, BIND's rule grammar
  mirror.example.:
    - grant ddns-key zonesub ANY
    - grant dhcp-key subdomain dyn.mirror.example. A AAAA
    - grant vpc-key zonesub A
route53:
  zones: [%s, %s]
  endpoint: %s
  interval: 1h
  rps: 5
  change_poll: 200ms
`, e.httpAddr, filepath.Join(e.dir, "snap"), ddnsSecret, vpcSecret, e.keyFile, e.zone, e.private, url)), 0o644)
	e.start(t)
	return e
}

func (e *updateEnv) start(t *testing.T) {
	t.Helper()
	e.hyb = refserver.StartHybridnsArgs(t, e.bin, []refserver.Zone{{Origin: "mirror.example."}}, "--config", e.cfg)
}

// nsupdate runs BIND's nsupdate with args on script (server and zone lines
// added); it returns its output and exit code.
func (e *updateEnv) nsupdate(t *testing.T, args []string, script string) (string, int) {
	t.Helper()
	host, port, _ := strings.Cut(e.hyb.Addr, ":")
	full := fmt.Sprintf("server %s %s\nzone mirror.example.\n%s\nsend\n", host, port, strings.TrimSpace(script))
	cmd := exec.Command("nsupdate", args...)
	cmd.Stdin = strings.NewReader(full)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return string(out), code
}

func ddns() []string { return []string{"-y", "hmac-sha256:ddns-key:" + ddnsSecret} }

// TestUpdateNsupdate drives every prerequisite and update form with BIND's
// nsupdate through hybridns into the Route 53 fake, checking the fake's
// exact state and hybridns's answer right after each reply.
func TestUpdateNsupdate(t *testing.T) {
	if _, err := exec.LookPath("nsupdate"); err != nil {
		t.Fatal("nsupdate is needed (bind9-dnsutils): .ci/run installs it")
	}
	e := startUpdateEnv(t)
	addr := e.hyb.Addr
	cases := []struct {
		name   string
		args   []string
		script string
		fail   string      // "" for success, else the rcode nsupdate reports
		checks [][3]string // name, type, want (fake and answer)
		noAPI  bool        // no ChangeResourceRecordSets expected
	}{
		{name: "add a record", script: "update add new.mirror.example. 300 A 192.0.2.50",
			checks: [][3]string{{"new.mirror.example.", "A", "300 192.0.2.50"}}},
		{name: "add to a set takes the new TTL", script: "update add www.mirror.example. 600 A 192.0.2.2",
			checks: [][3]string{{"www.mirror.example.", "A", "600 192.0.2.1,192.0.2.2"}}},
		{name: "add a duplicate is a no-op", script: "update add www.mirror.example. 600 A 192.0.2.2", noAPI: true,
			checks: [][3]string{{"www.mirror.example.", "A", "600 192.0.2.1,192.0.2.2"}}},
		{name: "delete one record keeps the rest", script: "update delete two.mirror.example. A 192.0.2.21",
			checks: [][3]string{{"two.mirror.example.", "A", "300 192.0.2.22"}}},
		{name: "delete the last record deletes the set", script: "update delete two.mirror.example. A 192.0.2.22",
			checks: [][3]string{{"two.mirror.example.", "A", ""}}},
		{name: "delete an RRset", script: "update delete old.mirror.example. TXT",
			checks: [][3]string{{"old.mirror.example.", "TXT", ""}, {"old.mirror.example.", "A", "120 192.0.2.30"}}},
		{name: "delete a name", script: "update delete old.mirror.example.",
			checks: [][3]string{{"old.mirror.example.", "A", ""}}},
		{name: "TXT with spaces and quotes", script: `update add txt.mirror.example. 300 TXT "hello world" "a\"b"`,
			checks: [][3]string{{"txt.mirror.example.", "TXT", `300 "hello world" "a\"b"`}}},
		{name: "MX replaced in one batch", script: "update delete mail.mirror.example. MX\nupdate add mail.mirror.example. 3600 MX 20 mx2.mirror.example.",
			checks: [][3]string{{"mail.mirror.example.", "MX", "3600 20 mx2.mirror.example."}}},
		{name: "prereq yxdomain holds", script: "prereq yxdomain www.mirror.example.\nupdate add p1.mirror.example. 60 A 192.0.2.61",
			checks: [][3]string{{"p1.mirror.example.", "A", "60 192.0.2.61"}}},
		{name: "prereq nxdomain fails", script: "prereq nxdomain www.mirror.example.\nupdate add p2.mirror.example. 60 A 192.0.2.62", fail: "YXDOMAIN",
			checks: [][3]string{{"p2.mirror.example.", "A", ""}}, noAPI: true},
		{name: "prereq yxdomain fails", script: "prereq yxdomain nope.mirror.example.\nupdate add p2.mirror.example. 60 A 192.0.2.62", fail: "NXDOMAIN",
			checks: [][3]string{{"p2.mirror.example.", "A", ""}}, noAPI: true},
		{name: "prereq yxrrset value-independent", script: "prereq yxrrset www.mirror.example. A\nupdate add p3.mirror.example. 60 A 192.0.2.63",
			checks: [][3]string{{"p3.mirror.example.", "A", "60 192.0.2.63"}}},
		{name: "prereq nxrrset fails", script: "prereq nxrrset www.mirror.example. A\nupdate add p4.mirror.example. 60 A 192.0.2.64", fail: "YXRRSET",
			checks: [][3]string{{"p4.mirror.example.", "A", ""}}, noAPI: true},
		{name: "prereq yxrrset value-dependent holds", script: "prereq yxrrset www.mirror.example. A 192.0.2.1\nprereq yxrrset www.mirror.example. A 192.0.2.2\nupdate add p5.mirror.example. 60 A 192.0.2.65",
			checks: [][3]string{{"p5.mirror.example.", "A", "60 192.0.2.65"}}},
		{name: "prereq yxrrset value-dependent fails", script: "prereq yxrrset www.mirror.example. A 192.0.2.1\nupdate add p6.mirror.example. 60 A 192.0.2.66", fail: "NXRRSET",
			checks: [][3]string{{"p6.mirror.example.", "A", ""}}, noAPI: true},
		{name: "apex NS and SOA are protected", script: "update delete mirror.example. NS\nupdate delete mirror.example. SOA", noAPI: true},
		{name: "alias set refused", script: "update add lb.mirror.example. 60 A 192.0.2.99", fail: "REFUSED", noAPI: true,
			checks: [][3]string{{"lb.mirror.example.", "A", "ALIAS www.mirror.example."}}},
		{name: "routing-policy set refused", script: "update delete w.mirror.example. A", fail: "REFUSED", noAPI: true},
		{name: "unsigned refused", args: []string{}, script: "update add u.mirror.example. 60 A 192.0.2.70", fail: "REFUSED", noAPI: true,
			checks: [][3]string{{"u.mirror.example.", "A", ""}}},
		{name: "key file within policy", args: []string{"-k", ""}, script: "update add h1.dyn.mirror.example. 60 A 192.0.2.80",
			checks: [][3]string{{"h1.dyn.mirror.example.", "A", "60 192.0.2.80"}}},
		{name: "key file outside its subtree refused", args: []string{"-k", ""}, script: "update add h1.mirror.example. 60 A 192.0.2.81", fail: "REFUSED", noAPI: true,
			checks: [][3]string{{"h1.mirror.example.", "A", ""}}},
		{name: "key file with a type it may not touch", args: []string{"-k", ""}, script: `update add h2.dyn.mirror.example. 60 TXT "x"`, fail: "REFUSED", noAPI: true},
		{name: "out of zone", script: "update add www.other.example. 60 A 192.0.2.90", fail: "NOTZONE", noAPI: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := ddns()
			if tc.args != nil {
				args = tc.args
				if len(args) == 2 && args[0] == "-k" {
					args = []string{"-k", e.keyFile}
				}
			}
			before := e.f.Calls("ChangeResourceRecordSets")
			serial := soaSerial(t, addr, "mirror.example.")
			out, code := e.nsupdate(t, args, tc.script)
			if tc.fail == "" {
				if code != 0 {
					t.Fatalf("nsupdate exit %d:\n%s", code, out)
				}
			} else if code == 0 || !strings.Contains(out, tc.fail) {
				t.Fatalf("want failure %s, got exit %d:\n%s", tc.fail, code, out)
			}
			calls := e.f.Calls("ChangeResourceRecordSets") - before
			switch {
			case tc.noAPI && calls != 0:
				t.Errorf("%d ChangeResourceRecordSets calls, want none", calls)
			case !tc.noAPI && tc.fail == "" && calls != 1:
				t.Errorf("%d ChangeResourceRecordSets calls, want exactly one batch", calls)
			}
			for _, c := range tc.checks {
				want := c[2]
				if got := fakeSet(e.f, e.zone, c[0], c[1]); got != want {
					t.Errorf("fake %s %s = %q, want %q", c[0], c[1], got, want)
				}
				if strings.HasPrefix(want, "ALIAS") {
					continue
				}
				if want == "" {
					want = "NXDOMAIN"
				}
				got := answerSet(t, addr, c[0], dns.StringToType[c[1]])
				if want == "NXDOMAIN" && got == "NODATA" {
					got = "NXDOMAIN" // the name still holds other data
				}
				if got != want {
					t.Errorf("answer %s %s = %q right after the update, want %q", c[0], c[1], got, want)
				}
			}
			after := soaSerial(t, addr, "mirror.example.")
			if moved := after != serial; moved != (calls > 0) {
				t.Errorf("serial %d -> %d with %d changes sent", serial, after, calls)
			}
		})
	}
	// The apex is intact after the protected deletes.
	if got := fakeSet(e.f, e.zone, "mirror.example.", "NS"); got == "" {
		t.Error("apex NS deleted")
	}

	t.Run("knsupdate", func(t *testing.T) {
		if _, err := exec.LookPath("knsupdate"); err != nil {
			t.Fatal("knsupdate is needed (knot-dnsutils): .ci/run installs it")
		}
		host, port, _ := strings.Cut(addr, ":")
		cmd := exec.Command("knsupdate", "-y", "hmac-sha256:ddns-key:"+ddnsSecret)
		cmd.Stdin = strings.NewReader(fmt.Sprintf("server %s %s\nzone mirror.example.\nupdate add k.mirror.example. 120 AAAA 2001:db8::7\nsend\nanswer\n", host, port))
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "NOERROR") {
			t.Fatalf("knsupdate: %v\n%s", err, out)
		}
		if got := fakeSet(e.f, e.zone, "k.mirror.example.", "AAAA"); got != "120 2001:db8::7" {
			t.Errorf("fake = %q", got)
		}
		if got := answerSet(t, addr, "k.mirror.example.", dns.TypeAAAA); got != "120 2001:db8::7" {
			t.Errorf("answer = %q", got)
		}
	})

	t.Run("TSIG errors", func(t *testing.T) {
		before := e.f.Calls("ChangeResourceRecordSets")
		for _, tc := range []struct {
			name, key, secret string
			skew              time.Duration
			wantErr           uint16
		}{
			{"unknown key", "nobody.", ddnsSecret, 0, dns.RcodeBadKey},
			{"bad MAC", "ddns-key.", dhcpSecret, 0, dns.RcodeBadSig},
			{"stale time", "ddns-key.", ddnsSecret, -10 * time.Minute, dns.RcodeBadTime},
		} {
			m := new(dns.Msg)
			m.SetUpdate("mirror.example.")
			rr, _ := dns.NewRR("bad.mirror.example. 60 IN A 192.0.2.99")
			m.Insert([]dns.RR{rr})
			m.SetTsig(tc.key, dns.HmacSHA256, 300, time.Now().Add(tc.skew).Unix())
			c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second, TsigSecret: map[string]string{tc.key: tc.secret}}
			r, _, err := c.Exchange(m, addr)
			if r == nil {
				t.Fatalf("%s: no reply: %v", tc.name, err)
			}
			tsig := r.IsTsig()
			if r.Rcode != dns.RcodeNotAuth || tsig == nil || tsig.Error != tc.wantErr {
				t.Errorf("%s: rcode %s tsig %v, want NOTAUTH with %s", tc.name, dns.RcodeToString[r.Rcode], tsig, dns.RcodeToString[int(tc.wantErr)])
			}
		}
		if got := fakeSet(e.f, e.zone, "bad.mirror.example.", "A"); got != "" || e.f.Calls("ChangeResourceRecordSets") != before {
			t.Errorf("a rejected update changed Route 53: %q", got)
		}
	})

	t.Run("over the batch limit refused, never split", func(t *testing.T) {
		before := e.f.Calls("ChangeResourceRecordSets")
		m := new(dns.Msg)
		m.SetUpdate("mirror.example.")
		for i := 0; i < 501; i++ { // UPSERT counts twice: 1,002 > 1,000
			rr, _ := dns.NewRR(fmt.Sprintf("big.mirror.example. 60 IN A 10.1.%d.%d", i/256, i%256))
			m.Insert([]dns.RR{rr})
		}
		m.SetTsig("ddns-key.", dns.HmacSHA256, 300, time.Now().Unix())
		c := &dns.Client{Net: "tcp", Timeout: 10 * time.Second, TsigSecret: map[string]string{"ddns-key.": ddnsSecret}}
		r, _, err := c.Exchange(m, addr)
		if err != nil || r.Rcode != dns.RcodeRefused {
			t.Fatalf("reply %v, err %v; want REFUSED", r, err)
		}
		if e.f.Calls("ChangeResourceRecordSets") != before || fakeSet(e.f, e.zone, "big.mirror.example.", "A") != "" {
			t.Error("an oversized update reached Route 53")
		}
	})

	t.Run("throttled for 10s, answered after Route 53 accepts", func(t *testing.T) {
		throttled := func() int {
			n := 0
			for _, r := range e.f.Requests() {
				if r.Op == "ChangeResourceRecordSets" && r.Throttled() {
					n++
				}
			}
			return n
		}
		before := throttled()
		e.f.Throttle(true)
		start := time.Now()
		type result struct {
			out  string
			code int
		}
		done := make(chan result, 1)
		go func() {
			// Over TCP (-v): a UDP client would resend while we wait for
			// Route 53 (harmless, the update is idempotent, but noisy).
			out, code := e.nsupdate(t, append(ddns(), "-v", "-t", "40"), "update add slow.mirror.example. 60 A 192.0.2.120")
			done <- result{out, code}
		}()
		// The update is being retried against the throttling...
		eventually(t, 10*time.Second, "throttled attempts", func() bool { return throttled() >= before+3 })
		select {
		case r := <-done:
			t.Fatalf("answered while Route 53 still throttles: exit %d\n%s", r.code, r.out)
		default:
		}
		// ...for the 10 s of the scenario, then Route 53 takes it.
		<-time.After(time.Until(start.Add(10 * time.Second)))
		e.f.Throttle(false)
		r := <-done
		if r.code != 0 {
			t.Fatalf("exit %d after %v:\n%s", r.code, time.Since(start), r.out)
		}
		if got := fakeSet(e.f, e.zone, "slow.mirror.example.", "A"); got != "60 192.0.2.120" {
			t.Fatalf("fake = %q", got)
		}
		if got := answerSet(t, addr, "slow.mirror.example.", dns.TypeA); got != "60 192.0.2.120" {
			t.Fatalf("answer = %q", got)
		}
		t.Logf("answered after %v of throttling", time.Since(start).Round(time.Millisecond))
	})

	t.Run("updates racing syncs", func(t *testing.T) {
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				httpStatus(t, "POST", "http://"+e.httpAddr+"/sync?zone="+e.zone)
			}
		}()
		for i := 0; i < 8; i++ {
			if out, code := e.nsupdate(t, ddns(), fmt.Sprintf("update add race%d.mirror.example. 60 A 192.0.2.%d", i, 130+i)); code != 0 {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			if got := answerSet(t, addr, fmt.Sprintf("race%d.mirror.example.", i), dns.TypeA); got != fmt.Sprintf("60 192.0.2.%d", 130+i) {
				t.Fatalf("race%d right after the update = %q", i, got)
			}
		}
		close(stop)
		wg.Wait()
		// Whatever the syncs fetched meanwhile, none undid a write.
		// Wait for a sync that began after the last write and finished.
		after := float64(time.Now().UnixNano()) / 1e9
		eventually(t, 10*time.Second, "a sync after the writes", func() bool {
			code, _ := httpStatus(t, "POST", "http://"+e.httpAddr+"/sync?zone="+e.zone)
			return code == 200 // else the refresh queue is still full
		})
		eventually(t, 15*time.Second, "the sync completed", func() bool { return lastSync(t, e.httpAddr, e.zone) > after })
		for i := 0; i < 8; i++ {
			name := fmt.Sprintf("race%d.mirror.example.", i)
			if got := answerSet(t, addr, name, dns.TypeA); got != fmt.Sprintf("60 192.0.2.%d", 130+i) {
				t.Errorf("%s after syncs = %q", name, got)
			}
		}
	})

	t.Run("the view decides between the private and the public zone", func(t *testing.T) {
		// A key bound to view vpc-a changes the private zone, from anywhere.
		out, code := e.nsupdate(t, []string{"-y", "hmac-sha512:vpc-key:" + vpcSecret}, "update add v1.mirror.example. 60 A 10.0.0.71")
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		// A client inside the view changes the private zone with any key.
		out, code = e.nsupdate(t, ddns(), "local 127.0.0.2\nupdate add v2.mirror.example. 60 A 10.0.0.72")
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		for _, c := range []struct{ name, zone, other string }{{"v1.mirror.example.", e.private, e.zone}, {"v2.mirror.example.", e.private, e.zone}} {
			if got := fakeSet(e.f, c.zone, c.name, "A"); got == "" {
				t.Errorf("%s not in the private zone", c.name)
			}
			if got := fakeSet(e.f, c.other, c.name, "A"); got != "" {
				t.Errorf("%s leaked into the public zone: %q", c.name, got)
			}
			if got := firstA(askFrom(t, "127.0.0.2", addr, c.name, dns.TypeA)); !strings.HasPrefix(got, "10.0.0.7") {
				t.Errorf("%s from the view = %s", c.name, got)
			}
			if got := firstA(askFrom(t, "127.0.0.1", addr, c.name, dns.TypeA)); got != "NXDOMAIN" {
				t.Errorf("%s from outside the view = %s", c.name, got)
			}
		}
	})

	t.Run("a query signed with a view's key is answered from that view", func(t *testing.T) {
		for _, tc := range []struct{ key, secret, alg, want string }{
			{"vpc-key.", vpcSecret, dns.HmacSHA512, "10.0.0.1"},   // bound to vpc-a: the private zone
			{"ddns-key.", ddnsSecret, dns.HmacSHA256, "192.0.2."}, // no view: the client's (default)
		} {
			m := new(dns.Msg)
			m.SetQuestion("www.mirror.example.", dns.TypeA)
			m.SetTsig(tc.key, tc.alg, 300, time.Now().Unix())
			c := &dns.Client{Net: "udp", Timeout: 2 * time.Second, TsigSecret: map[string]string{tc.key: tc.secret}}
			r, _, err := c.Exchange(m, addr) // verifies the reply's TSIG
			if err != nil {
				t.Fatalf("%s: %v", tc.key, err)
			}
			if got := firstA(r); !strings.HasPrefix(got, tc.want) || r.IsTsig() == nil {
				t.Errorf("signed with %s: %s (signed reply %v), want %s", tc.key, got, r.IsTsig() != nil, tc.want)
			}
		}
	})

	t.Run("change tracked to INSYNC", func(t *testing.T) {
		e.f.SetChangeDelay(time.Second)
		defer e.f.SetChangeDelay(0)
		start := time.Now()
		if out, code := e.nsupdate(t, ddns(), "update add tracked.mirror.example. 60 A 192.0.2.140"); code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		replied := time.Since(start)
		if got := answerSet(t, addr, "tracked.mirror.example.", dns.TypeA); got != "60 192.0.2.140" {
			t.Fatalf("answer = %q", got)
		}
		t.Logf("nsupdate to a visible answer: %v", time.Since(start).Round(time.Millisecond))
		code, body := httpStatus(t, "GET", "http://"+e.httpAddr+"/changes")
		if code != 200 || !strings.Contains(body, `"zone":"mirror.example."`) || !strings.Contains(body, `"status":"PENDING"`) {
			t.Fatalf("GET /changes right after the update (%v): %d %s", replied, code, body)
		}
		eventually(t, 10*time.Second, "the change INSYNC", func() bool {
			_, body := httpStatus(t, "GET", "http://"+e.httpAddr+"/changes")
			return strings.Contains(body, `"pending":[]`)
		})
		_, metrics := httpStatus(t, "GET", "http://"+e.httpAddr+"/metrics")
		for _, want := range []string{`hybridns_updates_total{rcode="NOERROR"}`, `hybridns_updates_total{rcode="REFUSED"}`, `hybridns_route53_changes_total{status="submitted"}`,
			`hybridns_tsig_errors_total{error="BADSIG"} 1`, `hybridns_route53_changes_pending 0`, `hybridns_route53_change_insync_seconds_count`} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		if strings.Contains(metrics, `hybridns_route53_changes_total{status="insync"} 0`) {
			t.Error("no change counted INSYNC")
		}
		for _, s := range []string{ddnsSecret, dhcpSecret, vpcSecret} {
			if strings.Contains(metrics, s) || strings.Contains(e.hyb.Log(), s) {
				t.Error("a TSIG secret reached the metrics or the log")
			}
		}
	})

	t.Run("restart from the snapshot keeps the writes", func(t *testing.T) {
		e.hyb.Signal(os.Interrupt)
		if code, err := e.hyb.Wait(10 * time.Second); err != nil || code != 0 {
			t.Fatalf("exit %d %v", code, err)
		}
		e.f.FailNext(1000, 500) // Route 53 unreachable: the snapshot must carry it
		e.start(t)
		addr := e.hyb.Addr
		for name, want := range map[string]string{"new.mirror.example.": "300 192.0.2.50", "slow.mirror.example.": "60 192.0.2.120", "two.mirror.example.": "NXDOMAIN"} {
			if got := answerSet(t, addr, name, dns.TypeA); got != want {
				t.Errorf("%s after restart = %q, want %q", name, got, want)
			}
		}
	})
}

// lastSync reads hybridns_route53_last_sync_timestamp_seconds of a zone.
func lastSync(t *testing.T, httpAddr, zoneID string) float64 {
	t.Helper()
	_, body := httpStatus(t, "GET", "http://"+httpAddr+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "hybridns_route53_last_sync_timestamp_seconds{") && strings.Contains(line, `zone_id="`+zoneID+`"`) {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			return v
		}
	}
	return 0
}
