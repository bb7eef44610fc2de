package server

import (
	"net/netip"
	"testing"
)

// TestViewFirstMatch: as BIND's match-clients, the first view in config
// order whose networks hold the client is its view, however specific a
// later one is.
func TestViewFirstMatch(t *testing.T) {
	wide := View{Name: "wide", Clients: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	narrow := View{Name: "narrow", Clients: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}
	for _, tc := range []struct {
		views      []View
		addr, want string
	}{
		{[]View{narrow, wide}, "10.1.2.3", "narrow"},
		{[]View{narrow, wide}, "10.2.2.3", "wide"},
		{[]View{wide, narrow}, "10.1.2.3", "wide"},
		{[]View{wide, narrow}, "192.0.2.1", ""},
	} {
		p := &policy{views: tc.views, viewIdx: make([]int, len(tc.views))}
		if got, _ := p.viewOf(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("views %s,%s: %s is in %q, want %q", tc.views[0].Name, tc.views[1].Name, tc.addr, got, tc.want)
		}
	}
}
