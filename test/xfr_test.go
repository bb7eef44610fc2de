package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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

const (
	xfrSecret    = "eGZyLWtleS1zZWNyZXQtZm9yLXpvbmUtdHJhbnNmZXJz" // hmac-sha256
	xfrVPCSecret = "dnBjLWEta2V5LXNlY3JldC1mb3ItcHJpdmF0ZS16b25lcw=="
)

func fileZone(serial int, extra string) string {
	return fmt.Sprintf(`$ORIGIN file.example.
$TTL 3600
@     IN SOA ns1.file.example. hostmaster.file.example. %d 7200 900 1209600 300
      IN NS  ns1
ns1   IN A   192.0.2.1
www   IN A   192.0.2.10
mail  IN MX  10 www
txt   IN TXT "hello world" "second string"
%s`, serial, extra)
}

type xfrEnv struct {
	f          *r53fake.Fake
	pub, priv  string // hosted zone IDs
	hyb        *refserver.Server
	cfg, dir   string
	zoneDir    string
	httpAddr   string
	baseConfig string
}

func startXfrEnv(t *testing.T) *xfrEnv {
	t.Helper()
	bin := refserver.BuildHybridns(t)
	e := &xfrEnv{f: r53fake.New(), dir: t.TempDir()}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRETFAKE")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	url := e.f.Start(t)
	e.pub = e.f.CreateZone("mirror.example", false)
	seed(t, e.f, e.pub,
		r53set("www.mirror.example", "A", 300, "192.0.2.1"),
		r53set("two.mirror.example", "A", 300, "192.0.2.21", "192.0.2.22"),
		r53set("mail.mirror.example", "MX", 3600, "10 mx1.mirror.example."),
		r53set("txt.mirror.example", "TXT", 300, `"v=spf1 -all"`),
		// A weighted group: a secondary gets every member's records.
		types.ResourceRecordSet{Name: aws.String("w.mirror.example"), Type: "A", TTL: aws.Int64(60), SetIdentifier: aws.String("a"), Weight: aws.Int64(1),
			ResourceRecords: []types.ResourceRecord{{Value: aws.String("192.0.2.40")}}},
		types.ResourceRecordSet{Name: aws.String("w.mirror.example"), Type: "A", TTL: aws.Int64(60), SetIdentifier: aws.String("b"), Weight: aws.Int64(3),
			ResourceRecords: []types.ResourceRecord{{Value: aws.String("192.0.2.41")}}},
	)
	e.priv = e.f.CreateZone("priv.example", true, r53fake.VPC{ID: "vpc-a", Region: "us-east-1"})
	seed(t, e.f, e.priv, r53set("db.priv.example", "A", 300, "10.0.0.20"))
	e.zoneDir = filepath.Join(e.dir, "zones")
	os.Mkdir(e.zoneDir, 0o755)
	os.WriteFile(filepath.Join(e.zoneDir, "file.example.zone"), []byte(fileZone(2026010101, "")), 0o644)
	port, _ := refserver.FreePort()
	e.httpAddr = fmt.Sprintf("127.0.0.1:%d", port)
	e.cfg = filepath.Join(e.dir, "hybridns.yaml")
	e.baseConfig = fmt.Sprintf(`
http_listen: %s
lame_duck: 0s
snapshot_dir: %s
zone_dir: %s
log: {level: debug}
tsig_keys:
  - {name: xfr-key, algorithm: hmac-sha256, secret: "%s"}
  - {name: vpc-a-key, algorithm: hmac-sha256, secret: "%s"}
views:
  - {name: vpc-a, clients: [127.0.0.2/32], vpcs: [vpc-a]}
catalog:
  zone: catalog.hybridns.
journal: {versions: 10, max_bytes: 1MiB}
route53:
  discover: true
  endpoint: %s
  interval: 2s
  rps: 50
  burst: 20
`, e.httpAddr, filepath.Join(e.dir, "snap"), e.zoneDir, xfrSecret, xfrVPCSecret, url)
	e.writeConfig(t, "")
	e.hyb = refserver.StartHybridnsArgs(t, bin, []refserver.Zone{{Origin: "mirror.example."}, {Origin: "file.example."}, {Origin: "catalog.hybridns."}}, "--config", e.cfg)
	return e
}

// writeConfig writes the config with the transfer rules; notify
// lists the secondaries of the default view's rule.
func (e *xfrEnv) writeConfig(t *testing.T, notify string) {
	t.Helper()
	rules := fmt.Sprintf(`transfer:
  - {keys: [xfr-key], networks: [127.0.0.0/8], notify: [%s]}   # default view
  - {keys: [vpc-a-key], networks: [127.0.0.0/8], view: vpc-a}  # that view's zones
`, notify)
	if err := os.WriteFile(e.cfg, []byte(e.baseConfig+rules), 0o644); err != nil {
		t.Fatal(err)
	}
}

// reload sends SIGHUP and waits for the reload's log line.
func (e *xfrEnv) reload(t *testing.T) {
	t.Helper()
	n := strings.Count(e.hyb.Log(), "config reloaded")
	e.hyb.Signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "config reloaded", func() bool { return strings.Count(e.hyb.Log(), "config reloaded") > n })
}

// dig runs dig and returns its output.
func dig(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dig", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func hostPort(addr string) (string, string) {
	h, p, _ := strings.Cut(addr, ":")
	return h, p
}

// digRecords runs dig +noall +answer and returns the records, whitespace
// normalized, sorted (AXFR's SOA appears twice).
func digRecords(t *testing.T, addr string, args ...string) []string {
	t.Helper()
	h, p := hostPort(addr)
	out := dig(t, append([]string{"@" + h, "-p", p, "+noall", "+answer", "+nocookie"}, args...)...)
	var recs []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, ";") {
			continue
		}
		recs = append(recs, strings.Join(strings.Fields(l), " "))
	}
	slices.Sort(recs)
	return recs
}

func serialAt(t *testing.T, addr, zone string) uint32 {
	t.Helper()
	r := ask(t, "udp", addr, zone, dns.TypeSOA)
	if len(r.Answer) != 1 || r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		return 0
	}
	return r.Answer[0].(*dns.SOA).Serial
}

// TestTransferToBINDAndKnot: stock BIND 9 and Knot secondaries of
// hybridns. BIND provisions every zone from the catalog zone; Knot is
// configured with the zones. A change in the Route 53 fake and in a zone
// file reaches both by NOTIFY and IXFR; a hosted zone created in the fake
// appears on BIND by itself and disappears when deleted.
func TestTransferToBINDAndKnot(t *testing.T) {
	e := startXfrEnv(t)
	h, p := hostPort(e.hyb.Addr)
	primary := fmt.Sprintf("%s port %s key xfr-key", h, p)

	named := refserver.StartNamedConfig(t,
		[]refserver.Zone{{Origin: "catalog.hybridns."}, {Origin: "mirror.example."}, {Origin: "file.example."}},
		fmt.Sprintf(`	allow-notify { 127.0.0.1; };
	catalog-zones { zone "catalog.hybridns." default-primaries { %s; } in-memory yes min-update-interval 1; };`, primary),
		fmt.Sprintf(`key "xfr-key" { algorithm hmac-sha256; secret %q; };
zone "catalog.hybridns." { type secondary; primaries { %s; }; file "catalog.db"; };
`, xfrSecret, primary))
	knot := refserver.StartKnotConfig(t, []refserver.Zone{{Origin: "mirror.example."}, {Origin: "file.example."}}, func(dir string) string {
		return fmt.Sprintf(`key:
  - id: xfr-key
    algorithm: hmac-sha256
    secret: %s
remote:
  - id: hybridns
    address: %s@%s
    key: xfr-key
acl:
  - id: notify-from-hybridns
    address: 127.0.0.1
    key: xfr-key
    action: notify
template:
  - id: default
    storage: %q
    master: hybridns
    acl: notify-from-hybridns
    zonefile-sync: 0
    journal-content: changes
zone:
  - domain: mirror.example.
  - domain: file.example.
`, xfrSecret, h, p, dir)
	})
	// A second Knot knows only the catalog zone (catalog-role: interpret)
	// and provisions every member from it (it does not answer for the
	// catalog zone itself).
	knotCat := refserver.StartKnotConfig(t, []refserver.Zone{{Origin: "mirror.example."}, {Origin: "file.example."}}, func(dir string) string {
		return fmt.Sprintf(`key:
  - id: xfr-key
    algorithm: hmac-sha256
    secret: %s
remote:
  - id: hybridns
    address: %s@%s
    key: xfr-key
acl:
  - id: notify-from-hybridns
    address: 127.0.0.1
    key: xfr-key
    action: notify
template:
  - id: default
    storage: %q
    master: hybridns
    acl: notify-from-hybridns
    zonefile-sync: -1
    journal-content: changes
  - id: member
    storage: %q
    master: hybridns
    acl: notify-from-hybridns
    zonefile-sync: -1
    journal-content: changes
zone:
  - domain: catalog.hybridns.
    catalog-role: interpret
    catalog-template: member
`, xfrSecret, h, p, dir, dir)
	})
	// Now that the secondaries' ports are known, tell hybridns to notify them.
	e.writeConfig(t, fmt.Sprintf("%q, %q, %q", named.Addr, knot.Addr, knotCat.Addr))
	e.reload(t)

	for _, sec := range []*refserver.Server{named, knot} {
		for _, z := range []string{"mirror.example.", "file.example."} {
			want := digRecords(t, e.hyb.Addr, "AXFR", z, "-y", "hmac-sha256:xfr-key:"+xfrSecret)
			for _, rr := range want {
				f := strings.Fields(rr)
				if f[3] == "SOA" {
					continue
				}
				got := digRecords(t, sec.Addr, f[0], f[3])
				if !slices.Contains(got, rr) {
					t.Errorf("%s after AXFR: %s %s = %v, want %s", sec.Name, f[0], f[3], got, rr)
				}
			}
		}
	}

	for _, sec := range []*refserver.Server{named, knot} {
		if got := digRecords(t, sec.Addr, "w.mirror.example.", "A"); len(got) != 2 {
			t.Errorf("%s: the weighted group w.mirror.example = %v, want both members' records", sec.Name, got)
		}
	}

	t.Run("route53 change reaches both by NOTIFY and IXFR", func(t *testing.T) {
		before := serialAt(t, e.hyb.Addr, "mirror.example.")
		seed(t, e.f, e.pub, r53set("www.mirror.example", "A", 300, "192.0.2.99"), r53set("new.mirror.example", "AAAA", 60, "2001:db8::1"))
		if code, body := httpStatus(t, "POST", "http://"+e.httpAddr+"/sync?zone="+e.pub); code != 200 {
			t.Fatalf("POST /sync: %d %s", code, body)
		}
		eventually(t, 10*time.Second, "hybridns has the new serial", func() bool { return serialAt(t, e.hyb.Addr, "mirror.example.") != before })
		after := serialAt(t, e.hyb.Addr, "mirror.example.")
		for _, sec := range []*refserver.Server{named, knot, knotCat} {
			// BIND's refresh timer is hours away and Knot's too: only the
			// NOTIFY can bring the change this fast.
			eventually(t, 20*time.Second, sec.Name+" has the change", func() bool {
				return serialAt(t, sec.Addr, "mirror.example.") == after && firstA(ask(t, "udp", sec.Addr, "www.mirror.example.", dns.TypeA)) == "192.0.2.99"
			})
			if got := digRecords(t, sec.Addr, "new.mirror.example.", "AAAA"); len(got) != 1 || !strings.HasSuffix(got[0], "2001:db8::1") {
				t.Errorf("%s: new.mirror.example AAAA = %v", sec.Name, got)
			}
		}
		// The secondaries asked for IXFR and got the difference, not the zone.
		re := regexp.MustCompile(`transfer of 'mirror\.example/IN' from 127\.0\.0\.1#\d+: Transfer completed: (\d+) messages, (\d+) records`)
		m := re.FindAllStringSubmatch(named.Log(), -1)
		if len(m) < 2 {
			t.Fatalf("named log: %d transfers of mirror.example:\n%s", len(m), named.Log())
		}
		last := m[len(m)-1]
		if n, _ := strconv.Atoi(last[2]); n > 8 {
			t.Errorf("named's transfer after the change moved %d records: not an IXFR (%s)", n, last[0])
		}
		t.Logf("named: %s", last[0])
		if !strings.Contains(knot.Log(), "[mirror.example.] IXFR, incoming") || strings.Contains(knot.Log(), "AXFR-style IXFR") {
			t.Errorf("knot did not take an IXFR:\n%s", knot.Log())
		}
		ixfrs := regexp.MustCompile(`zone transfer.*zone=mirror\.example\. kind=ixfr serial=`+strconv.FormatUint(uint64(after), 10)).FindAllString(e.hyb.Log(), -1)
		if len(ixfrs) < 2 {
			t.Errorf("hybridns logged %d IXFRs of serial %d, want one per secondary", len(ixfrs), after)
		}
		code, metrics := httpStatus(t, "GET", "http://"+e.httpAddr+"/metrics")
		for _, want := range []string{`hybridns_zone_transfers_total{kind="ixfr",result="ok",zone="mirror.example."}`,
			`hybridns_zone_transfers_total{kind="axfr",result="ok",zone="mirror.example."}`, `hybridns_notify_total{event="acked",zone="mirror.example."}`,
			"hybridns_journal_versions ", "hybridns_journal_bytes "} {
			if code != 200 || !strings.Contains(metrics, want) {
				t.Errorf("/metrics (%d) lacks %s", code, want)
			}
		}
		if !strings.Contains(named.Log(), "notify from 127.0.0.1#") {
			t.Errorf("named never logged a NOTIFY from hybridns")
		}
	})

	t.Run("zone file change reaches both", func(t *testing.T) {
		os.WriteFile(filepath.Join(e.zoneDir, "file.example.zone"), []byte(fileZone(2026010102, "added IN A 192.0.2.55\n")), 0o644)
		for _, sec := range []*refserver.Server{named, knot, knotCat} {
			eventually(t, 20*time.Second, sec.Name+" has the zone file change", func() bool {
				return serialAt(t, sec.Addr, "file.example.") == 2026010102 && firstA(ask(t, "udp", sec.Addr, "added.file.example.", dns.TypeA)) == "192.0.2.55"
			})
		}
		if !regexp.MustCompile(`zone transfer.*zone=file\.example\. kind=ixfr serial=2026010102`).MatchString(e.hyb.Log()) {
			t.Errorf("no IXFR of file.example in hybridns's log")
		}
	})

	t.Run("catalog provisions and drops zones on BIND and Knot", func(t *testing.T) {
		id := e.f.CreateZone("fresh.example", false)
		seed(t, e.f, id, r53set("www.fresh.example", "A", 300, "192.0.2.77"))
		// Discovery runs every 2s: no config change, no /sync.
		for _, sec := range []*refserver.Server{named, knotCat} {
			eventually(t, 30*time.Second, sec.Name+" serves fresh.example from the catalog", func() bool {
				return firstA(ask(t, "udp", sec.Addr, "www.fresh.example.", dns.TypeA)) == "192.0.2.77"
			})
		}
		e.f.DeleteZone(id)
		for _, sec := range []*refserver.Server{named, knotCat} {
			eventually(t, 30*time.Second, sec.Name+" dropped fresh.example", func() bool {
				r := ask(t, "udp", sec.Addr, "www.fresh.example.", dns.TypeA)
				return r.Rcode == dns.RcodeRefused || r.Rcode == dns.RcodeNotAuth || (!r.Authoritative && len(r.Answer) == 0)
			})
		}
		// The catalog-provisioned Knot follows changes by IXFR as well.
		if !strings.Contains(knotCat.Log(), "[mirror.example.] IXFR, incoming") {
			t.Errorf("the catalog-provisioned knot took no IXFR of mirror.example:\n%s", knotCat.Log())
		}
		if !strings.Contains(named.Log(), "fresh.example") {
			t.Errorf("named's log never names fresh.example")
		}
	})

	defer func() {
		if os.Getenv("XFR_DEBUG") != "" {
			t.Log(e.hyb.Log())
		}
	}()
	t.Run("private zone only with its view's key", func(t *testing.T) {
		private := digRecords(t, e.hyb.Addr, "AXFR", "priv.example.", "-y", "hmac-sha256:vpc-a-key:"+xfrVPCSecret)
		if !slices.ContainsFunc(private, func(s string) bool { return strings.HasPrefix(s, "db.priv.example. 300 IN A 10.0.0.20") }) {
			t.Errorf("AXFR of the private zone with vpc-a-key: %v", private)
		}
		for _, args := range [][]string{{}, {"-y", "hmac-sha256:xfr-key:" + xfrSecret}} {
			h, p := hostPort(e.hyb.Addr)
			out := dig(t, append([]string{"@" + h, "-p", p, "AXFR", "priv.example."}, args...)...)
			if !strings.Contains(out, "Transfer failed") || strings.Contains(out, "10.0.0.20") {
				t.Errorf("AXFR of the private zone with %v:\n%s", args, out)
			}
		}
		// The vpc-a catalog lists the private zone; the default one does not.
		cat := strings.Join(digRecords(t, e.hyb.Addr, "AXFR", "catalog.hybridns.", "-y", "hmac-sha256:vpc-a-key:"+xfrVPCSecret), "\n")
		pub := strings.Join(digRecords(t, e.hyb.Addr, "AXFR", "catalog.hybridns.", "-y", "hmac-sha256:xfr-key:"+xfrSecret), "\n")
		if !strings.Contains(cat, "PTR priv.example.") || !strings.Contains(cat, "PTR mirror.example.") || strings.Contains(pub, "priv.example.") {
			t.Errorf("catalogs:\nvpc-a:\n%s\ndefault:\n%s", cat, pub)
		}
	})
}

// TestAXFRComparedWithBIND: dig AXFR with TSIG against BIND as primary of
// the same zone file and against hybridns gives the same records; so does
// dig IXFR=N after the same change (BIND computes its difference with
// ixfr-from-differences).
func TestAXFRComparedWithBIND(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	dir := t.TempDir()
	zoneDir := filepath.Join(dir, "zones")
	os.Mkdir(zoneDir, 0o755)
	zfile := filepath.Join(zoneDir, "file.example.zone")
	os.WriteFile(zfile, []byte(fileZone(10, "old IN A 192.0.2.66\n")), 0o644)
	bindFile := filepath.Join(dir, "bind-file.example.zone")
	os.WriteFile(bindFile, []byte(fileZone(10, "old IN A 192.0.2.66\n")), 0o644)
	cfg := filepath.Join(dir, "hybridns.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
lame_duck: 0s
http_listen: "off"
zone_dir: %s
tsig_keys: [{name: xfr-key, algorithm: hmac-sha256, secret: "%s"}]
transfer: [{keys: [xfr-key], networks: [127.0.0.0/8]}]
`, zoneDir, xfrSecret)), 0o644)
	hyb := refserver.StartHybridnsArgs(t, bin, []refserver.Zone{{Origin: "file.example."}}, "--config", cfg)
	named := refserver.StartNamedConfig(t, []refserver.Zone{{Origin: "file.example."}}, "	ixfr-from-differences yes;",
		fmt.Sprintf(`key "xfr-key" { algorithm hmac-sha256; secret %q; };
zone "file.example." { type primary; file %q; allow-transfer { key xfr-key; }; };
`, xfrSecret, bindFile))
	y := []string{"-y", "hmac-sha256:xfr-key:" + xfrSecret}
	a, b := digRecords(t, hyb.Addr, append([]string{"AXFR", "file.example."}, y...)...), digRecords(t, named.Addr, append([]string{"AXFR", "file.example."}, y...)...)
	if strings.Join(a, "\n") != strings.Join(b, "\n") || len(a) < 6 {
		t.Fatalf("AXFR differs:\nhybridns:\n%s\nBIND:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	// Unsigned: both refuse.
	for _, s := range []*refserver.Server{hyb, named} {
		h, p := hostPort(s.Addr)
		if out := dig(t, "@"+h, "-p", p, "AXFR", "file.example."); !strings.Contains(out, "Transfer failed") {
			t.Errorf("%s: unsigned AXFR:\n%s", s.Name, out)
		}
	}
	// The same change on both, then IXFR=10.
	v2 := fileZone(11, "new IN A 192.0.2.67\n")
	os.WriteFile(bindFile, []byte(v2), 0o644)
	named.Signal(syscall.SIGHUP)
	os.WriteFile(zfile, []byte(v2), 0o644)
	for _, s := range []*refserver.Server{hyb, named} {
		eventually(t, 15*time.Second, s.Name+" serves serial 11", func() bool { return serialAt(t, s.Addr, "file.example.") == 11 })
	}
	ixfr := func(addr string) []string {
		h, p := hostPort(addr)
		out := dig(t, append([]string{"@" + h, "-p", p, "+noall", "+answer", "IXFR=10", "file.example."}, y...)...)
		var recs []string // in order: IXFR's order matters
		for _, l := range strings.Split(out, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, ";") {
				recs = append(recs, strings.Join(strings.Fields(l), " "))
			}
		}
		return recs
	}
	a, b = ixfr(hyb.Addr), ixfr(named.Addr)
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatalf("IXFR=10 differs:\nhybridns:\n%s\nBIND:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	t.Logf("IXFR=10 from both:\n%s", strings.Join(a, "\n"))
}

// bigFileZone is a zone of n TXT records that all name serial.
func bigFileZone(origin string, serial, n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL 300\n@ IN SOA ns hm %d 3600 600 86400 60\n@ IN NS ns\nns IN A 192.0.2.1\n", origin, serial)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "h%d IN TXT \"v%d\"\n", i, serial)
	}
	return []byte(b.String())
}

// axfrCopy transfers zone with TSIG and returns the records and the time
// it took.
func axfrCopy(t testing.TB, addr, zone string) ([]dns.RR, time.Duration) {
	t.Helper()
	m := new(dns.Msg)
	m.SetAxfr(zone)
	m.SetTsig("xfr-key.", dns.HmacSHA256, 300, time.Now().Unix())
	tr := &dns.Transfer{TsigSecret: map[string]string{"xfr-key.": xfrSecret}, ReadTimeout: 60 * time.Second}
	start := time.Now()
	ch, err := tr.In(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	var rrs []dns.RR
	for env := range ch {
		if env.Error != nil {
			t.Fatalf("AXFR %s: %v", zone, env.Error)
		}
		rrs = append(rrs, env.RR...)
	}
	return rrs, time.Since(start)
}

// TestAXFRWhileSwapping: a 100,000-record zone file is rewritten with a
// new serial every second (every record names the serial) while AXFRs
// run: every copy is one version, whole.
func TestAXFRWhileSwapping(t *testing.T) {
	const n = 100000
	bin := refserver.BuildHybridns(t)
	dir := t.TempDir()
	zoneDir := filepath.Join(dir, "zones")
	os.Mkdir(zoneDir, 0o755)
	zfile := filepath.Join(zoneDir, "big.example.zone")
	os.WriteFile(zfile, bigFileZone("big.example.", 1, n), 0o644)
	cfg := filepath.Join(dir, "hybridns.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
lame_duck: 0s
http_listen: "off"
zone_dir: %s
tsig_keys: [{name: xfr-key, algorithm: hmac-sha256, secret: "%s"}]
transfer: [{keys: [xfr-key], networks: [127.0.0.0/8]}]
`, zoneDir, xfrSecret)), 0o644)
	hyb := refserver.StartHybridnsArgs(t, bin, []refserver.Zone{{Origin: "big.example."}}, "--config", cfg)

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for serial := 2; ; serial++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			tmp := zfile + ".tmp"
			os.WriteFile(tmp, bigFileZone("big.example.", serial, n), 0o644)
			os.Rename(tmp, zfile)
		}
	}()
	defer func() { close(stop); <-done }()
	serials := map[uint32]bool{}
	deadline := time.Now().Add(90 * time.Second)
	for i := 0; (i < 8 || len(serials) < 3) && time.Now().Before(deadline); i++ {
		rrs, took := axfrCopy(t, hyb.Addr, "big.example.")
		first, last := rrs[0].(*dns.SOA), rrs[len(rrs)-1].(*dns.SOA)
		want := fmt.Sprintf("\"v%d\"", first.Serial)
		txt := 0
		for _, rr := range rrs[1 : len(rrs)-1] {
			switch rr := rr.(type) {
			case *dns.TXT:
				txt++
				if !strings.HasSuffix(rr.String(), want) {
					t.Fatalf("copy of serial %d holds %s", first.Serial, rr)
				}
			case *dns.SOA:
				t.Fatalf("SOA inside the copy: %s", rr)
			}
		}
		if txt != n || last.Serial != first.Serial {
			t.Fatalf("copy of serial %d: %d TXT records, last SOA %d", first.Serial, txt, last.Serial)
		}
		serials[first.Serial] = true
		t.Logf("AXFR %d: serial %d, %d records, %v", i, first.Serial, len(rrs), took)
	}
	if len(serials) < 3 {
		t.Fatalf("only %d versions seen: the zone was not swapped during the test", len(serials))
	}
}
