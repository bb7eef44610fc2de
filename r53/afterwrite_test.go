package r53

import (
	"context"
	"testing"

	"github.com/miekg/dns"

	"hybridns/test/r53fake"
	"hybridns/zonestore"
	"hybridns/zonestore/dynupdate"
)

// TestAfterWriteHook: the hook sees exactly the accepted changes, after the
// zone's write slot is free (it may write to the same syncer), and is not
// called for a no-op or a rejected write.
func TestAfterWriteHook(t *testing.T) {
	f := r53fake.New()
	url := f.Start(t)
	fwd := f.CreateZone("corp.example", false)
	rev := f.CreateZone("10.in-addr.arpa", false)
	store := zonestore.NewStore()
	s, err := NewSyncer(newClient(t, url, 1000, 100), store, Config{Zones: []string{fwd, rev}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SyncOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	var calls []string
	s.SetAfterWrite(func(ctx context.Context, zoneID, zoneName string, changes []dynupdate.Change) {
		calls = append(calls, zoneName)
		if zoneName != "corp.example." {
			return
		}
		// Writing from the hook, to another zone and to the same one,
		// must not wait for the slot the outer write held.
		ptr, _ := dns.NewRR("1.0.0.10.in-addr.arpa. 60 IN PTR a.corp.example.")
		if _, err := s.Update(ctx, rev, nil, []dns.RR{ptr}, nil); err != nil {
			t.Errorf("write from the hook: %v", err)
		}
		if res, err := s.Update(ctx, zoneID, nil, nil, nil); err != nil || res.ChangeID != "" {
			t.Errorf("no-op on the same zone from the hook: %v %+v", err, res)
		}
		if len(changes) != 1 || changes[0].Name != "a.corp.example." || changes[0].Type != dns.TypeA || len(changes[0].New) != 1 {
			t.Errorf("hook changes: %+v", changes)
		}
	})
	a, _ := dns.NewRR("a.corp.example. 60 IN A 10.0.0.1")
	if _, err := s.Update(context.Background(), fwd, nil, []dns.RR{a}, nil); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 || calls[0] != "corp.example." || calls[1] != "10.in-addr.arpa." {
		t.Fatalf("hook calls %v, want the forward write then the reverse one", calls)
	}
	// A no-op (the same record again) and a write Route 53 rejects call nothing.
	calls = nil
	if _, err := s.Update(context.Background(), fwd, nil, []dns.RR{a}, nil); err != nil {
		t.Fatal(err)
	}
	f.DeleteRecordSet(fwd, "a.corp.example.", "A", "") // our mirror is stale now
	del, _ := dns.NewRR("a.corp.example. 0 NONE A 10.0.0.1")
	if _, err := s.Update(context.Background(), fwd, nil, []dns.RR{del}, nil); err == nil {
		t.Fatal("a DELETE of a set Route 53 no longer has was accepted")
	}
	if len(calls) != 0 {
		t.Fatalf("hook called for a no-op or a rejected write: %v", calls)
	}
}
