package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"hybridns/test/r53fake"
	"hybridns/test/refserver"
)

// TestSecondaryPushedIntoRoute53: hybridns, secondary of branch.example.
// from BIND, copies the zone into a private hosted zone of the fake: the
// first transfer of 10,000 records as ⌈changes/1,000⌉ ChangeBatches, then
// each change on the primary as one ChangeBatch with exactly the changed
// sets — so VPC resolvers answer the on-prem zone without hybridns.
func TestSecondaryPushedIntoRoute53(t *testing.T) {
	bin := refserver.BuildHybridns(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRETFAKE")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	f := r53fake.New()
	url := f.Start(t)
	zid := f.CreateZone("branch.example", true, r53fake.VPC{ID: "vpc-b", Region: "us-east-1"})

	const n = 10000
	dir := t.TempDir()
	var zone strings.Builder
	zone.WriteString("$ORIGIN branch.example.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&zone, "h%d A 10.%d.%d.%d\n", i, i/65536, i/256%256, i%256)
	}
	zone.WriteString("www CNAME h1\n")
	zoneFile := filepath.Join(dir, "branch.example.zone")
	os.WriteFile(zoneFile, []byte(zone.String()), 0o644)

	primaryPort, err := refserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "hybridns.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
http_listen: "off"
lame_duck: 0s
snapshot_dir: %s
tsig_keys:
  - {name: xfr-key, algorithm: hmac-sha256, secret: "%s"}
secondary:
  - {zone: branch.example., primaries: ["127.0.0.1:%d"], key: xfr-key, route53_zone: %s}
route53:
  endpoint: %s
  rps: 50
  burst: 50
  change_poll: 200ms
`, filepath.Join(dir, "snap"), secSecret, primaryPort, zid, url)), 0o644)
	hyb := refserver.Start(t, "hybridns", 0, nil, func(_ string, port int) ([]string, error) {
		return []string{bin, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--config", cfg}, nil
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hybridns log:\n%s", hyb.Log())
		}
	})
	_, hport, _ := strings.Cut(hyb.Addr, ":")
	var notifyPort int
	fmt.Sscan(hport, &notifyPort)
	primary := startNamedPrimary(t, primaryPort, notifyPort, zoneFile)

	// The first transfer, reconciled into the empty hosted zone.
	eventually(t, 60*time.Second, "the first push", func() bool {
		return len(f.RecordSets(zid)) == n+2+2 // + www and ns1, and the zone's own SOA and NS
	})
	if got, want := f.Calls("ChangeResourceRecordSets"), (n+2+999)/1000; got != want {
		t.Errorf("first push took %d ChangeBatches, want ⌈%d changes/1,000⌉ = %d", got, n+2, want)
	}
	if got := fakeSet(f, zid, "h4242.branch.example.", "A"); got != "300 10.0.16.146" {
		t.Errorf("h4242 in Route 53 = %q", got)
	}
	if got := fakeSet(f, zid, "www.branch.example.", "CNAME"); got != "300 h1.branch.example." {
		t.Errorf("www in Route 53 = %q", got)
	}
	if got := fakeSet(f, zid, "branch.example.", "NS"); !strings.Contains(got, "awsdns") {
		t.Errorf("the hosted zone's own NS were replaced: %q", got)
	}

	// A change on the primary: one ChangeBatch with exactly the changed sets.
	f.ResetRequests()
	before := f.ChangeLog(zid)
	nsupdateTo(t, "nsupdate", primary, "branch.example.", "update add new.branch.example. 60 A 192.0.2.200\nupdate delete h7.branch.example. A\nupdate add h8.branch.example. 300 A 10.0.0.99")
	eventually(t, 10*time.Second, "the change in Route 53", func() bool {
		return fakeSet(f, zid, "new.branch.example.", "A") == "60 192.0.2.200"
	})
	if got := f.Calls("ChangeResourceRecordSets"); got != 1 {
		t.Errorf("the change took %d ChangeBatches, want 1", got)
	}
	changes := f.ChangeLog(zid)[len(before):]
	var got []string
	for _, c := range changes {
		got = append(got, c.Action+" "+strings.TrimSuffix(c.Name, ".")+" "+c.Type)
	}
	want := []string{"CREATE new.branch.example A", "DELETE h7.branch.example A", "UPSERT h8.branch.example A"}
	if !sameSet(got, want) {
		t.Errorf("changes sent = %v, want %v", got, want)
	}
	if got := fakeSet(f, zid, "h8.branch.example.", "A"); got != "300 10.0.0.8,10.0.0.99" {
		t.Errorf("h8 = %q", got)
	}
	if got := fakeSet(f, zid, "h7.branch.example.", "A"); got != "" {
		t.Errorf("h7 still in Route 53: %q", got)
	}
	// The secondary itself serves the new version.
	if got := firstA(ask(t, "udp", hyb.Addr, "new.branch.example.", dns.TypeA)); got != "192.0.2.200" {
		t.Errorf("secondary answers %s", got)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		if m[x] == 0 {
			return false
		}
		m[x]--
	}
	return true
}
