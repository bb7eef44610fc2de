package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"

	"hybridns/r53"
	"hybridns/r53/fleet"
	"hybridns/server"
	"hybridns/test/r53fake"
	"hybridns/zonestore"
)

// fakeSource stands in for a syncer: the raw record sets of one hosted
// zone and the health of its checks.
type fakeSource struct {
	mu     sync.Mutex
	sets   []types.ResourceRecordSet
	serial uint32
	health map[string]bool
}

func (f *fakeSource) ZoneData(id string) (string, bool, []types.ResourceRecordSet, uint32, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id != "ZCORP" {
		return "", false, nil, 0, false
	}
	return "corp.example.", true, f.sets, f.serial, true
}

func (f *fakeSource) HealthMap() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]bool{}
	for k, v := range f.health {
		out[k] = v
	}
	return out
}

func rrv(v ...string) []types.ResourceRecord {
	var out []types.ResourceRecord
	for _, s := range v {
		out = append(out, types.ResourceRecord{Value: aws.String(s)})
	}
	return out
}

func corpSets() []types.ResourceRecordSet {
	return []types.ResourceRecordSet{
		{Name: aws.String("corp.example."), Type: types.RRTypeSoa, TTL: aws.Int64(900), ResourceRecords: rrv("ns-1.awsdns-01.org. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400")},
		{Name: aws.String("corp.example."), Type: types.RRTypeNs, TTL: aws.Int64(172800), ResourceRecords: rrv("ns-1.awsdns-01.org.")},
		{Name: aws.String("www.corp.example."), Type: types.RRTypeA, TTL: aws.Int64(60), ResourceRecords: rrv("10.0.0.1")},
		{Name: aws.String("w.corp.example."), Type: types.RRTypeA, TTL: aws.Int64(60), SetIdentifier: aws.String("a"), Weight: aws.Int64(3), ResourceRecords: rrv("10.0.1.1")},
		{Name: aws.String("w.corp.example."), Type: types.RRTypeA, TTL: aws.Int64(60), SetIdentifier: aws.String("b"), Weight: aws.Int64(0), ResourceRecords: rrv("10.0.1.2")},
		{Name: aws.String("f.corp.example."), Type: types.RRTypeA, TTL: aws.Int64(60), SetIdentifier: aws.String("p"), Failover: types.ResourceRecordSetFailoverPrimary,
			HealthCheckId: aws.String("hc-1"), ResourceRecords: rrv("10.0.2.1")},
		{Name: aws.String("f.corp.example."), Type: types.RRTypeA, TTL: aws.Int64(60), SetIdentifier: aws.String("s"), Failover: types.ResourceRecordSetFailoverSecondary, ResourceRecords: rrv("10.0.2.2")},
		{Name: aws.String("alias.corp.example."), Type: types.RRTypeA, AliasTarget: &types.AliasTarget{DNSName: aws.String("www.corp.example."), HostedZoneId: aws.String("ZCORP")}},
	}
}

// lateNotify routes NOTIFY to a follower made after the server started.
type lateNotify struct{ f atomic.Pointer[follower] }

func (l *lateNotify) Notify(zone string, from netip.Addr, key string) (bool, bool) {
	if f := l.f.Load(); f != nil {
		return notifiers{follow: f}.Notify(zone, from, key)
	}
	return false, false
}

func filesZone(t *testing.T, serial uint32, www string) *zonestore.Zone {
	t.Helper()
	src := fmt.Sprintf("$ORIGIN files.example.\n$TTL 300\n@ SOA ns1 hostmaster %d 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A %s\n", serial, www)
	z, err := zonestore.ParseZone(strings.NewReader(src), "files.example.", "files.example.zone")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func zoneText(z *zonestore.Zone) string {
	if z == nil {
		return "<nil>"
	}
	var out []string
	for _, rr := range z.RRs() {
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func startDNS(t *testing.T, ctx context.Context, cfg server.Config, pol server.Policy) (*server.Server, string) {
	t.Helper()
	cfg.Listen = []string{"127.0.0.1:0"}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reconfigure(pol); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	u, _ := s.Addrs()
	return s, u[0].String()
}

// One primary (a zone file in the default view, a private Route 53 zone
// with weighted, failover and alias sets in view corp) and one follower
// with the primary's views: the follower serves the same zones with the
// same records, follows a change by NOTIFY (the SOA refresh is an hour),
// follows a health change and a removal, and a restart with the primary
// gone serves from its copies on disk.
func TestFleetFollower(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	key := server.TSIGKey{Name: "fleet-key.", Algorithm: dns.HmacSHA256, Secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="}
	views := []server.View{{Name: "corp", Clients: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}}
	dir := t.TempDir()

	// The follower's server first: the primary NOTIFYs it.
	fctx, fstop := context.WithCancel(t.Context())
	fstore := zonestore.NewStore()
	var late lateNotify
	fsrv, faddr := startDNS(t, fctx, server.Config{Store: fstore, TSIGKeys: []server.TSIGKey{key}, Views: views, Notify: &late},
		server.Policy{TSIGKeys: []server.TSIGKey{key}, Views: views})
	defer fsrv.Shutdown(context.Background())

	// The primary.
	pctx, pstop := context.WithCancel(t.Context())
	pstore := zonestore.NewStore()
	journal := pstore.EnableJournal(zonestore.JournalConfig{})
	src := &fakeSource{sets: corpSets(), serial: 100, health: map[string]bool{"hc-1": true}}
	corp, _, err := r53.BuildZone("corp.example.", "ZCORP", r53.WithSerial(src.sets, 100))
	if err != nil {
		t.Fatal(err)
	}
	pstore.PutZone("corp", corp)
	pstore.PutZone(zonestore.DefaultView, filesZone(t, 1, "192.0.2.80"))
	psrv, paddr := startDNS(t, pctx, server.Config{Store: pstore, TSIGKeys: []server.TSIGKey{key}, Views: views, Journal: journal},
		server.Policy{TSIGKeys: []server.TSIGKey{key}, Views: views, Transfer: []server.TransferRule{{Keys: []string{key.Name}, View: server.AnyView, Notify: []string{faddr}}}})
	feed := newFleetFeed(pstore, nil, "", log)
	feed.syncers = []fleetSource{src}
	go feed.run(pctx, nil)

	fl, err := newFollower(fstore, FollowConfig{Primaries: []string{paddr}, Key: "fleet-key", Catalog: "catalog.hybridns."}, &key, []string{"corp"}, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	late.f.Store(fl)
	fl.load(fctx)
	fl.start(fctx)
	go fl.run(fctx)

	same := func(view, origin string) bool {
		return zoneText(fstore.Load().Zone(view, origin)) == zoneText(pstore.Load().Zone(view, origin))
	}
	waitFor(t, "the follower ready", func() bool { return fl.notReady() == "" && len(fl.served()) == 2 })
	waitFor(t, "the follower's zones equal the primary's", func() bool { return same("corp", "corp.example.") && same("", "files.example.") })
	if z := fstore.Load().Zone("corp", "corp.example."); z.Source() != "route53:ZCORP" || z.Serial() != 100 {
		t.Fatalf("corp.example. on the follower: source %s serial %d", z.Source(), z.Serial())
	}
	// NOTIFY for a served zone itself (a view "*" rule sends those too) is
	// acknowledged; for a zone not from the feed it is not ours.
	if k, a := fl.Notify("files.example.", netip.MustParseAddr("127.0.0.1"), key.Name); !k || !a {
		t.Fatalf("NOTIFY for a followed zone: known %v accepted %v", k, a)
	}
	if k, _ := fl.Notify("other.example.", netip.MustParseAddr("127.0.0.1"), key.Name); k {
		t.Fatal("NOTIFY for a zone not followed is known")
	}
	if fstore.Load().Zone("", "corp.example.") != nil {
		t.Fatal("the private zone leaked into the default view")
	}
	// The fleet view answers no query on the primary.
	m := new(dns.Msg)
	m.SetQuestion(fleet.Name("", "files.example."), dns.TypeSOA)
	if r, err := dns.Exchange(m, paddr); err != nil || r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
		t.Fatalf("a query for a fleet zone was answered: %v %v", r, err)
	}

	// A change reaches the follower by NOTIFY (refresh is an hour).
	pstore.PutZone(zonestore.DefaultView, filesZone(t, 2, "192.0.2.81"))
	waitFor(t, "the change on the follower", func() bool { return same("", "files.example.") })

	// Health: the failover answer flips on the follower as on the primary.
	answer := func(store *zonestore.Store, healthy func(string) bool) string {
		r := store.Load().Zone("corp", "corp.example.").LookupFor("f.corp.example.", dns.TypeA, &zonestore.Client{Healthy: healthy})
		return fmt.Sprint(r.Answer)
	}
	if a := answer(fstore, fl.Healthy); !strings.Contains(a, "10.0.2.1") {
		t.Fatalf("healthy primary: follower answers %s", a)
	}
	src.mu.Lock()
	src.health["hc-1"] = false
	src.mu.Unlock()
	waitFor(t, "the health change on the follower", func() bool { return !fl.Healthy("hc-1") })
	if a, want := answer(fstore, fl.Healthy), answer(pstore, func(id string) bool { return id != "hc-1" }); a != want || !strings.Contains(a, "10.0.2.2") {
		t.Fatalf("unhealthy primary: follower answers %s, primary %s", a, want)
	}

	// A record set change in Route 53 (the syncer's new version).
	src.mu.Lock()
	src.sets = slices.Clone(src.sets)
	src.sets[2].ResourceRecords = rrv("10.0.0.9")
	src.serial = 101
	sets := src.sets
	src.mu.Unlock()
	corp2, _, err := r53.BuildZone("corp.example.", "ZCORP", r53.WithSerial(sets, 101))
	if err != nil {
		t.Fatal(err)
	}
	swapped := time.Now()
	pstore.PutZone("corp", corp2)
	waitFor(t, "the record set change on the follower", func() bool { return same("corp", "corp.example.") })
	t.Logf("follower lag (primary swap → follower swap, NOTIFY + SOA + IXFR): %v", time.Since(swapped))

	// A zone the primary drops, the follower drops.
	gone, err := zonestore.ParseZone(strings.NewReader("$ORIGIN gone.example.\n@ 300 SOA ns hm 1 3600 600 86400 60\n@ 300 NS ns\n"), "gone.example.", "gone")
	if err != nil {
		t.Fatal(err)
	}
	pstore.PutZone(zonestore.DefaultView, gone)
	waitFor(t, "a new zone on the follower", func() bool { return fstore.Load().Zone("", "gone.example.") != nil })
	pstore.DeleteZone(zonestore.DefaultView, "gone.example.")
	waitFor(t, "the dropped zone gone on the follower", func() bool { return fstore.Load().Zone("", "gone.example.") == nil })

	// The primary stops; a restarted follower serves from disk and is ready.
	pstop()
	psrv.Shutdown(context.Background())
	fstop()
	want := zoneText(fstore.Load().Zone("corp", "corp.example."))
	store2 := zonestore.NewStore()
	fl2, err := newFollower(store2, FollowConfig{Primaries: []string{paddr}, Key: "fleet-key"}, &key, []string{"corp"}, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	fl2.load(t.Context())
	if r := fl2.notReady(); r != "" {
		t.Fatalf("restarted follower not ready: %s", r)
	}
	if got := zoneText(store2.Load().Zone("corp", "corp.example.")); got != want {
		t.Fatalf("restarted follower serves\n%s\nwant\n%s", got, want)
	}
	if fl2.Healthy("hc-1") {
		t.Fatal("health is not kept across the restart")
	}
}

// The feed over a real syncer (mirroring the Route 53 fake): the fleet
// zone decodes to exactly the zone the syncer publishes, with its serial
// and source, and carries the health the syncer polled.
func TestFleetFeedFromSyncer(t *testing.T) {
	f := r53fake.New()
	url := f.Start(t)
	id := f.CreateZone("shop.example", false)
	f.AddHealthCheck("hc-shop", false)
	for _, rs := range corpSets()[2:] {
		rs.Name = aws.String(strings.Replace(aws.ToString(rs.Name), "corp.example.", "shop.example.", 1))
		if rs.AliasTarget != nil {
			rs.AliasTarget.DNSName, rs.AliasTarget.HostedZoneId = aws.String("www.shop.example."), aws.String(id)
		}
		if rs.HealthCheckId != nil {
			rs.HealthCheckId = aws.String("hc-shop")
		}
		if err := f.PutRecordSet(id, rs); err != nil {
			t.Fatal(err)
		}
	}
	client, err := r53.NewClient(t.Context(), r53.ClientOptions{Endpoint: url, Limiter: r53.NewLimiter(1000, 100),
		AWSConfig: &aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDFAKE", "SECRETFAKE", "")}})
	if err != nil {
		t.Fatal(err)
	}
	store := zonestore.NewStore()
	sy, err := r53.NewSyncer(client, store, r53.Config{Zones: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sy.SyncOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := sy.PollHealth(t.Context()); err != nil {
		t.Fatal(err)
	}
	feed := newFleetFeed(store, []*r53.Syncer{sy}, "", slog.New(slog.DiscardHandler))
	feed.update()
	snap := store.Load()
	src := snap.Zone(zonestore.DefaultView, "shop.example.")
	fz := snap.Zone(zonestore.FleetView, fleet.Name("", "shop.example."))
	if src == nil || fz == nil {
		t.Fatalf("zone %v, fleet zone %v", src, fz)
	}
	if cat := snap.Zone(zonestore.FleetView, defaultFleetCatalog); cat == nil || !slices.Equal(fleet.Members(cat), []string{fz.Origin()}) {
		t.Fatalf("fleet catalog: %v", cat)
	}
	d, err := fleet.Decode(fz)
	if err != nil {
		t.Fatal(err)
	}
	if d.Meta.Kind != fleet.KindRoute53 || d.Zone.Source() != src.Source() || d.Zone.Serial() != src.Serial() || d.Meta.Serial != src.Serial() {
		t.Fatalf("meta %+v source %s serial %d, want %s %d", d.Meta, d.Zone.Source(), d.Zone.Serial(), src.Source(), src.Serial())
	}
	if zoneText(d.Zone) != zoneText(src) {
		t.Fatalf("decoded\n%s\nsyncer's\n%s", zoneText(d.Zone), zoneText(src))
	}
	if len(d.Health) != 1 || d.Health["hc-shop"] {
		t.Fatalf("health %v", d.Health)
	}
	// Health flips: a new fleet version (serial up) though the zone is the same.
	f.SetHealth("hc-shop", true)
	if err := sy.PollHealth(t.Context()); err != nil {
		t.Fatal(err)
	}
	feed.update()
	fz2 := store.Load().Zone(zonestore.FleetView, fz.Origin())
	d2, err := fleet.Decode(fz2)
	if err != nil {
		t.Fatal(err)
	}
	if !d2.Health["hc-shop"] || !zonestore.SerialLess(fz.Serial(), fz2.Serial()) {
		t.Fatalf("after the health change: %v serial %d→%d %v", d2, fz.Serial(), fz2.Serial(), err)
	}
}
