package r53

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"

	"hybridns/test/r53fake"
	"hybridns/zonestore"
)

// newClient is the production client (pacing middleware, standard
// retryer) pointed at the fake, with fast backoff for tests.
func newClient(t testing.TB, url string, rps float64, burst int) *route53.Client {
	t.Helper()
	c, err := NewClient(context.Background(), ClientOptions{
		Endpoint:    url,
		Limiter:     NewLimiter(rps, burst),
		MaxAttempts: 5,
		MaxBackoff:  50 * time.Millisecond,
		AWSConfig: &aws.Config{Region: "us-east-1",
			Credentials: credentials.NewStaticCredentialsProvider("AKIDFAKE", "SECRETFAKE", "")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rrset(name, typ string, ttl int64, values ...string) types.ResourceRecordSet {
	rs := types.ResourceRecordSet{Name: aws.String(name), Type: types.RRType(typ), TTL: aws.Int64(ttl)}
	for _, v := range values {
		rs.ResourceRecords = append(rs.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
	}
	return rs
}

func put(t testing.TB, f *r53fake.Fake, zone string, sets ...types.ResourceRecordSet) {
	t.Helper()
	for _, rs := range sets {
		if err := f.PutRecordSet(zone, rs); err != nil {
			t.Fatal(err)
		}
	}
}

func answer(t testing.TB, store *zonestore.Store, view, name string, qtype uint16, c *zonestore.Client) (zonestore.Result, string) {
	t.Helper()
	z := store.Load().Find(view, zonestore.Canonical(name))
	if z == nil {
		return zonestore.Result{}, "nozone"
	}
	res := z.LookupFor(zonestore.Canonical(name), qtype, c)
	var parts []string
	for _, rr := range res.Answer {
		f := strings.Fields(rr.String())
		parts = append(parts, strings.Join(f[3:], " "))
	}
	if res.Alias != "" {
		parts = append(parts, "alias:"+res.Alias)
	}
	if len(parts) == 0 {
		return res, res.Kind.String()
	}
	return res, strings.Join(parts, ",")
}

func TestSyncMirrorsEveryKind(t *testing.T) {
	f := r53fake.New()
	url := f.Start(t)
	zid := f.CreateZone("example.com", false)
	weight := func(rs types.ResourceRecordSet, id string, w int64, hc string) types.ResourceRecordSet {
		rs.SetIdentifier, rs.Weight = aws.String(id), aws.Int64(w)
		if hc != "" {
			rs.HealthCheckId = aws.String(hc)
		}
		return rs
	}
	failover := func(rs types.ResourceRecordSet, id string, role types.ResourceRecordSetFailover, hc string) types.ResourceRecordSet {
		rs.SetIdentifier, rs.Failover = aws.String(id), role
		if hc != "" {
			rs.HealthCheckId = aws.String(hc)
		}
		return rs
	}
	f.AddHealthCheck("hc-primary", true)
	put(t, f, zid,
		rrset("www.example.com", "A", 300, "192.0.2.1", "192.0.2.2"),
		rrset("example.com", "MX", 300, "10 mail.example.com"),
		rrset("mail.example.com", "A", 300, "192.0.2.25"),
		rrset("txt.example.com", "TXT", 300, `"v=spf1 include:amazonses.com ~all"`, `"part one" "part two"`),
		rrset("*.wild.example.com", "A", 60, "192.0.2.99"),
		rrset("alias-target.example.com", "AAAA", 120, "2001:db8::1"),
		weight(rrset("w.example.com", "A", 60, "10.0.0.1"), "a", 1, ""),
		weight(rrset("w.example.com", "A", 60, "10.0.0.2"), "b", 9, ""),
		failover(rrset("f.example.com", "A", 60, "10.1.0.1"), "primary", types.ResourceRecordSetFailoverPrimary, "hc-primary"),
		failover(rrset("f.example.com", "A", 60, "10.1.0.2"), "secondary", types.ResourceRecordSetFailoverSecondary, ""),
		types.ResourceRecordSet{Name: aws.String("same.example.com"), Type: "AAAA",
			AliasTarget: &types.AliasTarget{DNSName: aws.String("alias-target.example.com."), HostedZoneId: aws.String(zid), EvaluateTargetHealth: false}},
		types.ResourceRecordSet{Name: aws.String("app.example.com"), Type: "A",
			AliasTarget: &types.AliasTarget{DNSName: aws.String("dualstack.my-lb-1.us-east-1.elb.amazonaws.com."), HostedZoneId: aws.String("Z35SXDOTRQ7X7K")}},
		types.ResourceRecordSet{Name: aws.String("example.com"), Type: "A",
			AliasTarget: &types.AliasTarget{DNSName: aws.String("www.example.com."), HostedZoneId: aws.String(zid)}},
		rrset("bad.example.com", "SPF", 60, `unquoted; broken`),
	)
	store := zonestore.NewStore()
	dir := t.TempDir()
	s, err := NewSyncer(newClient(t, url, 1000, 100), store, Config{Zones: []string{zid}, SnapshotDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.SyncOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Zones) != 1 || rep.Zones[0].RecordSets != 16 || len(rep.Zones[0].Skipped) != 1 || rep.Zones[0].Skipped[0].Name != "bad.example.com." {
		t.Fatalf("report: %+v", rep.Zones)
	}
	if !s.Ready() {
		t.Fatal("not ready after a sync")
	}
	tests := []struct {
		name  string
		qtype uint16
		want  string
	}{
		{"www.example.com", dns.TypeA, "A 192.0.2.1,A 192.0.2.2"},
		{"example.com", dns.TypeMX, "MX 10 mail.example.com."},
		{"txt.example.com", dns.TypeTXT, `TXT "v=spf1 include:amazonses.com ~all",TXT "part one" "part two"`},
		{"x.wild.example.com", dns.TypeA, "A 192.0.2.99"},
		{"same.example.com", dns.TypeAAAA, "AAAA 2001:db8::1"},
		{"app.example.com", dns.TypeA, "alias:dualstack.my-lb-1.us-east-1.elb.amazonaws.com."},
		{"example.com", dns.TypeA, "A 192.0.2.1,A 192.0.2.2"},
		{"f.example.com", dns.TypeA, "A 10.1.0.1"},
		{"nothere.example.com", dns.TypeA, "nxdomain"},
	}
	cl := &zonestore.Client{Healthy: s.Healthy}
	for _, tc := range tests {
		if _, got := answer(t, store, zonestore.DefaultView, tc.name, tc.qtype, cl); got != tc.want {
			t.Errorf("%s %s = %q, want %q", tc.name, dns.TypeToString[tc.qtype], got, tc.want)
		}
	}
	// Route 53's serial is always 1; ours moves (the Unix time of the
	// first version, then later), so secondaries see changes.
	if _, got := answer(t, store, zonestore.DefaultView, "example.com", dns.TypeSOA, nil); !strings.HasPrefix(got, "SOA ns-") || !strings.HasSuffix(got, " 7200 900 1209600 86400") ||
		strings.Contains(got, " awsdns-hostmaster.amazon.com. 1 ") {
		t.Errorf("SOA = %q", got)
	}
	// The alias answer carries the target's TTL.
	if res, _ := answer(t, store, zonestore.DefaultView, "same.example.com", dns.TypeAAAA, nil); res.Answer[0].Header().Ttl != 120 {
		t.Errorf("alias TTL %d, want the target's 120", res.Answer[0].Header().Ttl)
	}

	// Failover flips when the fake's health check flips.
	f.SetHealth("hc-primary", false)
	if err := s.PollHealth(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, got := answer(t, store, zonestore.DefaultView, "f.example.com", dns.TypeA, cl); got != "A 10.1.0.2" {
		t.Errorf("after the primary's check failed: %q", got)
	}

	// Weighted answers follow the weights within 5% over 10,000 queries.
	n9 := 0
	for i := 0; i < 10000; i++ {
		if _, got := answer(t, store, zonestore.DefaultView, "w.example.com", dns.TypeA, cl); got == "A 10.0.0.2" {
			n9++
		}
	}
	if math.Abs(float64(n9)/10000-0.9) > 0.05*0.9 {
		t.Errorf("weight 9 of 10 chosen %d of 10000 times", n9)
	}

	// A change in Route 53 is visible after the next refresh; a refresh
	// without changes does not swap the zone.
	before := store.Load().Find(zonestore.DefaultView, "example.com.")
	zr := s.SyncZone(context.Background(), zid)
	if zr.Err != nil || zr.Changed || store.Load().Find(zonestore.DefaultView, "example.com.") != before {
		t.Fatalf("unchanged zone swapped: %+v", zr)
	}
	put(t, f, zid, rrset("www.example.com", "A", 300, "192.0.2.3"))
	if zr := s.SyncZone(context.Background(), zid); zr.Err != nil || !zr.Changed {
		t.Fatalf("changed zone: %+v", zr)
	}
	if _, got := answer(t, store, zonestore.DefaultView, "www.example.com", dns.TypeA, nil); got != "A 192.0.2.3" {
		t.Errorf("after the change: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, zid+".jsonl")); err != nil {
		t.Errorf("no snapshot: %v", err)
	}
}

// TestLargeZoneMirroredExactly: 20,000 record sets, every name and type
// answered as the fake holds it, paged 300 at a time with no extra call.
func TestLargeZoneMirroredExactly(t *testing.T) {
	f := r53fake.New()
	url := f.Start(t)
	zid := f.CreateZone("big.example", false)
	const n = 20000
	for i := 0; i < n; i++ {
		var rs types.ResourceRecordSet
		switch i % 4 {
		case 0:
			rs = rrset(fmt.Sprintf("h%d.big.example", i), "A", 300, fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
		case 1:
			rs = rrset(fmt.Sprintf("h%d.big.example", i), "AAAA", 300, fmt.Sprintf("2001:db8::%x", i))
		case 2:
			rs = rrset(fmt.Sprintf("c%d.big.example", i), "CNAME", 60, fmt.Sprintf("h%d.big.example", i-2))
		case 3:
			rs = rrset(fmt.Sprintf("t%d.big.example", i), "TXT", 60, fmt.Sprintf(`"id=%d"`, i))
		}
		put(t, f, zid, rs)
	}
	store := zonestore.NewStore()
	s, err := NewSyncer(newClient(t, url, 1000, 100), store, Config{Zones: []string{"big.example"}})
	if err != nil {
		t.Fatal(err)
	}
	f.ResetRequests()
	rep, err := s.SyncOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	zr := rep.Zones[0]
	wantPages := (n + 2 + 299) / 300
	if zr.RecordSets != n+2 || zr.Calls != wantPages || f.Calls("ListResourceRecordSets") != wantPages || len(zr.Skipped) != 0 {
		t.Fatalf("sets %d calls %d (fake saw %d), want %d sets in %d pages; skipped %d", zr.RecordSets, zr.Calls, f.Calls("ListResourceRecordSets"), n+2, wantPages, len(zr.Skipped))
	}
	z := store.Load().Find(zonestore.DefaultView, "big.example.")
	for _, rs := range f.RecordSets(zid) {
		conv, err := ConvertRecordSet(rs)
		if err != nil {
			t.Fatal(err)
		}
		res := z.Lookup(conv.Name, conv.Type)
		if res.Kind != zonestore.Answer || len(res.Answer) != len(conv.RRs) {
			t.Fatalf("%s %s: %v %v", conv.Name, rs.Type, res.Kind, res.Answer)
		}
		if conv.Type == dns.TypeSOA {
			conv.RRs[0].(*dns.SOA).Serial = z.Serial() // ours moves; Route 53's is 1
		}
		for i, rr := range res.Answer {
			if rr.String() != conv.RRs[i].String() {
				t.Fatalf("%s: %s != %s", conv.Name, rr, conv.RRs[i])
			}
		}
	}
	t.Logf("%d record sets: %d calls in %v", n, zr.Calls, zr.Duration)
}

// TestSplitHorizon: a private zone shadows the public one of the same name
// for the views of its VPCs; a name it lacks is NXDOMAIN there, with no
// fallback to the public zone.
func TestSplitHorizon(t *testing.T) {
	f := r53fake.New()
	url := f.Start(t)
	pub := f.CreateZone("corp.example", false)
	priv := f.CreateZone("corp.example", true, r53fake.VPC{ID: "vpc-prod", Region: "us-east-1"})
	other := f.CreateZone("db.corp.example", true, r53fake.VPC{ID: "vpc-dev", Region: "us-east-1"})
	put(t, f, pub, rrset("www.corp.example", "A", 60, "198.51.100.1"), rrset("public-only.corp.example", "A", 60, "198.51.100.2"))
	put(t, f, priv, rrset("www.corp.example", "A", 60, "10.0.0.1"))
	put(t, f, other, rrset("pg.db.corp.example", "A", 60, "10.9.0.1"))
	store := zonestore.NewStore()
	s, err := NewSyncer(newClient(t, url, 1000, 100), store, Config{Discover: true,
		Views: map[string][]string{"vpc-prod": {"prod"}, "vpc-dev": {"dev"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ view, name, want string }{
		{zonestore.DefaultView, "www.corp.example", "A 198.51.100.1"},
		{"prod", "www.corp.example", "A 10.0.0.1"},
		{"prod", "public-only.corp.example", "nxdomain"},
		{"dev", "www.corp.example", "A 198.51.100.1"},
		{"dev", "pg.db.corp.example", "A 10.9.0.1"},
		{zonestore.DefaultView, "pg.db.corp.example", "nxdomain"},
	} {
		if _, got := answer(t, store, tc.view, tc.name, dns.TypeA, nil); got != tc.want {
			t.Errorf("view %q %s = %q, want %q", tc.view, tc.name, got, tc.want)
		}
	}
	// The private zone moves from vpc-prod to vpc-dev: the next listing
	// publishes it for dev and withdraws it from prod, without a fetch.
	f.SetVPCs(priv, r53fake.VPC{ID: "vpc-dev"})
	if err := s.List(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ view, name, want string }{
		{"prod", "www.corp.example", "A 198.51.100.1"},
		{"dev", "www.corp.example", "A 10.0.0.1"},
	} {
		if _, got := answer(t, store, tc.view, tc.name, dns.TypeA, nil); got != tc.want {
			t.Errorf("after the VPC change: view %q %s = %q, want %q", tc.view, tc.name, got, tc.want)
		}
	}
}

// TestFailuresKeepLastGoodData: throttling, 5xx and a zone deleted
// mid-sync; only Route 53 saying the zone is gone drops it.
func TestFailuresKeepLastGoodData(t *testing.T) {
	f := r53fake.New()
	url := f.Start(t)
	zid := f.CreateZone("keep.example", false)
	for i := 0; i < 700; i++ {
		put(t, f, zid, rrset(fmt.Sprintf("h%d.keep.example", i), "A", 60, "192.0.2.1"))
	}
	store := zonestore.NewStore()
	s, err := NewSyncer(newClient(t, url, 1000, 100), store, Config{Zones: []string{zid}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	put(t, f, zid, rrset("h1.keep.example", "A", 60, "192.0.2.2"))

	f.Throttle(true) // through every attempt of the client
	if zr := s.SyncZone(context.Background(), zid); zr.Err == nil || !strings.Contains(zr.Err.Error(), "Throttling") {
		t.Fatalf("want a throttling failure, got %+v", zr.Err)
	}
	if _, got := answer(t, store, zonestore.DefaultView, "h1.keep.example", dns.TypeA, nil); got != "A 192.0.2.1" {
		t.Fatalf("throttled sync lost the zone: %q", got)
	}
	f.Throttle(false)
	f.FailNext(5, 503) // exactly the client's attempts
	if zr := s.SyncZone(context.Background(), zid); zr.Err == nil {
		t.Fatal("want a 5xx failure")
	}
	if _, got := answer(t, store, zonestore.DefaultView, "h1.keep.example", dns.TypeA, nil); got != "A 192.0.2.1" {
		t.Fatalf("failed sync lost the zone: %q", got)
	}
	if zr := s.SyncZone(context.Background(), zid); zr.Err != nil || !zr.Changed {
		t.Fatalf("recovery: %+v", zr)
	}
	if _, got := answer(t, store, zonestore.DefaultView, "h1.keep.example", dns.TypeA, nil); got != "A 192.0.2.2" {
		t.Fatalf("after recovery: %q", got)
	}
	f.DeleteZoneAfter(zid, 1) // gone after the first page of the next listing
	zr := s.SyncZone(context.Background(), zid)
	if zr.Err == nil {
		t.Fatal("want NoSuchHostedZone")
	}
	if _, got := answer(t, store, zonestore.DefaultView, "h1.keep.example", dns.TypeA, nil); got != "nozone" {
		t.Fatalf("deleted zone still served: %q", got)
	}
}

// TestRateNeverExceeded: every request, retries included, goes through the
// one limiter: over any second the fake sees at most rps+burst requests.
func TestRateNeverExceeded(t *testing.T) {
	f := r53fake.New()
	url := f.Start(t)
	var zones []string
	for i := 0; i < 10; i++ {
		zid := f.CreateZone(fmt.Sprintf("z%d.example", i), false)
		for j := 0; j < 1000; j++ {
			put(t, f, zid, rrset(fmt.Sprintf("h%d.z%d.example", j, i), "A", 60, "192.0.2.1"))
		}
		zones = append(zones, zid)
	}
	f.ThrottleNext(3) // retries must wait on the limiter too
	store := zonestore.NewStore()
	s, err := NewSyncer(newClient(t, url, 20, 5), store, Config{Zones: zones})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := f.Requests()
	maxIn := 0
	for i := range reqs {
		n := 0
		for j := i; j < len(reqs) && reqs[j].At.Sub(reqs[i].At) < time.Second; j++ {
			n++
		}
		maxIn = max(maxIn, n)
	}
	if len(reqs) < 40 || maxIn > 20+5 {
		t.Fatalf("%d requests within one second at a limit of 20/s burst 5", maxIn)
	}
	t.Logf("%d requests, at most %d in any second", len(reqs), maxIn)
	if !s.Ready() {
		t.Fatal("not every zone synced")
	}
}

// TestSnapshotColdStart: a new syncer serves every zone from the snapshot
// with the API down, and is ready before any call.
func TestSnapshotColdStart(t *testing.T) {
	f := r53fake.New()
	url := f.Start(t)
	zid := f.CreateZone("cold.example", true, r53fake.VPC{ID: "vpc-1"})
	put(t, f, zid, rrset("www.cold.example", "A", 60, "10.0.0.7"))
	rs := rrset("w.cold.example", "A", 60, "10.0.0.8")
	rs.SetIdentifier, rs.Weight = aws.String("only"), aws.Int64(5)
	put(t, f, zid, rs)
	dir := t.TempDir()
	views := map[string][]string{"vpc-1": {"inside"}}
	s, _ := NewSyncer(newClient(t, url, 1000, 100), zonestore.NewStore(), Config{Zones: []string{zid}, SnapshotDir: dir, Views: views})
	if _, err := s.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}

	store := zonestore.NewStore()
	dead := newClient(t, "http://127.0.0.1:1", 1000, 100)
	s2, _ := NewSyncer(dead, store, Config{Zones: []string{zid}, SnapshotDir: dir, Views: views})
	start := time.Now()
	n, err := s2.LoadSnapshots()
	if err != nil || n != 1 {
		t.Fatalf("loaded %d: %v", n, err)
	}
	if !s2.Ready() {
		t.Fatal("not ready from the snapshot")
	}
	t.Logf("ready from snapshot in %v", time.Since(start))
	for _, tc := range []struct{ name, want string }{{"www.cold.example", "A 10.0.0.7"}, {"w.cold.example", "A 10.0.0.8"}} {
		if _, got := answer(t, store, "inside", tc.name, dns.TypeA, nil); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, got, tc.want)
		}
	}
	// The API being down leaves the snapshot's data in place.
	if zr := s2.SyncZone(context.Background(), zid); zr.Err == nil {
		t.Fatal("sync against a dead endpoint succeeded")
	}
	if _, got := answer(t, store, "inside", "www.cold.example", dns.TypeA, nil); got != "A 10.0.0.7" {
		t.Fatalf("after a failed sync: %q", got)
	}
	_ = netip.Addr{}
}

// TestDiscoveryFilters: discovery keeps zones by suffix, visibility and tags.
func TestDiscoveryFilters(t *testing.T) {
	f := r53fake.New()
	url := f.Start(t)
	a := f.CreateZone("a.prod.example", false)
	b := f.CreateZone("b.prod.example", false)
	c := f.CreateZone("c.dev.example", false)
	d := f.CreateZone("d.prod.example", true, r53fake.VPC{ID: "vpc-1"})
	f.SetTags(a, map[string]string{"hybridns": "serve", "team": "net"})
	f.SetTags(b, map[string]string{"team": "net"})
	f.SetTags(c, map[string]string{"hybridns": "serve"})
	f.SetTags(d, map[string]string{"hybridns": "other"})
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"suffix", Config{Discover: true, Suffixes: []string{"prod.example"}}, []string{a, b, d}},
		{"public", Config{Discover: true, Visibility: "public"}, []string{a, b, c}},
		{"private", Config{Discover: true, Visibility: "private"}, []string{d}},
		{"tag value", Config{Discover: true, Tags: map[string]string{"hybridns": "serve"}}, []string{a, c}},
		{"tag any value", Config{Discover: true, Tags: map[string]string{"hybridns": "*"}}, []string{a, c, d}},
		{"tags and suffix", Config{Discover: true, Suffixes: []string{"prod.example"}, Tags: map[string]string{"team": "net", "hybridns": "*"}}, []string{a}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSyncer(newClient(t, url, 1000, 100), zonestore.NewStore(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.List(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := s.zoneIDs()
			want := append([]string(nil), tc.want...)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

// TestRunRetriesFailedFirstSync: a zone whose first sync fails is retried
// with backoff, not an interval later, and the syncer becomes ready.
func TestRunRetriesFailedFirstSync(t *testing.T) {
	f := r53fake.New()
	url := f.Start(t)
	zid := f.CreateZone("retry.example", false)
	put(t, f, zid, rrset("www.retry.example", "A", 60, "192.0.2.1"))
	store := zonestore.NewStore()
	api := &flakyAPI{API: newClient(t, url, 1000, 100), fail: 1} // the first record listing fails
	s, err := NewSyncer(api, store, Config{Zones: []string{zid}, Interval: time.Hour, RetryBase: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for !s.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("not ready: the failed first sync was not retried")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, got := answer(t, store, zonestore.DefaultView, "www.retry.example", dns.TypeA, nil); got != "A 192.0.2.1" {
		t.Fatalf("after the retry: %q", got)
	}
	cancel()
	<-done
}

// flakyAPI fails the first `fail` ListResourceRecordSets calls.
type flakyAPI struct {
	API
	fail int
}

func (f *flakyAPI) ListResourceRecordSets(ctx context.Context, in *route53.ListResourceRecordSetsInput, o ...func(*route53.Options)) (*route53.ListResourceRecordSetsOutput, error) {
	if f.fail > 0 {
		f.fail--
		return nil, fmt.Errorf("injected failure")
	}
	return f.API.ListResourceRecordSets(ctx, in, o...)
}

// TestDropKeepsAnotherZoneOfTheSameName: when a hosted zone goes away, a
// different hosted zone of the same name serving the view stays.
func TestDropKeepsAnotherZoneOfTheSameName(t *testing.T) {
	f := r53fake.New()
	url := f.Start(t)
	old := f.CreateZone("same.example", false)
	cur := f.CreateZone("same.example", false)
	put(t, f, old, rrset("www.same.example", "A", 60, "192.0.2.1"))
	put(t, f, cur, rrset("www.same.example", "A", 60, "192.0.2.2"))
	store := zonestore.NewStore()
	a, _ := NewSyncer(newClient(t, url, 1000, 100), store, Config{Zones: []string{old}})
	b, _ := NewSyncer(newClient(t, url, 1000, 100), store, Config{Zones: []string{cur}})
	for _, s := range []*Syncer{a, b} {
		if _, err := s.SyncOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	f.DeleteZone(old)
	if zr := a.SyncZone(context.Background(), old); zr.Err == nil {
		t.Fatal("want NoSuchHostedZone")
	}
	if _, got := answer(t, store, zonestore.DefaultView, "www.same.example", dns.TypeA, nil); got != "A 192.0.2.2" {
		t.Fatalf("the other hosted zone was withdrawn: %q", got)
	}
}
