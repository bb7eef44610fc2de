package zonestore

import "testing"

func TestInZoneLabelwise(t *testing.T) {
	for _, tc := range []struct {
		name, origin string
		want         bool
	}{
		{"www.example.", "example.", true},
		{"example.", "example.", true},
		{"badexample.", "example.", false},
		{`x\.example.`, "example.", false}, // one label "x.example" under "."
		{`x\\.example.`, "example.", true}, // label "x\" under example.
		{`a.x\.example.`, "x.example.", false},
		{"anything.", ".", true},
	} {
		if got := InZone(tc.name, tc.origin); got != tc.want {
			t.Errorf("InZone(%q, %q) = %v, want %v", tc.name, tc.origin, got, tc.want)
		}
	}
}
