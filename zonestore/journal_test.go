package zonestore

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func buildZone(t *testing.T, serial uint32, rrs []string) *Zone {
	t.Helper()
	b := NewBuilder("j.example.")
	all := append([]string{fmt.Sprintf("j.example. 300 IN SOA ns.j.example. hm.j.example. %d 1 1 1 1", serial), "j.example. 300 IN NS ns.j.example."}, rrs...)
	for _, s := range all {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Add(rr); err != nil {
			t.Fatal(err)
		}
	}
	z, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeSOA {
			out = append(out, rr.String())
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestDiffTurnsOldIntoNew: for random pairs of zones, old minus Deleted
// plus Added is new — names and types appearing and vanishing, TTL changes,
// sets growing and shrinking.
func TestDiffTurnsOldIntoNew(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	gen := func() []string {
		var out []string
		for i := 0; i < 40; i++ {
			if rnd.IntN(2) == 0 {
				continue
			}
			name := fmt.Sprintf("n%d.j.example.", i%15)
			switch rnd.IntN(3) {
			case 0:
				out = append(out, fmt.Sprintf("%s %d IN A 192.0.2.%d", name, 60*(1+rnd.IntN(2)), i))
			case 1:
				out = append(out, fmt.Sprintf("%s 300 IN TXT \"t%d\"", name, rnd.IntN(3)))
			default:
				out = append(out, fmt.Sprintf("%s 300 IN MX %d mx.example.", name, rnd.IntN(3)))
			}
		}
		return out
	}
	for i := 0; i < 200; i++ {
		old, new := buildZone(t, 1, gen()), buildZone(t, 2, gen())
		ch := Diff(old, new)
		set := map[string]bool{}
		for _, s := range rrStrings(old.RRs()) {
			set[s] = true
		}
		for _, rr := range ch.Deleted {
			if !set[rr.String()] {
				t.Fatalf("deletes %s, which the old zone lacks", rr)
			}
			delete(set, rr.String())
		}
		for _, rr := range ch.Added {
			if set[rr.String()] {
				t.Fatalf("adds %s, which is already there", rr)
			}
			set[rr.String()] = true
		}
		var got []string
		for s := range set {
			got = append(got, s)
		}
		slices.Sort(got)
		if want := rrStrings(new.RRs()); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("old + diff:\n%s\nnew:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if ch.From.Serial != 1 || ch.To.Serial != 2 || ch.Size() <= 0 {
			t.Fatalf("change %d → %d size %d", ch.From.Serial, ch.To.Serial, ch.Size())
		}
	}
}

// TestJournalBounds: the journal keeps what its bounds allow, restarts on
// a serial that does not move forward, and forgets removed zones.
func TestJournalBounds(t *testing.T) {
	s := NewStore()
	rec := func(i int) string {
		return fmt.Sprintf("r%d.j.example. 300 IN TXT \"%s\"", i, strings.Repeat("x", 200))
	}
	var recs []string
	s.PutZone(DefaultView, buildZone(t, 1, recs))
	j := s.EnableJournal(JournalConfig{Versions: 100, MaxBytes: 2000})
	for serial := uint32(2); serial <= 20; serial++ {
		recs = append(recs, rec(int(serial)))
		s.PutZone(DefaultView, buildZone(t, serial, recs))
	}
	v, b := j.Stats()
	if b > 2000 || v < 2 || v > 9 {
		t.Fatalf("journal: %d versions, %d bytes (max 2000)", v, b)
	}
	if _, ok := j.Since(DefaultView, "j.example.", 1, 20); ok {
		t.Error("bridges beyond its byte bound")
	}
	if ch, ok := j.Since(DefaultView, "j.example.", 18, 20); !ok || len(ch) != 2 || len(ch[0].Added) != 1 {
		t.Errorf("18 → 20: %v %v", ch, ok)
	}
	// Same serial, new data: nothing can bridge to it.
	s.PutZone(DefaultView, buildZone(t, 20, append(recs, rec(99))))
	if v, _ := j.Stats(); v != 0 {
		t.Errorf("after a serial that did not move: %d versions", v)
	}
	s.PutZone(DefaultView, buildZone(t, 21, recs))
	if _, ok := j.Since(DefaultView, "j.example.", 20, 21); !ok {
		t.Error("no change 20 → 21")
	}
	s.DeleteZone(DefaultView, "j.example.")
	if v, b := j.Stats(); v != 0 || b != 0 {
		t.Errorf("after removing the zone: %d versions %d bytes", v, b)
	}
}

// TestCanonicalKeyOrder: sorting by canonicalKey is canonicalLess.
func TestCanonicalKeyOrder(t *testing.T) {
	names := []string{".", "example.", "a.example.", "z.example.", "yljkjljk.a.example.", "z.a.example.", "zabc.a.example.",
		"*.z.example.", "\\200.z.example.", "a\\.b.example.", "ab.example.", "a-.example.", "example.org.", "b.example.org."}
	for _, a := range names {
		for _, b := range names {
			ka, kb := string(canonicalKey(nil, a)), string(canonicalKey(nil, b))
			if (ka < kb) != CanonicalLess(a, b) {
				t.Errorf("%s < %s: key says %v, canonicalLess %v", a, b, ka < kb, CanonicalLess(a, b))
			}
		}
	}
}

// A claimed zone without data (Unavailable: never loaded, expired) has no
// SOA: the journal must not diff it (it crashed the process once).
func TestJournalSkipsUnavailable(t *testing.T) {
	s := NewStore()
	j := s.EnableJournal(JournalConfig{})
	s.PutZone(DefaultView, Unavailable("j.example.", "file"))
	s.PutZone(DefaultView, buildZone(t, 5, nil))
	s.PutZone(DefaultView, Unavailable("j.example.", "file"))
	s.PutZone(DefaultView, buildZone(t, 6, nil))
	if v, _ := j.Stats(); v != 0 {
		t.Errorf("%d journal versions across unavailable zones, want 0", v)
	}
}

// Observe runs before a version is readable (a journal entry must be in
// place first), OnPublished after (a NOTIFY must not reach a secondary
// that would then read the old SOA); both see every version in order.
func TestObserversBeforeAndAfterPublish(t *testing.T) {
	s := NewStore()
	var before, after []uint32
	s.Observe(func(_, next *Snapshot) {
		z := next.Zone(DefaultView, "j.example.")
		if cur := s.Load().Zone(DefaultView, "j.example."); cur == z {
			t.Errorf("Observe: serial %d is already readable", z.Serial())
		}
		before = append(before, z.Serial())
	})
	s.OnPublished(func(_, next *Snapshot) {
		if s.Load() != next {
			t.Errorf("OnPublished: version %d is not the one readers load", next.Version())
		}
		after = append(after, next.Zone(DefaultView, "j.example.").Serial())
	})
	for serial := uint32(1); serial <= 3; serial++ {
		s.PutZone(DefaultView, buildZone(t, serial, nil))
	}
	if want := []uint32{1, 2, 3}; !slices.Equal(before, want) || !slices.Equal(after, want) {
		t.Fatalf("Observe saw %v, OnPublished %v; want %v for both", before, after, want)
	}
}

// sortedNodes (the order of AXFR and RRs) is the canonical order of every
// name, empty non-terminals included: names sharing long prefixes, short
// labels, escapes, wildcards.
func TestSortedNodesIsCanonical(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	labels := []string{"a", "b", "ab", "abcdefgh", "abcdefghi", "abcdefg", "*", "\\000", "\\.", "a\\.b", "-", "z9", "0", "xn--bcher-kva", "\\255"}
	names := map[string]bool{}
	for len(names) < 3000 {
		n := "j.example."
		for range rng.IntN(4) + 1 {
			n = labels[rng.IntN(len(labels))] + "." + n
		}
		names[n] = true
	}
	var rrs []string
	for n := range names {
		rrs = append(rrs, n+" 300 IN A 192.0.2.1")
	}
	z := buildZone(t, 1, rrs)
	got := z.sortedNodes()
	want := make([]int32, len(z.nodes))
	for i := range want {
		want[i] = int32(i)
	}
	slices.SortFunc(want, func(x, y int32) int { // by the label-splitting comparison, not the keys sortedNodes uses
		a, b := z.name(&z.nodes[x]), z.name(&z.nodes[y])
		switch {
		case CanonicalLess(a, b):
			return -1
		case CanonicalLess(b, a):
			return 1
		}
		return 0
	})
	if !slices.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("position %d of %d: %s, want %s", i, len(got), z.name(&z.nodes[got[i]]), z.name(&z.nodes[want[i]]))
			}
		}
	}
	if len(got) < 3000 {
		t.Fatalf("%d nodes for 3000 names", len(got))
	}
}
