package r53

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/miekg/dns"

	"hybridns/test/r53fake"
	"hybridns/zonestore"
)

func fakeValues(f *r53fake.Fake, zid, name, typ string) []string {
	for _, rs := range f.RecordSets(zid) {
		if n, _ := UnescapeName(aws.ToString(rs.Name)); n == name && string(rs.Type) == typ {
			var out []string
			for _, r := range rs.ResourceRecords {
				out = append(out, aws.ToString(r.Value))
			}
			return out
		}
	}
	return nil
}

// TestPrereqUpdateIsCompareAndSwap: an update with prerequisites never
// overwrites data someone else put into Route 53 after our last sync: the
// sets it changes and the sets its prerequisites name must still be what the
// prerequisites were evaluated against, or Route 53 rejects the batch.
func TestPrereqUpdateIsCompareAndSwap(t *testing.T) {
	f := r53fake.New()
	url := f.Start(t)
	zid := f.CreateZone("cas.example", false)
	put(t, f, zid, rrset("h.cas.example.", "A", 60, "192.0.2.1"), rrset("g.cas.example.", "A", 60, "192.0.2.5"))
	s, err := NewSyncer(newClient(t, url, 50, 50), zonestore.NewStore(), Config{Zones: []string{zid}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Someone else changes both sets after our sync.
	put(t, f, zid, rrset("h.cas.example.", "A", 60, "198.51.100.7"), rrset("g.cas.example.", "A", 60, "198.51.100.8"))

	for _, tc := range []struct {
		name    string
		prereqs []dns.RR
		updates []dns.RR
	}{
		{"the changed set moved", []dns.RR{rr("h.cas.example. 0 IN A 192.0.2.1")},
			[]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "h.cas.example.", Rrtype: dns.TypeA, Class: dns.ClassANY}}, rr("h.cas.example. 60 IN A 192.0.2.2")}},
		{"a set the prerequisites name moved", []dns.RR{rr("g.cas.example. 0 IN A 192.0.2.5")},
			[]dns.RR{rr("new.cas.example. 60 IN A 192.0.2.9")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.Update(context.Background(), zid, tc.prereqs, tc.updates, nil)
			if res.Rcode != dns.RcodeNXRrset || err == nil {
				t.Fatalf("rcode %s err %v, want NXRRSET (Route 53 rejected the compare-and-swap)", dns.RcodeToString[res.Rcode], err)
			}
		})
	}
	if got := fakeValues(f, zid, "h.cas.example.", "A"); len(got) != 1 || got[0] != "198.51.100.7" {
		t.Errorf("h overwritten: %v", got)
	}
	if got := fakeValues(f, zid, "new.cas.example.", "A"); got != nil {
		t.Errorf("new created though g had moved: %v", got)
	}
	// After a resync the same prerequisites hold against the new data.
	if _, err := s.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := s.Update(context.Background(), zid, []dns.RR{rr("g.cas.example. 0 IN A 198.51.100.8")}, []dns.RR{rr("new.cas.example. 60 IN A 192.0.2.9")}, nil)
	if err != nil || res.Rcode != dns.RcodeSuccess {
		t.Fatalf("after a resync: %s %v", dns.RcodeToString[res.Rcode], err)
	}
	if got := fakeValues(f, zid, "g.cas.example.", "A"); len(got) != 1 || got[0] != "198.51.100.8" {
		t.Errorf("the asserted set changed: %v", got)
	}
}

// TestPollingCostsOneCallPerZone: pending changes of a zone are settled by
// asking about the newest one only.
func TestPollingCostsOneCallPerZone(t *testing.T) {
	f := r53fake.New()
	url := f.Start(t)
	zid := f.CreateZone("poll.example", false)
	s, err := NewSyncer(newClient(t, url, 100, 100), zonestore.NewStore(), Config{Zones: []string{zid}, ChangePoll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.SetChangeDelay(time.Hour)
	for i := range 20 {
		rr, _ := dns.NewRR(fmt.Sprintf("h%d.poll.example. 60 IN A 192.0.2.%d", i, i+1))
		if res, err := s.Update(context.Background(), zid, nil, []dns.RR{rr}, nil); err != nil || res.Rcode != dns.RcodeSuccess {
			t.Fatalf("update: %v %v", res.Rcode, err)
		}
	}
	if n := len(s.PendingChanges()); n != 20 {
		t.Fatalf("%d pending, want 20", n)
	}
	// A change younger than half the poll interval is not asked about yet;
	// the changes are made older than that, so no clock decides the count.
	s.mu.Lock()
	for i := range s.pending {
		s.pending[i].Submitted = s.pending[i].Submitted.Add(-time.Minute)
	}
	s.mu.Unlock()
	before := f.Calls("GetChange")
	s.pollChanges(context.Background())
	if got := f.Calls("GetChange") - before; got != 1 || len(s.PendingChanges()) != 20 {
		t.Fatalf("a round over 20 pending changes of one zone made %d calls (want 1), %d still pending", got, len(s.PendingChanges()))
	}
	f.SetChangeDelay(0)
	s.pollChanges(context.Background())
	if got := f.Calls("GetChange") - before; got != 2 || len(s.PendingChanges()) != 0 || s.WriteStats().InSync.Load() != 20 {
		t.Fatalf("%d calls, %d pending, %d counted INSYNC; want 2, 0, 20", got, len(s.PendingChanges()), s.WriteStats().InSync.Load())
	}
}
