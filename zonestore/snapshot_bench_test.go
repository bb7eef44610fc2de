package zonestore

import (
	"fmt"
	"testing"
)

// manyViews builds a snapshot of the shape a large deployment has: nDefault
// public zones every view sees, and views named views each with perView
// private zones of its own (one of which shadows a public zone).
func manyViews(tb testing.TB, nDefault, views, perView int) *Snapshot {
	tb.Helper()
	in := map[string][]*Zone{}
	for i := range nDefault {
		in[DefaultView] = append(in[DefaultView], Unavailable(fmt.Sprintf("pub%d.example.com.", i), "bench"))
	}
	for v := range views {
		name := fmt.Sprintf("v%d", v)
		for i := range perView {
			in[name] = append(in[name], Unavailable(fmt.Sprintf("priv%d.v%d.corp.example.", i, v), "bench"))
		}
		in[name] = append(in[name], Unavailable("pub0.example.com.", "bench-shadow"))
	}
	s, err := NewSnapshot(1, in)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkFind is the per-query zone selection of the UDP fast path: a
// name below a public zone from the default view and from a named view,
// a name in a view's own zone, and a name no zone holds.
func BenchmarkFind(b *testing.B) {
	for _, size := range []struct {
		name                     string
		nDefault, views, perView int
	}{
		{"small", 10, 2, 5},
		{"10k-zones-10-views", 10_000, 10, 1_000},
	} {
		snap := manyViews(b, size.nDefault, size.views, size.perView)
		for _, q := range []struct{ name, view, qname string }{
			{"default-hit", DefaultView, "www.pub3.example.com."},
			{"view-sees-default", "v1", "www.pub3.example.com."},
			{"view-own", "v1", "host.priv3.v1.corp.example."},
			{"miss", "v1", "a.b.c.nowhere.test."},
		} {
			b.Run(size.name+"/"+q.name, func(b *testing.B) {
				if snap.Find(q.view, q.qname) == nil && q.name != "miss" {
					b.Fatalf("%s not found", q.qname)
				}
				b.ReportAllocs()
				for b.Loop() {
					snap.Find(q.view, q.qname)
				}
			})
		}
	}
}

// BenchmarkSwapOneZone is the cost of publishing one zone's new version in
// a store of 10,000 public zones and 10 views of 1,000 zones each: for a
// public zone (every view sees it) and for one view's private zone.
func BenchmarkSwapOneZone(b *testing.B) {
	st := NewStore()
	st.Swap(manyViews(b, 10_000, 10, 1_000))
	for _, c := range []struct{ name, view, origin string }{
		{"default-view", DefaultView, "pub7.example.com."},
		{"named-view", "v3", "priv7.v3.corp.example."},
	} {
		// Two versions in turn: each swap is a real change.
		zs := [2]*Zone{Unavailable(c.origin, "bench-a"), Unavailable(c.origin, "bench-b")}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				st.PutZone(c.view, zs[i&1])
				i++
			}
		})
	}
}
