package zonestore

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// tableModel is what a table must hold: origin → zone.
type tableModel map[string]*Zone

// checkTable compares t with m: lookups of every key of universe, the
// count, iteration and the label-count filter.
func checkTable(t *testing.T, tb table, m tableModel, universe []string, hash func(string) uint64) {
	t.Helper()
	for _, k := range universe {
		if got := tb.getH(k, hash(k)); got != m[k] {
			t.Fatalf("get(%s) = %p, want %p", k, got, m[k])
		}
	}
	if tb.n != len(m) {
		t.Fatalf("n = %d, want %d", tb.n, len(m))
	}
	seen := tableModel{}
	tb.each(func(z *Zone) {
		if seen[z.origin] != nil {
			t.Fatalf("each: %s twice", z.origin)
		}
		seen[z.origin] = z
	})
	if !maps.Equal(seen, m) {
		t.Fatalf("each: %d zones, want %d", len(seen), len(m))
	}
	for _, k := range universe {
		if want := slices.ContainsFunc(slices.Collect(maps.Keys(m)), func(o string) bool { return len(o) == len(k) }); tb.mayHold(k) != want {
			t.Fatalf("mayHold(%s) = %v, want %v", k, !want, want)
		}
	}
}

type diffEntry struct {
	origin   string
	old, new *Zone
}

func modelDiff(a, b tableModel) []diffEntry {
	var out []diffEntry
	for k, z := range b {
		if a[k] != z {
			out = append(out, diffEntry{k, a[k], z})
		}
	}
	for k, z := range a {
		if b[k] == nil {
			out = append(out, diffEntry{k, z, nil})
		}
	}
	slices.SortFunc(out, func(x, y diffEntry) int { return strings.Compare(x.origin, y.origin) })
	return out
}

func tableDiff(a, b *table) []diffEntry {
	var out []diffEntry
	diffTables(a, b, func(origin string, old, new *Zone) { out = append(out, diffEntry{origin, old, new}) })
	slices.SortFunc(out, func(x, y diffEntry) int { return strings.Compare(x.origin, y.origin) })
	return out
}

// TestTableMatchesMap runs random batches of puts and deletes against a
// map, with the real hash and with hashes that force shared prefixes and
// whole-hash collisions; every earlier version must stay as it was
// (persistence) and diffs between any two versions must be exact.
func TestTableMatchesMap(t *testing.T) {
	for _, hc := range []struct {
		name string
		hash func(string) uint64
	}{
		{"maphash", thash},
		{"short-hashes", func(k string) uint64 { return thash(k) & 0xfff }},
		{"collisions", func(k string) uint64 { return uint64(len(k) % 3) }},
	} {
		t.Run(hc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			var universe []string
			for i := range 300 {
				universe = append(universe, fmt.Sprintf("%s.z%d.example.", strings.Repeat("a.", i%4), i))
			}
			type version struct {
				tb table
				m  tableModel
			}
			versions := []version{{m: tableModel{}}}
			for range 150 {
				cur := versions[len(versions)-1]
				m := maps.Clone(cur.m)
				x := cur.tb.tx()
				for range 1 + rng.IntN(40) {
					k := universe[rng.IntN(len(universe))]
					if rng.IntN(3) == 0 {
						x.delH(k, hc.hash(k))
						delete(m, k)
					} else {
						z := Unavailable(k, "test")
						x.putH(z, hc.hash(k))
						m[k] = z
					}
				}
				tb := x.done()
				checkTable(t, tb, m, universe, hc.hash)
				if got, want := tableDiff(&cur.tb, &tb), modelDiff(cur.m, m); !slices.Equal(got, want) {
					t.Fatalf("diff: %d entries, want %d", len(got), len(want))
				}
				versions = append(versions, version{tb, m})
			}
			for i, v := range versions {
				checkTable(t, v.tb, v.m, universe, hc.hash)
				o := versions[rng.IntN(len(versions))]
				if got, want := tableDiff(&o.tb, &v.tb), modelDiff(o.m, v.m); !slices.Equal(got, want) {
					t.Fatalf("version %d: diff: %d entries, want %d", i, len(got), len(want))
				}
			}
		})
	}
}

// refFind is the zone selection the snapshot must make: the default view's
// zones overlaid with the view's own, the longest matching suffix.
func refFind(own map[string]tableModel, view, qname string) *Zone {
	merged := tableModel{}
	maps.Copy(merged, own[DefaultView])
	maps.Copy(merged, own[view])
	for off, end := 0, false; !end; off, end = dns.NextLabel(qname, off) {
		if z := merged[qname[off:]]; z != nil {
			return z
		}
	}
	return merged["."]
}

// TestSnapshotMatchesModel publishes random zone changes in random views
// and checks Find in every view, Zone, Zones and Changed against a plain
// model, and that every older snapshot still answers as it did.
func TestSnapshotMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	origins := []string{".", "example.", "a.example.", "b.a.example.", "corp.", "x.corp.", "other.test.", "deep.x.y.z.corp."}
	qnames := []string{"www.b.a.example.", "a.example.", "zz.example.", "q.x.corp.", "corp.", "nowhere.", "w.other.test.", "a.deep.x.y.z.corp.", "."}
	views := []string{DefaultView, "v1", "v2", "v3"}
	type version struct {
		s   *Snapshot
		own map[string]tableModel
	}
	check := func(v version) {
		t.Helper()
		for _, view := range append(slices.Clone(views), "unknown") {
			for _, q := range qnames {
				if got, want := v.s.Find(view, q), refFind(v.own, view, q); got != want {
					t.Fatalf("Find(%q, %s) = %v, want %v", view, q, got, want)
				}
			}
			for _, o := range origins {
				if got := v.s.Zone(view, o); got != v.own[view][o] {
					t.Fatalf("Zone(%q, %s) = %v, want %v", view, o, got, v.own[view][o])
				}
			}
			got := tableModel{}
			for _, z := range v.s.Zones(view) {
				got[z.origin] = z
			}
			if !maps.Equal(got, v.own[view]) && len(got)+len(v.own[view]) > 0 {
				t.Fatalf("Zones(%q): %d, want %d", view, len(got), len(v.own[view]))
			}
		}
	}
	versions := []version{{s: NewStore().Load(), own: map[string]tableModel{}}}
	for range 500 {
		cur := versions[len(versions)-1]
		own := map[string]tableModel{}
		for k, m := range cur.own {
			own[k] = maps.Clone(m)
		}
		view := views[rng.IntN(len(views))]
		if own[view] == nil {
			own[view] = tableModel{}
		}
		var next *Snapshot
		switch rng.IntN(3) {
		case 0:
			o := origins[rng.IntN(len(origins))]
			next = cur.s.WithoutZone(view, o)
			delete(own[view], o)
		case 1:
			z := Unavailable(origins[rng.IntN(len(origins))], "one")
			next = cur.s.WithZone(view, z)
			own[view][z.origin] = z
		default:
			var zs []*Zone
			for range rng.IntN(5) {
				z := Unavailable(origins[rng.IntN(len(origins))], "batch")
				zs = append(zs, z)
				own[view][z.origin] = z
			}
			next = cur.s.WithZones(view, zs)
		}
		if next.Version() != cur.s.Version()+1 {
			t.Fatalf("version %d after %d", next.Version(), cur.s.Version())
		}
		v := version{next, own}
		check(v)
		var want []diffEntry
		for _, view := range views {
			for _, d := range modelDiff(cur.own[view], own[view]) {
				want = append(want, diffEntry{view + "/" + d.origin, d.old, d.new})
			}
		}
		var got []diffEntry
		for _, c := range Changed(cur.s, next) {
			got = append(got, diffEntry{c.View + "/" + c.Origin, c.Old, c.New})
		}
		for _, l := range [][]diffEntry{got, want} {
			slices.SortFunc(l, func(x, y diffEntry) int { return strings.Compare(x.origin, y.origin) })
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Changed = %v, want %v", got, want)
		}
		versions = append(versions, v)
	}
	for _, v := range versions {
		check(v)
	}
	// NewSnapshot from the last model answers the same.
	last := versions[len(versions)-1]
	in := map[string][]*Zone{}
	for view, m := range last.own {
		for _, z := range m {
			in[view] = append(in[view], z)
		}
	}
	s, err := NewSnapshot(9, in)
	if err != nil {
		t.Fatal(err)
	}
	check(version{s, last.own})
}

// TestSwapCostIsPerZone: publishing one zone into a store of 10,000 zones
// in 10 views allocates a few trie paths, not tables of every zone.
func TestSwapCostIsPerZone(t *testing.T) {
	st := NewStore()
	st.Swap(manyViews(t, 10_000, 10, 1_000))
	zs := [2]*Zone{Unavailable("pub7.example.com.", "a"), Unavailable("pub7.example.com.", "b")}
	// Old: every swap cloned 10 views' merged tables of 11,000 zones
	// (about 4.8 MB). Now: one path per view's table.
	for _, c := range []struct {
		view  string
		bytes int64
	}{{DefaultView, 200_000}, {"v3", 40_000}} {
		before := st.Load()
		i := 0
		allocs := testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				st.PutZone(c.view, zs[i&1])
				i++
			}
		})
		if got := allocs.AllocedBytesPerOp(); got > c.bytes {
			t.Errorf("view %q: one swap allocates %d bytes, want ≤ %d", c.view, got, c.bytes)
		}
		if ch := Changed(before, st.Load()); len(ch) != 1 || ch[0].New != zs[(i-1)&1] {
			t.Errorf("view %q: Changed = %v", c.view, ch)
		}
	}
}

// TestEditsPublishOnce: a batch of changes in several views is one new
// version, and the last change of a name wins, as published one by one.
func TestEditsPublishOnce(t *testing.T) {
	st := NewStore()
	a1, a2, b := Unavailable("a.example.", "1"), Unavailable("a.example.", "2"), Unavailable("b.example.", "1")
	st.PutZones(map[string][]*Zone{DefaultView: {a1, b}, "v": {b}})
	if v := st.Load().Version(); v != 1 {
		t.Fatalf("version %d after one PutZones", v)
	}
	var e Edits
	e.Delete(DefaultView, "a.example.")
	e.Put(DefaultView, a2)      // delete, then put: present
	e.Put("v", a1)              //
	e.Delete("v", "b.example.") // put before, delete now: absent
	e.Delete(DefaultView, "b.example.")
	e.Put(DefaultView, b) // present again
	st.Apply(&e)
	snap := st.Load()
	if snap.Version() != 2 {
		t.Fatalf("version %d after one Apply", snap.Version())
	}
	for _, c := range []struct {
		view, origin string
		want         *Zone
	}{
		{DefaultView, "a.example.", a2}, {DefaultView, "b.example.", b}, {"v", "a.example.", a1}, {"v", "b.example.", nil},
	} {
		if got := snap.Zone(c.view, c.origin); got != c.want {
			t.Errorf("Zone(%q, %s) = %v, want %v", c.view, c.origin, got, c.want)
		}
	}
	if got := snap.Find("v", "www.b.example."); got != b {
		t.Errorf("view v no longer shadows b.example.: Find = %v, want the default zone", got)
	}
	st.Apply(&Edits{})
	if st.Load() != snap {
		t.Error("an empty batch published a snapshot")
	}
}

// TestFindDuringSwaps: readers Find while a writer publishes single zones
// and batches in several views (run with -race): every answer is a zone
// that contains the name, from one consistent snapshot.
func TestFindDuringSwaps(t *testing.T) {
	st := NewStore()
	st.Swap(manyViews(t, 500, 4, 100))
	stop := make(chan struct{})
	done := make(chan error, 2)
	for r := range 2 {
		go func() {
			view := fmt.Sprintf("v%d", r)
			for i := 0; ; i++ {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				snap := st.Load()
				q := fmt.Sprintf("www.pub%d.example.com.", i%600)
				if z := snap.Find(view, q); z != nil && !strings.HasSuffix(q, z.Origin()) {
					done <- fmt.Errorf("Find(%s) = zone %s", q, z.Origin())
					return
				}
			}
		}()
	}
	for i := range 2000 {
		name := fmt.Sprintf("pub%d.example.com.", 500+i%100)
		switch i % 4 {
		case 0:
			st.PutZone(DefaultView, Unavailable(name, "w"))
		case 1:
			st.DeleteZone(DefaultView, name)
		case 2:
			var e Edits
			e.Put("v1", Unavailable(name, "w"))
			e.Put(DefaultView, Unavailable(fmt.Sprintf("pub%d.example.com.", i%500), "w"))
			st.Apply(&e)
		default:
			st.DeleteZone("v1", name)
		}
	}
	close(stop)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
