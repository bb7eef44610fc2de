package main

import (
	"os"
	"strings"
	"testing"
)

func TestNSIDConfigValues(t *testing.T) {
	host, _ := os.Hostname()
	for _, tc := range []struct{ yaml, want, err string }{
		{"", "", ""},
		{"nsid: dns-a\n", "dns-a", ""},
		{"nsid: hostname\n", host, ""},
		{"nsid: " + strings.Repeat("x", 129) + "\n", "", "cfg.yaml:1: nsid: 129 bytes: want at most 128"},
	} {
		cfg, err := parseConfig([]byte(tc.yaml), "cfg.yaml")
		if err != nil {
			t.Fatal(err)
		}
		got, err := cfg.nsidBytes()
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("%q: %q %v, want %q", tc.yaml, got, err, tc.want)
		}
	}
}
