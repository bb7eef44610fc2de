package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/test/refserver"
)

const secSecret = "eGZyLWtleS1zZWNyZXQtZm9yLXNlY29uZGFyeS16b25lcy1vZi1oeWJyaWRucw=="

// onpremZone has short timers so refresh, retry and expire happen within a
// test: refresh 2 s, retry 1 s, expire 8 s.
func secondaryZone(serial int) string {
	return fmt.Sprintf(`$ORIGIN onprem.example.
$TTL 60
@	SOA	ns1 hostmaster %d 2 1 8 60
@	NS	ns1
ns1	A	192.0.2.53
www	A	192.0.2.80
db	A	192.0.2.81
`, serial)
}

// startSecondaryHybridns runs hybridns as the secondary of onprem.example.
// from primary (127.0.0.1:port), with the copy on disk under snap.
func startSecondaryHybridns(t *testing.T, bin, dir, snap string, primaryPort int) *refserver.Server {
	t.Helper()
	cfg := filepath.Join(dir, "hybridns.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
http_listen: "off"
lame_duck: 0s
snapshot_dir: %s
tsig_keys:
  - {name: xfr-key, algorithm: hmac-sha256, secret: "%s"}
secondary:
  - {zone: onprem.example., primaries: ["127.0.0.1:%d"], key: xfr-key}
`, snap, secSecret, primaryPort)), 0o644)
	return refserver.Start(t, "hybridns", 0, nil, func(_ string, port int) ([]string, error) {
		return []string{bin, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--config", cfg}, nil
	})
}

type primaryKind struct {
	name   string
	start  func(t *testing.T, port, notifyPort int, zoneFile string) *refserver.Server
	update func(t *testing.T, primary *refserver.Server, script string)
}

func startNamedPrimary(t *testing.T, port, notifyPort int, zoneFile string) *refserver.Server {
	t.Helper()
	bin, err := exec.LookPath("named")
	if err != nil {
		t.Fatalf("named is needed: %s", refserver.InstallHint)
	}
	origin := strings.TrimSuffix(filepath.Base(zoneFile), "zone") // "<origin>.zone"
	return refserver.Start(t, "named", port, []refserver.Zone{{Origin: origin}}, func(dir string, port int) ([]string, error) {
		conf := filepath.Join(dir, "named.conf")
		text := fmt.Sprintf(`key "xfr-key" { algorithm hmac-sha256; secret "%s"; };
options {
	directory %q;
	pid-file %q;
	session-keyfile %q;
	managed-keys-directory %q;
	listen-on port %d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify explicit;
	notify-delay 0;
	max-ixfr-ratio unlimited; // a tiny zone: BIND would send AXFR for a diff larger than the zone
	also-notify { 127.0.0.1 port %d key xfr-key; };
	allow-transfer { key xfr-key; };
};
controls { };
zone %q { type primary; file %q; allow-update { key xfr-key; }; };
`, secSecret, dir, filepath.Join(dir, "named.pid"), filepath.Join(dir, "session.key"), dir, port, notifyPort, origin, zoneFile)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			return nil, err
		}
		return []string{bin, "-g", "-4", "-n", "1", "-c", conf}, nil
	})
}

func startKnotPrimary(t *testing.T, port, notifyPort int, zoneFile string) *refserver.Server {
	t.Helper()
	bin, err := exec.LookPath("knotd")
	if err != nil {
		t.Fatalf("knotd is needed: %s", refserver.InstallHint)
	}
	return refserver.Start(t, "knotd", port, []refserver.Zone{{Origin: "onprem.example."}}, func(dir string, port int) ([]string, error) {
		conf := filepath.Join(dir, "knot.conf")
		text := fmt.Sprintf(`server:
  rundir: %q
  listen: 127.0.0.1@%d
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
database:
  storage: %q
log:
  - target: stderr
    any: info
key:
  - id: xfr-key
    algorithm: hmac-sha256
    secret: %s
remote:
  - id: hybridns
    address: 127.0.0.1@%d
    key: xfr-key
acl:
  - id: xfr
    key: xfr-key
    action: [transfer, update]
zone:
  - domain: onprem.example.
    file: %q
    storage: %q
    notify: hybridns
    acl: xfr
    zonefile-sync: -1
    journal-content: changes
`, dir, port, dir, secSecret, notifyPort, zoneFile, dir)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			return nil, err
		}
		return []string{bin, "-c", conf}, nil
	})
}

func nsupdateTo(t *testing.T, tool string, primary *refserver.Server, zone, script string) {
	t.Helper()
	host, port, _ := strings.Cut(primary.Addr, ":")
	cmd := exec.Command(tool, "-y", "hmac-sha256:xfr-key:"+secSecret)
	cmd.Stdin = strings.NewReader(fmt.Sprintf("server %s %s\nzone %s\n%s\nsend\n", host, port, zone, script))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", tool, err, out)
	}
}

// TestSecondaryOfBINDAndKnot runs hybridns as the secondary of a zone whose
// primary is BIND, then Knot, both started here: the first AXFR, an
// nsupdate on the primary picked up by NOTIFY and IXFR, a restart with the
// primary down served from the copy on disk, and SERVFAIL once the SOA
// expire has passed without a refresh.
func TestSecondaryOfBINDAndKnot(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	for _, pk := range []primaryKind{
		{"BIND", startNamedPrimary, func(t *testing.T, p *refserver.Server, s string) { nsupdateTo(t, "nsupdate", p, "onprem.example.", s) }},
		{"Knot", startKnotPrimary, func(t *testing.T, p *refserver.Server, s string) { nsupdateTo(t, "knsupdate", p, "onprem.example.", s) }},
	} {
		t.Run(pk.name, func(t *testing.T) {
			dir := t.TempDir()
			snap := filepath.Join(dir, "snap")
			zoneFile := filepath.Join(dir, "onprem.example.zone")
			os.WriteFile(zoneFile, []byte(secondaryZone(100)), 0o644)
			primaryPort, err := refserver.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			// hybridns first: the primary's NOTIFY target must exist.
			hyb := startSecondaryHybridns(t, bin, dir, snap, primaryPort)
			if r := ask(t, "udp", hyb.Addr, "www.onprem.example.", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
				t.Fatalf("before any transfer: %s, want SERVFAIL (claimed, never forwarded)", dns.RcodeToString[r.Rcode])
			}
			_, hport, _ := strings.Cut(hyb.Addr, ":")
			var notifyPort int
			fmt.Sscan(hport, &notifyPort)
			primary := pk.start(t, primaryPort, notifyPort, zoneFile)

			// The primary's NOTIFY at load brings the first transfer.
			eventually(t, 10*time.Second, "the first transfer", func() bool {
				return firstA(ask(t, "udp", hyb.Addr, "www.onprem.example.", dns.TypeA)) == "192.0.2.80"
			})
			if !strings.Contains(hyb.Log(), "kind=AXFR") {
				t.Errorf("first transfer not an AXFR:\n%s", hyb.Log())
			}

			// A change on the primary: NOTIFY, then IXFR.
			start := time.Now()
			pk.update(t, primary, "update add new.onprem.example. 60 A 192.0.2.90\nupdate delete db.onprem.example. A")
			eventually(t, 5*time.Second, "the change by NOTIFY", func() bool {
				return firstA(ask(t, "udp", hyb.Addr, "new.onprem.example.", dns.TypeA)) == "192.0.2.90"
			})
			lag := time.Since(start)
			if got := firstA(ask(t, "udp", hyb.Addr, "db.onprem.example.", dns.TypeA)); got != "NXDOMAIN" {
				t.Errorf("deleted db = %s", got)
			}
			if !strings.Contains(hyb.Log(), "kind=IXFR") {
				t.Errorf("the change did not come by IXFR:\n%s", hyb.Log())
			}
			if pk.name == "BIND" && !strings.Contains(primary.Log(), "IXFR started") {
				t.Errorf("BIND's log shows no IXFR:\n%s", primary.Log())
			}
			t.Logf("%s primary: nsupdate to an answer on the secondary in %v", pk.name, lag.Round(time.Millisecond))

			// Restart with the primary down: served from the copy on disk.
			primary.Signal(syscall.SIGTERM)
			primary.Wait(10 * time.Second)
			hyb.Signal(syscall.SIGTERM)
			if code, err := hyb.Wait(10 * time.Second); err != nil || code != 0 {
				t.Fatalf("hybridns exit %d %v", code, err)
			}
			hyb = startSecondaryHybridns(t, bin, dir, snap, primaryPort)
			if got := firstA(ask(t, "udp", hyb.Addr, "new.onprem.example.", dns.TypeA)); got != "192.0.2.90" {
				t.Fatalf("after a restart with the primary down: %s", got)
			}
			// Past the SOA expire (8 s) without a refresh: SERVFAIL.
			eventually(t, 20*time.Second, "expiry", func() bool {
				return ask(t, "udp", hyb.Addr, "new.onprem.example.", dns.TypeA).Rcode == dns.RcodeServerFailure
			})
			if !strings.Contains(hyb.Log(), "zone expired") {
				t.Errorf("no expiry in the log")
			}
		})
	}
}
