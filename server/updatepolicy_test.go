package server

import (
	"testing"

	"github.com/miekg/dns"
)

func TestUpdatePolicy(t *testing.T) {
	var rules []UpdateRule
	for _, l := range []string{
		"deny dhcp-key name locked.dyn.example. A",
		"grant dhcp-key subdomain dyn.example. A AAAA",
		"grant ddns-key zonesub ANY;",
		"grant host-key self * A",
		"grant *.hosts.example. selfsub * TXT",
		"grant w-key wildcard *.w.example. A",
	} {
		r, err := ParseUpdateRule(l)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, r)
	}
	for _, tc := range []struct {
		signer, name string
		t            uint16
		want         bool
	}{
		{"dhcp-key.", "h1.dyn.example.", dns.TypeA, true},
		{"dhcp-key.", "dyn.example.", dns.TypeAAAA, true},
		{"dhcp-key.", "locked.dyn.example.", dns.TypeA, false}, // first match: the deny
		{"dhcp-key.", "h1.dyn.example.", dns.TypeTXT, false},
		{"dhcp-key.", "www.example.", dns.TypeA, false},
		{"dhcp-key.", `x\.dyn.example.`, dns.TypeA, false}, // one label "x.dyn" under example.
		{"ddns-key.", "www.example.", dns.TypeMX, true},
		{"ddns-key.", "example.", dns.TypeNSEC, false}, // ANY excludes NSEC
		{"host-key.", "host-key.", dns.TypeA, true},
		{"host-key.", "other.", dns.TypeA, false},
		{"a.hosts.example.", "x.a.hosts.example.", dns.TypeTXT, true},
		{"w-key.", "a.w.example.", dns.TypeA, true},
		{"w-key.", "w.example.", dns.TypeA, false},
		{"", "www.example.", dns.TypeA, false}, // unsigned
		{"nobody.", "www.example.", dns.TypeA, false},
	} {
		if got := allowUpdate(rules, "example.", tc.signer, tc.name, tc.t); got != tc.want {
			t.Errorf("%s %s %s: %v, want %v", tc.signer, tc.name, dns.TypeToString[tc.t], got, tc.want)
		}
	}
	// No types: every type but RRSIG, NS, SOA, NSEC, NSEC3.
	r, _ := ParseUpdateRule("grant k. zonesub")
	if allowUpdate([]UpdateRule{r}, "example.", "k.", "example.", dns.TypeNS) || !allowUpdate([]UpdateRule{r}, "example.", "k.", "a.example.", dns.TypeCAA) {
		t.Error("a rule without types")
	}
	for _, bad := range []string{"allow k zonesub", "grant k", "grant k subdomain", "grant k wildcard a.example.", "grant k name x. BOGUS", "grant k tcp-self . A"} {
		if _, err := ParseUpdateRule(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
