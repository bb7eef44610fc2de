package zonestore

import (
	"errors"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestBuilderLeavesNothingShared: after Build the builder holds nothing of
// the zone; adding to it fails and the published zone never changes.
func TestBuilderLeavesNothingShared(t *testing.T) {
	b := NewBuilder("b.test.")
	for _, s := range []string{"b.test. 60 IN SOA ns.b.test. hm.b.test. 1 2 3 4 5", "b.test. 60 IN NS ns.b.test.", "ns.b.test. 60 IN A 192.0.2.1", "www.b.test. 60 IN A 192.0.2.2"} {
		if err := b.Add(mustRR(t, s)); err != nil {
			t.Fatal(err)
		}
	}
	z, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	records, names := z.Records(), z.Names()
	if err := b.Add(mustRR(t, "late.b.test. 60 IN A 192.0.2.9")); !errors.Is(err, ErrBuilt) {
		t.Fatalf("Add after Build: %v, want ErrBuilt", err)
	}
	if err := b.Add(mustRR(t, "www.b.test. 60 IN A 192.0.2.3")); !errors.Is(err, ErrBuilt) {
		t.Fatalf("Add to an existing name after Build: %v, want ErrBuilt", err)
	}
	if err := b.AddVariant("pol.b.test.", dns.TypeA, PolicyWeighted, Variant{ID: "x", Weight: 1, RRs: []dns.RR{mustRR(t, "pol.b.test. 60 IN A 192.0.2.4")}}); !errors.Is(err, ErrBuilt) {
		t.Fatalf("AddVariant after Build: %v, want ErrBuilt", err)
	}
	if _, err := b.Build(); !errors.Is(err, ErrBuilt) {
		t.Fatalf("second Build: %v, want ErrBuilt", err)
	}
	if b.nodes != nil {
		t.Fatal("the builder still references the zone's nodes")
	}
	if res := z.Lookup("late.b.test.", dns.TypeA); res.Kind != NXDomain {
		t.Fatalf("late.b.test.: %v", res.Kind)
	}
	if res := z.Lookup("www.b.test.", dns.TypeA); len(res.Answer) != 1 {
		t.Fatalf("www.b.test.: %v", res.Answer)
	}
	if z.Records() != records || z.Names() != names {
		t.Fatal("the zone changed after Build")
	}
}

// TestBuildFailureKeepsBuilder: a failed Build hands nothing out; the
// builder can be completed and built.
func TestBuildFailureKeepsBuilder(t *testing.T) {
	b := NewBuilder("c.test.")
	b.Add(mustRR(t, "c.test. 60 IN NS ns.c.test."))
	if _, err := b.Build(); err == nil {
		t.Fatal("zone without SOA built")
	}
	if err := b.Add(mustRR(t, "c.test. 60 IN SOA ns.c.test. hm.c.test. 1 2 3 4 5")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Build(); err != nil {
		t.Fatal(err)
	}
}

// TestUnavailableZone: a claimed zone without data answers ServFail to
// every lookup, with no wire form (a fast path falls back to the handler).
func TestUnavailableZone(t *testing.T) {
	z := Unavailable("Corp.Example", "/zones/corp.example.zone")
	if z.Origin() != "corp.example." || z.Available() || z.Source() != "/zones/corp.example.zone" {
		t.Fatalf("%s %v %s", z.Origin(), z.Available(), z.Source())
	}
	for _, q := range []uint16{dns.TypeA, dns.TypeSOA, dns.TypeNS, dns.TypeANY, dns.TypeDS} {
		for _, name := range []string{"corp.example.", "www.corp.example.", "a.b.corp.example."} {
			res := z.Lookup(name, q)
			if res.Kind != ServFail || len(res.Answer)+len(res.Ns)+len(res.Extra) != 0 || res.Chase != "" || res.Alias != "" {
				t.Fatalf("%s %s: %+v", name, dns.TypeToString[q], res)
			}
			w := z.LookupWire(name, q, nil)
			if _, _, _, _, ok := w.AppendWire(nil, len(name)+1); ok {
				t.Fatalf("%s: an unavailable zone has a wire answer", name)
			}
		}
	}
	if z.Serial() != 0 || z.SOA() != nil || z.NegativeSOA() != nil || z.RRs() != nil || z.Records() != 0 {
		t.Fatal("an unavailable zone has data")
	}
	var sb strings.Builder
	if _, err := z.WriteTo(&sb); err != nil {
		t.Fatal(err)
	}
	s := NewStore()
	s.PutZone(DefaultView, z)
	if got := s.Load().Find(DefaultView, "www.corp.example."); got != z {
		t.Fatal("Find must return the claim")
	}
	if ServFail.String() != "servfail" {
		t.Fatal(ServFail.String())
	}
}

// TestParseZoneLimit: $GENERATE cannot make more records than allowed, and
// parsing stops there.
func TestParseZoneLimit(t *testing.T) {
	text := "$ORIGIN g.test.\n@ 60 IN SOA ns hm 1 2 3 4 5\n@ 60 IN NS ns\nns 60 IN A 192.0.2.1\n$GENERATE 1-60000 h$ 60 IN A 10.0.0.1\n$GENERATE 1-60000 i$ 60 IN A 10.0.0.1\n"
	_, err := ParseZoneLimit(strings.NewReader(text), "g.test.", "g.test.zone", 1000)
	if !errors.Is(err, ErrTooManyRecords) || !strings.Contains(err.Error(), "g.test.zone") {
		t.Fatalf("%v", err)
	}
	z, err := ParseZoneLimit(strings.NewReader(strings.ReplaceAll(text, "1-60000", "1-5")), "g.test.", "g.test.zone", 1000)
	if err != nil || z.Records() != 13 {
		t.Fatalf("%v %v", z, err)
	}
}
